package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/spectest"
)

// syntheticPlan is a plan of n changes over three mappings, with n/25
// blocked deactivations and, for every 50 changes, a role change and a
// deactivation among them: the shape of a large first load next to a
// reorganisation.
func syntheticPlan(n int) *reconcile.Plan {
	people := reconcile.Target{Account: "Acme", Module: "IT Assets", Collection: "People"}
	module := reconcile.Target{Account: "Acme", Module: "IT Assets"}
	sid := func(i int) string { return fmt.Sprintf("S-1-5-21-1004336348-1177238915-682003330-%d", 10000+i) }
	email := func(i int) string { return fmt.Sprintf("person%05d@corp.example.com", i) }
	p := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, ID: "synthetic", CreatedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		Mappings: []string{"it-admins", "it-users", "people"},
		Prior:    reconcile.Prior{Spec: "sha256:aa", Directory: "sha256:bb", Target: "sha256:cc"}}
	for i := range n {
		var c reconcile.Change
		switch {
		case i%50 == 7:
			c = reconcile.Change{Mapping: "it-users", Kind: reconcile.KindUser, Action: reconcile.ActionUpdate, Target: module, ID: strconv.Itoa(i),
				Before: map[string]string{"role": "Module Admin"}, After: map[string]string{"role": "Collaborator"},
				Reason: "the role the mappings give is Collaborator, not Module Admin", ReasonCode: reconcile.ReasonRoleChanged}
		case i%50 == 8:
			c = reconcile.Change{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionDeactivate, Target: people, ID: strconv.Itoa(i),
				Before: map[string]string{"Integration Status AD": "Active"}, After: map[string]string{"Integration Status AD": "Inactive"},
				Reason: "disabled in AD", ReasonCode: reconcile.ReasonDisabled}
		case i%5 == 1:
			c = reconcile.Change{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionUpdate, Target: people, ID: strconv.Itoa(i),
				Before: map[string]string{"Department": "Sales", "Title": "Account Manager"}, After: map[string]string{"Department": "Marketing", "Title": "Brand Manager"},
				Reason: "AD differs in Department, Title", ReasonCode: reconcile.ReasonADChanged}
		case i%3 == 0:
			c = reconcile.Change{Mapping: "it-users", Kind: reconcile.KindUser, Action: reconcile.ActionCreate, Target: module,
				After:  map[string]string{"email": email(i), "first_name": "Person", "last_name": strconv.Itoa(i), "role": "Collaborator"},
				Reason: "member of CN=AP Users,OU=Groups,DC=corp,DC=example,DC=com", ReasonCode: reconcile.ReasonMember}
		default:
			c = reconcile.Change{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionCreate, Target: people,
				After: map[string]string{"AD SID": sid(i), "Email": email(i), "First Name": "Person", "Last Name": strconv.Itoa(i),
					"Department": "Engineering", "Integration Status AD": "Active"},
				Reason: "member of CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com via CN=Engineering,OU=Groups,DC=corp,DC=example,DC=com", ReasonCode: reconcile.ReasonMember}
		}
		c.Key, c.Name = sid(i), email(i)
		p.Changes = append(p.Changes, c)
	}
	for i := range n / 25 {
		j := n + i
		p.Blocked = append(p.Blocked, reconcile.Blocked{
			Change: reconcile.Change{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionDeactivate, Key: sid(j), Name: email(j), Target: people, ID: strconv.Itoa(j),
				Before: map[string]string{"Integration Status AD": "Active"}, After: map[string]string{"Integration Status AD": "Inactive"},
				Reason: "no longer a member of CN=All Staff,OU=Groups,DC=corp,DC=example,DC=com", ReasonCode: reconcile.ReasonLeftGroup},
			Limit:  reconcile.LimitMaxDeactivationPercent,
			Detail: fmt.Sprintf("%d deactivations planned, %d%% of the mapping's active objects; the limit is 20%%", n/25, 25),
			Fix:    "if the change is real, plan again with -allow-mass-deactivation (this one run only)"})
	}
	summarize(p)
	p.Seal()
	return p
}

// summarize sets the summary of a plan built by hand.
func summarize(p *reconcile.Plan) {
	p.Summary = reconcile.Summary{Blocked: len(p.Blocked), Problems: len(p.Errors)}
	for _, c := range p.Changes {
		switch c.Action {
		case reconcile.ActionCreate:
			p.Summary.Create++
		case reconcile.ActionUpdate:
			p.Summary.Update++
		case reconcile.ActionDeactivate:
			p.Summary.Deactivate++
		case reconcile.ActionReactivate:
			p.Summary.Reactivate++
		}
	}
	if p.Changes == nil {
		p.Changes = []reconcile.Change{}
	}
	if p.Blocked == nil {
		p.Blocked = []reconcile.Blocked{}
	}
	if p.Errors == nil {
		p.Errors = []reconcile.Problem{}
	}
}

