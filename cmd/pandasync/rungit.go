package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pandasync/pandasync/reconcile/gitsource"
	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// gitArgs are the -git flags of `pandasync run`.
type gitArgs struct {
	url, ref, path   string
	interval         time.Duration
	verify           string // armored OpenPGP keyring file
	username         string
	password         string // {env: NAME} or {file: PATH}
	sshKey           string // {env: NAME} or {file: PATH}
	sshKeyPassphrase string // {env: NAME} or {file: PATH}
	knownHosts       string
	caFile           string
	allowHTTP        bool
}

// gitUsage is the -git flags' part of run's usage line.
const gitUsage = "[-git URL [-git-ref REF] [-git-path DIR] [-git-interval D] [-git-verify KEYRING] [-git-username NAME] [-git-password REF] " +
	"[-git-ssh-key REF [-git-ssh-key-passphrase REF]] [-git-known-hosts FILE] [-git-ca-file FILE] [-git-allow-http]]"

func addGitFlags(fs *flag.FlagSet, g *gitArgs) {
	fs.StringVar(&g.url, "git", "", "take the spec from the git repository at `URL` (https://, ssh:// or user@host:path) instead of -f, "+
		"kept as a shallow checkout in the state directory; every new commit triggers a pass")
	fs.StringVar(&g.ref, "git-ref", "", "branch or tag `REF` to follow (default: the repository's default branch)")
	fs.StringVar(&g.path, "git-path", "", "directory `DIR` of the repository that holds the spec (default: its root)")
	fs.DurationVar(&g.interval, "git-interval", gitsource.DefaultInterval, "how often, `DURATION`, to ask the repository for a new commit")
	fs.StringVar(&g.verify, "git-verify", "", "apply only commits signed by a key of the armored OpenPGP `KEYRING` file")
	fs.StringVar(&g.username, "git-username", "", "user `NAME` for https (default git) or ssh (default: the URL's, else git)")
	fs.StringVar(&g.password, "git-password", "", "https password or access token, as `REF` {env: NAME} or {file: PATH}")
	fs.StringVar(&g.sshKey, "git-ssh-key", "", "ssh private key (PEM), as `REF` {env: NAME} or {file: PATH}; without it, the ssh agent")
	fs.StringVar(&g.sshKeyPassphrase, "git-ssh-key-passphrase", "", "the ssh key's passphrase, as `REF` {env: NAME} or {file: PATH}")
	fs.StringVar(&g.knownHosts, "git-known-hosts", "", "known_hosts `FILE` for ssh host keys (default $SSH_KNOWN_HOSTS or ~/.ssh/known_hosts); host keys are always checked")
	fs.StringVar(&g.caFile, "git-ca-file", "", "PEM `FILE` of CAs trusted for https besides the system's")
	fs.BoolVar(&g.allowHTTP, "git-allow-http", false, "allow a plain http:// URL (no TLS), for a server on loopback")
}

// check validates the -git flags against the rest of the command line.
func (g gitArgs) check(a *app) error {
	if g.url == "" {
		for name, v := range map[string]string{"-git-ref": g.ref, "-git-path": g.path, "-git-verify": g.verify, "-git-password": g.password, "-git-ssh-key": g.sshKey} {
			if v != "" {
				fmt.Fprintf(a.stderr, "run: %s needs -git URL\n", name)
				return errUsage
			}
		}
		return nil
	}
	if len(a.paths) > 0 {
		fmt.Fprintln(a.stderr, "run: -git and -f both name the spec; use one")
		return errUsage
	}
	if g.interval <= 0 {
		fmt.Fprintln(a.stderr, "run: -git-interval must be positive")
		return errUsage
	}
	return nil
}

// secretRef parses a flag holding {env: NAME} or {file: PATH}. A literal
// is refused: on a command line, other users of the host can read it.
func secretRef(flagName, s string) (spec.Value, error) {
	if s == "" {
		return spec.Value{}, nil
	}
	var v spec.Value
	if err := yaml.Unmarshal([]byte(s), &v); err != nil || v.IsLiteral() {
		return spec.Value{}, fmt.Errorf("%s takes {env: NAME} or {file: PATH}, never the secret itself", flagName)
	}
	return v, nil
}

// gitSpec is the spec of `run -git`: the source that follows the
// repository, and the revision each loaded spec set came from.
type gitSpec struct {
	src *gitsource.Source
	url string // without the credentials the -git URL may carry

	mu   sync.Mutex
	revs map[*spec.Set]gitsource.Revision
	last []*spec.Set // the sets remembered, oldest first
	// served is set once a set was handed to the loop: from then on a
	// rejected revision is reported as an invalid spec, and the loop keeps
	// the set it has.
	served bool
}

