package reconcile

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// ReasonCode is the stable, machine-readable reason of a change, next to
// its human Reason, in the manner of Terraform's action_reason. Like the
// Reason it explains; apply never looks at it.
type ReasonCode string

// The reason codes.
const (
	ReasonMember        ReasonCode = "member"       // a member of the mapping's group, not yet in Asset Panda
	ReasonADChanged     ReasonCode = "ad_changed"   // AD attributes differ from Asset Panda
	ReasonRoleChanged   ReasonCode = "role_changed" // the role the mappings give differs
	ReasonRoleGranted   ReasonCode = "role_granted" // a role in a further module for a user created by this plan
	ReasonAdopt         ReasonCode = "adopt"        // an existing user matched by email is taken over
	ReasonStatus        ReasonCode = "status"       // the status field is not Active for a member
	ReasonBackInAD      ReasonCode = "back_in_ad"   // re-enabled or back in a mapped group
	ReasonLeftGroup     ReasonCode = "left_group"   // no longer in the mapping's group
	ReasonDisabled      ReasonCode = "disabled"     // disabled in AD
	ReasonExpired       ReasonCode = "expired"      // account expired in AD
	ReasonDeletedFromAD ReasonCode = "deleted"      // the account no longer exists in AD
)

// Change is one planned write to one object.
//
// Before and After hold only the fields the change touches (every field for
// a create, whose Before is nil), keyed by the Asset Panda field name. Reason
// and ReasonCode explain the change for people; apply never looks at them.
type Change struct {
	Mapping    string            `json:"mapping"`
	Kind       Kind              `json:"kind"`
	Action     Action            `json:"action"`
	Key        string            `json:"key"`
	Target     Target            `json:"target"`
	Before     map[string]string `json:"before"`
	After      map[string]string `json:"after"`
	Reason     string            `json:"reason"`
	ReasonCode ReasonCode        `json:"reason_code"`
	// Name is a human label for the object (an email or a person's name).
	Name string `json:"name,omitempty"`
	// ID is the Asset Panda id of an existing object; empty for creates.
	ID string `json:"id,omitempty"`
	// Adopt is set on the update that takes over an existing user matched
	// by email.
	Adopt bool `json:"adopt,omitempty"`
}

// Blocked is a change, or the part of a change, that a limit or a guard
// stopped. It is never applied. When a limit stops only some fields of an
// update (a field clear, a role change), the rest of the update stays in
// the plan's changes and Blocked holds just those fields.
type Blocked struct {
	Change
	// Limit names what stopped the change: a limit (LimitMaxDeactivations,
	// …) or a guard (GuardEmptyGroup, …).
	Limit string `json:"limit"`
	// Detail says why, with the figures.
	Detail string `json:"detail"`
	// Fix says what makes the change go ahead: the one-time override flag
	// of a limit, or what to repair for a guard.
	Fix string `json:"fix,omitempty"`
}

// ProblemCode is the stable, machine-readable kind of a Problem.
type ProblemCode string

// The problem codes.
const (
	ProblemUnresolvedAccount    ProblemCode = "unresolved_account"
	ProblemUnresolvedModule     ProblemCode = "unresolved_module"
	ProblemUnresolvedRole       ProblemCode = "unresolved_role"
	ProblemUnresolvedCollection ProblemCode = "unresolved_collection"
	ProblemUnresolvedField      ProblemCode = "unresolved_field"
	ProblemUnresolvedOption     ProblemCode = "unresolved_option"
	ProblemUnresolvedGroup      ProblemCode = "unresolved_group"
	ProblemUnresolvedAttribute  ProblemCode = "unresolved_attribute"
	ProblemReadFailed           ProblemCode = "read_failed"
	ProblemMemberUnreadable     ProblemCode = "member_unreadable"
	ProblemMemberOutsideBase    ProblemCode = "member_outside_base"
	ProblemMemberNoKey          ProblemCode = "member_no_key"
	ProblemMemberNoEmail        ProblemCode = "member_no_email"
	ProblemUserConflict         ProblemCode = "conflict_user_sid"
	ProblemRecordConflict       ProblemCode = "conflict_record_key"
	ProblemEmailTaken           ProblemCode = "email_taken"
	ProblemApplyFailed          ProblemCode = "apply_failed"
)

