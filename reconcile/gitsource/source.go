// Package gitsource keeps the spec of `pandasync run -git URL` in step with
// a branch or tag of a git repository, as Flux's GitRepository does: it
// polls the remote, checks each new head commit out shallowly into a
// directory of its own under the state directory, optionally verifies the
// commit's OpenPGP signature, validates the spec in it, and only then makes
// it the current revision. A revision that fails any of that is reported
// and the last good one stays current; a remote that cannot be reached is
// retried with backoff and nothing on disk changes meanwhile.
//
// It uses go-git, a pure-Go implementation: https and ssh need no git
// binary, so this works on Windows too. (go-git's file:// transport runs
// git-upload-pack; tests use it, production uses https or ssh.) Nothing
// from the repository is ever executed: no hooks, filters or submodules.
//
// Revisions are reported as Flux reports them: "main@sha1:<commit>".
package gitsource

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Defaults of Config.
const (
	DefaultInterval = time.Minute
	DefaultTimeout  = 60 * time.Second
	// DefaultMaxBackoff bounds the wait between fetches of a remote that
	// keeps failing.
	DefaultMaxBackoff = 10 * time.Minute
)

// Config configures a Source. URL and Dir are required.
type Config struct {
	// URL is the repository: https://…, ssh://… or user@host:path, or
	// file://… and a local path. Plain http:// and git:// carry no TLS and
	// are refused unless AllowInsecure is set.
	URL string
	// Ref is the branch or tag to follow; empty means the remote's default
	// branch.
	Ref string
	// Path is the directory inside the repository that holds the spec;
	// empty means its root.
	Path string
	// Dir is where the checkouts live, inside the state directory. The
	// Source owns it.
	Dir string
	// Auth holds the credentials, if any.
	Auth Auth
	// CABundle is a PEM bundle of CAs trusted for https besides the
	// system's.
	CABundle []byte
	// AllowInsecure permits http:// and git:// URLs.
	AllowInsecure bool
	// Keyring, when set, is an armored OpenPGP public keyring: only a head
	// commit signed by one of its keys is applied.
	Keyring string
	// Validate checks the spec directory of a new revision before it
	// becomes current (pandasync loads the spec); nil accepts any.
	Validate func(specDir string) error
	// Interval is the time between fetches (default DefaultInterval);
	// Timeout bounds one fetch (default DefaultTimeout); MaxBackoff
	// bounds the wait after failed fetches (default DefaultMaxBackoff).
	Interval, Timeout, MaxBackoff time.Duration
	// Wait waits d or until ctx is done; nil uses a timer. Tests inject
	// it to drive the polls.
	Wait func(ctx context.Context, d time.Duration) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the source's logs; nil discards them.
	Logger *slog.Logger
}

// Auth holds the credentials for the remote: a username and password (or
// token) for https, a private key for ssh. It never appears in logs.
type Auth struct {
	// Username for https (default "git", which hosts ignore for tokens)
	// and ssh (default "git").
	Username string
	// Password is the https password or access token.
	Password string
	// SSHKey is a PEM private key, and SSHKeyPassphrase its passphrase.
	SSHKey           []byte
	SSHKeyPassphrase string
	// KnownHosts names known_hosts files to check ssh host keys against;
	// empty means $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts. Host keys are
	// always checked.
	KnownHosts []string
}

// LogValue keeps the secrets out of logs.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", a.Username), slog.Bool("password", a.Password != ""), slog.Bool("ssh_key", len(a.SSHKey) > 0))
}

// Revision is a commit of the followed ref, checked out.
type Revision struct {
	// Ref is the branch or tag name ("main").
	Ref string `json:"ref"`
	// Commit is the full hex commit id.
	Commit string `json:"commit"`
	// Dir is the checkout's root; SpecDir is the spec directory in it.
	Dir     string `json:"-"`
	SpecDir string `json:"-"`
	// Verified says the commit's signature was checked against the
	// keyring, and Signer names the key that made it.
	Verified bool   `json:"verified,omitempty"`
	Signer   string `json:"signer,omitempty"`
	// FetchedAt is when the revision was checked out.
	FetchedAt time.Time `json:"fetched_at"`
}