// TestMarkdown compares the Markdown of plans with golden files: a plan
// with one change of every kind, an empty one, and plans too large for one
// comment. Run with -update to rewrite them.
func TestMarkdown(t *testing.T) {
	empty := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, Prior: reconcile.Prior{Spec: "sha256:aa", Directory: "sha256:bb", Target: "sha256:cc"}}
	summarize(empty)
	empty.Seal()
	tests := map[string]struct {
		plan *reconcile.Plan
		opts markdownOptions
	}{
		"sample":   {samplePlan(), markdownOptions{PlanFile: "plan.json", PlanURL: "https://ci.example.com/acme/specs/runs/7"}},
		"empty":    {empty, markdownOptions{}},
		"500":      {syntheticPlan(500), markdownOptions{PlanFile: "plan.json"}},
		"5000":     {syntheticPlan(5000), markdownOptions{PlanFile: "plan.json", PlanURL: "https://ci.example.com/acme/specs/runs/8"}},
		"selected": {selectedPlan(), markdownOptions{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := renderMarkdown(&b, tc.plan, tc.opts); err != nil {
				t.Fatal(err)
			}
			if b.Len() >= markdownLimit {
				t.Errorf("the Markdown is %d bytes, want under %d", b.Len(), markdownLimit)
			}
			golden(t, filepath.Join("testdata", "markdown", name+".md"), b.Bytes())
		})
	}
}

// selectedPlan is a -mapping selection with a lifted limit and a
// suspended policy: what the warning says about each.
func selectedPlan() *reconcile.Plan {
	p := samplePlan()
	p.Selected, p.Mappings = true, []string{"people"}
	p.Suspended = true
	p.Overrides, p.LimitsOverridden = []string{reconcile.OverrideDeactivations}, true
	var keep []reconcile.Change
	for _, c := range p.Changes {
		if c.Mapping == "people" {
			keep = append(keep, c)
		}
	}
	p.Changes, p.Blocked, p.Notes = keep, nil, nil
	summarize(p)
	p.Seal()
	return p
}

var moreRE = regexp.MustCompile(`…and (\d+) more (blocked changes?|changes?|problems?), left out`)

// TestMarkdownFits renders plans of every size under the limit and checks
// what the truncation keeps: the marker with the digest, the count line,
// every blocked change and take-away while they fit, and for every table
// as many rows shown plus "and N more" as it has.
func TestMarkdownFits(t *testing.T) {
	for _, n := range []int{0, 10, 500, 2000, 5000, 20000, 50000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			p := syntheticPlan(n)
			md := markdownPlan(p, markdownOptions{PlanFile: "plan.json"})
			if len(md) >= markdownLimit {
				t.Fatalf("%d changes: %d bytes, want under %d", n, len(md), markdownLimit)
			}
			if !strings.HasPrefix(md, fmt.Sprintf("%s digest=%q -->\n", markdownMarker, p.Digest)) {
				t.Errorf("the Markdown does not start with the marker and digest:\n%.200s", md)
			}
			want := "**Plan: " + summaryLine(p.Summary) + ".**"
			if n == 0 {
				want = "**No changes.** Asset Panda matches Active Directory."
			}
			if !strings.Contains(md, want) {
				t.Errorf("the Markdown lacks the count line %q", want)
			}
			rows := 0 // a row names one person
			for _, line := range strings.Split(md, "\n") {
				if strings.HasPrefix(line, "| ") && strings.Contains(line, "@corp.example.com`") {
					rows++
				}
			}
			more := 0
			for _, m := range moreRE.FindAllStringSubmatch(md, -1) {
				k, _ := strconv.Atoi(m[1])
				more += k
			}
			// Every change and blocked change is one row somewhere, or
			// counted in an "and N more".
			if want := len(p.Changes) + len(p.Blocked); rows+more != want {
				t.Errorf("%d rows shown and %d more counted, want %d in all", rows, more, want)
			}
			truncated := strings.Contains(md, "too large for one comment")
			if more > 0 && !truncated {
				t.Error("rows are left out, and no note says the comment is cut")
			}
			if truncated == strings.Contains(md, "```diff") && n > 0 {
				t.Errorf("truncated = %v, and field details shown = %v", truncated, !truncated)
			}
			// Blocked changes and take-aways fill before other changes:
			// while they take less than half the comment, all are shown.
			taken := takenAway(p.Changes)
			if (len(p.Blocked)+len(taken))*80 < markdownLimit/2 {
				for _, c := range append(blockedChanges(p), taken...) {
					if !strings.Contains(md, "`"+c.Name+"`") {
						t.Fatalf("%s %s is not shown", c.Action, c.Name)
					}
				}
			}
			if truncated && !strings.Contains(md, "`pandasync show plan.json`") {
				t.Error("a truncated comment does not say where the full plan is")
			}
		})
	}
}

