// Package gittest serves git repositories for tests: a bare repository the
// test creates, served over smart HTTP on loopback by `git http-backend`
// through net/http/cgi, and a work tree (go-git) that commits to it and
// pushes over that HTTP. Tests skip when git is not installed.
package gittest

import (
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Remote is a bare repository served over smart HTTP, with a work tree
// that pushes to it.
type Remote struct {
	// Bare is the bare repository's directory and URL its HTTP URL.
	Bare, URL string
	// Server serves it; Close it to make the remote unreachable.
	Server *httptest.Server
	// Work is the work tree's repository and WorkDir its directory.
	Work    *git.Repository
	WorkDir string
	// Uploads counts fetches of objects (POST git-upload-pack), Refs
	// ref listings for fetching.
	Uploads, Refs atomic.Int64

	when time.Time
}

// GitBinary returns the git binary, which serves the repositories (git
// http-backend, git-upload-pack), or skips the test.
func GitBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed: the test repositories are served by git http-backend and git-upload-pack")
	}
	return p
}

// New creates an empty bare repository with main as its default branch,
// serves it and makes a work tree whose origin is its URL.
func New(t testing.TB) *Remote {
	t.Helper()
	gitPath := GitBinary(t)
	root := t.TempDir()
	bare := filepath.Join(root, "specs.git")
	repo, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := repo.Config()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Raw.Section("http").SetOption("receivepack", "true")
	if err := repo.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	r := &Remote{Bare: bare, when: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)}
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"}, Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + root, "GIT_CONFIG_NOSYSTEM=1"}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/git-upload-pack"):
			r.Uploads.Add(1)
		case strings.HasSuffix(req.URL.Path, "/info/refs") && req.URL.Query().Get("service") == "git-upload-pack":
			r.Refs.Add(1)
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Server.Close)
	r.URL = r.Server.URL + "/specs.git"
	r.WorkDir = t.TempDir()
	r.Work, err = git.PlainInitWithOptions(r.WorkDir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Work.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{r.URL}}); err != nil {
		t.Fatal(err)
	}
	return r
}

// Commit writes files into the work tree (an empty content deletes one,
// "symlink:TARGET" makes a symbolic link) and commits them, signed with key
// when it is set. It returns the commit's id.
func (r *Remote) Commit(t testing.TB, files map[string]string, key *openpgp.Entity) string {
	t.Helper()
	wt, err := r.Work.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(r.WorkDir, name)
		if content == "" {
			if _, err := wt.Remove(name); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		os.Remove(p)
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	r.when = r.when.Add(time.Minute)
	h, err := wt.Commit("change the spec", &git.CommitOptions{Author: &object.Signature{Name: "Admin", Email: "admin@corp.example.com", When: r.when}, SignKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// Push pushes main; force rewrites the remote's history.
func (r *Remote) Push(t testing.TB, force bool) {
	t.Helper()
	spec := gitconfig.RefSpec("refs/heads/main:refs/heads/main")
	if force {
		spec = "+" + spec
	}
	if err := r.Work.Push(&git.PushOptions{RemoteName: "origin", RefSpecs: []gitconfig.RefSpec{spec}}); err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		t.Fatalf("push: %v", err)
	}
}

// CommitAndPush commits files and pushes main.
func (r *Remote) CommitAndPush(t testing.TB, files map[string]string) string {
	t.Helper()
	c := r.Commit(t, files, nil)
	r.Push(t, false)
	return c
}

// ResetTo moves the work tree's main back to commit, for a force-push.
func (r *Remote) ResetTo(t testing.TB, commit string) {
	t.Helper()
	wt, err := r.Work.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.Reset(&git.ResetOptions{Commit: plumbing.NewHash(commit), Mode: git.HardReset}); err != nil {
		t.Fatal(err)
	}
}

// When is the time of the last commit.
func (r *Remote) When() time.Time { return r.when }
