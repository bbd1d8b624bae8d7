package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/pandasync/pandasync/examples"
)

// defaultSpecDir is where init writes and where the other commands look
// when no -f is given.
const defaultSpecDir = "pandasync.d"

// initSpec is `pandasync init [DIR]`: write the commented starter spec set
// (examples/starter) to DIR, ./pandasync.d by default, refusing to
// overwrite a file that exists.
func (a *app) initSpec(ctx context.Context, args []string) error {
	fs := a.flags("init", "[DIR]")
	if err := parse(fs, args); err != nil {
		return err
	}
	dir := defaultSpecDir
	switch fs.NArg() {
	case 0:
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintln(a.stderr, "init: at most one directory")
		return errUsage
	}
	names, err := starterFiles()
	if err != nil {
		return err
	}
	var exist []string
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			exist = append(exist, filepath.Join(dir, n))
		}
	}
	if len(exist) > 0 {
		them := "it"
		if len(exist) > 1 {
			them = "them"
		}
		return fmt.Errorf("init would overwrite %s; remove %s first, or write elsewhere: pandasync init DIR", strings.Join(exist, ", "), them)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	for _, n := range names {
		b, err := examples.FS.ReadFile(path.Join(examples.StarterDir, n))
		if err != nil {
			return err
		}
		// O_EXCL: never overwrite, even a file made since the check above.
		f, err := os.OpenFile(filepath.Join(dir, n), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		_, werr := f.Write(b)
		if err := errors.Join(werr, f.Close()); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		fmt.Fprintf(a.stdout, "  %s %s\n", a.paint(colorGreen, "+"), filepath.Join(dir, n))
	}
	f := ""
	if filepath.Clean(dir) != defaultSpecDir {
		f = "-f " + shellQuote(dir) + " "
	}
	cmds := []string{"pandasync " + f + "validate", "pandasync " + f + "validate -strict-env", "pandasync " + f + "check", "pandasync " + f + "plan"}
	width := 0
	for _, c := range cmds {
		width = max(width, len(c))
	}
	fmt.Fprintf(a.stdout, `
Wrote a starter spec set: a Connection, a user mapping, a collection mapping and a policy.
Every option is explained in the comments. Next:

  1. Edit the files: your domain controllers, base DN, service account, groups,
     and your Asset Panda account, module, role and collection names.
  2. %-*s  # the spec is well-formed
  3. Set the secrets the Connection names, for example:
       export PANDASYNC_AD_PASSWORD=... PANDASYNC_AP_CLIENT_ID=... PANDASYNC_AP_CLIENT_SECRET=...
       export PANDASYNC_AP_EMAIL=... PANDASYNC_AP_PASSWORD=...
     %-*s  # every secret can be read
  4. %-*s  # connects to AD and Asset Panda and checks every name
  5. %-*s  # what would change, and why; nothing is written
`, width, cmds[0], width, cmds[1], width, cmds[2], width, cmds[3])
	return nil
}

// starterFiles lists the starter spec files in name order.
func starterFiles() ([]string, error) {
	entries, err := fs.ReadDir(examples.FS, examples.StarterDir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