// Problem is something that stops part of the plan: a mapping that does
// not resolve, a read that failed, a member that could not be read, an
// ownership conflict. What it concerns is left as it is; a plan with
// problems is never "in sync".
type Problem struct {
	Code    ProblemCode `json:"code,omitempty"`
	Mapping string      `json:"mapping,omitempty"`
	Key     string      `json:"key,omitempty"`
	Object  string      `json:"object,omitempty"`
	Message string      `json:"message"`
	// Fix says how to repair it.
	Fix string `json:"fix,omitempty"`
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

// Summary counts the changes of a plan by action, and the blocked changes
// and problems.
type Summary struct {
	Create     int `json:"create"`
	Update     int `json:"update"`
	Deactivate int `json:"deactivate"`
	Reactivate int `json:"reactivate"`
	Blocked    int `json:"blocked"`
	Problems   int `json:"problems"`
}

// Total is the number of changes counted.
func (s Summary) Total() int { return s.Create + s.Update + s.Deactivate + s.Reactivate }

// Prior records what a plan was computed from. The digests are SHA-256
// over the inputs that decided the plan, never over secrets.
type Prior struct {
	Spec      string `json:"spec"`
	Directory string `json:"directory"`
	Target    string `json:"target"`
	// Revision is the git revision of the spec files ("main@sha1:…",
	// Flux's format) when they are in a git work tree, and Dirty says the
	// files differ from it. The caller that knows the files' origin fills
	// them in, then seals the plan again; they are informational, and apply
	// never compares them.
	Revision string `json:"revision,omitempty"`
	Dirty    bool   `json:"dirty,omitempty"`
}

// The one-time overrides of the limits, as Options and Plan.Overrides name
// them.
const (
	OverrideDeactivations = "deactivations"
	OverrideRoleChanges   = "role-changes"
	OverrideFieldClears   = "field-clears"
	OverrideCreates       = "creates"
)

// Plan is the complete, serializable result of comparing the desired state
// with Asset Panda. It is a plain value: renderers display it and Apply
// executes it.
type Plan struct {
	FormatVersion string `json:"format_version"`
	// Digest is the SHA-256 of the plan's canonical JSON without the
	// digest itself ("sha256:…"): a saved plan whose content no longer
	// matches it is refused.
	Digest    string    `json:"digest"`
	ID        string    `json:"id,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Changes   []Change  `json:"changes"`
	Summary   Summary   `json:"summary"`
	Blocked   []Blocked `json:"blocked"`
	Errors    []Problem `json:"errors"`
	// Notes are remarks that change nothing, such as role precedence.
	Notes []string `json:"notes,omitempty"`
	// Mappings lists the mappings the plan covers: all of the spec's, or
	// the ones -mapping selected (Selected is then set). A selection
	// filters the plan of the whole spec; it never narrows what is
	// desired.
	Mappings []string `json:"mappings,omitempty"`
	Selected bool     `json:"selected,omitempty"`
	// Suspended is set when the SyncPolicy suspends writes.
	Suspended bool `json:"suspended,omitempty"`
	// Overrides lists the limits lifted for this one plan
	// (OverrideDeactivations, …); LimitsOverridden is set when any is.
	Overrides        []string `json:"overrides,omitempty"`
	LimitsOverridden bool     `json:"limits_overridden,omitempty"`
	Prior            Prior    `json:"prior"`
}

// InSync reports whether Asset Panda matches the spec: no changes, nothing
// blocked and no problems.
func (p *Plan) InSync() bool {
	return len(p.Changes) == 0 && len(p.Blocked) == 0 && len(p.Errors) == 0
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
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.Object < b.Object
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
	p.Summary.Blocked = len(p.Blocked)
	p.Summary.Problems = len(p.Errors)
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
	if p.Digest == "" {
		return nil, errors.New("the plan carries no digest; make it with pandasync plan -out")
	}
	if d := p.computeDigest(); d != p.Digest {
		return nil, fmt.Errorf("%w: its content no longer matches its digest %s", ErrPlanModified, p.Digest)
	}
	return &p, nil
}

// ErrPlanModified is returned by ReadPlan for a plan file whose content was
// changed after it was made.
var ErrPlanModified = errors.New("the plan file was modified after it was made")

// Seal sets the plan's digest over its current content. MakePlan seals
// every plan; a plan built or changed by hand must be sealed again.
func (p *Plan) Seal() { p.Digest = p.computeDigest() }

// computeDigest hashes the plan's canonical JSON (compact, map keys
// sorted, as encoding/json writes them) with Digest left empty.
func (p *Plan) computeDigest() string {
	c := *p
	c.Digest = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Reissue returns a copy of the plan under a new id, created at now, and
// sealed: pandasync run reuses the plan of its previous pass this way when
// nothing it depends on changed. The copy shares the lists of changes,
// which must not be modified.
func (p *Plan) Reissue(now time.Time) *Plan {
	c := *p
	c.ID, c.CreatedAt = newPlanID(), now.UTC().Truncate(time.Second)
	c.Seal()
	return &c
}

func newPlanID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return ""
	}
	return hex.EncodeToString(b[:])
}
