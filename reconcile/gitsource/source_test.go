package gitsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile/gitsource/gittest"
	"github.com/pandasync/pandasync/spec"
)

// validSpec is a spec set that loads; badSpec is one that does not.
const (
	validSpec = `apiVersion: pandasync.dev/v1alpha1
kind: Connection
metadata: {name: corp}
spec:
  directory:
    urls: [ldaps://dc1.corp.example.com:636]
    baseDN: DC=corp,DC=example,DC=com
    bindDN: svc@corp.example.com
    password: {env: AD_PASSWORD}
  assetPanda:
    clientID: {env: AP_ID}
    clientSecret: {env: AP_SECRET}
    email: {env: AP_EMAIL}
    password: {env: AP_PASSWORD}
---
apiVersion: pandasync.dev/v1alpha1
kind: UserMapping
metadata: {name: it-users}
spec:
  account: Acme
  module: IT Assets
  role: %s
  group: CN=AP Users,OU=Groups,DC=corp,DC=example,DC=com
`
	badSpec = "apiVersion: pandasync.dev/v1alpha1\nkind: UserMapping\nmetadata: {name: x}\nspec: {acount: Acme}\n"
)

func specWithRole(role string) string { return fmt.Sprintf(validSpec, role) }

// loadSpec is the Validate pandasync uses: the spec must load.
func loadSpec(dir string) error {
	_, err := spec.Load(dir)
	return err
}

func newSource(t *testing.T, cfg Config) *Source {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "git")
	}
	cfg.AllowInsecure = true // loopback http in tests
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readSpec(t *testing.T, rev Revision) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rev.SpecDir, "pandasync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snapshot lists every file under dir with its size and modification
// time, to show that nothing was written.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel] = fmt.Sprintf("%v %d %s", info.Mode(), info.Size(), info.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFollowOverHTTP follows a branch served over smart HTTP: the first
// revision, no change, a new commit, a commit whose spec does not load
// (the last good stays, and it is not fetched again), a force-push, and a
// restart that serves the last good revision without the network.
func TestFollowOverHTTP(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Collaborator")}, nil)
	r.Push(t, false)
	dir := filepath.Join(t.TempDir(), "git")
	s := newSource(t, Config{URL: r.URL, Dir: dir, Validate: loadSpec})
	ctx := context.Background()

	rev, changed, err := s.Sync(ctx)
	if err != nil || !changed {
		t.Fatalf("first Sync: changed %v, err %v", changed, err)
	}
	if got, want := rev.String(), "main@sha1:"+c1; got != want {
		t.Errorf("revision %q, want %q", got, want)
	}
	if got := readSpec(t, rev); got != specWithRole("Collaborator") {
		t.Errorf("checked-out spec:\n%s", got)
	}
	if _, err := os.Stat(filepath.Join(rev.Dir, ".git", "shallow")); err != nil {
		t.Errorf("the checkout is not shallow: %v", err)
	}

	before, uploads := snapshot(t, dir), r.Uploads.Load()
	if _, changed, err := s.Sync(ctx); err != nil || changed {
		t.Fatalf("Sync with nothing new: changed %v, err %v", changed, err)
	}
	if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
		t.Errorf("a Sync with nothing new wrote (-before +after):\n%s", diff)
	}
	if n := r.Uploads.Load() - uploads; n != 0 {
		t.Errorf("a Sync with nothing new fetched objects %d time(s); it should only list refs", n)
	}

	c2 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Module Admin")}, nil)
	r.Push(t, false)
	rev, changed, err = s.Sync(ctx)
	if err != nil || !changed || rev.Commit != c2 || readSpec(t, rev) != specWithRole("Module Admin") {
		t.Fatalf("Sync after a new commit: %v changed %v err %v", rev, changed, err)
	}

	bad := r.Commit(t, map[string]string{"pandasync.yaml": badSpec}, nil)
	r.Push(t, false)
	_, changed, err = s.Sync(ctx)
	if !errors.Is(err, ErrRejected) || changed || !strings.Contains(err.Error(), "acount") || !strings.Contains(err.Error(), "main@sha1:"+bad) {
		t.Fatalf("Sync of a bad commit: changed %v, err %v; want ErrRejected naming it and the problem", changed, err)
	}
	cur, ok := s.Current()
	if !ok || cur.Commit != c2 || readSpec(t, cur) != specWithRole("Module Admin") {
		t.Errorf("after a bad commit the current revision is %v, want the last good %s", cur, c2)
	}
	st := s.Status()
	if st.Rejected != "main@sha1:"+bad || !strings.Contains(st.Reason, "acount") || st.Failures != 0 {
		t.Errorf("status after a bad commit: %+v", st)
	}
	before, uploads = snapshot(t, dir), r.Uploads.Load()
	if _, _, err := s.Sync(ctx); !errors.Is(err, ErrRejected) {
		t.Errorf("second Sync of the bad commit: err %v, want ErrRejected", err)
	}
	if n := r.Uploads.Load() - uploads; n != 0 {
		t.Errorf("the rejected commit was fetched again (%d time(s))", n)
	}
	if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
		t.Errorf("the second Sync of a rejected commit wrote (-before +after):\n%s", diff)
	}

	// Force-push: history rewritten to c1 plus a new commit.
	r.ResetTo(t, c1)
	c3 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Viewer")}, nil)
	r.Push(t, true)
	rev, changed, err = s.Sync(ctx)
	if err != nil || !changed || rev.Commit != c3 || readSpec(t, rev) != specWithRole("Viewer") {
		t.Fatalf("Sync after a force-push: %v changed %v err %v", rev, changed, err)
	}
	if st := s.Status(); st.Rejected != "" {
		t.Errorf("a good revision did not clear the rejection: %+v", st)
	}
	// The previous checkout is kept for a pass that may still read it;
	// older ones are removed.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{c2, c3, currentFile}
	slices.Sort(want)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("checkouts after three revisions (-want +got):\n%s", diff)
	}

	// A restart with the remote gone serves the last good revision.
	r.Server.Close()
	s2 := newSource(t, Config{URL: r.URL, Dir: dir, Validate: loadSpec})
	cur, ok = s2.Current()
	if !ok || cur.Commit != c3 || readSpec(t, cur) != specWithRole("Viewer") {
		t.Errorf("after a restart: %v %v, want %s", cur, ok, c3)
	}
	// Another repository does not restore it.
	s3 := newSource(t, Config{URL: r.URL + "-other", Dir: dir})
	if _, ok := s3.Current(); ok {
		t.Error("a source for another repository restored this one's revision")
	}
}

