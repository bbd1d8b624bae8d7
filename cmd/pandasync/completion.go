package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pandasync/pandasync/spec"
)

// completeCommand is the hidden command the completion scripts call:
//
//	pandasync __complete N WORD...
//
// N is the number of words after "pandasync" up to and including the one
// being completed; the words follow (the last, when present, is the one
// being completed; when fewer than N are given, it is empty). It prints
// the candidates, one per line, already filtered by the word's prefix;
// directories end in "/".
const completeCommand = "__complete"

// shells are the shells `completion` writes scripts for.
var shells = []string{"bash", "zsh", "fish", "powershell"}

// completion is `pandasync completion SHELL`.
func (a *app) completion(ctx context.Context, args []string) error {
	fs := a.flags("completion", "bash|zsh|fish|powershell")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || !slices.Contains(shells, fs.Arg(0)) {
		fmt.Fprintf(a.stderr, "completion: name one shell: %s\n", strings.Join(shells, ", "))
		return errUsage
	}
	_, err := io.WriteString(a.stdout, completionScripts[fs.Arg(0)])
	return err
}

// completionScripts are thin: each passes the words to __complete.
var completionScripts = map[string]string{
	"bash": `# bash completion for pandasync. Load it with
#   source <(pandasync completion bash)
# or save it as /etc/bash_completion.d/pandasync.
_pandasync() {
	local IFS=$'\n'
	COMPREPLY=($(pandasync __complete "$COMP_CWORD" "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
	if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == */ ]]; then
		compopt -o nospace
	fi
}
complete -F _pandasync pandasync
`,
	"zsh": `#compdef pandasync
# zsh completion for pandasync. Load it with
#   source <(pandasync completion zsh)
# (after compinit), or save it as _pandasync in a directory of $fpath.
_pandasync() {
	local -a cands dirs others
	cands=("${(@f)$(pandasync __complete $((CURRENT-1)) "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	local c
	for c in $cands; do
		[[ -z $c ]] && continue
		if [[ $c == */ ]]; then dirs+=$c; else others+=$c; fi
	done
	(( $#others )) && compadd -Q -- $others
	(( $#dirs )) && compadd -Q -S '' -- $dirs
	return 0
}
compdef _pandasync pandasync
`,
	"fish": `# fish completion for pandasync. Load it with
#   pandasync completion fish | source
# or save it as ~/.config/fish/completions/pandasync.fish.
function __pandasync_complete
	set -l before (commandline -opc)
	set -l cur (commandline -ct)
	pandasync __complete (count $before) $before[2..-1] $cur 2>/dev/null
end
complete -c pandasync -f -a '(__pandasync_complete)'
`,
	"powershell": `# PowerShell completion for pandasync. Load it with
#   pandasync completion powershell | Out-String | Invoke-Expression
# or add that line to your $PROFILE.
Register-ArgumentCompleter -Native -CommandName pandasync, pandasync.exe -ScriptBlock {
	param($wordToComplete, $commandAst, $cursorPosition)
	$words = @($commandAst.CommandElements | Select-Object -Skip 1 |
		Where-Object { $_.Extent.StartOffset -lt $cursorPosition } | ForEach-Object { $_.ToString() })
	$n = $words.Count
	if ($wordToComplete -eq '') { $n += 1 }
	& pandasync __complete $n @words 2>$null | ForEach-Object {
		[System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
	}
}
`,
}

// complete is the hidden __complete command.
func (a *app) complete(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return nil
	}
	words := args[1:]
	for len(words) < n {
		words = append(words, "")
	}
	for _, c := range a.completions(ctx, words[:n]) {
		fmt.Fprintln(a.stdout, c)
	}
	return nil
}