// String formats the revision as Flux does: "main@sha1:<commit>".
func (r Revision) String() string {
	if r.Commit == "" {
		return ""
	}
	if r.Ref == "" {
		return "sha1:" + r.Commit
	}
	return r.Ref + "@sha1:" + r.Commit
}

// Status is what the source last did, for logs and /status.
type Status struct {
	// Current is the revision in force, nil before the first good one.
	Current *Revision `json:"current,omitempty"`
	// Rejected is the latest revision that failed to load, verify or
	// check out, and Reason why; empty once a newer revision is good.
	Rejected string `json:"rejected,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// LastFetch is when the remote was last asked; LastError the error of
	// the last fetch, and Failures how many fetches in a row failed.
	LastFetch time.Time `json:"last_fetch,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Failures  int       `json:"consecutive_failures,omitempty"`
	// NextFetch is when Run fetches next.
	NextFetch time.Time `json:"next_fetch,omitzero"`
}

// ErrRejected is wrapped by Sync's error for a revision that was fetched
// but not accepted: the signature, the spec or the checkout is bad. The
// last good revision stays current.
var ErrRejected = errors.New("the revision was rejected")

// Source follows one ref of one repository.
type Source struct {
	cfg  Config
	url  string // cfg.URL without the credentials it may carry
	auth transport.AuthMethod
	log  *slog.Logger

	// syncMu makes Syncs take turns; mu guards the fields below.
	syncMu sync.Mutex
	mu     sync.Mutex
	status Status
	// rejected is the commit last rejected, and rejectErr why: it is not
	// fetched again.
	rejected  string
	rejectErr error
}

// currentFile records the current revision in Dir, so that a restart
// serves the last good revision even while the remote is unreachable.
const currentFile = "current.json"

// New checks the configuration and restores the revision that was current
// when the process last stopped, if its checkout is still there.
func New(cfg Config) (*Source, error) {
	if cfg.URL == "" || cfg.Dir == "" {
		return nil, errors.New("gitsource: URL and Dir are required")
	}
	if err := checkURL(cfg.URL, cfg.AllowInsecure); err != nil {
		return nil, err
	}
	if cfg.Path != "" {
		p := filepath.FromSlash(strings.Trim(cfg.Path, "/"))
		if !filepath.IsLocal(p) {
			return nil, fmt.Errorf("git path %q must be a relative path inside the repository", cfg.Path)
		}
		cfg.Path = p
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.Interval {
		cfg.MaxBackoff = cfg.Interval
	}
	if cfg.Wait == nil {
		cfg.Wait = wait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fetchURL, urlAuth, fromURL := urlCredentials(cfg.URL, cfg.Auth)
	auth, err := authMethod(fetchURL, urlAuth, fromURL)
	if err != nil {
		return nil, err
	}
	if cfg.Keyring != "" {
		keys, err := openpgp.ReadArmoredKeyRing(strings.NewReader(cfg.Keyring))
		if err != nil {
			return nil, fmt.Errorf("git verify keyring: %w", err)
		}
		if len(keys) == 0 {
			return nil, errors.New("git verify keyring: it holds no key")
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("git checkout directory: %w", err)
	}
	s := &Source{cfg: cfg, url: fetchURL, auth: auth, log: log.With("component", "gitsource", "url", fetchURL)}
	if rev, ok := s.restore(); ok {
		s.status.Current = &rev
	}
	return s, nil
}

// checkURL refuses transports without TLS unless allowed.
func checkURL(raw string, allowInsecure bool) error {
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return fmt.Errorf("git URL: %w", err)
	}
	switch ep.Protocol {
	case "https", "ssh", "file":
		return nil
	case "http", "git":
		if allowInsecure {
			return nil
		}
		return fmt.Errorf("git URL %s: %s:// has no TLS; use https:// or ssh://", redactURL(raw), ep.Protocol)
	}
	return fmt.Errorf("git URL %s: unsupported protocol %q", redactURL(raw), ep.Protocol)
}

// redactURL hides a URL's credentials for messages: its password, and but
// for ssh, where the user is an account name, its user too (a token may
// be the user name of an https URL).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if u.Scheme != "ssh" {
		u.User = url.User("redacted")
	} else if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "redacted")
	}
	return u.String()
}

