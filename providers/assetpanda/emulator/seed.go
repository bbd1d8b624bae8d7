package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"time"
)

// Seed is the names-based JSON the emulator starts from and dumps (DESIGN 3.4).
// Ids are the emulator's business and never appear in a seed, except the
// optional "_id" of a record.
type Seed struct {
	Credentials Credentials    `json:"credentials"`
	Permissions *Permissions   `json:"permissions,omitempty"` // nil = everything granted
	RateLimit   *SeedRateLimit `json:"rate_limit,omitempty"`  // nil = Options.Rate or the default
	Accounts    []SeedAccount  `json:"accounts"`
	Users       []SeedUser     `json:"users"`
}

// Credentials are the four values a caller must present to POST /v3/session/token.
// String, GoString and LogValue redact the secrets.
type Credentials struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	Email        string `json:"email"`
	Password     string `json:"password,omitempty"`
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// String describes the credentials without their secrets.
func (c Credentials) String() string {
	return fmt.Sprintf("{client_id:%s client_secret:%s email:%s password:%s}",
		c.ClientID, redact(c.ClientSecret), c.Email, redact(c.Password))
}

// GoString is like String, so %#v does not leak secrets either.
func (c Credentials) GoString() string { return "emulator.Credentials" + c.String() }

// LogValue implements slog.LogValuer without the secrets.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redact(c.ClientSecret)),
		slog.String("email", c.Email),
		slog.String("password", redact(c.Password)),
	)
}

// Permissions are what the API client may do.
type Permissions struct {
	Read        bool `json:"read"`
	Write       bool `json:"write"`
	CreateUsers bool `json:"create_users"`
}

// SeedRateLimit is the optional rate limit of a seed; Per is a Go duration
// string such as "180s". Requests < 0 switches the limit off.
type SeedRateLimit struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"`
}

// SeedAccount is an account and its modules.
type SeedAccount struct {
	Name    string       `json:"name"`
	Modules []SeedModule `json:"modules"`
}

// SeedModule is a module: its role names and its collections.
type SeedModule struct {
	Name        string           `json:"name"`
	Roles       []string         `json:"roles"`
	Collections []SeedCollection `json:"collections"`
}

// SeedCollection is a collection (an API "group"), its fields and records.
// AllowDuplicates lets the records of the seed repeat the value of a
// unique field, to set up ownership conflicts (two records holding one
// key); writes through the API still refuse a repeated value (422, code 2).
type SeedCollection struct {
	Name            string       `json:"name"`
	AllowDuplicates bool         `json:"allow_duplicates,omitempty"`
	Fields          []SeedField  `json:"fields"`
	Records         []SeedRecord `json:"records,omitempty"`
}

// SeedField defines a field. Type is one of text, number, date, boolean, list;
// a list field has Options (names).
type SeedField struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Unique   bool     `json:"unique,omitempty"`
	Required bool     `json:"required,omitempty"`
	Options  []string `json:"options,omitempty"`
}

// SeedRecord is a record: values keyed by field name (single-selects by option
// name). In JSON it is one flat object; the reserved keys "_id" (record id)
// and "_archived" (bool) carry the rest.
type SeedRecord struct {
	ID       string
	Archived bool
	Fields   map[string]string
}

// MarshalJSON writes the flat object form.
func (r SeedRecord) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(r.Fields)+2)
	for k, v := range r.Fields {
		m[k] = v
	}
	if r.ID != "" {
		m["_id"] = r.ID
	}
	if r.Archived {
		m["_archived"] = true
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat object form; numbers and booleans become
// strings, null becomes "".
func (r *SeedRecord) UnmarshalJSON(b []byte) error {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	*r = SeedRecord{Fields: make(map[string]string, len(m))}
	for k, v := range m {
		switch k {
		case "_id":
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("record _id must be a string")
			}
			r.ID = s
			continue
		case "_archived":
			b, ok := v.(bool)
			if !ok {
				return fmt.Errorf("record _archived must be a boolean")
			}
			r.Archived = b
			continue
		}
		switch x := v.(type) {
		case nil:
			r.Fields[k] = ""
		case string:
			r.Fields[k] = x
		case json.Number:
			r.Fields[k] = x.String()
		case bool:
			r.Fields[k] = strconv.FormatBool(x)
		default:
			return fmt.Errorf("record field %q: value must be a string, number, boolean or null", k)
		}
	}
	return nil
}

