package reconcile

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps reconcile the core: it computes and applies plans and
// knows nothing of HTTP, LDAP, file watching, metrics or git. The runtime
// (reconcile/loop) owns those.
//
// reconcile depends on spec and on the providers for their concrete types,
// and those use go-ldap (spec parses DNs, the directory reader speaks LDAP)
// and net/http (the Asset Panda client); the test walks reconcile's
// dependency graph without descending into them, and requires that no other
// path reaches a forbidden package. The runtime's libraries (fsnotify,
// Prometheus, go-git) must not be reached at all.
func TestImports(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		imports[f[0]] = f[1:]
	}
	const self = "github.com/pandasync/pandasync/reconcile"
	if _, ok := imports[self]; !ok {
		t.Fatalf("go list did not list %s:\n%s", self, out)
	}

	anywhere := []string{"github.com/fsnotify/", "github.com/prometheus/", "github.com/go-git/", self + "/loop"}
	ownPath := []string{"github.com/go-ldap/", "net/http"}
	providers := func(p string) bool {
		return strings.HasPrefix(p, "github.com/pandasync/pandasync/providers/") || p == "github.com/pandasync/pandasync/spec"
	}
	has := func(p string, prefixes []string) bool {
		for _, pre := range prefixes {
			if p == pre || strings.HasPrefix(p, pre) {
				return true
			}
		}
		return false
	}
	for p := range imports {
		if has(p, anywhere) {
			t.Errorf("reconcile depends on %s", p)
		}
	}
	// Walk from reconcile, not into spec or the providers.
	seen := map[string]string{self: ""}
	queue := []string{self}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, q := range imports[p] {
			if _, ok := seen[q]; ok || providers(q) {
				continue
			}
			seen[q] = p
			if has(q, ownPath) {
				t.Errorf("reconcile reaches %s through %s, not through spec or a provider", q, p)
				continue
			}
			queue = append(queue, q)
		}
	}
}