// urlCredentials takes the user and password out of an http(s) URL and
// into the Auth, where they fill what the Auth leaves empty. go-git names
// the URL in its errors, redacting a password but not a token given as the
// user name (https://TOKEN@host/…), so only the bare URL is handed to it;
// fromURL says the URL had a user, which go-git would have sent with
// basic authentication even without a password.
func urlCredentials(raw string, a Auth) (bare string, auth Auth, fromURL bool) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil || (u.Scheme != "https" && u.Scheme != "http") {
		return raw, a, false
	}
	if a.Username == "" {
		a.Username = u.User.Username()
	}
	if pw, ok := u.User.Password(); ok && a.Password == "" {
		a.Password = pw
	}
	u.User = nil
	return u.String(), a, true
}

// URL is the repository's URL without the credentials it may carry, for
// messages.
func (s *Source) URL() string { return s.url }

func authMethod(raw string, a Auth, basic bool) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(raw)
	if err != nil {
		return nil, fmt.Errorf("git URL: %w", err)
	}
	user := a.Username
	if user == "" {
		user = ep.User
	}
	if user == "" {
		user = "git"
	}
	switch ep.Protocol {
	case "https", "http":
		if len(a.SSHKey) > 0 {
			return nil, errors.New("an ssh key is given for an https URL")
		}
		if a.Password == "" && !basic {
			return nil, nil
		}
		return &githttp.BasicAuth{Username: user, Password: a.Password}, nil
	case "ssh":
		if a.Password != "" {
			return nil, errors.New("a password is given for an ssh URL; ssh takes a key")
		}
		var k interface {
			transport.AuthMethod
		}
		if len(a.SSHKey) > 0 {
			pk, err := gitssh.NewPublicKeys(user, a.SSHKey, a.SSHKeyPassphrase)
			if err != nil {
				return nil, fmt.Errorf("ssh key: %w", err)
			}
			cb, err := gitssh.NewKnownHostsCallback(a.KnownHosts...)
			if err != nil {
				return nil, fmt.Errorf("ssh known hosts: %w", err)
			}
			pk.HostKeyCallback = cb
			k = pk
		} else {
			ag, err := gitssh.NewSSHAgentAuth(user)
			if err != nil {
				return nil, fmt.Errorf("no ssh key given and no ssh agent: %w", err)
			}
			cb, err := gitssh.NewKnownHostsCallback(a.KnownHosts...)
			if err != nil {
				return nil, fmt.Errorf("ssh known hosts: %w", err)
			}
			ag.HostKeyCallback = cb
			k = ag
		}
		return k, nil
	}
	return nil, nil
}

// Current returns the revision in force.
func (s *Source) Current() (Revision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.Current == nil {
		return Revision{}, false
	}
	return *s.status.Current, true
}

// Status returns what the source last did.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if st.Current != nil {
		c := *st.Current
		st.Current = &c
	}
	return st
}

// Sync asks the remote for the ref's head commit and, when it is new,
// checks it out, verifies and validates it and makes it current; changed
// says it did. A fetch that fails leaves everything as it was. A revision
// that is rejected (ErrRejected) leaves the last good one current and is
// not fetched again until the ref moves.
func (s *Source) Sync(ctx context.Context) (rev Revision, changed bool, err error) {
	rev, changed, _, err = s.sync(ctx)
	return rev, changed, err
}