func blockedChanges(p *reconcile.Plan) []reconcile.Change {
	var cs []reconcile.Change
	for _, b := range p.Blocked {
		cs = append(cs, b.Change)
	}
	return cs
}

// TestMarkdownHugeWarnings: when even the blocked changes do not fit,
// they are cut too and counted, and the comment still fits.
func TestMarkdownHugeWarnings(t *testing.T) {
	p := syntheticPlan(50)
	for i := range 3000 {
		b := p.Blocked[0]
		b.Key = fmt.Sprintf("S-1-5-21-1-2-3-%d", 50000+i)
		b.Name = fmt.Sprintf("leaver%05d@corp.example.com", i)
		p.Blocked = append(p.Blocked, b)
	}
	// Many limits in many mappings: the headings alone exceed the limit.
	for i := range 2000 {
		b := p.Blocked[0]
		b.Mapping = fmt.Sprintf("mapping-%04d", i)
		p.Blocked = append(p.Blocked, b)
	}
	summarize(p)
	p.Seal()
	md := markdownPlan(p, markdownOptions{PlanURL: "https://ci.example.com/runs/9"})
	if len(md) >= markdownLimit {
		t.Fatalf("%d bytes, want under %d", len(md), markdownLimit)
	}
	for _, want := range []string{p.Digest, "**Plan: " + summaryLine(p.Summary) + ".**", "[the CI run](https://ci.example.com/runs/9)", "blocked by a safety limit"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown lacks %q", want)
		}
	}
}

// TestMarkdownEscapes: what comes from AD or Asset Panda cannot break the
// table, open HTML, start a code block or mention anyone.
func TestMarkdownEscapes(t *testing.T) {
	p := samplePlan()
	c := &p.Changes[2]
	c.Name = "eve|`x`<script>alert(1)</script>\n@acme/admins"
	c.Before = map[string]string{"Title": "a|b"}
	c.After = map[string]string{"Title": "```\n</details>@everyone"}
	c.Reason = "AD differs in Title | <img src=x> @acme/admins [link](http://evil)"
	p.Seal()
	md := markdownPlan(p, markdownOptions{})
	text := stripCode(t, md)
	for _, bad := range []string{"<script>", "<img", "@acme", "@everyone", "[link](http://evil)", "</details>@"} {
		if strings.Contains(text, bad) {
			t.Errorf("the Markdown contains %q outside code", bad)
		}
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.Contains(line, "eve") && strings.HasPrefix(line, "| ") {
			// The row keeps its column count: escaped pipes do not split.
			cells := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
			if cells != 5 {
				t.Errorf("row %q has %d unescaped pipes, want 5", line, cells)
			}
		}
	}
	if n := strings.Count(text, "<details>"); n != strings.Count(text, "</details>") || n != 4 {
		t.Errorf("%d <details> and %d </details> outside code, want 4 of each", n, strings.Count(text, "</details>"))
	}
}

// stripCode removes fenced code blocks and code spans from Markdown, as a
// renderer shows them literally: what is left is what is interpreted.
func stripCode(t *testing.T, md string) string {
	t.Helper()
	var out strings.Builder
	fence := ""
	for _, line := range strings.SplitAfter(md, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if fence != "" {
			if strings.TrimLeft(trimmed, "`") == "" && len(trimmed) >= len(fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			fence = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))]
			continue
		}
		// Code spans: a run of n backticks up to the next run of n.
		for i := 0; i < len(line); {
			if line[i] != '`' {
				out.WriteByte(line[i])
				i++
				continue
			}
			j := i
			for j < len(line) && line[j] == '`' {
				j++
			}
			run := line[i:j]
			end := strings.Index(line[j:], run)
			if end < 0 {
				t.Fatalf("unclosed code span in %q", line)
			}
			i = j + end + len(run)
		}
	}
	if fence != "" {
		t.Fatal("unclosed code block")
	}
	return out.String()
}

