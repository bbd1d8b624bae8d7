package examples_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pandasync/pandasync/spec"
)

// The manifests under kubernetes/ are checked against each other and the
// spec they carry is loaded from the layout the kubelet mounts a ConfigMap
// in. The API server's own validation is .ci/kubernetes.sh's server-side dry
// run.

// object is a decoded manifest.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }
func (o object) name() string { return str(o, "metadata", "name") }

// get walks maps by key and slices by index (an int).
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				if o, isObj := v.(object); isObj {
					m, ok = map[string]any(o), true
				}
			}
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			s, ok := v.([]any)
			if !ok || k >= len(s) {
				return nil
			}
			v = s[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func list(v any, path ...any) []any { s, _ := get(v, path...).([]any); return s }

// loadManifests decodes every document of every *.yaml file in dir.
func loadManifests(t *testing.T, dir string) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	var objs []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(b, []byte("\n---\n")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.kind() == "" || o.name() == "" {
				t.Fatalf("%s: a document without kind or name", f)
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind() == kind && (name == "" || o.name() == name) {
			return o
		}
	}
	t.Fatalf("no %s %q in the manifests", kind, name)
	return nil
}

// mountConfigMap writes data the way the kubelet mounts a ConfigMap: the
// files in a timestamped directory, a "..data" symlink to it, and one
// symlink per key through "..data".
func mountConfigMap(t *testing.T, data map[string]any) string {
	t.Helper()
	dir := t.TempDir()
	ts := "..2026_01_02_03_04_05.123456789"
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, ts, k), []byte(v.(string)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// argAfter returns the value following flag in args.
func argAfter(args []any, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			s, _ := args[i+1].(string)
			return s
		}
	}
	return ""
}

// mountPath returns where the container mounts the named volume.
func mountPath(c any, volume string) string {
	for _, m := range list(c, "volumeMounts") {
		if str(m, "name") == volume {
			return str(m, "mountPath")
		}
	}
	return ""
}

func volume(podSpec any, name string) any {
	for _, v := range list(podSpec, "volumes") {
		if str(v, "name") == name {
			return v
		}
	}
	return nil
}

func container(podSpec any, name string) any {
	for _, c := range list(podSpec, "containers") {
		if str(c, "name") == name {
			return c
		}
	}
	return nil
}

// checkDeployment checks what both Deployments must have.
func checkDeployment(t *testing.T, objs []object, d object) (pandasync any, podSpec any) {
	t.Helper()
	if r, _ := get(d, "spec", "replicas").(float64); r != 2 {
		t.Errorf("replicas = %v, want 2", get(d, "spec", "replicas"))
	}
	pod := get(d, "spec", "template", "spec")
	labels := get(d, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range get(d, "spec", "selector", "matchLabels").(map[string]any) {
		if labels[k] != v {
			t.Errorf("selector %s=%v does not match the pod labels", k, v)
		}
	}
	pdb := find(t, objs, "PodDisruptionBudget", "")
	for k, v := range get(pdb, "spec", "selector", "matchLabels").(map[string]any) {
		if labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%v, which the pods do not carry", k, v)
		}
	}
	sa := str(pod, "serviceAccountName")
	find(t, objs, "ServiceAccount", sa)
	rb := find(t, objs, "RoleBinding", "")
	if str(rb, "subjects", 0, "name") != sa {
		t.Errorf("the RoleBinding binds %q, not the pods' ServiceAccount %q", str(rb, "subjects", 0, "name"), sa)
	}
	role := find(t, objs, "Role", str(rb, "roleRef", "name"))

	if get(pod, "securityContext", "runAsNonRoot") != true || str(pod, "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext = %v, want runAsNonRoot and seccomp RuntimeDefault", get(pod, "securityContext"))
	}
	all := append(list(pod, "initContainers"), list(pod, "containers")...)
	for _, c := range all {
		sc := get(c, "securityContext")
		if get(sc, "allowPrivilegeEscalation") != false || get(sc, "readOnlyRootFilesystem") != true ||
			!slices.Equal(list(sc, "capabilities", "drop"), []any{"ALL"}) {
			t.Errorf("container %s: securityContext = %v, want no privilege escalation, read-only root, drop ALL", str(c, "name"), sc)
		}
		if get(c, "resources", "requests", "memory") == nil || get(c, "resources", "limits", "memory") == nil {
			t.Errorf("container %s: no memory request and limit", str(c, "name"))
		}
	}

	ps := container(pod, "pandasync")
	if ps == nil {
		t.Fatal("no container named pandasync")
	}
	args := list(ps, "args")
	if !slices.Contains(args, any("-leader-elect")) || !slices.Contains(args, any("run")) {
		t.Errorf("args %v: want run -leader-elect", args)
	}
	lease := argAfter(args, "-lease-name")
	var allowed []any
	for _, r := range list(role, "rules") {
		if slices.Contains(list(r, "verbs"), any("update")) {
			allowed = append(allowed, list(r, "resourceNames")...)
		}
		if !slices.Equal(list(r, "apiGroups"), []any{"coordination.k8s.io"}) || !slices.Equal(list(r, "resources"), []any{"leases"}) {
			t.Errorf("the Role allows %v %v; want coordination.k8s.io leases only", list(r, "apiGroups"), list(r, "resources"))
		}
	}
	if !slices.Equal(allowed, []any{lease}) {
		t.Errorf("-lease-name %q, but the Role lets it update %v", lease, allowed)
	}
	// The probes ask the default admin listener, on loopback.
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		cmd := list(ps, probe, "exec", "command")
		if want := []any{"/pandasync", "healthcheck", "-url", "http://127.0.0.1:9090" + path}; !slices.Equal(cmd, want) {
			t.Errorf("%s = %v, want %v", probe, cmd, want)
		}
	}
	// Secrets are mounted where the spec's {file} values read them.
	find(t, objs, "Secret", str(volume(pod, "secrets"), "secret", "secretName"))
	if mountPath(ps, "secrets") != "/etc/pandasync/secrets" {
		t.Errorf("the Secret is mounted at %q, want /etc/pandasync/secrets", mountPath(ps, "secrets"))
	}
	return ps, pod
}

