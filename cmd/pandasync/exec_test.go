package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestBashCompletion loads `pandasync completion bash` into a real bash
// and completes command lines with it, as the shell does on Tab. The test
// binary acts as pandasync (see TestMain).
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed; the script is covered by its golden file only")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(bin, "pandasync")); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, f := range []string{"reviewed.plan", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(work, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	demo, err := filepath.Abs(filepath.Join("..", "..", "examples", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		words string // COMP_WORDS after "pandasync"; the last is being completed
		want  []string
	}{
		"command":     {words: "pl", want: []string{"plan"}},
		"flag":        {words: "plan -detailed", want: []string{"-detailed-exitcode"}},
		"mapping":     {words: "-f " + demo + " plan -mapping it-", want: []string{"it-admins", "it-users"}},
		"plan file":   {words: "apply r", want: []string{"reviewed.plan"}},
		"empty":       {words: "completion ''", want: []string{"bash", "zsh", "fish", "powershell"}},
		"log level":   {words: "-log-level w", want: []string{"warn"}},
		"no such cmd": {words: "frobnicate ''", want: nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			script := `source <(pandasync completion bash) || exit 1
COMP_WORDS=(pandasync ` + tt.words + `)
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_pandasync 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "PANDASYNC_TEST_MAIN=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if l != "" {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("completing %q (-want +got):\n%s", tt.words, diff)
			}
		})
	}
}