// TestShowAndRequireDigest drives plan -format markdown, show and apply
// -require-digest through the CLI against a sandbox: show renders the saved
// plan without connecting, and apply refuses any digest but the file's
// before connecting, and applies with the right one.
func TestShowAndRequireDigest(t *testing.T) {
	pc := startPlanCase(t, filepath.Join("testdata", "plan", "first-load"))
	planFile := filepath.Join(t.TempDir(), "plan.json")
	code, md, errOut := pc.run(t, "plan", "-format", "markdown", "-out", planFile, "-plan-url", "https://ci.example.com/run/1")
	if code != exitOK {
		t.Fatalf("plan -format markdown: exit %d\n%s", code, errOut)
	}
	saved, err := readPlanFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(md, markdownMarker+" digest=\""+saved.Digest+"\" -->") || !strings.Contains(md, "https://ci.example.com/run/1") {
		t.Errorf("plan -format markdown does not carry the saved plan's digest and link:\n%.300s", md)
	}
	if strings.Contains(md, "Saved the plan to") {
		t.Error("plan -format markdown prints the text view's save hint into the comment")
	}

	requests, binds := pc.box.Emulator.Stats().Total(), pc.box.Directory.Stats().Binds
	for _, format := range []string{"text", "json"} {
		code, out, errOut := pc.run(t, "show", planFile, "-format", format)
		if code != exitOK || !strings.Contains(out, "to create") && !strings.Contains(out, `"create"`) {
			t.Errorf("show -format %s: exit %d\n%s\n%s", format, code, out, errOut)
		}
	}
	code, out, errOut := pc.run(t, "show", "-plan-url", "https://ci.example.com/run/1", planFile, "-format", "markdown")
	if code != exitOK || out != md {
		t.Errorf("show -format markdown: exit %d, and it differs from plan -format markdown: %v\n%s", code, out != md, errOut)
	}
	if code, _, errOut := pc.run(t, "show", filepath.Join(t.TempDir(), "none.json")); code != exitError || !strings.Contains(errOut, "none.json") {
		t.Errorf("show of a missing file: exit %d, %q", code, errOut)
	}

	wrong := "sha256:" + strings.Repeat("0", 64)
	code, _, errOut = pc.run(t, "apply", planFile, "-require-digest", wrong)
	if code != exitError || !strings.Contains(errOut, "not the plan that was reviewed") {
		t.Errorf("apply -require-digest (wrong): exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = pc.run(t, "apply", planFile, "-require-digest", "deadbeef")
	if code != exitError || !strings.Contains(errOut, "not a SHA-256 digest") {
		t.Errorf("apply -require-digest (malformed): exit %d, stderr %q", code, errOut)
	}
	if n, b := pc.box.Emulator.Stats().Total()-requests, pc.box.Directory.Stats().Binds-binds; n != 0 || b != 0 {
		t.Errorf("show and the refused applies made %d API request(s) and %d bind(s)", n, b)
	}

	// The digest as the JSON shows it, and without its prefix: both apply.
	code, out, errOut = pc.run(t, "apply", planFile, "-require-digest", strings.TrimPrefix(saved.Digest, "sha256:"))
	if code != exitOK {
		t.Fatalf("apply -require-digest (right): exit %d\n%s\n%s", code, out, errOut)
	}
	if created := pc.box.Emulator.Stats().Requests["POST /v3/groups/{id}/objects"]; created == 0 {
		t.Error("apply -require-digest with the right digest wrote nothing")
	}
}

// TestMarkdownSizes renders real plans of a first load, made by the
// planner against a sandbox, of 10, 500 and 5,000 changes (half users,
// half records of the production example) and logs their sizes: each
// fits one comment.
//
//	go test ./cmd/pandasync -run TestMarkdownSizes -v
func TestMarkdownSizes(t *testing.T) {
	if testing.Short() {
		t.Skip("plans 5,000 changes against a sandbox")
	}
	seed, err := os.ReadFile(filepath.Join(productionTests, "_base", "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sd map[string]any
	if err := json.Unmarshal(seed, &sd); err != nil {
		t.Fatal(err)
	}
	sd["users"] = []any{}
	col := sd["accounts"].([]any)[0].(map[string]any)["modules"].([]any)[0].(map[string]any)["collections"].([]any)[0].(map[string]any)
	col["records"] = []any{}
	emptySeed, err := json.Marshal(sd)
	if err != nil {
		t.Fatal(err)
	}
	for _, changes := range []int{10, 500, 5000} {
		t.Run(strconv.Itoa(changes), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "first-load")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "seed.json"), emptySeed, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "directory.ldif"), joinersLDIF(changes/2), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := spectest.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			a, _, _ := testApp(nil)
			a.paths = []string{productionSpec}
			a.log = a.newLogger()
			p, err := a.planSpecCase(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Changes) != changes {
				t.Fatalf("%d changes, want %d (blocked %d, problems %d)", len(p.Changes), changes, len(p.Blocked), len(p.Errors))
			}
			md := markdownPlan(p, markdownOptions{PlanFile: "plan.json", PlanURL: "https://ci.example.com/acme/specs/actions/runs/1"})
			if len(md) >= markdownLimit {
				t.Fatalf("%d changes: %d bytes", changes, len(md))
			}
			shown := strings.Count(md, "\n| `+` create")
			t.Logf("%d changes: Markdown %d bytes (%d characters), %d changes listed, field details %v",
				changes, len(md), utf8.RuneCountInString(md), shown, strings.Contains(md, "```diff"))
		})
	}
}

