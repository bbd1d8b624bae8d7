package main

import (
	"context"
	"flag"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// readme returns the repository's README.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the README's text from heading to the next heading of
// the same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	rest := doc[i+len(heading)+2:]
	level := heading[:strings.Index(heading, " ")+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// tableRows returns the rows of the markdown tables in text whose first
// cell is code: the first cell's code (with \| unescaped) and the row.
func tableRows(text string) map[string]string {
	rows := map[string]string{}
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "| `") {
			continue
		}
		cell := strings.TrimPrefix(l, "| `")
		end := strings.Index(cell, "` |")
		if end < 0 {
			continue
		}
		rows[strings.ReplaceAll(cell[:end], `\|`, "|")] = strings.ReplaceAll(l, `\|`, "|")
	}
	return rows
}

// usageOf returns what `pandasync CMD -h` prints after the command name on
// its Usage line.
func usageOf(t *testing.T, name string) string {
	t.Helper()
	code, out, _ := run(t, nil, name, "-h")
	if code != exitOK {
		t.Fatalf("%s -h: exit %d", name, code)
	}
	first, _, _ := strings.Cut(out, "\n")
	u, ok := strings.CutPrefix(first, "Usage: pandasync [global flags] ")
	if !ok {
		t.Fatalf("%s -h: first line %q", name, first)
	}
	return u
}

// TestREADMECommands: the README's command table has one row per command,
// whose first cell is the command's usage as -h prints it, and which
// names every flag of the command; the global flags table names every
// global flag.
func TestREADMECommands(t *testing.T) {
	cmds := section(t, readme(t), "## Commands")
	rows := tableRows(cmds)
	byName := map[string]string{}
	for cell := range rows {
		name, _, _ := strings.Cut(cell, " ")
		if !strings.HasPrefix(name, "-") {
			byName[name] = cell
			if _, ok := lookupCommand(name); !ok {
				t.Errorf("README lists a command pandasync does not have: %q", cell)
			}
		}
	}
	ctx := context.Background()
	a, _, _ := testApp(nil)
	for _, name := range commandNames() {
		cell, ok := byName[name]
		if !ok {
			t.Errorf("README's command table has no row for %q", name)
			continue
		}
		if want := usageOf(t, name); cell != want {
			t.Errorf("README's row for %s says `%s`, -h says `%s`", name, cell, want)
		}
		fs := a.describe(ctx, name)
		fs.VisitAll(func(f *flag.Flag) {
			if !isGlobalFlag(f.Name) && !strings.Contains(rows[cell], "-"+f.Name) {
				t.Errorf("README's row for %s does not name its flag -%s", name, f.Name)
			}
		})
	}
	global := a.globalFlagSet()
	global.VisitAll(func(f *flag.Flag) {
		found := false
		for cell := range rows {
			if strings.HasPrefix(cell, "-"+f.Name+" ") || cell == "-"+f.Name {
				found = true
			}
		}
		if !found {
			t.Errorf("README's global flags table has no row for -%s", f.Name)
		}
	})
}

// commandLines returns the pandasync command lines of the README: each
// line of a ```sh block, and each inline `pandasync …` span, cut at
// comments and shell operators.
func commandLines(doc string) []string {
	var lines []string
	inSh := false
	for _, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(l, "```"):
			inSh = false
			continue
		}
		if inSh {
			if i := strings.Index(l, " #"); i >= 0 {
				l = l[:i]
			}
			lines = append(lines, l)
			continue
		}
		for _, m := range inlineRE.FindAllStringSubmatch(l, -1) {
			lines = append(lines, m[1])
		}
	}
	var out []string
	for _, l := range lines {
		l = strings.NewReplacer("<(", ";", "$(", ";", "(", ";", ")", ";", "&&", ";", "||", ";", "|", ";", "&", ";").Replace(l)
		for _, seg := range strings.Split(l, ";") {
			seg = strings.TrimSpace(seg)
			for _, p := range []string{"go run ./cmd/pandasync ", "./pandasync ", "pandasync "} {
				if rest, ok := strings.CutPrefix(seg, p); ok {
					out = append(out, rest)
					break
				}
			}
		}
	}
	return out
}

var inlineRE = regexp.MustCompile("`((?:go run ./cmd/|\\./)?pandasync [^`]+)`")

// TestREADMEExamples parses every pandasync command line of the README
// with the CLI's own flag sets: each names a command that exists, with
// flags it accepts. Placeholders in capitals (COMMAND, FILE) stand for
// what the reader fills in.
func TestREADMEExamples(t *testing.T) {
	lines := commandLines(readme(t))
	if len(lines) < 20 {
		t.Fatalf("found only %d pandasync command lines in the README", len(lines))
	}
	ctx := context.Background()
	a, _, _ := testApp(nil)
	checked := 0
	for _, l := range lines {
		words := strings.Fields(l)
		global := a.globalFlagSet()
		global.SetOutput(io.Discard)
		global.Bool("v", false, "")
		if err := global.Parse(words); err != nil {
			t.Errorf("README: pandasync %s: %v", l, err)
			continue
		}
		rest := global.Args()
		if len(rest) == 0 {
			continue // pandasync -version
		}
		name := rest[0]
		if name == "help" || isPlaceholder(name) || strings.HasPrefix(name, "[") || strings.HasPrefix(name, "…") {
			continue // the synopsis, or a placeholder
		}
		if _, ok := lookupCommand(name); !ok {
			t.Errorf("README: pandasync %s: no command %q", l, name)
			continue
		}
		fs := a.describe(ctx, name)
		fs.SetOutput(io.Discard)
		if err := fs.Parse(withoutSynopsis(rest[1:])); err != nil {
			t.Errorf("README: pandasync %s: %v", l, err)
			continue
		}
		checked++
	}
	if checked < 15 {
		t.Errorf("only %d README command lines were checked", checked)
	}
}

// isPlaceholder reports whether w is a placeholder such as COMMAND.
func isPlaceholder(w string) bool {
	return strings.ToUpper(w) == w && strings.ToLower(w) != w
}

// TestREADMEHasNoDeadReferences: the README cites nothing outside the
// repository as if it were in it.
func TestREADMEHasNoDeadReferences(t *testing.T) {
	doc := readme(t)
	for _, dead := range []string{"DESIGN §", "reference/assetpanda-api.md", "reference/"} {
		if strings.Contains(doc, dead) {
			t.Errorf("README cites %q, which is not in the repository", dead)
		}
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#:]+)\)`).FindAllStringSubmatch(doc, -1) {
		if _, err := os.Stat("../../" + m[1]); err != nil {
			t.Errorf("README links to %s: %v", m[1], err)
		}
	}
}

// withoutSynopsis drops "[-flag ARG]" and "NAME..." synopsis parts of a
// command line, leaving what a user would type.
func withoutSynopsis(words []string) []string {
	var out []string
	depth := 0
	for _, w := range words {
		if strings.HasPrefix(w, "[") {
			depth += strings.Count(w, "[")
		}
		if depth == 0 && !isPlaceholder(strings.TrimSuffix(w, "...")) {
			out = append(out, w)
		}
		depth -= strings.Count(w, "]")
		depth = max(depth, 0)
	}
	return out
}
