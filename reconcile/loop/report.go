package loop

import (
	"fmt"
	"strings"
	"time"

	"github.com/pandasync/pandasync/reconcile"
)

// Outcome is how a pass ended.
//
// The green outcomes (success, no_changes, suspended) reset the failure
// count. The others count as failed passes for consecutive_failures,
// last_success, the degraded state and quarantine. They differ in what
// comes next: a failed pass is retried with backoff (or, when retrying
// cannot fix it, not at all until the spec changes or a pass is asked
// for), while a pass that finished with problems waits for the next
// scheduled pass, since retrying at once would meet the same limits and
// the same broken objects.
type Outcome string

// The pass outcomes.
const (
	// OutcomeSuccess: changes were applied; none failed, none is blocked,
	// the plan has no problems.
	OutcomeSuccess Outcome = "success"
	// OutcomeNoChanges: in sync; nothing blocked, no problems.
	OutcomeNoChanges Outcome = "no_changes"
	// OutcomeSuspended: planned only, as the SyncPolicy suspends writes;
	// nothing blocked, no problems.
	OutcomeSuspended Outcome = "suspended"
	// OutcomeProblems: the pass finished, but changes are blocked by a
	// limit or guard, the plan has problems (an unresolved mapping, an
	// object it cannot handle) or changes failed to apply. The rest was
	// applied. Not green; no fast retry.
	OutcomeProblems Outcome = "problems"
	// OutcomeFailed: the pass failed as a whole: nothing could be planned
	// (a read failed, credentials were refused, the pass timed out or
	// panicked) or the apply had to stop. Retried with backoff unless
	// Terminal.
	OutcomeFailed Outcome = "failed"
	// OutcomeStopped: pandasync was stopping (SIGTERM): the write batch in
	// flight completed and no further write started. Neither green nor a
	// failure; the next start re-plans from what Asset Panda holds.
	OutcomeStopped Outcome = "stopped"
)

// Outcomes lists every outcome, in the order above.
var Outcomes = []Outcome{OutcomeSuccess, OutcomeNoChanges, OutcomeSuspended, OutcomeProblems, OutcomeFailed, OutcomeStopped}

// Green reports whether the outcome resets the failure count.
func (o Outcome) Green() bool {
	return o == OutcomeSuccess || o == OutcomeNoChanges || o == OutcomeSuspended
}

// MaxListed bounds each list of a PassReport (changes, failed, blocked,
// problems); the counts are always complete. The audit trail has every
// change.
const MaxListed = 100

// Counts are the complete counts of one pass.
type Counts struct {
	Applied      int `json:"applied"`
	Failed       int `json:"failed"`
	NotAttempted int `json:"not_attempted"`
	Blocked      int `json:"blocked"`
	Problems     int `json:"problems"`
}

