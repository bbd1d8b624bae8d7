// Package loop is the runtime behind `pandasync run`: the long-running loop
// that drives reconcile's plan and apply, and everything an admin needs to
// leave it running.
//
// The loop follows controller-runtime's split. A Reconciler does the work of
// one pass (Syncer: connect, plan, apply) for a level-based Request that
// names the spec in force, never the event. The loop owns everything around
// it:
//
//   - when passes run: at start-up, on the SyncPolicy schedule with jitter,
//     when the spec files change (Watcher), on demand (Trigger), and after
//     failures with capped exponential backoff; after many failures in a
//     row it reports itself degraded, then quarantined, and slows down;
//   - each pass's id, logger, timeout and panic recovery, and its Outcome,
//     derived from the Result and the error (providers mark the errors that
//     retrying cannot fix with a Terminal() bool method);
//   - stopping: the write gate (reconcile.ApplyOptions.Gate) closes on
//     shutdown, so the write batch in flight completes and no further write
//     starts;
//   - who runs passes, under leader election (Config.Leadership, package
//     reconcile/leader): only the replica that leads; the others stand by
//     with the spec loaded, and the gate fences a leader that lost its lease;
//   - what a pass leaves behind in the state directory: the writer Lock,
//     the Audit trail of every attempted write, and the pass History;
//   - what it tells people: Status, metrics and the admin Handler, the log
//     lines, and webhook notifications.
//
// The package reconcile stays free of all this: it knows nothing of HTTP,
// file watching, metrics, signals or LDAP error codes.
package loop