// SeedUser is a login user. ADSID is the AD objectSid it carries (the
// ownership mark of pandasync), empty when not AD-managed. Nothing makes
// it unique: two users may carry the same ADSID (an ownership conflict).
type SeedUser struct {
	Email     string         `json:"email"`
	FirstName string         `json:"first_name"`
	LastName  string         `json:"last_name"`
	Active    bool           `json:"active"`
	ADSID     string         `json:"ad_sid"`
	Roles     []SeedUserRole `json:"roles,omitempty"`
}

// SeedUserRole is a user's role in one module, by names.
type SeedUserRole struct {
	Account string `json:"account"`
	Module  string `json:"module"`
	Role    string `json:"role"`
}

// LoadSeed decodes a seed strictly: unknown keys are errors. The content is
// validated by New.
func LoadSeed(r io.Reader) (*Seed, error) {
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	var s Seed
	if err := d.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode seed: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("decode seed: trailing data after the JSON object")
	}
	return &s, nil
}

// State dumps the current state in the seed format. The credential secrets
// are left out, so a dump never carries them.
func (e *Emulator) State() *Seed {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &Seed{
		Credentials: Credentials{ClientID: e.creds.ClientID, Email: e.creds.Email},
		Accounts:    []SeedAccount{},
		Users:       []SeedUser{},
	}
	p := e.perms
	s.Permissions = &p
	if e.rate.Requests != 0 {
		s.RateLimit = &SeedRateLimit{Requests: e.rate.Requests, Per: e.rate.Per.String()}
	}
	for _, a := range e.accounts {
		sa := SeedAccount{Name: a.name, Modules: []SeedModule{}}
		for _, m := range a.modules {
			sm := SeedModule{Name: m.name, Roles: []string{}, Collections: []SeedCollection{}}
			for _, r := range m.roles {
				sm.Roles = append(sm.Roles, r.name)
			}
			for _, g := range m.groups {
				sc := SeedCollection{Name: g.name, AllowDuplicates: g.allowDup, Fields: []SeedField{}}
				for _, f := range g.fields {
					sf := SeedField{Name: f.name, Type: f.typ, Unique: f.unique, Required: f.required}
					for _, o := range f.options {
						sf.Options = append(sf.Options, o.name)
					}
					sc.Fields = append(sc.Fields, sf)
				}
				for _, o := range g.objects {
					rec := SeedRecord{ID: o.id, Archived: o.archived, Fields: map[string]string{}}
					for _, f := range g.fields {
						if v := f.display(o.values[f.key]); v != "" {
							rec.Fields[f.name] = v
						}
					}
					sc.Records = append(sc.Records, rec)
				}
				sm.Collections = append(sm.Collections, sc)
			}
			sa.Modules = append(sa.Modules, sm)
		}
		s.Accounts = append(s.Accounts, sa)
	}
	for _, u := range e.users {
		su := SeedUser{Email: u.email, FirstName: u.firstName, LastName: u.lastName, Active: u.active, ADSID: u.adSID}
		for _, ur := range u.roles {
			m := e.modules[ur.moduleID]
			r := e.roles[ur.roleID]
			if m == nil || r == nil {
				continue
			}
			su.Roles = append(su.Roles, SeedUserRole{Account: m.account.name, Module: m.name, Role: r.name})
		}
		sort.SliceStable(su.Roles, func(i, j int) bool {
			if su.Roles[i].Account != su.Roles[j].Account {
				return su.Roles[i].Account < su.Roles[j].Account
			}
			return su.Roles[i].Module < su.Roles[j].Module
		})
		s.Users = append(s.Users, su)
	}
	return s
}

func parseSeedRate(r *SeedRateLimit) (Rate, error) {
	if r == nil {
		return Rate{}, nil
	}
	if r.Requests < 0 {
		return Rate{Requests: -1}, nil
	}
	d, err := time.ParseDuration(r.Per)
	if err != nil {
		return Rate{}, fmt.Errorf("rate_limit.per: %w", err)
	}
	if r.Requests == 0 || d <= 0 {
		return Rate{}, fmt.Errorf("rate_limit: requests and per must be positive (or requests < 0 to switch it off)")
	}
	return Rate{Requests: r.Requests, Per: d}, nil
}