// ChangeResult is a change the pass attempted, and how that went.
type ChangeResult struct {
	Mapping string            `json:"mapping"`
	Kind    reconcile.Kind    `json:"kind"`
	Action  reconcile.Action  `json:"action"`
	Key     string            `json:"key"`
	Name    string            `json:"name,omitempty"`
	Before  map[string]string `json:"before"`
	After   map[string]string `json:"after"`
	// Result is "applied" or "failed".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// The results of an attempted change, in ChangeResult and AuditEntry.
const (
	ResultApplied = "applied"
	ResultFailed  = "failed"
)

// PassReport describes one pass: why it ran, against which revision, what
// it planned and did, and how it ended. It is what /status shows as the
// current and last pass and what the pass history keeps; every list is
// bounded by MaxListed.
type PassReport struct {
	ID         string    `json:"id"`
	Reason     string    `json:"reason"`
	Revision   string    `json:"revision,omitempty"`
	Dirty      bool      `json:"dirty,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Duration is in seconds.
	Duration float64 `json:"duration_seconds"`
	Outcome  Outcome `json:"outcome,omitempty"`
	// Error is why a pass failed; Terminal says retrying cannot fix it.
	Error    string `json:"error,omitempty"`
	Terminal bool   `json:"terminal,omitempty"`
	// Summary counts the planned changes by action; nil when no plan was
	// made.
	Summary *reconcile.Summary `json:"summary,omitempty"`
	Counts  Counts             `json:"counts"`
	// Changes are the applied changes, Failed the changes that failed with
	// their errors, Blocked the changes a limit or guard stopped, Problems
	// the plan's problems.
	Changes  []ChangeResult      `json:"changes,omitempty"`
	Failed   []ChangeResult      `json:"failed,omitempty"`
	Blocked  []reconcile.Blocked `json:"blocked,omitempty"`
	Problems []reconcile.Problem `json:"problems,omitempty"`
	// Truncated is set when a list holds fewer entries than its count.
	Truncated bool `json:"truncated,omitempty"`
	// Mappings describes each mapping as the pass saw it and what the pass
	// did to it, with complete counts; empty when no plan was made.
	Mappings []MappingReport `json:"mappings,omitempty"`
	// Read says whether the pass read everything or only what changed
	// since the previous one, and why; nil when no plan was made.
	Read *ReadReport `json:"read,omitempty"`

	// Plan is the pass's plan, for `run -once`; never stored.
	Plan *reconcile.Plan `json:"-"`
	// Err is the pass's failure as an error; never stored.
	Err error `json:"-"`
}

// MappingReport is one mapping in a pass: its scope when the plan was made
// (target, group, members in scope, managed objects) and the complete
// counts of what the pass did to it.
type MappingReport struct {
	reconcile.Scope
	// Applied counts the applied changes by action.
	Applied reconcile.Summary `json:"applied"`
	// Failed, Blocked and Problems count the mapping's failed changes,
	// blocked changes and plan problems.
	Failed   int `json:"failed"`
	Blocked  int `json:"blocked"`
	Problems int `json:"problems"`
}

// clone copies the report's lists, so that the copy can be handed out.
func (r *PassReport) clone() *PassReport {
	if r == nil {
		return nil
	}
	c := *r
	c.Changes = append([]ChangeResult(nil), r.Changes...)
	c.Failed = append([]ChangeResult(nil), r.Failed...)
	c.Blocked = append([]reconcile.Blocked(nil), r.Blocked...)
	c.Problems = append([]reconcile.Problem(nil), r.Problems...)
	c.Mappings = append([]MappingReport(nil), r.Mappings...)
	if r.Summary != nil {
		s := *r.Summary
		c.Summary = &s
	}
	c.Plan, c.Err = nil, nil
	return &c
}

// Describe says in one line how the pass ended, as a phrase that follows
// "the pass" ("failed: …", "finished: 3 changes applied"), for the state's
// reason and notifications.
func (r *PassReport) Describe() string {
	switch r.Outcome {
	case OutcomeFailed:
		if r.Terminal {
			return "failed, and retrying cannot fix it: " + r.Error
		}
		return "failed: " + r.Error
	case OutcomeStopped:
		return "stopped before it finished"
	case OutcomeNoChanges:
		return "had nothing to do"
	case OutcomeSuspended:
		return "planned only: writes are suspended"
	}
	var parts []string
	c := r.Counts
	if c.Applied > 0 || r.Outcome == OutcomeSuccess {
		parts = append(parts, plural(c.Applied, "change")+" applied")
	}
	if c.Failed > 0 {
		parts = append(parts, plural(c.Failed, "change")+" failed")
	}
	if c.Blocked > 0 {
		parts = append(parts, plural(c.Blocked, "change")+" blocked by a limit or guard")
	}
	if c.Problems > 0 {
		parts = append(parts, plural(c.Problems, "problem"))
	}
	if c.NotAttempted > 0 {
		parts = append(parts, fmt.Sprintf("%d not attempted", c.NotAttempted))
	}
	return "finished: " + strings.Join(parts, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