// sync is Sync, also saying whether the error is a rejection of a commit
// not rejected before.
func (s *Source) sync(ctx context.Context) (rev Revision, changed, newReject bool, err error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.status.LastFetch = s.cfg.Now()
		if err != nil && !errors.Is(err, ErrRejected) {
			s.status.LastError = err.Error()
			s.status.Failures++
		} else {
			s.status.LastError, s.status.Failures = "", 0
		}
	}()

	ref, head, err := s.remoteHead(ctx)
	if err != nil {
		return Revision{}, false, false, err
	}
	cur, ok := s.Current()
	if ok && cur.Commit == head {
		return cur, false, false, nil
	}
	s.mu.Lock()
	rejected, rejectErr := s.rejected, s.rejectErr
	s.mu.Unlock()
	if head == rejected {
		return Revision{}, false, false, fmt.Errorf("%w: %s: %w", ErrRejected, (Revision{Ref: ref.Short(), Commit: head}).String(), rejectErr)
	}
	rev, err = s.checkout(ctx, ref)
	if err != nil {
		var rj *rejection
		if errors.As(err, &rj) {
			name := (Revision{Ref: ref.Short(), Commit: rj.commit}).String()
			s.reject(rj.commit, name, rj.err)
			return Revision{}, false, true, fmt.Errorf("%w: %s: %w", ErrRejected, name, rj.err)
		}
		return Revision{}, false, false, err
	}
	if ok && cur.Commit == rev.Commit {
		// The ref moved back and forth while we fetched: nothing new.
		os.RemoveAll(rev.Dir)
		return cur, false, false, nil
	}
	if rev, err = s.promote(rev); err != nil {
		return Revision{}, false, false, err
	}
	s.log.Info("new spec revision", "revision", rev.String(), "verified", rev.Verified)
	return rev, true, false, nil
}

// Rejection returns the revision last rejected and why, while no newer
// revision has been accepted; reason is nil when there is none.
func (s *Source) Rejection() (revision string, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejected == "" {
		return "", nil
	}
	return s.status.Rejected, s.rejectErr
}

func (s *Source) reject(commit, name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected, s.rejectErr = commit, err
	s.status.Rejected = name
	s.status.Reason = err.Error()
	s.log.Warn("spec revision rejected; the last good revision stays in force", "revision", name, "error", err,
		"current", revString(s.status.Current))
}

// rejection is a fetched revision that is not accepted.
type rejection struct {
	commit string
	err    error
}

func (r *rejection) Error() string { return r.err.Error() }

// remoteHead lists the remote's refs and returns the followed ref's full
// name (empty for a detached HEAD) and head commit. It writes nothing.
func (s *Source) remoteHead(ctx context.Context) (plumbing.ReferenceName, string, error) {
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.url}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: s.auth, CABundle: s.cfg.CABundle, PeelingOption: git.AppendPeeled})
	if err != nil {
		return "", "", fmt.Errorf("list the refs of %s: %w", s.url, err)
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	if s.cfg.Ref == "" {
		h := byName[plumbing.HEAD]
		if h == nil {
			return "", "", fmt.Errorf("%s has no HEAD; name the branch to follow", s.url)
		}
		if h.Type() == plumbing.SymbolicReference {
			t := byName[h.Target()]
			if t == nil {
				return "", "", fmt.Errorf("%s: HEAD points to %s, which does not exist", s.url, h.Target())
			}
			return h.Target(), t.Hash().String(), nil
		}
		for _, r := range refs {
			if r.Name().IsBranch() && r.Hash() == h.Hash() {
				return r.Name(), h.Hash().String(), nil
			}
		}
		return "", h.Hash().String(), nil
	}
	branch := plumbing.NewBranchReferenceName(s.cfg.Ref)
	if r := byName[branch]; r != nil {
		return branch, r.Hash().String(), nil
	}
	tag := plumbing.NewTagReferenceName(s.cfg.Ref)
	if r := byName[plumbing.ReferenceName(string(tag)+"^{}")]; r != nil {
		return tag, r.Hash().String(), nil // an annotated tag, peeled to its commit
	}
	if r := byName[tag]; r != nil {
		return tag, r.Hash().String(), nil
	}
	return "", "", fmt.Errorf("%s has no branch or tag %q", s.url, s.cfg.Ref)
}