// completions returns the candidates for the last of words (the words
// after "pandasync").
func (a *app) completions(ctx context.Context, words []string) []string {
	cur := words[len(words)-1]
	before := words[:len(words)-1]

	// Find the command and the -f paths, skipping flags and their values.
	var paths []string
	cmd := ""
	var cmdArgs []string
	var fs *flag.FlagSet
	global := a.globalFlagSet()
	for i := 0; i < len(before); i++ {
		w := before[i]
		if cmd != "" {
			cmdArgs = append(cmdArgs, w)
		}
		set := global
		if cmd != "" {
			set = fs
		}
		if name, ok := flagName(w); ok && set != nil {
			if name == "f" && i+1 < len(before) && !strings.Contains(w, "=") {
				paths = append(paths, before[i+1])
			}
			if takesValue(set, name) && !strings.Contains(w, "=") {
				i++
				if cmd != "" && i < len(before) {
					cmdArgs = append(cmdArgs, before[i])
				}
			}
			continue
		}
		if cmd == "" {
			if _, ok := lookupCommand(w); !ok && w != "help" {
				return nil
			}
			cmd = w
			if w != "help" {
				fs = a.describe(ctx, w)
			}
		}
	}

	// The value of a flag.
	if len(before) > 0 {
		if name, ok := flagName(before[len(before)-1]); ok && !strings.Contains(before[len(before)-1], "=") {
			set := global
			if cmd != "" {
				set = fs
			}
			if set != nil && takesValue(set, name) {
				return a.flagValues(name, cur, paths)
			}
		}
	}
	if strings.HasPrefix(cur, "-") {
		set := global
		if cmd != "" {
			set = fs
		}
		if set == nil {
			return nil
		}
		var out []string
		set.VisitAll(func(f *flag.Flag) {
			if strings.HasPrefix("-"+f.Name, cur) {
				out = append(out, "-"+f.Name)
			}
		})
		return out
	}
	switch cmd {
	case "":
		return withPrefix(append(commandNames(), "help"), cur)
	case "help":
		if positional(cmdArgs) == 0 {
			return withPrefix(commandNames(), cur)
		}
	case "completion":
		if positional(cmdArgs) == 0 {
			return withPrefix(shells, cur)
		}
	case "apply", "show":
		if positional(cmdArgs) == 0 {
			return files(cur, ".json", ".plan")
		}
	case "init":
		if positional(cmdArgs) == 0 {
			return files(cur, "/")
		}
	}
	return nil
}

// globalFlagSet holds the flags accepted before the command.
func (a *app) globalFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("pandasync", flag.ContinueOnError)
	quiet := *a
	quiet.stdout, quiet.stderr = io.Discard, io.Discard
	quiet.addGlobalFlags(fs)
	fs.Bool("version", false, "")
	return fs
}

// describe returns a command's flag set, without running the command: the
// command is given -h, on an app that writes nowhere.
func (a *app) describe(ctx context.Context, name string) *flag.FlagSet {
	c, ok := lookupCommand(name)
	if !ok || c.hidden {
		return nil
	}
	quiet := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, lookupEnv: a.lookupEnv, readFile: a.readFile}
	quiet.log = quiet.newLogger()
	_ = c.run(quiet, ctx, []string{"-h"})
	return quiet.lastFlags
}

// flagName returns the name of a flag word ("-mapping", "--f=x").
func flagName(w string) (string, bool) {
	if !strings.HasPrefix(w, "-") || w == "-" || w == "--" {
		return "", false
	}
	name := strings.TrimLeft(w, "-")
	name, _, _ = strings.Cut(name, "=")
	return name, true
}

// takesValue reports whether a flag of fs needs a value.
func takesValue(fs *flag.FlagSet, name string) bool {
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// positional counts the words of args that are not flags or flag values
// (approximately: a value follows a flag without "=").
func positional(args []string) int {
	n := 0
	for _, w := range args {
		if !strings.HasPrefix(w, "-") {
			n++
		}
	}
	return n
}

// flagValues completes the value of flag name.
func (a *app) flagValues(name, cur string, paths []string) []string {
	switch name {
	case "f":
		return files(cur, ".yaml", ".yml")
	case "log-level":
		return withPrefix(logLevels, cur)
	case "mapping":
		if len(paths) == 0 {
			paths = a.specPaths()
		}
		set, err := spec.Load(paths...)
		if err != nil {
			return nil
		}
		return withPrefix(set.MappingNames(), cur)
	case "out":
		return files(cur, ".json", ".plan")
	case "seed":
		return files(cur, ".json")
	case "ldif":
		return files(cur, ".ldif")
	case "dir":
		return files(cur, "/")
	}
	return nil
}

// withPrefix returns the names that start with prefix.
func withPrefix(names []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// files lists the directories and the files with one of exts (none: all;
// "/": directories only) that start with cur, which may name a directory
// ("specs/pa"). Directories end in "/". Hidden entries are listed only
// when cur's last part starts with ".".
func files(cur string, exts ...string) []string {
	dir, base := filepath.Split(cur)
	list := dir
	if list == "" {
		list = "."
	}
	entries, err := os.ReadDir(list)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, base) || (strings.HasPrefix(name, ".") && !strings.HasPrefix(base, ".")) {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(list, name)); err == nil {
				isDir = st.IsDir()
			}
		}
		switch {
		case isDir:
			out = append(out, dir+name+"/")
		case slices.Contains(exts, "/"):
		case len(exts) == 0 || slices.ContainsFunc(exts, func(x string) bool { return strings.HasSuffix(strings.ToLower(name), x) }):
			out = append(out, dir+name)
		}
	}
	return out
}