// joinersLDIF is a directory of n people in AP Users and All Staff, none
// of them in Asset Panda yet.
func joinersLDIF(n int) []byte {
	var b strings.Builder
	b.WriteString("dn: OU=People,DC=corp,DC=example,DC=com\nobjectClass: organizationalUnit\nou: People\n\n")
	b.WriteString("dn: OU=Groups,DC=corp,DC=example,DC=com\nobjectClass: organizationalUnit\nou: Groups\n\n")
	sid := func(rid int) string {
		v := []byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0}
		for _, x := range []uint32{1004336348, 1177238915, 682003330, uint32(rid)} {
			v = binary.LittleEndian.AppendUint32(v, x)
		}
		return base64.StdEncoding.EncodeToString(v)
	}
	var members strings.Builder
	for i := range n {
		dn := fmt.Sprintf("CN=Person %05d,OU=People,DC=corp,DC=example,DC=com", i)
		fmt.Fprintf(&b, "dn: %s\nobjectSid:: %s\nobjectClass: user\nsAMAccountName: p%05d\nmail: person%05d@corp.example.com\n"+
			"givenName: Person\nsn: Number %d\ndepartment: Engineering\ntitle: Engineer\nphysicalDeliveryOfficeName: HQ\nemployeeID: E%d\nuserAccountControl: 512\n\n",
			dn, sid(20000+i), i, i, i, 20000+i)
		members.WriteString("member: " + dn + "\n")
	}
	for i, g := range []string{"AP Admins", "AP Users", "All Staff"} {
		fmt.Fprintf(&b, "dn: CN=%s,OU=Groups,DC=corp,DC=example,DC=com\nobjectSid:: %s\nobjectClass: group\nsAMAccountName: %s\n", g, sid(1120+i), g)
		if g != "AP Admins" {
			b.WriteString(members.String())
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

// TestTakenAway: the Markdown's "taken away" are the take-aways the
// planner's limits count: deactivations, and role changes and field clears
// in any update, including the update that reactivates.
func TestTakenAway(t *testing.T) {
	module := reconcile.Target{Account: "Acme", Module: "IT Assets"}
	people := reconcile.Target{Account: "Acme", Module: "IT Assets", Collection: "People"}
	cs := []reconcile.Change{
		{Mapping: "it-users", Kind: reconcile.KindUser, Action: reconcile.ActionReactivate, Key: "S-1", Target: module,
			Before: map[string]string{"active": "false", "role": "Module Admin"}, After: map[string]string{"active": "true", "role": "Collaborator"}},
		{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionReactivate, Key: "S-2", Target: people,
			Before: map[string]string{"Integration Status AD": "Inactive", "Title": "Engineer"}, After: map[string]string{"Integration Status AD": "Active", "Title": ""}},
		{Mapping: "people", Kind: reconcile.KindRecord, Action: reconcile.ActionReactivate, Key: "S-3", Target: people,
			Before: map[string]string{"Integration Status AD": "Inactive"}, After: map[string]string{"Integration Status AD": "Active"}},
		{Mapping: "it-users", Kind: reconcile.KindUser, Action: reconcile.ActionCreate, Key: "S-4", Target: module,
			After: map[string]string{"email": "d@corp.example.com", "role": "Collaborator", "first_name": ""}},
	}
	var got []string
	for _, c := range takenAway(cs) {
		got = append(got, c.Key)
	}
	if diff := cmp.Diff([]string{"S-1", "S-2"}, got); diff != "" {
		t.Errorf("taken away (-want +got):\n%s", diff)
	}
}