// checkout clones the ref shallowly into a new directory and checks the
// revision: signature, spec directory, no links out of it, Validate.
func (s *Source) checkout(ctx context.Context, ref plumbing.ReferenceName) (Revision, error) {
	tmp := filepath.Join(s.cfg.Dir, ".fetch-"+randomSuffix())
	opts := &git.CloneOptions{URL: s.url, Auth: s.auth, CABundle: s.cfg.CABundle, ReferenceName: ref, SingleBranch: true, Depth: 1,
		Tags: git.NoTags, RecurseSubmodules: git.NoRecurseSubmodules}
	repo, err := git.PlainCloneContext(ctx, tmp, false, opts)
	if err != nil {
		os.RemoveAll(tmp)
		return Revision{}, fmt.Errorf("fetch %s of %s: %w", ref.Short(), s.url, err)
	}
	head, err := repo.Head()
	if err != nil {
		os.RemoveAll(tmp)
		return Revision{}, fmt.Errorf("read the fetched HEAD: %w", err)
	}
	commit := head.Hash().String()
	rev := Revision{Ref: ref.Short(), Commit: commit, Dir: tmp, SpecDir: filepath.Join(tmp, s.cfg.Path), FetchedAt: s.cfg.Now().UTC()}
	fail := func(err error) (Revision, error) {
		os.RemoveAll(tmp)
		return Revision{}, &rejection{commit: commit, err: err}
	}
	if s.cfg.Keyring != "" {
		c, err := repo.CommitObject(head.Hash())
		if err != nil {
			return fail(fmt.Errorf("read the commit: %w", err))
		}
		if c.PGPSignature == "" {
			return fail(errors.New("the commit is not signed, and -git-verify requires a signature from the keyring"))
		}
		e, err := c.Verify(s.cfg.Keyring)
		if err != nil {
			return fail(fmt.Errorf("the commit's signature does not verify against the keyring: %w", err))
		}
		rev.Verified = true
		for name := range e.Identities {
			rev.Signer = name
			break
		}
	}
	st, err := os.Lstat(rev.SpecDir)
	if err != nil || !st.IsDir() {
		return fail(fmt.Errorf("the revision has no directory %q", filepath.ToSlash(s.cfg.Path)))
	}
	if err := noLinks(rev.SpecDir); err != nil {
		return fail(err)
	}
	if s.cfg.Validate != nil {
		if err := s.cfg.Validate(rev.SpecDir); err != nil {
			return fail(err)
		}
	}
	return rev, nil
}

// noLinks refuses symbolic links in the spec directory: a committed link
// could make pandasync read a file outside the repository.
func noLinks(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" && d.IsDir() {
			return filepath.SkipDir
		}
		if d.Type()&fs.ModeSymlink != 0 {
			rel, _ := filepath.Rel(dir, path)
			return fmt.Errorf("the spec directory holds a symbolic link, %s; pandasync reads no links from git", filepath.ToSlash(rel))
		}
		return nil
	})
}