// newGitSpec builds the source over STATE_DIR/git, resolving the
// credentials once.
func (a *app) newGitSpec(g gitArgs, stateDir string) (*gitSpec, error) {
	r := a.resolver()
	var auth gitsource.Auth
	auth.Username = g.username
	for _, s := range []struct {
		flag, value string
		dst         *string
	}{
		{"-git-password", g.password, &auth.Password},
		{"-git-ssh-key-passphrase", g.sshKeyPassphrase, &auth.SSHKeyPassphrase},
	} {
		v, err := secretRef(s.flag, s.value)
		if err != nil {
			return nil, err
		}
		if !v.IsZero() {
			if *s.dst, err = r.Resolve(v); err != nil {
				return nil, fmt.Errorf("%s: %w", s.flag, err)
			}
			*s.dst = strings.TrimRight(*s.dst, "\r\n")
		}
	}
	if v, err := secretRef("-git-ssh-key", g.sshKey); err != nil {
		return nil, err
	} else if !v.IsZero() {
		key, err := r.Resolve(v)
		if err != nil {
			return nil, fmt.Errorf("-git-ssh-key: %w", err)
		}
		auth.SSHKey = []byte(key)
	}
	if g.knownHosts != "" {
		auth.KnownHosts = []string{g.knownHosts}
	}
	cfg := gitsource.Config{URL: g.url, Ref: g.ref, Path: g.path, Dir: filepath.Join(stateDir, "git"), Auth: auth,
		AllowInsecure: g.allowHTTP, Interval: g.interval, Logger: a.log,
		Validate: func(dir string) error {
			_, err := spec.LoadFS(os.DirFS(dir), ".")
			return err
		}}
	if g.verify != "" {
		b, err := os.ReadFile(g.verify)
		if err != nil {
			return nil, fmt.Errorf("-git-verify: %w", err)
		}
		cfg.Keyring = string(b)
	}
	if g.caFile != "" {
		b, err := os.ReadFile(g.caFile)
		if err != nil {
			return nil, fmt.Errorf("-git-ca-file: %w", err)
		}
		cfg.CABundle = b
	}
	src, err := gitsource.New(cfg)
	if err != nil {
		return nil, err
	}
	return &gitSpec{src: src, url: src.URL(), revs: map[*spec.Set]gitsource.Revision{}}, nil
}

// errNoRevision: nothing has been fetched yet, and no earlier checkout is
// there to serve.
var errNoRevision = errors.New("no revision of the spec repository has been fetched yet")

// load is the loop's Load: the spec of the current revision. While a newer
// revision is rejected, it returns that as the spec's problems, so that the
// loop reports it as it reports an invalid edit and keeps the last good
// set; the first load (at start-up) serves the last good revision.
func (gs *gitSpec) load() (*spec.Set, error) {
	rev, ok := gs.src.Current()
	if !ok {
		if st := gs.src.Status(); st.LastError != "" {
			return nil, fmt.Errorf("%w: %s", errNoRevision, st.LastError)
		}
		if name, reason := gs.src.Rejection(); reason != nil {
			return nil, rejected(name, "", reason)
		}
		return nil, errNoRevision
	}
	gs.mu.Lock()
	served := gs.served
	gs.mu.Unlock()
	if name, reason := gs.src.Rejection(); reason != nil && served {
		return nil, rejected(name, rev.String(), reason)
	}
	set, err := spec.Load(rev.SpecDir)
	if err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev, err)
	}
	gs.mu.Lock()
	defer gs.mu.Unlock()
	gs.served = true
	gs.revs[set] = rev
	gs.last = append(gs.last, set)
	if len(gs.last) > 4 {
		delete(gs.revs, gs.last[0])
		gs.last = gs.last[1:]
	}
	return set, nil
}

// rejected is the error of a rejected revision as the loop shows it: the
// spec's problems, headed by which revision they belong to.
func rejected(name, current string, reason error) error {
	head := "git revision " + name + " is rejected"
	if current != "" {
		head += "; " + current + " stays in force"
	}
	var ps spec.Problems
	if errors.As(reason, &ps) {
		return append(spec.Problems{{Message: head + ":"}}, ps...)
	}
	return fmt.Errorf("%s: %w", head, reason)
}

// revision is the loop's Revision: the commit a set was loaded from.
func (gs *gitSpec) revision(set *spec.Set) (loop.Revision, error) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	rev, ok := gs.revs[set]
	if !ok {
		return loop.Revision{}, errors.New("the spec set was not loaded from the git checkout")
	}
	return loop.Revision{Ref: rev.Ref, Commit: rev.Commit}, nil
}

// first fetches once before the loop starts, so that its first pass plans
// from the newest revision. A failure is logged; the revision restored from
// the state directory, if any, stays in force.
func (gs *gitSpec) first(ctx context.Context, a *app) error {
	rev, _, err := gs.src.Sync(ctx)
	switch {
	case err == nil:
		a.log.Info("spec repository fetched", "url", gs.url, "revision", rev.String())
	case errors.Is(err, gitsource.ErrRejected):
		// Logged by the source; the last good revision, if any, stays.
	default:
		cur, ok := gs.src.Current()
		if !ok {
			return err
		}
		a.log.Warn("the spec repository cannot be fetched; the revision checked out before stays in force", "error", err, "revision", cur.String())
	}
	return nil
}

// follow runs the source until ctx is done, asking the loop for a pass at
// each new revision and each rejected one (which the pass's reload
// reports).
func (gs *gitSpec) follow(ctx context.Context, l *loop.Loop) {
	_ = gs.src.Run(ctx, func(u gitsource.Update) {
		if u.Err != nil {
			l.Trigger("rejected git revision")
			return
		}
		l.Trigger("git revision " + u.Revision.String())
	})
}
