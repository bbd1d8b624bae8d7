package reconcile

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"
)

// FormatVersion is the version of the plan JSON format. It changes only
// when a consumer of the JSON would have to change.
const FormatVersion = "1"

// Action is what a change does to one object. The zero value is no change.
type Action string

// The actions, in the order a plan lists them.
const (
	ActionCreate     Action = "create"
	ActionUpdate     Action = "update"
	ActionReactivate Action = "reactivate"
	ActionDeactivate Action = "deactivate"
)

// Symbol is the one-character mark the human view shows for the action.
func (a Action) Symbol() string {
	switch a {
	case ActionCreate:
		return "+"
	case ActionUpdate:
		return "~"
	case ActionDeactivate:
		return "-"
	case ActionReactivate:
		return "↻"
	}
	return " "
}

func (a Action) rank() int {
	switch a {
	case ActionCreate:
		return 0
	case ActionUpdate:
		return 1
	case ActionReactivate:
		return 2
	case ActionDeactivate:
		return 3
	}
	return 4
}

// Kind is the kind of Asset Panda object a change touches.
type Kind string

// The object kinds.
const (
	KindUser   Kind = "user"
	KindRecord Kind = "record"
)

// User field names used in Before and After of user changes.
const (
	UserEmail     = "email"
	UserFirstName = "first_name"
	UserLastName  = "last_name"
	UserRole      = "role"
	UserActive    = "active"
	UserADSID     = "ad_sid"
)

// Target says where in Asset Panda an object lives.
type Target struct {
	Account    string `json:"account"`
	Module     string `json:"module"`
	Collection string `json:"collection,omitempty"`
}

// Change is one planned write to one object.
//
// Before and After hold only the fields the change touches (every field for
// a create, whose Before is nil), keyed by the Asset Panda field name. Reason
// explains the change for people; apply never looks at it.
type Change struct {
	Mapping string            `json:"mapping"`
	Kind    Kind              `json:"kind"`
	Action  Action            `json:"action"`
	Key     string            `json:"key"`
	Target  Target            `json:"target"`
	Before  map[string]string `json:"before"`
	After   map[string]string `json:"after"`
	Reason  string            `json:"reason"`
	// Name is a human label for the object (an email or a person's name).
	Name string `json:"name,omitempty"`
	// ID is the Asset Panda id of an existing object; empty for creates.
	ID string `json:"id,omitempty"`
	// Adopt is set on the update that takes over an existing user matched
	// by email.
	Adopt bool `json:"adopt,omitempty"`
}

// Blocked is a change that a limit or a guard stopped. It is never applied.
type Blocked struct {
	Change
	// Limit names what stopped the change: "maxDeactivations",
	// "maxDeactivationPercent" or "emptyGroupGuard".
	Limit  string `json:"limit"`
	Detail string `json:"detail"`
}

// Problem is a per-object or per-mapping failure. The rest of the plan
// proceeds without the object.
type Problem struct {
	Mapping string `json:"mapping,omitempty"`
	Key     string `json:"key,omitempty"`
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
}

// String formats the problem as "mapping: object: message".
func (p Problem) String() string {
	s := ""
	if p.Mapping != "" {
		s += p.Mapping + ": "
	}
	if p.Object != "" {
		s += p.Object + ": "
	} else if p.Key != "" {
		s += p.Key + ": "
	}
	return s + p.Message
}

// Summary counts the changes of a plan by action.
type Summary struct {
	Create     int `json:"create"`
	Update     int `json:"update"`
	Deactivate int `json:"deactivate"`
	Reactivate int `json:"reactivate"`
}

// Total is the number of changes counted.
func (s Summary) Total() int { return s.Create + s.Update + s.Deactivate + s.Reactivate }

// Prior records what a plan was computed from, so that apply can refuse a
// plan when either side changed since. The digests are SHA-256 over the
// inputs that decided the plan, never over secrets.
type Prior struct {
	Spec      string `json:"spec"`
	Directory string `json:"directory"`
	Target    string `json:"target"`
}

// Plan is the complete, serializable result of comparing the desired state
// with Asset Panda. It is a plain value: renderers display it and Apply
// executes it.
type Plan struct {
	FormatVersion string    `json:"format_version"`
	ID            string    `json:"id,omitempty"`
	CreatedAt     time.Time `json:"created_at,omitzero"`
	Changes       []Change  `json:"changes"`
	Summary       Summary   `json:"summary"`
	Blocked       []Blocked `json:"blocked"`
	Errors        []Problem `json:"errors"`
	// Notes are remarks that change nothing, such as role precedence.
	Notes []string `json:"notes,omitempty"`
	// Mappings lists the mappings the plan covers.
	Mappings []string `json:"mappings,omitempty"`
	// Suspended is set when the SyncPolicy suspends writes.
	Suspended bool `json:"suspended,omitempty"`
	// LimitsOverridden is set when the plan was made with the one-time
	// override of the deactivation limits.
	LimitsOverridden bool  `json:"limits_overridden,omitempty"`
	Prior            Prior `json:"prior"`
}

// HasChanges reports whether applying the plan would write anything.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }

// finish sorts the plan's lists into their stable order and computes the
// summary.
func (p *Plan) finish() {
	sort.SliceStable(p.Changes, func(i, j int) bool { return lessChange(p.Changes[i], p.Changes[j]) })
	sort.SliceStable(p.Blocked, func(i, j int) bool { return lessChange(p.Blocked[i].Change, p.Blocked[j].Change) })
	sort.SliceStable(p.Errors, func(i, j int) bool {
		a, b := p.Errors[i], p.Errors[j]
		if a.Mapping != b.Mapping {
			return a.Mapping < b.Mapping
		}
		return a.Key < b.Key
	})
	p.Summary = Summary{}
	for _, c := range p.Changes {
		switch c.Action {
		case ActionCreate:
			p.Summary.Create++
		case ActionUpdate:
			p.Summary.Update++
		case ActionDeactivate:
			p.Summary.Deactivate++
		case ActionReactivate:
			p.Summary.Reactivate++
		}
	}
	if p.Changes == nil {
		p.Changes = []Change{}
	}
	if p.Blocked == nil {
		p.Blocked = []Blocked{}
	}
	if p.Errors == nil {
		p.Errors = []Problem{}
	}
}

// lessChange orders changes by mapping, then action, then key.
func lessChange(a, b Change) bool {
	if a.Mapping != b.Mapping {
		return a.Mapping < b.Mapping
	}
	if a.Action.rank() != b.Action.rank() {
		return a.Action.rank() < b.Action.rank()
	}
	return a.Key < b.Key
}

// WriteJSON writes the plan as indented JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(p)
}

// ReadPlan decodes a plan written by WriteJSON and checks its format version.
func ReadPlan(r io.Reader) (*Plan, error) {
	var p Plan
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	if p.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("plan format version %q is not supported (want %q)", p.FormatVersion, FormatVersion)
	}
	if p.Prior.Directory == "" || p.Prior.Target == "" || p.Prior.Spec == "" {
		return nil, fmt.Errorf("plan carries no record of what it was computed from; make it with pandasync plan -out")
	}
	return &p, nil
}

func newPlanID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	return hex.EncodeToString(b[:])
}
