package loop

import (
	"time"

	"github.com/pandasync/pandasync/reconcile/leader"
)

// State is what the loop is doing, as /status and pandasync_loop_state
// show it.
type State string

// The loop's states. Several may hold at once; the loop reports the first
// that applies, in this order: running, waiting_for_spec, stalled,
// quarantined, degraded, backoff, idle.
const (
	StateStarting State = "starting" // before the spec is first loaded
	StateRunning  State = "running"  // a pass is running
	// StateWaitingForSpec: no valid spec has loaded yet; nothing runs until
	// one does.
	StateWaitingForSpec State = "waiting_for_spec"
	// StateStalled: the last pass failed in a way retrying cannot fix
	// (credentials refused, a secret missing); no pass runs by itself
	// until the spec changes, SIGHUP or POST /sync.
	StateStalled State = "stalled"
	// StateQuarantined: SyncPolicy quarantine.after passes in a row
	// failed; the loop runs one pass every quarantine.retryEvery (never
	// more often than the schedule) until one succeeds.
	StateQuarantined State = "quarantined"
	// StateDegraded: SyncPolicy degradedAfter passes in a row failed; the
	// loop retries as usual.
	StateDegraded State = "degraded"
	// StateBackoff: the last pass failed; the loop retries after a capped,
	// exponentially growing wait.
	StateBackoff State = "backoff"
	// StateIdle: waiting for the next scheduled pass or an event.
	StateIdle State = "idle"
	// StateStandby: another replica leads (leader election); this one
	// keeps the spec loaded and runs no pass until it leads.
	StateStandby State = "standby"
	StateStopped State = "stopped" // Run has returned
)

// States lists every state, for metrics.
var States = []State{StateStarting, StateRunning, StateWaitingForSpec, StateStalled, StateQuarantined, StateDegraded, StateBackoff, StateIdle, StateStandby, StateStopped}

// SpecStatus describes the spec in force and the last attempt to load one.
type SpecStatus struct {
	// Valid is false when the last load failed; the set loaded at
	// LoadedAt, if any, stays in force.
	Valid    bool      `json:"valid"`
	Files    []string  `json:"files,omitempty"`
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	FailedAt time.Time `json:"failed_at,omitzero"`
	// Problems lists what is wrong with the rejected spec, one line each;
	// Details holds the same problems with their file and field.
	Problems []string      `json:"problems,omitempty"`
	Details  []SpecProblem `json:"problem_details,omitempty"`
	// Revision is the git revision of the spec in force ("main@sha1:…")
	// and Dirty says its files differ from that commit; empty outside a
	// git work tree.
	Revision string `json:"revision,omitempty"`
	Dirty    bool   `json:"dirty,omitempty"`
}

// SpecProblem is one problem of a rejected spec: where it is and what is
// wrong (see spec.Problem).
type SpecProblem struct {
	// File is empty for problems of the whole set, such as a missing
	// Connection; Document is the 1-based document in File (0: the file).
	File     string `json:"file,omitempty"`
	Document int    `json:"document,omitempty"`
	// Line is the 1-based line of the field (or of the nearest enclosing
	// one) in File; 0 when unknown.
	Line int `json:"line,omitempty"`
	// Kind and Name identify the document when they are known.
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
	// Path is the field, such as "spec.fields[2].attribute"; empty for the
	// document or file as a whole.
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Status is the loop's state, as GET /status shows it.
type Status struct {
	State State `json:"state"`
	// StateReason explains the state in a sentence.
	StateReason string `json:"state_reason,omitempty"`
	// Ready is what GET /readyz answers: a valid spec is in force and the
	// last pass did not fail terminally. ReadyReason says why not.
	Ready       bool       `json:"ready"`
	ReadyReason string     `json:"ready_reason,omitempty"`
	Spec        SpecStatus `json:"spec"`
	// Current is the running pass, if any.
	Current  *PassReport `json:"current,omitempty"`
	LastPass *PassReport `json:"last_pass,omitempty"`
	// LastSuccess is when a pass last finished green.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// ConsecutiveFailures counts the passes in a row that were not green
	// (failed or finished with problems).
	ConsecutiveFailures int `json:"consecutive_failures"`
	// QuarantinedSince is when the loop entered quarantine; zero when it
	// is not quarantined.
	QuarantinedSince time.Time `json:"quarantined_since,omitzero"`
	// Passes counts the passes this process ran.
	Passes int `json:"passes"`
	// NextRun is when the loop runs a pass by itself, and why; zero when
	// it waits for an event (a spec change, SIGHUP, POST /sync).
	NextRun       time.Time `json:"next_run,omitzero"`
	NextRunReason string    `json:"next_run_reason,omitempty"`
	// StateDir is the state directory this process writes, if any.
	StateDir string `json:"state_dir,omitempty"`
	// Leader is the leader election, when this replica takes part in one:
	// the Lease, this replica's identity, who leads.
	Leader *leader.Status `json:"leader,omitempty"`
}

// Status returns a copy of the loop's status.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	s.Spec.Files = append([]string(nil), s.Spec.Files...)
	s.Spec.Problems = append([]string(nil), s.Spec.Problems...)
	s.Spec.Details = append([]SpecProblem(nil), s.Spec.Details...)
	s.Current = s.Current.clone()
	s.LastPass = s.LastPass.clone()
	if l.cfg.Leadership != nil {
		ls := l.cfg.Leadership.Status()
		s.Leader = &ls
	}
	return s
}