// checkSecretFiles checks that every file the Connection reads is a key of
// the Secret mounted at /etc/pandasync/secrets.
func checkSecretFiles(t *testing.T, set *spec.Set, secret object) {
	t.Helper()
	d, ap := set.Connection.Spec.Directory, set.Connection.Spec.AssetPanda
	for what, v := range map[string]spec.Value{
		"directory.password": d.Password, "directory.caFile": d.CAFile, "assetPanda.clientID": ap.ClientID,
		"assetPanda.clientSecret": ap.ClientSecret, "assetPanda.email": ap.Email, "assetPanda.password": ap.Password,
	} {
		path := v.File
		if what == "directory.caFile" {
			path = v.Literal
		}
		key, ok := strings.CutPrefix(path, "/etc/pandasync/secrets/")
		if !ok {
			t.Errorf("%s is read from %q, not from the mounted Secret", what, path)
			continue
		}
		if get(secret, "stringData", key) == nil {
			t.Errorf("%s reads Secret key %q, which secret.yaml does not have", what, key)
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	objs := loadManifests(t, "kubernetes")
	ps, pod := checkDeployment(t, objs, find(t, objs, "Deployment", "pandasync"))

	cm := find(t, objs, "ConfigMap", str(volume(pod, "spec"), "configMap", "name"))
	specDir := argAfter(list(ps, "args"), "-f")
	if mountPath(ps, "spec") != specDir {
		t.Errorf("the ConfigMap is mounted at %q, but pandasync reads -f %q", mountPath(ps, "spec"), specDir)
	}
	dir := mountConfigMap(t, get(cm, "data").(map[string]any))
	set, err := spec.Load(dir)
	if err != nil {
		t.Fatalf("the ConfigMap's spec, mounted as the kubelet does:\n%v", err)
	}
	if got := set.MappingNames(); len(got) != 3 {
		t.Errorf("mappings = %q, want 3", got)
	}
	if len(set.Files) != len(get(cm, "data").(map[string]any)) {
		t.Errorf("loaded %d files (%q) from %d keys: the ..data directory must not be read twice", len(set.Files), set.Files, len(get(cm, "data").(map[string]any)))
	}
	checkSecretFiles(t, set, find(t, objs, "Secret", "pandasync-credentials"))
}

func TestKubernetesGitSyncVariant(t *testing.T) {
	base := loadManifests(t, "kubernetes")
	variant := loadManifests(t, filepath.Join("kubernetes", "git-sync"))
	d := find(t, variant, "Deployment", "pandasync")
	objs := append(variant, base...) // the variant's Deployment replaces the base's
	ps, pod := checkDeployment(t, objs, d)

	gs := container(pod, "git-sync")
	if gs == nil {
		t.Fatal("no git-sync sidecar")
	}
	env := map[string]string{}
	for _, e := range list(gs, "env") {
		env[str(e, "name")] = str(e, "value")
	}
	root := env["GITSYNC_ROOT"]
	if mountPath(gs, "git") != root || mountPath(ps, "git") != root {
		t.Errorf("git-sync writes %q, mounted at %q in git-sync and %q in pandasync", root, mountPath(gs, "git"), mountPath(ps, "git"))
	}
	if want := root + "/" + env["GITSYNC_LINK"] + "/pandasync.d"; argAfter(list(ps, "args"), "-f") != want {
		t.Errorf("pandasync reads -f %q, want %q (the checkout's link)", argAfter(list(ps, "args"), "-f"), want)
	}
	if !slices.Contains(list(gs, "args"), any("--webhook-url=http://127.0.0.1:9090/sync")) {
		t.Errorf("git-sync args %v: want the webhook to pandasync's POST /sync", list(gs, "args"))
	}
	inits := list(pod, "initContainers")
	if len(inits) != 1 || !slices.Contains(list(inits[0], "args"), any("--one-time")) {
		t.Errorf("initContainers = %v, want one git-sync --one-time", inits)
	}
	find(t, variant, "Secret", str(volume(pod, "git-secret"), "secret", "secretName"))
}
