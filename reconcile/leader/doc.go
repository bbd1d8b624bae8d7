// Package leader elects one leader among several pandasync processes through
// a Kubernetes coordination.k8s.io/v1 Lease, so that only one replica of a
// Deployment plans and writes. The cluster is the lock: pandasync keeps no
// lock of its own.
//
// The election follows client-go's tools/leaderelection:
//
//   - Timing is LeaseDuration, RenewDeadline and RetryPeriod, 15 s, 10 s and
//     2 s by default, and a Config is refused unless LeaseDuration >
//     RenewDeadline > 1.2 × RetryPeriod, and LeaseDuration is whole
//     seconds, as leaseDurationSeconds stores it.
//   - A candidate never trusts the times stored in the Lease. It measures
//     expiry on its own monotonic clock, from the moment it last saw the
//     record change, with the record's leaseDurationSeconds.
//   - Every write is a compare-and-swap on metadata.resourceVersion: the API
//     server answers a racing create or a stale update with 409 Conflict,
//     and the loser stays a follower.
//   - The leader renews every RetryPeriod and gives up when it has not
//     renewed for RenewDeadline, or at once when it sees another holder.
//   - A clean stop releases the Lease (empty holder, leaseDurationSeconds
//     1), so that a follower takes over at its next attempt.
//
// Unlike client-go, a follower tries again exactly when the lease it watches
// expires instead of on its next jittered poll, so a leader that dies is
// replaced within LeaseDuration + RetryPeriod.
//
// # Fencing
//
// Leader election alone does not guarantee a single writer: a leader that
// is paused (SIGSTOP, a frozen VM, a long GC) keeps believing that it leads
// when it wakes, until its next renewal fails, while another replica has
// already taken over. So Elector.Fence reports whether this process may
// still write: it fails unless the last successful renewal, measured on the
// monotonic clock from the moment that renewal was sent, is younger than
// LeaseDuration minus FenceMargin. The writer calls it before every write
// batch; FenceMargin bounds how long one batch may take. Go's monotonic
// clock does not advance while the whole machine is suspended, so a
// suspended and resumed host is not covered.
//
// # Talking to the API server
//
// Client is a small client for the one resource the election needs, on
// net/http: GET, POST and PUT of
// /apis/coordination.k8s.io/v1/namespaces/NS/leases/NAME. Its
// ClientConfig comes from the pod's service account (InClusterConfig) or
// from a kubeconfig file (LoadKubeconfig) with a bearer token or a client
// certificate. TLS is always verified, against the cluster's CA, except on
// a loopback address where a kubeconfig may set insecure-skip-tls-verify.
package leader
