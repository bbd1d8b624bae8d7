package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/pandasync/pandasync/reconcile/leader"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// leaderArgs are the leader-election flags of `pandasync run`.
type leaderArgs struct {
	elect         bool
	namespace     string
	name          string
	kubeconfig    string
	identity      string
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
}

// defaultLeaseName is the Lease of examples/kubernetes/rbac.yaml.
const defaultLeaseName = "pandasync"

// register adds the flags to fs.
func (la *leaderArgs) register(fs *flag.FlagSet) {
	fs.BoolVar(&la.elect, "leader-elect", false, "run as one of several replicas: only the one holding the Kubernetes Lease plans and writes; the others stand by")
	fs.StringVar(&la.namespace, "lease-namespace", "", "`NAMESPACE` of the Lease (default: the pod's, or the kubeconfig context's)")
	fs.StringVar(&la.name, "lease-name", defaultLeaseName, "`NAME` of the coordination.k8s.io Lease")
	fs.StringVar(&la.kubeconfig, "kubeconfig", "", "kubeconfig `FILE` with a token or client certificate (default: the pod's service account)")
	fs.StringVar(&la.identity, "leader-identity", "", "this replica's holder identity in the Lease (default: host name and a random suffix)")
	fs.DurationVar(&la.leaseDuration, "lease-duration", leader.DefaultLeaseDuration, "how long, `DURATION` in whole seconds, followers wait after the Lease last changed before taking it over")
	fs.DurationVar(&la.renewDeadline, "renew-deadline", leader.DefaultRenewDeadline, "how long, `DURATION`, the leader keeps trying to renew before it stops leading")
	fs.DurationVar(&la.retryPeriod, "retry-period", leader.DefaultRetryPeriod, "`DURATION` between attempts to take or renew the Lease")
}

// check refuses election flags without -leader-elect, and -leader-elect
// with -once.
func (la leaderArgs) check(a *app, fs *flag.FlagSet, once bool) error {
	if la.elect {
		if once {
			fmt.Fprintln(a.stderr, "run: -leader-elect is for a continuous run, not -once")
			return errUsage
		}
		return nil
	}
	var stray string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "lease-namespace", "lease-name", "kubeconfig", "leader-identity", "lease-duration", "renew-deadline", "retry-period":
			stray = f.Name
		}
	})
	if stray != "" {
		fmt.Fprintf(a.stderr, "run: -%s needs -leader-elect\n", stray)
		return errUsage
	}
	return nil
}

// newElector builds the elector -leader-elect asks for. The loop it drives
// is set later through bind, before the election runs.
func (a *app) newElector(la leaderArgs) (*electorBinding, error) {
	cc, err := leader.LoadClientConfig(la.kubeconfig, leader.Env{LookupEnv: a.lookupEnv, ReadFile: a.readFile})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	client, err := leader.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	ns := la.namespace
	if ns == "" {
		ns = cc.Namespace
	}
	b := &electorBinding{}
	b.elector, err = leader.New(leader.Config{
		Client: client, Namespace: ns, Name: la.name, Identity: la.identity,
		LeaseDuration: la.leaseDuration, RenewDeadline: la.renewDeadline, RetryPeriod: la.retryPeriod,
		OnStartedLeading: b.started,
		OnStoppedLeading: b.stopped,
		Logger:           a.log.With("component", "leader-election"),
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// electorBinding ties an elector to the loop it lets run.
type electorBinding struct {
	elector *leader.Elector
	loop    *loop.Loop
	// stopping is done once run stops; loopDone once the loop has
	// returned.
	stopping, loopDone <-chan struct{}
}

// bind sets the loop and the channels; call it before run.
func (b *electorBinding) bind(l *loop.Loop, stopping, loopDone <-chan struct{}) {
	b.loop, b.stopping, b.loopDone = l, stopping, loopDone
}

// started runs while this replica leads: the loop runs its passes. On a
// clean stop it returns only after the loop has finished its write batch,
// so that the Lease is released after the last write.
func (b *electorBinding) started(term context.Context) {
	b.loop.LeadershipChanged()
	<-term.Done()
	select {
	case <-b.stopping:
		<-b.loopDone
	default:
	}
}

func (b *electorBinding) stopped() { b.loop.LeadershipChanged() }