// TestRunPicksUpNewCommits drives Run's polls one at a time: a commit
// pushed between two polls is the new revision at the next poll, and
// onChange hears it.
func TestRunPicksUpNewCommits(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Collaborator")}, nil)
	r.Push(t, false)
	polled := make(chan time.Duration)
	next := make(chan struct{})
	s := newSource(t, Config{URL: r.URL, Validate: loadSpec, Interval: 10 * time.Second, Wait: func(ctx context.Context, d time.Duration) error {
		select {
		case polled <- d:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-next:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan Revision, 4)
	rejects := make(chan error, 4)
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(u Update) {
			if u.Err != nil {
				rejects <- u.Err
				return
			}
			changes <- u.Revision
		})
	}()

	if d := <-polled; d != 10*time.Second {
		t.Errorf("Run waits %v between fetches, want the interval", d)
	}
	if rev := <-changes; rev.Commit != c1 {
		t.Errorf("first revision %s, want %s", rev.Commit, c1)
	}
	c2 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Module Admin")}, nil)
	r.Push(t, false)
	next <- struct{}{}
	<-polled
	select {
	case rev := <-changes:
		if rev.String() != "main@sha1:"+c2 {
			t.Errorf("new revision %s, want main@sha1:%s", rev, c2)
		}
	default:
		t.Fatal("the poll after a push did not report the new revision")
	}
	next <- struct{}{}
	<-polled
	if len(changes) != 0 {
		t.Errorf("a poll with nothing new reported %v", <-changes)
	}
	// A bad commit is reported once, not at every poll.
	bad := r.Commit(t, map[string]string{"pandasync.yaml": badSpec}, nil)
	r.Push(t, false)
	for range 2 {
		next <- struct{}{}
		<-polled
	}
	if len(rejects) != 1 || len(changes) != 0 {
		t.Fatalf("after a bad commit and two polls: %d rejection(s), %d change(s); want 1 and 0", len(rejects), len(changes))
	}
	if err := <-rejects; !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), bad) {
		t.Errorf("rejection %v", err)
	}
	var ps spec.Problems
	if name, reason := s.Rejection(); name != "main@sha1:"+bad || !errors.As(reason, &ps) {
		t.Errorf("Rejection() = %q, %v; want the bad commit and its spec problems", name, reason)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

// TestUnreachableBacksOff: while the remote cannot be reached, Run waits
// twice as long after each failure up to MaxBackoff, keeps the last good
// revision and writes nothing; a fetch that works again resets the wait.
func TestUnreachableBacksOff(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Collaborator")}, nil)
	r.Push(t, false)
	var logs bytes.Buffer
	var mu sync.Mutex
	var waits []time.Duration
	dir := filepath.Join(t.TempDir(), "git")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reachable := true
	var before map[string]string
	s := newSource(t, Config{URL: r.URL, Dir: dir, Validate: loadSpec, Interval: time.Minute, MaxBackoff: 10 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Wait: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			waits = append(waits, d)
			switch len(waits) {
			case 1:
				before = snapshot(t, dir)
				r.Server.Close() // unreachable from now on
				reachable = false
			case 7:
				cancel()
				return ctx.Err()
			}
			return nil
		}})
	err := s.Run(ctx, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if reachable {
		t.Fatal("the remote was never closed")
	}
	want := []time.Duration{time.Minute, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("waits (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, snapshot(t, dir)); diff != "" {
		t.Errorf("fetches of an unreachable remote wrote (-before +after):\n%s", diff)
	}
	cur, ok := s.Current()
	st := s.Status()
	if !ok || cur.Commit != c1 || st.Failures != 6 || st.LastError == "" {
		t.Errorf("after 6 failed fetches: current %v, status %+v", cur, st)
	}
	if !strings.Contains(logs.String(), "cannot fetch the spec") || !strings.Contains(logs.String(), "main@sha1:"+c1) {
		t.Errorf("the failures are not logged with the revision in force:\n%s", logs.String())
	}
	if got := backoff(time.Minute, 10*time.Minute, 0); got != time.Minute {
		t.Errorf("backoff after no failure: %v", got)
	}
}

// armoredPublic is the public keyring of the entities, armored.
func armoredPublic(t *testing.T, es ...*openpgp.Entity) string {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := e.Serialize(w); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestVerify: with a keyring, only a head commit signed by one of its keys
// is applied; an unsigned commit or one signed by another key is rejected
// and the last good revision stays.
func TestVerify(t *testing.T) {
	trusted, err := openpgp.NewEntity("Spec Reviewer", "", "reviewer@corp.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := openpgp.NewEntity("Someone Else", "", "someone@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := gittest.New(t)
	s := newSource(t, Config{URL: r.URL, Validate: loadSpec, Keyring: armoredPublic(t, trusted)})
	ctx := context.Background()

	tests := []struct {
		name    string
		key     *openpgp.Entity
		wantErr string // "" when accepted
	}{
		{"signed by the keyring", trusted, ""},
		{"unsigned", nil, "not signed"},
		{"signed by another key", stranger, "does not verify"},
		{"signed again", trusted, ""},
	}
	var good string
	for i, tc := range tests {
		c := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole(fmt.Sprintf("Role %d", i))}, tc.key)
		r.Push(t, false)
		rev, changed, err := s.Sync(ctx)
		if tc.wantErr == "" {
			if err != nil || !changed || !rev.Verified || rev.Commit != c || !strings.Contains(rev.Signer, "reviewer@corp.example.com") {
				t.Errorf("%s: %+v changed %v err %v", tc.name, rev, changed, err)
			}
			good = c
			continue
		}
		if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err %v, want a rejection saying %q", tc.name, err, tc.wantErr)
		}
		if cur, _ := s.Current(); cur.Commit != good {
			t.Errorf("%s: current %s, want the last verified %s", tc.name, cur.Commit, good)
		}
	}
	if _, err := New(Config{URL: r.URL, Dir: t.TempDir(), AllowInsecure: true, Keyring: "not a keyring"}); err == nil || !strings.Contains(err.Error(), "keyring") {
		t.Errorf("a keyring that does not parse: err %v", err)
	}
	// A checkout restored after a restart must have been verified.
	dir := t.TempDir()
	plain := newSource(t, Config{URL: r.URL, Dir: dir})
	if _, _, err := plain.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := newSource(t, Config{URL: r.URL, Dir: dir, Keyring: armoredPublic(t, trusted)}).Current(); ok {
		t.Error("a revision fetched without verification was restored by a source that verifies")
	}
}

// TestRefPathAndLinks follows a tag and a subdirectory, and rejects a
// revision without the directory or with a symbolic link in it.
func TestRefPathAndLinks(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit(t, map[string]string{"specs/prod/pandasync.yaml": specWithRole("Collaborator"), "README.md": "specs"}, nil)
	if _, err := r.Work.CreateTag("v1", plumbing.NewHash(c1), &git.CreateTagOptions{Message: "release v1",
		Tagger: &object.Signature{Name: "Admin", Email: "admin@corp.example.com", When: r.When()}}); err != nil {
		t.Fatal(err)
	}
	r.Push(t, false)
	if err := r.Work.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{"refs/tags/v1:refs/tags/v1"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := newSource(t, Config{URL: r.URL, Ref: "v1", Path: "specs/prod/", Validate: loadSpec})
	rev, changed, err := s.Sync(ctx)
	if err != nil || !changed || rev.String() != "v1@sha1:"+c1 || readSpec(t, rev) != specWithRole("Collaborator") {
		t.Fatalf("tag v1, path specs/prod: %v changed %v err %v", rev, changed, err)
	}

	s = newSource(t, Config{URL: r.URL, Path: "specs/staging", Validate: loadSpec})
	if _, _, err := s.Sync(ctx); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `no directory "specs/staging"`) {
		t.Errorf("missing path: err %v", err)
	}
	s = newSource(t, Config{URL: r.URL, Ref: "nosuch"})
	if _, _, err := s.Sync(ctx); err == nil || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), `no branch or tag "nosuch"`) {
		t.Errorf("missing ref: err %v", err)
	}

	// A committed symbolic link could make pandasync read a file from
	// outside the repository.
	link := r.Commit(t, map[string]string{"specs/prod/zz-secret.yaml": "symlink:/etc/hostname"}, nil)
	r.Push(t, false)
	s = newSource(t, Config{URL: r.URL, Path: "specs/prod", Validate: loadSpec})
	if _, _, err := s.Sync(ctx); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "symbolic link, zz-secret.yaml") ||
		!strings.Contains(err.Error(), link) {
		t.Errorf("a symbolic link: err %v", err)
	}
}

