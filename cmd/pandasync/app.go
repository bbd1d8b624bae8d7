package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lmittmann/tint"

	"github.com/pandasync/pandasync/spec"
)

// Exit codes, as Terraform's -detailed-exitcode defines them.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2
)

// app is the process's environment: streams, environment variables and
// whether output goes to a terminal. Tests build one with buffers.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	readFile       func(string) ([]byte, error)
	terminal       bool // stdout is a terminal: colour and progress bars
	stdinTTY       bool // stdin is a terminal: interactive approval
	logTTY         bool // stderr is a terminal: tint logs, live read progress
	noColor        bool // NO_COLOR is set, or -no-color was given

	// logHandler, when set, makes the log handler instead of stderr (the
	// Windows Event Log under the Service Control Manager).
	logHandler func(level slog.Leveler) slog.Handler

	// set by global flags
	paths    []string
	logLevel slog.Level
	log      *slog.Logger

	// lastFlags is the flag set the last command built (see describe).
	lastFlags *flag.FlagSet
	// live is the progress line on stderr while a read runs, if any.
	live *liveLine
}

// errExit carries an exit code that is not an error to report, such as
// "changes present" for -detailed-exitcode.
type errExit int

func (e errExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// errUsage marks a command-line mistake; what is wrong has been printed.
var errUsage = errors.New("usage")

// command is one entry of the command table. The usage, the README's
// command table (checked by a test) and shell completion are built from
// it.
type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, args []string) error
	hidden  bool // not listed (the completion helper)
}

func commands() []command {
	return []command{
		{name: "init", summary: "write a commented starter spec set to edit", run: (*app).initSpec},
		{name: "validate", summary: "check the spec files and print what they define", run: (*app).validate},
		{name: "check", summary: "connect to AD and Asset Panda and check everything the spec names", run: (*app).check},
		{name: "plan", summary: "show what would change in Asset Panda, and why", run: (*app).plan},
		{name: "apply", summary: "apply a saved plan, or plan and apply after confirmation", run: (*app).apply},
		{name: "show", summary: "render a saved plan as text, JSON or Markdown, without connecting", run: (*app).show},
		{name: "test", summary: "run the spec's test cases (LDIF directory, Asset Panda seed, expected plan) with no AD", run: (*app).specTest},
		{name: "run", summary: "reconcile continuously: on a schedule and whenever the spec changes", run: (*app).runLoop},
		{name: "history", summary: "show the last writes pandasync made (the audit log)", run: (*app).history},
		{name: "explain", summary: "show how one person (sAMAccountName, userPrincipalName, email or SID) maps: groups, nesting path, planned changes", run: (*app).explain},
		{name: "demo", summary: "run validate, plan, apply and plan against an embedded AD and Asset Panda", run: (*app).demo},
		{name: "emulator", summary: "serve the Asset Panda API emulator", run: (*app).emulator},
		{name: "completion", summary: "print a shell completion script (bash, zsh, fish or powershell)", run: (*app).completion},
		{name: "healthcheck", summary: "ask a running pandasync's admin listener whether it is healthy (for containers)", run: (*app).healthcheck},
		{name: "service", summary: "install or remove pandasync as a Windows service", run: (*app).service},
		{name: "version", summary: "print the version", run: (*app).version},
		{name: completeCommand, summary: "print completions for the shell scripts", run: (*app).complete, hidden: true},
	}
}

// lookupCommand finds a command by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandNames lists the commands users see.
func commandNames() []string {
	var names []string
	for _, c := range commands() {
		if !c.hidden {
			names = append(names, c.name)
		}
	}
	return names
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// logLevels are the values of -log-level.
var logLevels = []string{"debug", "info", "warn", "error"}

// globalUsage is the global flags' part of the usage.
const globalUsage = `Global flags (before or after the command):
  -f PATH          spec file or directory, repeatable (default ./pandasync.d if present, else .)
  -log-level LVL   debug, info, warn or error (default info)
  -no-color        no colour in the output (also when NO_COLOR is set)
`

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, `Usage: pandasync [global flags] COMMAND [flags]

pandasync keeps Asset Panda in step with Active Directory, declaratively.

Commands:
`)
	for _, c := range commands() {
		if !c.hidden {
			fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprintf(w, "\n%s  -version         print the version and exit (also -v, --version)\n\nRun 'pandasync COMMAND -h' for a command's flags. Start with 'pandasync init' or 'pandasync demo'.\n", globalUsage)
}

// addGlobalFlags defines the global flags on fs. They take effect as they
// are parsed, so they work before the command and after it.
func (a *app) addGlobalFlags(fs *flag.FlagSet) {
	fs.Var((*stringsFlag)(&a.paths), "f", "spec file or directory, repeatable (default ./pandasync.d if present, else .)")
	fs.Func("log-level", "debug, info, warn or error (default info)", a.setLogLevel)
	fs.BoolFunc("no-color", "no colour in the output", func(s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("expected true or false")
		}
		a.noColor = b
		a.log = a.newLogger()
		return nil
	})
}

