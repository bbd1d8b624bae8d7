//go:build unix

package main

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pandasync/pandasync/providers/assetpanda/emulator"
	"github.com/pandasync/pandasync/reconcile/leader"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// The leader-election scenarios with real `pandasync run -leader-elect`
// processes, a real kube-apiserver (.ci/kube-apiserver.sh; KUBE_KUBECONFIG
// names the ServiceAccount of examples/kubernetes/rbac.yaml) and the demo
// directory and emulator. Each process reaches the emulator through a URL
// of its own, so the emulator's request log says who sent every request.
// Unix only: the scenarios send SIGSTOP and SIGCONT.

// request is one request the emulator received.
type request struct {
	From   string
	Method string
	Path   string
	At     time.Time
}

// write reports whether the request changes something in Asset Panda.
func (r request) write() bool {
	switch r.Method {
	case http.MethodGet:
		return false
	case http.MethodPost:
		return !strings.Contains(r.Path, "/search") && !strings.Contains(r.Path, "/session")
	}
	return true
}

// requestLog records the emulator's requests by sender.
type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

// proxy returns a URL at which the emulator serves requests as from.
func (l *requestLog) proxy(t *testing.T, emu *emulator.Emulator, from string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, request{From: from, Method: r.Method, Path: r.URL.Path, At: time.Now()})
		l.mu.Unlock()
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// of returns the requests from whom that arrived after since.
func (l *requestLog) of(from string, since time.Time) []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	var rs []request
	for _, r := range l.reqs {
		if r.From == from && r.At.After(since) {
			rs = append(rs, r)
		}
	}
	return rs
}

func writes(rs []request) []request {
	var ws []request
	for _, r := range rs {
		if r.write() {
			ws = append(ws, r)
		}
	}
	return ws
}

// replica is one `pandasync run -leader-elect` process.
type replica struct {
	id    string
	cmd   *exec.Cmd
	out   *syncBuffer
	admin string // http://127.0.0.1:PORT
}

// status reads the replica's /status; ok is false when it does not answer
// (stopped, killed).
func (r *replica) status() (loop.Status, bool) {
	c := http.Client{Timeout: 300 * time.Millisecond}
	resp, err := c.Get(r.admin + "/status")
	if err != nil {
		return loop.Status{}, false
	}
	defer resp.Body.Close()
	var st loop.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return loop.Status{}, false
	}
	return st, true
}

func (r *replica) leading() bool {
	st, ok := r.status()
	return ok && st.Leader != nil && st.Leader.Leading
}

var adminURL = regexp.MustCompile(`"msg":"admin listener started","url":"(http://[^"]+)"`)

// electionWorld is the demo world, the Lease and the replicas' settings.
type electionWorld struct {
	w          *demoWorld
	log        *requestLog
	kubeconfig string
	lease      string
	timing     leader.Config
}

