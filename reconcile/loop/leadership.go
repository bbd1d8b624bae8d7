package loop

import "github.com/pandasync/pandasync/reconcile/leader"

// ReasonElected is the reason of the first pass after this replica became
// the leader, with leader election.
const ReasonElected = "elected leader"

// Leadership is what the loop needs from leader election; *leader.Elector
// has it. With Config.Leadership set, only the replica that leads runs
// passes. The others keep the spec loaded and watched, answer /healthz,
// /readyz and /status, which names the leader, and report state "standby".
// Call LeadershipChanged when this replica starts or stops leading. The
// first pass after it starts leading is the start-up pass (unless the
// SyncPolicy's runAtStart is false), or the scheduled one when its slot
// has passed. Fence the writes with Config.Gate as well: a leader that lost
// its lease stops before the next write batch, and its pass ends as
// stopped.
type Leadership interface {
	IsLeader() bool
	Status() leader.Status
}

// LeadershipChanged tells the loop that this replica started or stopped
// leading. It never blocks.
func (l *Loop) LeadershipChanged() {
	l.leaderEpoch.Add(1)
	select {
	case l.nudge <- struct{}{}:
	default:
	}
}

// standby says why this replica runs no pass: "" when it leads, or runs
// without leader election.
func (l *Loop) standby() string {
	if l.cfg.Leadership == nil || l.cfg.Leadership.IsLeader() {
		return ""
	}
	st := l.cfg.Leadership.Status()
	if st.Leader == "" || st.Leader == st.Identity {
		return "this replica does not lead lease " + st.Lease + " and nobody else does yet; it takes the lease when it can"
	}
	return st.Leader + " leads lease " + st.Lease + "; this replica runs no pass until it leads"
}
