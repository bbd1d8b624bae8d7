package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
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
	logTTY         bool // stderr is a terminal: tint logs, else JSON
	noColor        bool // NO_COLOR is set

	// set by global flags
	paths    []string
	logLevel slog.Level
	log      *slog.Logger
}

// errExit carries an exit code that is not an error to report, such as
// "changes present" for -detailed-exitcode.
type errExit int

func (e errExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// errUsage marks a command-line mistake; the usage has been printed.
var errUsage = errors.New("usage")

type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"validate", "check the spec files and print what they define", (*app).validate},
		{"check", "connect to AD and Asset Panda and check everything the spec names", (*app).check},
		{"plan", "show what would change in Asset Panda, and why", (*app).plan},
		{"apply", "apply a saved plan, or plan and apply after confirmation", (*app).apply},
		{"run", "reconcile continuously: on a schedule and whenever the spec changes", (*app).runLoop},
		{"history", "show the last writes pandasync made (the audit log)", (*app).history},
		{"explain", "show how one person maps: groups, nesting path, planned changes", (*app).explain},
		{"demo", "run validate, plan, apply and plan against an embedded AD and Asset Panda", (*app).demo},
		{"emulator", "serve the Asset Panda API emulator", (*app).emulator},
		{"version", "print the version", (*app).version},
	}
}

type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, `Usage: pandasync [-f PATH]... [-log-level debug|info|warn|error] COMMAND [flags]

pandasync keeps Asset Panda in step with Active Directory, declaratively.

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, `
Global flags:
  -f PATH          spec file or directory, repeatable (default ./pandasync.d if present, else .)
  -log-level LVL   debug, info, warn or error (default info)

Run 'pandasync COMMAND -h' for a command's flags.
`)
}

// run parses the global flags, runs the command and maps the outcome to an
// exit code. Errors are reported here, once.
func (a *app) run(ctx context.Context, args []string) int {
	if a.readFile == nil {
		a.readFile = os.ReadFile
	}
	fs := flag.NewFlagSet("pandasync", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var paths stringsFlag
	fs.Var(&paths, "f", "spec file or directory (repeatable)")
	level := fs.String("log-level", "info", "log level")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.stdout)
			return exitOK
		}
		fmt.Fprintf(a.stderr, "pandasync: %v\n\n", err)
		a.usage(a.stderr)
		return exitError
	}
	if err := a.logLevel.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(a.stderr, "pandasync: -log-level: %v\n", err)
		return exitError
	}
	a.paths = paths
	a.log = a.newLogger()

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
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(a, ctx, cargs)
		var code errExit
		switch {
		case err == nil:
			return exitOK
		case errors.As(err, &code):
			return int(code)
		case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitError
		}
		a.log.Debug("command failed", "command", name, "err", err)
		fmt.Fprintf(a.stderr, "%s\n", a.paint(colorRed, "Error: ")+err.Error())
		return exitError
	}
	fmt.Fprintf(a.stderr, "pandasync: unknown command %q\n\n", name)
	a.usage(a.stderr)
	return exitError
}

// newLogger logs to stderr: tint on a terminal, JSON otherwise.
func (a *app) newLogger() *slog.Logger {
	if a.logTTY {
		return slog.New(tint.NewHandler(a.stderr, &tint.Options{Level: a.logLevel, TimeFormat: time.Kitchen, NoColor: a.noColor}))
	}
	return slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: a.logLevel}))
}

// flags makes a command's flag set; parse errors and -h print its usage.
func (a *app) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: pandasync [global flags] %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags, turning flag errors into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
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
	if st, err := os.Stat("pandasync.d"); err == nil && st.IsDir() {
		return []string{"pandasync.d"}
	}
	return []string{"."}
}

// loadSpec loads and validates the spec set.
func (a *app) loadSpec() (*spec.Set, error) {
	set, err := spec.Load(a.specPaths()...)
	if err != nil {
		var ps spec.Problems
		if errors.As(err, &ps) {
			return nil, fmt.Errorf("the spec is not valid (%d problems):\n%w", len(ps), err)
		}
		return nil, err
	}
	return set, nil
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

// paint colours s when stdout is a terminal and NO_COLOR is not set.
func (a *app) paint(color, s string) string {
	if !a.terminal || a.noColor || s == "" {
		return s
	}
	return "\x1b[" + color + "m" + s + "\x1b[0m"
}
