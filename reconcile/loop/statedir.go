package loop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Names of the files in the state directory.
const (
	LockFile    = "lock"
	AuditFile   = "audit.jsonl"
	HistoryFile = "passes.jsonl"
)

// DefaultStateDir is the state directory used when -state-dir is not
// given:
//
//   - $STATE_DIRECTORY when set, as systemd sets it for StateDirectory=
//     (the first entry when it lists several);
//   - on Windows, %ProgramData%\pandasync;
//   - for root elsewhere, /var/lib/pandasync;
//   - for other users, $XDG_STATE_HOME/pandasync, by default
//     ~/.local/state/pandasync.
//
// lookupEnv is os.LookupEnv in production.
func DefaultStateDir(lookupEnv func(string) (string, bool)) (string, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if v, ok := lookupEnv("STATE_DIRECTORY"); ok && v != "" {
		first, _, _ := strings.Cut(v, string(os.PathListSeparator))
		return first, nil
	}
	if runtime.GOOS == "windows" {
		if v, ok := lookupEnv("ProgramData"); ok && v != "" {
			return filepath.Join(v, "pandasync"), nil
		}
		return `C:\ProgramData\pandasync`, nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/pandasync", nil
	}
	if v, ok := lookupEnv("XDG_STATE_HOME"); ok && filepath.IsAbs(v) {
		return filepath.Join(v, "pandasync"), nil
	}
	home, ok := lookupEnv("HOME")
	if !ok || home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", errors.New("no state directory: set -state-dir (neither STATE_DIRECTORY nor HOME is set)")
		}
	}
	return filepath.Join(home, ".local", "state", "pandasync"), nil
}

// MakeStateDir creates the state directory (and its parents) readable by
// its owner only: it names the people pandasync changed. Nothing in it is a
// secret.
func MakeStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}
