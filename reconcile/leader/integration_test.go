package leader

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The scenarios again, against a real kube-apiserver started by
// .ci/kube-apiserver.sh, as the least-privileged pandasync ServiceAccount.

const realAPIHelp = "no Kubernetes API server: run `bash .ci/kube-apiserver.sh DIR up` and `set -a; . DIR/kube.env; set +a` to set KUBE_KUBECONFIG"

// writeLog records the Lease writes the API server accepted, per holder.
type writeLog struct {
	mu     sync.Mutex
	writes []fakeWrite
}

func (w *writeLog) add(method string, l *Lease) {
	w.mu.Lock()
	w.writes = append(w.writes, fakeWrite{Method: method, Holder: l.Spec.HolderIdentity, At: time.Now()})
	w.mu.Unlock()
}

func (w *writeLog) by(holder string) []fakeWrite {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ws []fakeWrite
	for _, x := range w.writes {
		if x.Holder == holder {
			ws = append(ws, x)
		}
	}
	return ws
}

// recordingClient is a LeaseClient that logs its successful writes.
type recordingClient struct {
	LeaseClient
	log *writeLog
}

func (c recordingClient) CreateLease(ctx context.Context, l *Lease) (*Lease, error) {
	got, err := c.LeaseClient.CreateLease(ctx, l)
	if err == nil {
		c.log.add(http.MethodPost, got)
	}
	return got, err
}

func (c recordingClient) UpdateLease(ctx context.Context, l *Lease) (*Lease, error) {
	got, err := c.LeaseClient.UpdateLease(ctx, l)
	if err == nil {
		c.log.add(http.MethodPut, got)
	}
	return got, err
}

// realClientConfig reads the ServiceAccount's kubeconfig, or skips.
func realClientConfig(t *testing.T) ClientConfig {
	t.Helper()
	path := os.Getenv("KUBE_KUBECONFIG")
	if path == "" {
		t.Skip(realAPIHelp)
	}
	cfg, err := LoadKubeconfig(path, Env{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// realTiming is fastTiming, or PANDASYNC_TEST_LEASE_TIMING as
// "LEASE/RENEW/RETRY", e.g. "15s/10s/2s" to measure with the defaults.
func realTiming(t *testing.T) Config {
	t.Helper()
	s := os.Getenv("PANDASYNC_TEST_LEASE_TIMING")
	if s == "" {
		return fastTiming
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		t.Fatalf("PANDASYNC_TEST_LEASE_TIMING=%q: want LEASE/RENEW/RETRY", s)
	}
	var ds [3]time.Duration
	for i, p := range parts {
		d, err := time.ParseDuration(p)
		if err != nil {
			t.Fatalf("PANDASYNC_TEST_LEASE_TIMING: %v", err)
		}
		ds[i] = d
	}
	return Config{LeaseDuration: ds[0], RenewDeadline: ds[1], RetryPeriod: ds[2]}
}

func realEnvironment(t *testing.T) electionEnv {
	cfg := realClientConfig(t)
	name := os.Getenv("KUBE_LEASE_NAME")
	if name == "" {
		name = "pandasync"
	}
	log := &writeLog{}
	newClient := func(t *testing.T) LeaseClient {
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.CloseIdleConnections)
		return recordingClient{LeaseClient: c, log: log}
	}
	resetLease(t, newClient(t), cfg.Namespace, name)
	return electionEnv{client: newClient, ns: cfg.Namespace, name: name, timing: realTiming(t), writesBy: log.by, slack: 500 * time.Millisecond}
}

// resetLease releases the Lease a previous test may have left held, so
// that each scenario starts from a free Lease.
func resetLease(t *testing.T, c LeaseClient, ns, name string) {
	t.Helper()
	ctx := context.Background()
	l, err := c.GetLease(ctx, ns, name)
	if errors.Is(err, ErrNotFound) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	l.Spec.HolderIdentity = ""
	l.Spec.LeaseDurationSeconds = 1
	if _, err := c.UpdateLease(ctx, l); err != nil {
		t.Fatal(err)
	}
}

func TestRealExactlyOneLeads(t *testing.T)      { scenarioExactlyOne(t, realEnvironment(t)) }
func TestRealKilledLeaderReplaced(t *testing.T) { scenarioKilledLeader(t, realEnvironment(t)) }
func TestRealPausedLeaderIsFenced(t *testing.T) { scenarioPausedLeader(t, realEnvironment(t)) }
func TestRealCleanStopHandsOver(t *testing.T)   { scenarioCleanStop(t, realEnvironment(t)) }

// TestRealRoleAllowsOnlyTheLease checks that the ServiceAccount of
// examples/kubernetes/rbac.yaml can reach its one Lease and nothing else.
func TestRealRoleAllowsOnlyTheLease(t *testing.T) {
	env := realEnvironment(t)
	c := env.client(t)
	ctx := context.Background()
	tests := map[string]func() error{
		"get another lease": func() error { _, err := c.GetLease(ctx, env.ns, "someone-else"); return err },
		"update another lease": func() error {
			_, err := c.UpdateLease(ctx, &Lease{Namespace: env.ns, Name: "someone-else", ResourceVersion: "1"})
			return err
		},
		"create in another namespace": func() error {
			_, err := c.CreateLease(ctx, &Lease{Namespace: "default", Name: env.name})
			return err
		},
	}
	for name, call := range tests {
		t.Run(name, func(t *testing.T) {
			var apiErr *APIError
			if err := call(); !errors.As(err, &apiErr) || apiErr.Code != http.StatusForbidden {
				t.Errorf("err = %v, want 403 Forbidden", err)
			}
		})
	}
	if _, err := c.GetLease(ctx, env.ns, env.name); err != nil && !errors.Is(err, ErrNotFound) {
		t.Errorf("get its own lease: %v", err)
	}
}