// isGlobalFlag reports whether name is one of addGlobalFlags' flags.
func isGlobalFlag(name string) bool {
	return name == "f" || name == "log-level" || name == "no-color"
}

// setLogLevel parses -log-level and rebuilds the logger.
func (a *app) setLogLevel(s string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("use %s or %s", strings.Join(logLevels[:len(logLevels)-1], ", "), logLevels[len(logLevels)-1])
	}
	a.logLevel = l
	a.log = a.newLogger()
	return nil
}

// run parses the global flags, runs the command and maps the outcome to an
// exit code. Errors are reported here, once.
func (a *app) run(ctx context.Context, args []string) int {
	if a.readFile == nil {
		a.readFile = os.ReadFile
	}
	if a.log == nil {
		a.log = a.newLogger()
	}
	fs := flag.NewFlagSet("pandasync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	a.addGlobalFlags(fs)
	showVersion := false
	for _, name := range []string{"version", "v"} {
		fs.BoolVar(&showVersion, name, false, "print the version and exit")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.stdout)
			return exitOK
		}
		fmt.Fprintf(a.stderr, "pandasync: %v%s\nRun 'pandasync -h' for usage.\n", err, flagSuggestion(err, fs))
		return exitError
	}
	if showVersion {
		fmt.Fprintln(a.stdout, versionLine())
		return exitOK
	}

	rest := fs.Args()
	if len(rest) == 0 {
		a.usage(a.stderr)
		return exitError
	}
	name, cargs := rest[0], rest[1:]
	if name == "help" {
		if len(cargs) == 0 {
			a.usage(a.stdout)
			return exitOK
		}
		name, cargs = cargs[0], []string{"-h"}
	}
	c, ok := lookupCommand(name)
	if !ok {
		fmt.Fprintf(a.stderr, "pandasync: unknown command %q.", name)
		if s := spec.Closest(name, commandNames()); s != "" {
			fmt.Fprintf(a.stderr, " Did you mean %q?", s)
		}
		fmt.Fprintf(a.stderr, "\nRun 'pandasync -h' for the list of commands.\n")
		return exitError
	}
	err := c.run(a, ctx, cargs)
	a.live.stop()
	var code errExit
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitError
	}
	a.log.Debug("command failed", "command", name, "err", err)
	fmt.Fprintf(a.stderr, "%s\n", a.paintErr(colorRed, "Error: ")+err.Error())
	return exitError
}

// newLogger logs to stderr: tint on a terminal, JSON otherwise. While a
// progress line is shown, log lines are written above it.
func (a *app) newLogger() *slog.Logger {
	if a.logHandler != nil {
		return slog.New(a.logHandler(a.logLevel))
	}
	var w io.Writer = a.stderr
	if a.logTTY {
		w = logWriter{a}
		return slog.New(tint.NewHandler(w, &tint.Options{Level: a.logLevel, TimeFormat: time.Kitchen, NoColor: a.noColor}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: a.logLevel}))
}

// flags makes a command's flag set, with the global flags defined on it
// too. -h prints the command's help on stdout; a mistake prints what is
// wrong and a hint on stderr (see parse).
func (a *app) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	out := &countingWriter{w: a.stderr, prefix: "pandasync " + name + ": "}
	fs.SetOutput(out)
	fs.Usage = func() {
		if out.n > 0 {
			return // a parse error: parse adds the hint
		}
		fmt.Fprintf(a.stdout, "Usage: pandasync [global flags] %s\n", strings.TrimSpace(name+" "+args))
		if c, ok := lookupCommand(name); ok {
			fmt.Fprintf(a.stdout, "\n%s.\n", capitalize(c.summary))
		}
		var local strings.Builder
		printFlags(&local, fs, func(f *flag.Flag) bool { return !isGlobalFlag(f.Name) })
		if local.Len() > 0 {
			fmt.Fprintf(a.stdout, "\nFlags:\n%s", local.String())
		}
		fmt.Fprintf(a.stdout, "\n%s", globalUsage)
	}
	a.addGlobalFlags(fs)
	a.lastFlags = fs
	return fs
}

