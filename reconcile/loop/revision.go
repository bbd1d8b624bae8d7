package loop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Revision is the git commit the spec files come from, and whether they
// differ from it.
type Revision struct {
	// Ref is the branch or tag HEAD names ("main"); empty when HEAD is
	// detached.
	Ref string `json:"ref,omitempty"`
	// Commit is the commit's full hex id; empty outside a git work tree.
	Commit string `json:"commit,omitempty"`
	// Dirty says the spec files on disk are not exactly that commit's: a
	// file was changed, added or deleted, or lies outside the work tree.
	Dirty bool `json:"dirty,omitempty"`
}

// String formats the revision as Flux does: "main@sha1:<commit>", or
// "sha1:<commit>" for a detached HEAD; empty outside git. Dirty is not part
// of it: it is reported next to it.
func (r Revision) String() string {
	if r.Commit == "" {
		return ""
	}
	if r.Ref == "" {
		return "sha1:" + r.Commit
	}
	return r.Ref + "@sha1:" + r.Commit
}

// ReadRevision finds the git work tree holding the spec files and returns
// HEAD's commit, with Dirty set when the files differ from it: a loaded
// file's content is not the committed blob or is not committed at all, or
// a spec file committed in one of the spec directories (the directories
// among paths) is missing from files. Files outside the spec (a README, other
// projects in the same repository) never make it dirty.
//
// It reads .git with a pure-Go implementation (go-git) and executes
// nothing from the repository: no git binary, hooks, filters or fsmonitor.
// Outside a git work tree it returns the zero Revision and no error.
func ReadRevision(paths, files []string) (Revision, error) {
	if len(files) == 0 {
		return Revision{}, nil
	}
	first, err := realPath(files[0])
	if err != nil {
		return Revision{}, err
	}
	repo, err := git.PlainOpenWithOptions(filepath.Dir(first), &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return Revision{}, nil
	}
	if err != nil {
		return Revision{}, fmt.Errorf("open the git repository of %s: %w", files[0], err)
	}
	head, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Revision{}, nil // no commit yet
	}
	if err != nil {
		return Revision{}, fmt.Errorf("read git HEAD: %w", err)
	}
	rev := Revision{Commit: head.Hash().String()}
	if n := head.Name(); n.IsBranch() || n.IsTag() {
		rev.Ref = n.Short()
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		return rev, fmt.Errorf("read commit %s: %w", rev.Commit, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return rev, fmt.Errorf("read the tree of %s: %w", rev.Commit, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return rev, fmt.Errorf("git work tree: %w", err)
	}
	root, err := realPath(wt.Filesystem.Root())
	if err != nil {
		return rev, err
	}
	dirty, err := specDirty(tree, root, paths, files)
	rev.Dirty = dirty
	return rev, err
}

// specDirty compares the spec files with the commit's tree.
func specDirty(tree *object.Tree, root string, paths, files []string) (bool, error) {
	loaded := map[string]bool{}
	for _, f := range files {
		abs, err := realPath(f)
		if err != nil {
			return false, err
		}
		rel, ok := inside(root, abs)
		if !ok {
			return true, nil
		}
		loaded[rel] = true
		blob, err := tree.File(rel)
		if errors.Is(err, object.ErrFileNotFound) {
			return true, nil // not committed
		}
		if err != nil {
			return false, fmt.Errorf("read %s from git: %w", rel, err)
		}
		data, err := os.ReadFile(abs)
		if err != nil {
			return false, fmt.Errorf("read %s: %w", f, err)
		}
		if plumbing.ComputeHash(plumbing.BlobObject, data) != blob.Hash {
			return true, nil
		}
	}
	// A spec file committed in a spec directory but gone from disk.
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() {
			continue
		}
		abs, err := realPath(p)
		if err != nil {
			return false, err
		}
		rel, ok := inside(root, abs)
		if !ok {
			continue
		}
		sub := tree
		if rel != "." {
			sub, err = tree.Tree(rel)
			if errors.Is(err, object.ErrDirectoryNotFound) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("read %s from git: %w", rel, err)
			}
		}
		for _, e := range sub.Entries {
			name := e.Name
			if rel != "." {
				name = rel + "/" + e.Name
			}
			if e.Mode.IsFile() && isSpecFile(e.Name) && !loaded[name] {
				return true, nil
			}
		}
	}
	return false, nil
}

// realPath is the absolute path with symlinks resolved.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	return real, nil
}

// inside returns path relative to root, slash-separated, and whether it is
// inside root.
func inside(root, path string) (string, bool) {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}
