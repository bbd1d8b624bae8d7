package leader

import (
	"encoding/base64"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeEnv is an Env over maps.
func fakeEnv(vars map[string]string, files map[string]string) Env {
	return Env{
		LookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		ReadFile: func(name string) ([]byte, error) {
			if s, ok := files[name]; ok {
				return []byte(s), nil
			}
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		},
	}
}

func TestInClusterConfig(t *testing.T) {
	sa := map[string]string{
		"/var/run/secrets/kubernetes.io/serviceaccount/token":     "sa-token",
		"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt":    "CA PEM",
		"/var/run/secrets/kubernetes.io/serviceaccount/namespace": "ops\n",
	}
	tests := map[string]struct {
		vars    map[string]string
		files   map[string]string
		want    ClientConfig
		wantErr string
	}{
		"pod": {
			vars:  map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
			files: sa,
			want: ClientConfig{Server: "https://10.96.0.1:443", TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
				CAData: []byte("CA PEM"), Namespace: "ops"},
		},
		"IPv6 service address": {
			vars:  map[string]string{"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
			files: sa,
			want: ClientConfig{Server: "https://[fd00::1]:443", TokenFile: "/var/run/secrets/kubernetes.io/serviceaccount/token",
				CAData: []byte("CA PEM"), Namespace: "ops"},
		},
		"not in a pod": {wantErr: "not in a Kubernetes pod"},
		"no token mounted": {
			vars:    map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
			wantErr: "service account token",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := InClusterConfig(fakeEnv(tt.vars, tt.files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadKubeconfig(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	kc := func(cluster, user string) string {
		return `apiVersion: v1
kind: Config
preferences: {}
current-context: test
contexts:
  - name: other
    context: {cluster: nowhere, user: nobody}
  - name: test
    context: {cluster: c, user: u, namespace: ops}
clusters:
  - name: c
    cluster:
` + cluster + `
users:
  - name: u
    user:
` + user + "\n"
	}
	tests := map[string]struct {
		kubeconfig string
		files      map[string]string
		want       ClientConfig
		wantErr    string
	}{
		"token and CA file next to it": {
			kubeconfig: kc("      server: https://127.0.0.1:16443/\n      certificate-authority: certs/ca.crt", "      token: tok"),
			files:      map[string]string{"/k/certs/ca.crt": "CA"},
			want:       ClientConfig{Server: "https://127.0.0.1:16443", Token: "tok", CAData: []byte("CA"), Namespace: "ops"},
		},
		"inline data and client certificate": {
			kubeconfig: kc("      server: https://kube.corp.example.com\n      certificate-authority-data: "+b64("CA")+"\n      tls-server-name: kubernetes",
				"      client-certificate-data: "+b64("CERT")+"\n      client-key: /secure/key.pem"),
			files: map[string]string{"/secure/key.pem": "KEY"},
			want: ClientConfig{Server: "https://kube.corp.example.com", CAData: []byte("CA"), TLSServerName: "kubernetes",
				CertData: []byte("CERT"), KeyData: []byte("KEY"), Namespace: "ops"},
		},
		"token file, skip verify": {
			kubeconfig: kc("      server: https://127.0.0.1:16443\n      insecure-skip-tls-verify: true", "      tokenFile: token"),
			want:       ClientConfig{Server: "https://127.0.0.1:16443", TokenFile: "/k/token", InsecureSkipVerify: true, Namespace: "ops"},
		},
		"exec plugin": {
			kubeconfig: kc("      server: https://k", "      exec: {command: aws, apiVersion: client.authentication.k8s.io/v1}"),
			wantErr:    "exec plugin",
		},
		"no credentials": {
			kubeconfig: kc("      server: https://k", "      {}"),
			wantErr:    `user "u" has no token`,
		},
		"no server": {
			kubeconfig: kc("      certificate-authority-data: "+b64("CA"), "      token: t"),
			wantErr:    "has no server",
		},
		"missing CA file": {
			kubeconfig: kc("      server: https://k\n      certificate-authority: /nope.crt", "      token: t"),
			wantErr:    "certificate-authority",
		},
		"no such context": {
			kubeconfig: "current-context: gone\ncontexts: []\n",
			wantErr:    `context "gone" not found`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			files := map[string]string{"/k/config": tt.kubeconfig}
			for k, v := range tt.files {
				files[k] = v
			}
			got, err := LoadClientConfig("/k/config", fakeEnv(nil, files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}