func newElectionWorld(t *testing.T) *electionWorld {
	kc := os.Getenv("KUBE_KUBECONFIG")
	if kc == "" {
		t.Skip("no Kubernetes API server: run `bash .ci/kube-apiserver.sh DIR up` and `set -a; . DIR/kube.env; set +a` to set KUBE_KUBECONFIG")
	}
	lease := os.Getenv("KUBE_LEASE_NAME")
	if lease == "" {
		lease = defaultLeaseName
	}
	timing := leader.Config{LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond}
	if s := os.Getenv("PANDASYNC_TEST_LEASE_TIMING"); s != "" {
		var ds [3]time.Duration
		parts := strings.Split(s, "/")
		for i := range ds {
			if len(parts) != 3 {
				t.Fatalf("PANDASYNC_TEST_LEASE_TIMING=%q: want LEASE/RENEW/RETRY", s)
			}
			d, err := time.ParseDuration(parts[i])
			if err != nil {
				t.Fatal(err)
			}
			ds[i] = d
		}
		timing = leader.Config{LeaseDuration: ds[0], RenewDeadline: ds[1], RetryPeriod: ds[2]}
	}
	// Free the Lease a previous run may have left held.
	cc, err := leader.LoadKubeconfig(kc, leader.Env{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := leader.NewClient(cc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if l, err := c.GetLease(ctx, cc.Namespace, lease); err == nil {
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = "", 1
		if _, err := c.UpdateLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	} else if !errors.Is(err, leader.ErrNotFound) {
		t.Fatal(err)
	}
	return &electionWorld{w: newDemoWorld(t), log: &requestLog{}, kubeconfig: kc, lease: lease, timing: timing}
}

// start starts replica id with a spec pointing at its own emulator URL
// and a state directory of its own.
func (ew *electionWorld) start(t *testing.T, id string) *replica {
	t.Helper()
	dir := runSpecDir(t, ew.w)
	path := filepath.Join(dir, "pandasync.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), ew.w.apiURL, ew.log.proxy(t, ew.w.emu, id), 1)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(ew.w.env)
	env["STATE_DIRECTORY"] = t.TempDir()
	tm := ew.timing
	cmd, out := startPandasync(t, env, "-f", dir, "run", "-listen", "127.0.0.1:0",
		"-leader-elect", "-kubeconfig", ew.kubeconfig, "-lease-name", ew.lease, "-leader-identity", id,
		"-lease-duration", tm.LeaseDuration.String(), "-renew-deadline", tm.RenewDeadline.String(), "-retry-period", tm.RetryPeriod.String())
	r := &replica{id: id, cmd: cmd, out: out}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	waitUntil(t, 10*time.Second, id+"'s admin listener", func() bool {
		m := adminURL.FindStringSubmatch(out.String())
		if m != nil {
			r.admin = m[1]
		}
		return m != nil
	})
	return r
}

// waitUntil polls ok every 10 ms and returns how long it took; limit only
// stops a hung test.
func waitUntil(t *testing.T, limit time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// leaders returns the replicas that say they lead, among those that answer.
func leaders(rs []*replica) []*replica {
	var ls []*replica
	for _, r := range rs {
		if r.leading() {
			ls = append(ls, r)
		}
	}
	return ls
}

func without(rs []*replica, not ...*replica) []*replica {
	var out []*replica
next:
	for _, r := range rs {
		for _, n := range not {
			if r == n {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// checkOneLeader watches the replicas for d: exactly one leads, the others
// stand by, ready, naming it, and only the leader talks to Asset Panda.
func checkOneLeader(t *testing.T, ew *electionWorld, rs []*replica, d time.Duration) *replica {
	t.Helper()
	waitUntil(t, 3*ew.timing.LeaseDuration, "one leader", func() bool { return len(leaders(rs)) == 1 })
	lead := leaders(rs)[0]
	// The followers see the new holder at their next look at the Lease.
	waitUntil(t, 3*ew.timing.RetryPeriod, "the followers to see "+lead.id+" lead", func() bool {
		for _, r := range rs {
			if st, ok := r.status(); !ok || st.Leader.Leader != lead.id {
				return false
			}
		}
		return true
	})
	since := time.Now()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, r := range rs {
			st, ok := r.status()
			if !ok {
				t.Fatalf("%s does not answer /status", r.id)
			}
			if (r == lead) != st.Leader.Leading || st.Leader.Leader != lead.id {
				t.Fatalf("%s: leading %v, says %q leads; want %s alone leading", r.id, st.Leader.Leading, st.Leader.Leader, lead.id)
			}
			if r != lead && (st.State != loop.StateStandby || !st.Ready || !st.Spec.Valid) {
				t.Fatalf("follower %s: state %q ready %v spec valid %v; want standby, ready, valid", r.id, st.State, st.Ready, st.Spec.Valid)
			}
		}
	}
	for _, r := range without(rs, lead) {
		if n := len(ew.log.of(r.id, since)); n != 0 {
			t.Errorf("follower %s sent %d requests to Asset Panda while %s led", r.id, n, lead.id)
		}
	}
	return lead
}

func sendSignal(t *testing.T, r *replica, sig syscall.Signal) {
	t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s to %s: %v", sig, r.id, err)
	}
}

// TestLeaderElectionProcesses runs three replicas through the issue's
// scenarios: exactly one leads; a SIGKILLed leader is replaced within the
// lease duration plus the retry period; a leader SIGSTOPped in the middle of
// its writes past its lease writes nothing after SIGCONT; a clean stop hands
// over at once.
func TestLeaderElectionProcesses(t *testing.T) {
	ew := newElectionWorld(t)
	tm := ew.timing
	const userUpdate = "PUT /v3/users/{id}"
	var rs []*replica
	for _, id := range []string{"replica-1", "replica-2", "replica-3"} {
		rs = append(rs, ew.start(t, id))
	}

	// 1. Exactly one leads; it applies the demo, the others stand by.
	first := checkOneLeader(t, ew, rs, 2*tm.LeaseDuration)
	waitUntil(t, 30*time.Second, "the leader's first pass", func() bool {
		st, _ := first.status()
		return st.LastPass != nil && st.LastPass.Outcome == loop.OutcomeSuccess
	})
	t.Logf("exactly one of 3 leads: %s; its first pass applied the demo, the others sent nothing", first.id)

	// 2. SIGKILL the leader.
	killed := time.Now()
	sendSignal(t, first, syscall.SIGKILL)
	first.cmd.Wait()
	rest := without(rs, first)
	waitUntil(t, 3*tm.LeaseDuration, "a new leader after SIGKILL", func() bool { return len(leaders(rest)) == 1 })
	took := time.Since(killed)
	bound := tm.LeaseDuration + tm.RetryPeriod
	if slack := time.Second; took > bound+slack {
		t.Errorf("SIGKILL: a follower took over after %s, want within lease duration + retry period = %s (+%s for the processes)", took, bound, slack)
	}
	second := checkOneLeader(t, ew, rest, tm.LeaseDuration)
	t.Logf("SIGKILL of %s: %s took over after %s (bound %s)", first.id, second.id, took.Round(time.Millisecond), bound)

	// 3. SIGSTOP the leader in the middle of its writes, past its lease.
	// Users are written one by one, each held 2 s by the emulator; new last
	// names in AD make the leader update four of them.
	w := ew.w
	w.emu.Fault(emulator.Fault{Route: userUpdate, Kind: emulator.FaultLatency, Delay: 2 * time.Second, Count: -1})
	renamed := map[string]string{}
	for _, cn := range []string{"Grace Hopper", "Margaret Hamilton", "Dennis Ritchie", "Ken Thompson"} {
		sn := strings.Fields(cn)[1] + "-Renamed"
		if err := w.dir.Replace("CN="+cn+",OU=People,DC=corp,DC=example,DC=com", "sn", sn); err != nil {
			t.Fatal(err)
		}
		renamed[strings.ToLower(strings.Fields(cn)[0])] = sn
	}
	asked := time.Now()
	post(t, second.admin+"/sync")
	waitUntil(t, 30*time.Second, second.id+"'s first user update", func() bool {
		for _, r := range ew.log.of(second.id, asked) {
			if r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v3/users/") {
				return true
			}
		}
		return false
	})
	sendSignal(t, second, syscall.SIGSTOP)
	stopped := time.Now()
	others := without(rest, second)
	waitUntil(t, 3*tm.LeaseDuration, "a new leader while "+second.id+" is stopped", func() bool { return len(leaders(others)) == 1 })
	takeover := time.Since(stopped)
	third := leaders(others)[0]
	// Keep it stopped past its lease, then wake it while the new leader
	// may still be writing.
	time.Sleep(time.Until(stopped.Add(tm.LeaseDuration + tm.RetryPeriod + time.Second)))
	sendSignal(t, second, syscall.SIGCONT)
	woke := time.Now()
	waitUntil(t, 3*tm.LeaseDuration, second.id+" back on standby", func() bool {
		st, ok := second.status()
		return ok && st.State == loop.StateStandby && st.LastPass != nil
	})
	waitUntil(t, 60*time.Second, third.id+"'s pass", func() bool {
		st, ok := third.status()
		return ok && st.LastPass != nil && st.LastPass.StartedAt.After(stopped) && st.LastPass.Outcome == loop.OutcomeSuccess
	})
	if ws := writes(ew.log.of(second.id, woke)); len(ws) != 0 {
		t.Errorf("%s wrote to Asset Panda after it woke up: %v", second.id, ws)
	}
	st, _ := second.status()
	if st.LastPass.Outcome != loop.OutcomeStopped || !strings.Contains(st.LastPass.Error+second.out.String(), "not the leader") {
		t.Errorf("%s's interrupted pass: outcome %q, error %q; want stopped by the fence\n%s", second.id, st.LastPass.Outcome, st.LastPass.Error, second.out.String())
	}
	// Every user update was sent once, by one of the two.
	puts := map[string][]string{}
	for _, r := range append(writes(ew.log.of(second.id, asked)), writes(ew.log.of(third.id, asked))...) {
		if r.Method == http.MethodPut && strings.HasPrefix(r.Path, "/v3/users/") {
			puts[r.Path] = append(puts[r.Path], r.From)
		}
	}
	for path, from := range puts {
		if len(from) != 1 {
			t.Errorf("%s was sent %d times, by %v", path, len(from), from)
		}
	}
	if len(puts) < 2 {
		t.Errorf("%d user updates in all, want the renamed users' (at least 2, so that one was left when %s stopped)", len(puts), second.id)
	}
	for _, u := range emulatorUsers(t, w) {
		if sn, ok := renamed[strings.ToLower(u.FirstName)]; ok && u.LastName != sn {
			t.Errorf("user %s: last name %q, want %q", u.Email, u.LastName, sn)
		}
	}
	t.Logf("SIGSTOP of %s after its first of %d user updates: %s took over after %s; SIGCONT %s after the stop; %s then wrote nothing (%d requests, %d writes after waking), its pass ended %q",
		second.id, len(puts), third.id, takeover.Round(time.Millisecond), woke.Sub(stopped).Round(time.Millisecond), second.id,
		len(ew.log.of(second.id, woke)), len(writes(ew.log.of(second.id, woke))), st.LastPass.Outcome)
	for _, line := range strings.Split(second.out.String(), "\n") {
		if strings.Contains(line, `"msg":"pass stopped"`) {
			t.Logf("%s logged: %s", second.id, line)
		}
	}
	w.emu.ClearFaults()

	// 4. A clean stop of the leader hands over at once.
	stop := time.Now()
	sendSignal(t, third, syscall.SIGTERM)
	waitUntil(t, 3*tm.LeaseDuration, "a new leader after SIGTERM", func() bool { return second.leading() })
	handover := time.Since(stop)
	if code := exitCode(t, third.cmd); code != 0 {
		t.Errorf("%s exited %d after SIGTERM, want 0\n%s", third.id, code, third.out.String())
	}
	if !strings.Contains(third.out.String(), "released the lease") {
		t.Errorf("%s did not release the lease:\n%s", third.id, third.out.String())
	}
	if slack := time.Second; handover > tm.RetryPeriod+slack {
		t.Errorf("SIGTERM: %s took over after %s, want within the retry period %s (+%s for the processes)", second.id, handover, tm.RetryPeriod, slack)
	}
	checkOneLeader(t, ew, []*replica{second}, tm.RetryPeriod)
	t.Logf("SIGTERM of %s: %s took over after %s", third.id, second.id, handover.Round(time.Millisecond))
}

// post sends POST url and wants 202.
func post(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST %s = %d, want 202", url, resp.StatusCode)
	}
}

// emulatorUsers returns the users the emulator holds.
func emulatorUsers(t *testing.T, w *demoWorld) []emulator.SeedUser {
	t.Helper()
	resp, err := http.Get(w.apiURL + "/_emulator/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seed emulator.Seed
	if err := json.NewDecoder(resp.Body).Decode(&seed); err != nil {
		t.Fatal(err)
	}
	return seed.Users
}