// countingWriter counts the bytes written through it, and starts what
// it writes with prefix.
type countingWriter struct {
	w      io.Writer
	prefix string
	n      int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 && c.prefix != "" {
		if _, err := io.WriteString(c.w, c.prefix); err != nil {
			return 0, err
		}
	}
	c.n += len(p)
	return c.w.Write(p)
}

// printFlags prints the flags keep selects in the flag package's format.
func printFlags(w io.Writer, fs *flag.FlagSet, keep func(*flag.Flag) bool) {
	fs.VisitAll(func(f *flag.Flag) {
		if !keep(f) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		if len(line) <= 4 {
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && d != "[]" {
			line += fmt.Sprintf(" (default %q)", d)
		}
		fmt.Fprintln(w, line)
	})
}

// parse parses a command's flags, turning flag errors into errUsage. Flags
// may come after positional arguments (`apply plan.json -auto-approve`);
// "--" ends the flags.
func parse(fs *flag.FlagSet, args []string) error {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			fmt.Fprintf(fs.Output(), "%sRun 'pandasync %s -h' for its flags.\n", flagSuggestion(err, fs), fs.Name())
			return errUsage
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave the positional arguments where the commands read them.
	return fs.Parse(append([]string{"--"}, positional...))
}

// flagSuggestion returns " (did you mean -x?)" for an undefined flag close
// to a defined one, on a line of its own when the error was printed by
// the flag package.
func flagSuggestion(err error, fs *flag.FlagSet) string {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	i := strings.Index(msg, undefined)
	if i < 0 {
		return ""
	}
	bad := strings.TrimLeft(msg[i+len(undefined):], "-")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	s := spec.Closest(bad, names)
	if s == "" {
		return ""
	}
	if fs.Name() == "pandasync" {
		return fmt.Sprintf(" (did you mean -%s?)", s)
	}
	return fmt.Sprintf("Did you mean -%s?\n", s)
}

// globalFlags renders the -f flags the command was given, for hints that
// print a command to run next ("-f dir " or "").
func (a *app) globalFlags() string {
	var b strings.Builder
	for _, p := range a.paths {
		b.WriteString("-f " + shellQuote(p) + " ")
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// specPaths returns the -f paths, or the default: ./pandasync.d if it
// exists, else the current directory.
func (a *app) specPaths() []string {
	if len(a.paths) > 0 {
		return a.paths
	}
	if st, err := os.Stat(defaultSpecDir); err == nil && st.IsDir() {
		return []string{defaultSpecDir}
	}
	return []string{"."}
}

// loadSpec loads and validates the spec set.
func (a *app) loadSpec() (*spec.Set, error) {
	paths := a.specPaths()
	set, err := spec.Load(paths...)
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			return nil, fmt.Errorf("the spec is not valid (%s):\n%w%s", count(len(ps), "problem"), err, a.noSpecHint(ps))
		}
		return nil, err
	}
	return set, nil
}

// noSpecHint explains where pandasync looks for the spec when a directory
// it read holds no spec files.
func (a *app) noSpecHint(ps spec.Problems) string {
	for _, p := range ps {
		if !p.NoSpecFiles() {
			continue
		}
		where := "-f names it"
		if len(a.paths) == 0 {
			where = "no -f was given, and there is no ./pandasync.d, so pandasync read the current directory"
		}
		return fmt.Sprintf("\n\nNo spec files were found (%s). Name the spec with -f PATH (a file or a directory of *.yaml files), "+
			"keep it in ./pandasync.d, or write a starter set with 'pandasync init'.", where)
	}
	return ""
}

func (a *app) resolver() spec.Resolver {
	return spec.Resolver{LookupEnv: a.lookupEnv, ReadFile: a.readFile}
}

// ANSI colours for the human view.
const (
	colorRed    = "31"
	colorGreen  = "32"
	colorYellow = "33"
	colorCyan   = "36"
	colorBold   = "1"
	colorDim    = "2"
)

// paint colours s when stdout is a terminal and colour is not switched off.
func (a *app) paint(color, s string) string {
	if !a.terminal || a.noColor || s == "" {
		return s
	}
	return "\x1b[" + color + "m" + s + "\x1b[0m"
}

// paintErr colours s for stderr.
func (a *app) paintErr(color, s string) string {
	if !a.logTTY || a.noColor || s == "" {
		return s
	}
	return "\x1b[" + color + "m" + s + "\x1b[0m"
}
