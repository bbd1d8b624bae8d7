package loop_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/pandasync/pandasync/reconcile/loop"
	"github.com/pandasync/pandasync/spec"
)

// gitRepo makes a git work tree at dir with files committed on main, and
// returns the commit.
func gitRepo(t testing.TB, dir string, files map[string]string) (*git.Repository, string) {
	t.Helper()
	repo, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return repo, commitAll(t, repo)
}

func commitAll(t testing.TB, repo *git.Repository) string {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	h, err := wt.Commit("spec", &git.CommitOptions{Author: &object.Signature{Name: "Admin", Email: "admin@example.com", When: time.Unix(1736935200, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// TestReadRevision checks the revision and the dirty flag of a spec
// directory in git: only the spec files count.
func TestReadRevision(t *testing.T) {
	tests := map[string]struct {
		change    func(t *testing.T, root string)
		wantDirty bool
	}{
		"clean":                 {func(*testing.T, string) {}, false},
		"other file changed":    {func(t *testing.T, root string) { write(t, root, "README.md", "changed") }, false},
		"other file untracked":  {func(t *testing.T, root string) { write(t, root, "notes.txt", "new") }, false},
		"spec file changed":     {func(t *testing.T, root string) { write(t, root, "pandasync.d/users.yaml", "changed: true\n") }, true},
		"spec file untracked":   {func(t *testing.T, root string) { write(t, root, "pandasync.d/more.yaml", "new: true\n") }, true},
		"spec file deleted":     {func(t *testing.T, root string) { os.Remove(filepath.Join(root, "pandasync.d/users.yaml")) }, true},
		"editor backup ignored": {func(t *testing.T, root string) { write(t, root, "pandasync.d/users.yaml~", "x") }, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			_, commit := gitRepo(t, root, map[string]string{
				"README.md":               "spec repo\n",
				"pandasync.d/conn.yaml":   "conn: true\n",
				"pandasync.d/users.yaml":  "users: true\n",
				"elsewhere/ignored.yaml":  "x: 1\n",
				"pandasync.d/.hidden.yml": "hidden: true\n",
			})
			tc.change(t, root)
			specDir := filepath.Join(root, "pandasync.d")
			files, _ := filepath.Glob(filepath.Join(specDir, "*.yaml"))
			rev, err := loop.ReadRevision([]string{specDir}, files)
			if err != nil {
				t.Fatal(err)
			}
			want := loop.Revision{Ref: "main", Commit: commit, Dirty: tc.wantDirty}
			if rev != want {
				t.Errorf("ReadRevision = %+v, want %+v", rev, want)
			}
			if got, wantS := rev.String(), "main@sha1:"+commit; got != wantS {
				t.Errorf("String() = %q, want %q", got, wantS)
			}
		})
	}
}

func write(t *testing.T, root, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(name)), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadRevisionDetachedAndOutside(t *testing.T) {
	root := t.TempDir()
	repo, first := gitRepo(t, root, map[string]string{"spec.yaml": "a: 1\n"})
	write(t, root, "spec.yaml", "a: 2\n")
	commitAll(t, repo)
	wt, _ := repo.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(first)}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "spec.yaml")
	rev, err := loop.ReadRevision([]string{file}, []string{file})
	if err != nil || rev != (loop.Revision{Commit: first}) || rev.String() != "sha1:"+first {
		t.Errorf("detached HEAD: %+v %q %v, want sha1:%s, clean", rev, rev.String(), err, first)
	}

	// A spec file from outside the work tree makes the set dirty.
	outside := filepath.Join(t.TempDir(), "extra.yaml")
	os.WriteFile(outside, []byte("b: 1\n"), 0o644)
	if rev, err := loop.ReadRevision(nil, []string{file, outside}); err != nil || !rev.Dirty {
		t.Errorf("with a file outside the work tree: %+v %v, want dirty", rev, err)
	}

	// Not in git at all: no revision, no error.
	plain := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(plain, []byte("a: 1\n"), 0o644)
	if rev, err := loop.ReadRevision(nil, []string{plain}); err != nil || rev != (loop.Revision{}) || rev.String() != "" {
		t.Errorf("outside git: %+v %v, want the zero revision", rev, err)
	}
}

// gitRevision is the Config.Revision of a loop whose spec is in dir.
func gitRevision(dir string) func(*spec.Set) (loop.Revision, error) {
	return func(set *spec.Set) (loop.Revision, error) { return loop.ReadRevision([]string{dir}, set.Files) }
}
