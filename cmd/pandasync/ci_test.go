package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// TestCIExamples checks the CI examples in examples/ci against this
// binary: every pandasync command their scripts run exists and accepts
// the flags and arguments given (each is run with -h appended, which parses
// everything and runs nothing), and each file runs validate, test, plan
// -format markdown -out and apply -require-digest.
func TestCIExamples(t *testing.T) {
	files := map[string]func(t *testing.T, doc map[string]any) []string{
		"github/pandasync.yml": githubScripts,
		"gitlab/gitlab-ci.yml": gitlabScripts,
	}
	for name, scripts := range files {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "examples", "ci", filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("%s is not YAML: %v", name, err)
			}
			var cmds [][]string
			for _, s := range scripts(t, doc) {
				cmds = append(cmds, pandasyncCommands(s)...)
			}
			var seen []string
			for _, args := range cmds {
				line := "pandasync " + strings.Join(args, " ")
				code, _, errOut := run(t, nil, append(slices.Clone(args), "-h")...)
				if code != exitOK {
					t.Errorf("%s: %q is refused (exit %d):\n%s", name, line, code, errOut)
				}
				seen = append(seen, line)
			}
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`^pandasync -f pandasync\.d validate$`),
				regexp.MustCompile(`^pandasync -f pandasync\.d test tests$`),
				regexp.MustCompile(`^pandasync -f pandasync\.d plan .*-out plan\.json.*-format markdown`),
				regexp.MustCompile(`^pandasync -f pandasync\.d apply -require-digest X \S*plan\.json$`),
			} {
				if !slices.ContainsFunc(seen, want.MatchString) {
					t.Errorf("%s runs no command matching %s; it runs:\n%s", name, want, strings.Join(seen, "\n"))
				}
			}
		})
	}
}

// githubScripts returns the run: scripts of a workflow's steps.
func githubScripts(t *testing.T, doc map[string]any) []string {
	var out []string
	jobs, _ := doc["jobs"].(map[string]any)
	if len(jobs) == 0 {
		t.Fatal("the workflow has no jobs")
	}
	for _, j := range jobs {
		steps, _ := j.(map[string]any)["steps"].([]any)
		for _, s := range steps {
			if r, ok := s.(map[string]any)["run"].(string); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// gitlabScripts returns the before_script, script and after_script lines
// of a pipeline's jobs.
func gitlabScripts(t *testing.T, doc map[string]any) []string {
	var out []string
	for name, j := range doc {
		job, ok := j.(map[string]any)
		if !ok || name == "variables" || name == "default" {
			continue
		}
		for _, k := range []string{"before_script", "script", "after_script"} {
			switch v := job[k].(type) {
			case string:
				out = append(out, v)
			case []any:
				for _, l := range v {
					if s, ok := l.(string); ok {
						out = append(out, s)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("the pipeline has no scripts")
	}
	return out
}

var (
	ghExpr  = regexp.MustCompile(`\$\{\{[^}]*\}\}`)
	cmdSubs = regexp.MustCompile(`\$\([^()]*\)`)
)

// pandasyncCommands finds the pandasync commands in a shell script and
// returns their arguments. Words holding a variable or a command
// substitution become "X"; a redirection ends the arguments.
func pandasyncCommands(script string) [][]string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	script = ghExpr.ReplaceAllString(script, "X")
	script = cmdSubs.ReplaceAllString(script, "X")
	var out [][]string
	for _, line := range strings.Split(script, "\n") {
		for _, cmd := range splitCommands(line) {
			if len(cmd) == 0 || cmd[0] != "pandasync" {
				continue
			}
			var args []string
			for _, w := range cmd[1:] {
				if strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") || w == "2>" || w == "2>&1" {
					break
				}
				args = append(args, w)
			}
			out = append(out, args)
		}
	}
	return out
}

// splitCommands splits a shell line into commands at ; && || | and
// returns each command's words, unquoted.
func splitCommands(line string) [][]string {
	var cmds [][]string
	var words []string
	var w strings.Builder
	inWord, hasVar := false, false
	endWord := func() {
		if inWord {
			s := w.String()
			if hasVar {
				s = "X"
			}
			words = append(words, s)
		}
		w.Reset()
		inWord, hasVar = false, false
	}
	endCmd := func() {
		endWord()
		cmds = append(cmds, words)
		words = nil
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '#' && !inWord:
			endCmd()
			return cmds
		case ch == ' ' || ch == '\t':
			endWord()
		case ch == ';' || ch == '|' || ch == '&':
			endCmd()
			if i+1 < len(line) && (line[i+1] == '|' || line[i+1] == '&') {
				i++
			}
		case ch == '\'':
			inWord = true
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				j = len(line) - i - 1
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case ch == '"':
			inWord = true
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) {
					j++
				}
				if line[j] == '$' {
					hasVar = true
				}
				w.WriteByte(line[j])
			}
			i = j
		default:
			if ch == '$' {
				hasVar = true
			}
			inWord = true
			w.WriteByte(ch)
		}
	}
	endCmd()
	return cmds
}

func TestSplitCommands(t *testing.T) {
	got := pandasyncCommands(`set +e; pandasync -f pandasync.d plan -out plan.json -plan-url "$RUN_URL" > plan.md; code=$?
pandasync apply -require-digest "$(cat digest)" plan.json && echo done # pandasync nope
echo pandasync | pandasync -f 'a b' \
  validate`)
	want := [][]string{
		{"-f", "pandasync.d", "plan", "-out", "plan.json", "-plan-url", "X"},
		{"apply", "-require-digest", "X", "plan.json"},
		{"-f", "a b", "validate"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pandasyncCommands (-want +got):\n%s", diff)
	}
}