// promote moves a checked revision into place and records it as current,
// keeping the previous checkout (a pass may still be reading it) and
// removing older ones and what an interrupted fetch left.
func (s *Source) promote(rev Revision) (Revision, error) {
	final := filepath.Join(s.cfg.Dir, rev.Commit)
	if err := os.RemoveAll(final); err != nil {
		os.RemoveAll(rev.Dir)
		return Revision{}, fmt.Errorf("git checkout: %w", err)
	}
	if err := os.Rename(rev.Dir, final); err != nil {
		os.RemoveAll(rev.Dir)
		return Revision{}, fmt.Errorf("git checkout: %w", err)
	}
	rev.Dir, rev.SpecDir = final, filepath.Join(final, s.cfg.Path)
	b, err := json.Marshal(record{Revision: rev, Source: s.sourceID()})
	if err != nil {
		return Revision{}, err
	}
	tmp := filepath.Join(s.cfg.Dir, ".current-"+randomSuffix())
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return Revision{}, fmt.Errorf("record the git revision: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.cfg.Dir, currentFile)); err != nil {
		os.Remove(tmp)
		return Revision{}, fmt.Errorf("record the git revision: %w", err)
	}
	s.mu.Lock()
	prev := s.status.Current
	s.status.Current = &rev
	s.rejected, s.rejectErr, s.status.Rejected, s.status.Reason = "", nil, "", ""
	s.mu.Unlock()
	keep := map[string]bool{rev.Commit: true, currentFile: true}
	if prev != nil {
		keep[prev.Commit] = true
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return rev, nil // the new revision is in force; cleaning up waits
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			os.RemoveAll(filepath.Join(s.cfg.Dir, e.Name()))
		}
	}
	return rev, nil
}

// record is what currentFile holds.
type record struct {
	Revision
	// Source identifies what the revision was fetched for: a digest of
	// the URL, ref, path and keyring (the URL may carry a token).
	Source string `json:"source"`
}

func (s *Source) sourceID() string {
	h := sha256.Sum256([]byte(strings.Join([]string{s.cfg.URL, s.cfg.Ref, s.cfg.Path, s.cfg.Keyring}, "\x00")))
	return hex.EncodeToString(h[:])
}

// restore reads the revision recorded as current, if its checkout is
// there and still of this repository's Path.
func (s *Source) restore() (Revision, bool) {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, currentFile))
	if err != nil {
		return Revision{}, false
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Source != s.sourceID() {
		return Revision{}, false // another repository, ref, path or keyring
	}
	rev := rec.Revision
	if len(rev.Commit) != 40 || strings.Trim(rev.Commit, "0123456789abcdef") != "" {
		return Revision{}, false
	}
	rev.Dir = filepath.Join(s.cfg.Dir, rev.Commit)
	rev.SpecDir = filepath.Join(rev.Dir, s.cfg.Path)
	if st, err := os.Stat(rev.SpecDir); err != nil || !st.IsDir() {
		return Revision{}, false
	}
	if s.cfg.Keyring != "" && !rev.Verified {
		return Revision{}, false
	}
	return rev, true
}

// Update is what Run reports: a new current revision, or (Err set) a
// revision that was rejected, once per rejected commit.
type Update struct {
	Revision Revision
	// Err wraps ErrRejected and says why Revision was not accepted; nil
	// for a new current revision.
	Err error
}

// Run fetches every Interval until ctx is done, calling notify with each
// new revision and each newly rejected one. After a failed fetch it waits
// twice as long each time, up to MaxBackoff; a rejected revision is not a
// failed fetch. It returns ctx's error.
func (s *Source) Run(ctx context.Context, notify func(Update)) error {
	for {
		rev, changed, newReject, err := s.sync(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := s.cfg.Interval
		switch {
		case err == nil:
			if changed && notify != nil {
				notify(Update{Revision: rev})
			}
		case errors.Is(err, ErrRejected):
			if newReject && notify != nil {
				notify(Update{Err: err})
			}
		default:
			st := s.Status()
			d = backoff(s.cfg.Interval, s.cfg.MaxBackoff, st.Failures)
			s.log.Warn("cannot fetch the spec; the current revision stays in force", "error", err, "failures", st.Failures,
				"retry_in", d.String(), "current", revString(st.Current))
		}
		s.mu.Lock()
		s.status.NextFetch = s.cfg.Now().Add(d)
		s.mu.Unlock()
		if err := s.cfg.Wait(ctx, d); err != nil {
			return err
		}
	}
}

// revString formats a revision that may be nil.
func revString(r *Revision) string {
	if r == nil {
		return ""
	}
	return r.String()
}

// backoff is the wait after n failed fetches in a row: the interval,
// doubled for each failure after the first, at most max.
func backoff(interval, max time.Duration, n int) time.Duration {
	d := interval
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