// TestFileTransport follows a bare repository named by a path, which
// go-git reads through git-upload-pack.
func TestFileTransport(t *testing.T) {
	r := gittest.New(t)
	c1 := r.Commit(t, map[string]string{"pandasync.yaml": specWithRole("Collaborator")}, nil)
	r.Push(t, false)
	s, err := New(Config{URL: "file://" + filepath.ToSlash(r.Bare), Dir: t.TempDir(), Validate: loadSpec})
	if err != nil {
		t.Fatal(err)
	}
	rev, changed, err := s.Sync(context.Background())
	if err != nil || !changed || rev.String() != "main@sha1:"+c1 {
		t.Fatalf("file://: %v changed %v err %v", rev, changed, err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	tests := map[string]struct {
		cfg     Config
		wantErr string
	}{
		"http without TLS":       {Config{URL: "http://git.corp.example.com/specs.git", Dir: dir}, "no TLS"},
		"git protocol":           {Config{URL: "git://git.corp.example.com/specs.git", Dir: dir}, "no TLS"},
		"http allowed":           {Config{URL: "http://127.0.0.1/specs.git", Dir: dir, AllowInsecure: true}, ""},
		"https":                  {Config{URL: "https://git.corp.example.com/specs.git", Dir: dir, Auth: Auth{Password: "token"}}, ""},
		"path escapes":           {Config{URL: "https://git.corp.example.com/specs.git", Dir: dir, Path: "../etc"}, "inside the repository"},
		"absolute path":          {Config{URL: "https://git.corp.example.com/specs.git", Dir: dir, Path: "/etc"}, ""},
		"no dir":                 {Config{URL: "https://git.corp.example.com/specs.git"}, "required"},
		"password for ssh":       {Config{URL: "ssh://git@git.corp.example.com/specs.git", Dir: dir, Auth: Auth{Password: "x"}}, "ssh takes a key"},
		"key for https":          {Config{URL: "https://git.corp.example.com/specs.git", Dir: dir, Auth: Auth{SSHKey: []byte("k")}}, "ssh key is given for an https"},
		"ssh with a bad key":     {Config{URL: "git@git.corp.example.com:corp/specs.git", Dir: dir, Auth: Auth{SSHKey: []byte("not a key")}}, "ssh key"},
		"unsupported scheme":     {Config{URL: "ftp://git.corp.example.com/specs.git", Dir: dir}, "unsupported"},
		"password in URL hidden": {Config{URL: "http://user:s3cret@git.corp.example.com/specs.git", Dir: dir}, "redacted"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New: err %v, want one saying %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("auth", "auth", Auth{Username: "bot", Password: "tok3n", SSHKey: []byte("PRIVATE"), SSHKeyPassphrase: "phr4se"})
	for _, secret := range []string{"tok3n", "PRIVATE", "phr4se"} {
		if strings.Contains(b.String(), secret) {
			t.Errorf("Auth logs %q: %s", secret, b.String())
		}
	}
}

// TestCredentialsInURL: credentials in an https URL, a user and password
// or a token as the user name, are sent as basic authentication and
// appear in no error, log or URL the source reports, also when the
// server fails.
func TestCredentialsInURL(t *testing.T) {
	r := gittest.New(t)
	head := r.CommitAndPush(t, map[string]string{"pandasync.yaml": specWithRole("Collaborator")})
	target, err := url.Parse(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	var failing atomic.Bool
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		user, pass, _ := req.BasicAuth()
		switch {
		case user != "tok3n" && (user != "bot" || pass != "s3cret"):
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "who are you", http.StatusUnauthorized)
		case failing.Load():
			http.Error(w, "broken", http.StatusInternalServerError)
		default:
			proxy.ServeHTTP(w, req)
		}
	}))
	defer front.Close()
	secrets := []string{"tok3n", "s3cret"}
	for name, userinfo := range map[string]string{"token as user": "tok3n@", "user and password": "bot:s3cret@"} {
		t.Run(name, func(t *testing.T) {
			failing.Store(false)
			var logs bytes.Buffer
			raw := strings.Replace(front.URL, "http://", "http://"+userinfo, 1) + target.Path
			s := newSource(t, Config{URL: raw, Validate: loadSpec, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			rev, _, err := s.Sync(context.Background())
			if err != nil || rev.Commit != head {
				t.Fatalf("Sync with the URL's credentials: %v, %v; want %s", rev, err, head)
			}
			failing.Store(true)
			head = r.CommitAndPush(t, map[string]string{"pandasync.yaml": specWithRole(rev.Commit[:8])})
			_, _, err = s.Sync(context.Background())
			if err == nil {
				t.Fatal("Sync of a failing server: no error")
			}
			ctx, cancel := context.WithCancel(context.Background())
			s.cfg.Wait = func(context.Context, time.Duration) error { cancel(); return ctx.Err() }
			_ = s.Run(ctx, nil)
			for _, secret := range secrets {
				for what, text := range map[string]string{"error": err.Error(), "logs": logs.String(), "URL": s.URL(), "status": s.Status().LastError} {
					if strings.Contains(text, secret) {
						t.Errorf("the %s shows %q: %s", what, secret, text)
					}
				}
			}
			if !strings.Contains(logs.String(), "cannot fetch the spec") {
				t.Errorf("the failed fetch is not logged:\n%s", logs.String())
			}
		})
	}
	for _, raw := range []string{"http://tok3n@git.corp.example.com/specs.git", "ftp://tok3n@git.corp.example.com/specs.git"} {
		_, err := New(Config{URL: raw, Dir: t.TempDir()})
		if err == nil || strings.Contains(err.Error(), "tok3n") {
			t.Errorf("New(%s): %v, want an error without the token", raw, err)
		}
	}
}
