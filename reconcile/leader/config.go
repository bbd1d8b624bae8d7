package leader

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Where a pod's service account is mounted.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Env is what reading a config may look at: environment variables and
// files. The zero Env uses the process's.
type Env struct {
	LookupEnv func(string) (string, bool)
	ReadFile  func(string) ([]byte, error)
}

func (e Env) lookupEnv(k string) (string, bool) {
	if e.LookupEnv != nil {
		return e.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

func (e Env) readFile(name string) ([]byte, error) {
	if e.ReadFile != nil {
		return e.ReadFile(name)
	}
	return os.ReadFile(name)
}

// InClusterConfig is the config of a process in a pod: the API server from
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, and the service
// account's token (read again for every request), CA and namespace.
func InClusterConfig(env Env) (ClientConfig, error) {
	host, _ := env.lookupEnv("KUBERNETES_SERVICE_HOST")
	port, _ := env.lookupEnv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return ClientConfig{}, errors.New("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set; give -kubeconfig")
	}
	tokenFile := filepath.Join(serviceAccountDir, "token")
	if _, err := env.readFile(tokenFile); err != nil {
		return ClientConfig{}, fmt.Errorf("service account token: %w", err)
	}
	ca, err := env.readFile(filepath.Join(serviceAccountDir, "ca.crt"))
	if err != nil {
		return ClientConfig{}, fmt.Errorf("service account CA: %w", err)
	}
	ns, err := env.readFile(filepath.Join(serviceAccountDir, "namespace"))
	if err != nil {
		return ClientConfig{}, fmt.Errorf("service account namespace: %w", err)
	}
	return ClientConfig{
		Server:    "https://" + net.JoinHostPort(host, port),
		TokenFile: tokenFile,
		CAData:    ca,
		Namespace: strings.TrimSpace(string(ns)),
	}, nil
}

// kubeconfig is the part of a kubeconfig file pandasync reads.
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
			TLSServerName            string `json:"tls-server-name"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string         `json:"token"`
			TokenFile             string         `json:"tokenFile"`
			ClientCertificate     string         `json:"client-certificate"`
			ClientCertificateData string         `json:"client-certificate-data"`
			ClientKey             string         `json:"client-key"`
			ClientKeyData         string         `json:"client-key-data"`
			Exec                  map[string]any `json:"exec"`
			AuthProvider          map[string]any `json:"auth-provider"`
			Username              string         `json:"username"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster   string `json:"cluster"`
			User      string `json:"user"`
			Namespace string `json:"namespace"`
		} `json:"context"`
	} `json:"contexts"`
}

// LoadKubeconfig reads the current context of a kubeconfig file: its
// cluster's server and CA, its user's token, token file or client
// certificate, and its namespace. Relative file names are relative to the
// kubeconfig's directory. Exec plugins and auth providers are not
// supported: give a token.
func LoadKubeconfig(path string, env Env) (ClientConfig, error) {
	b, err := env.readFile(path)
	if err != nil {
		return ClientConfig{}, fmt.Errorf("kubeconfig: %w", err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return ClientConfig{}, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	fail := func(format string, args ...any) (ClientConfig, error) {
		return ClientConfig{}, fmt.Errorf("kubeconfig %s: %s", path, fmt.Sprintf(format, args...))
	}
	if kc.CurrentContext == "" {
		return fail("no current-context")
	}
	ctxIdx := -1
	for i, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			ctxIdx = i
		}
	}
	if ctxIdx < 0 {
		return fail("context %q not found", kc.CurrentContext)
	}
	kctx := kc.Contexts[ctxIdx].Context
	cfg := ClientConfig{Namespace: kctx.Namespace}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	// fileOrData returns inline base64 data, or the named file's content.
	fileOrData := func(what, file, data string) ([]byte, error) {
		if data != "" {
			d, err := base64.StdEncoding.DecodeString(data)
			if err != nil {
				return nil, fmt.Errorf("kubeconfig %s: %s-data: %w", path, what, err)
			}
			return d, nil
		}
		if file == "" {
			return nil, nil
		}
		d, err := env.readFile(rel(file))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %s: %w", path, what, err)
		}
		return d, nil
	}

	found := false
	for _, c := range kc.Clusters {
		if c.Name != kctx.Cluster {
			continue
		}
		found = true
		cfg.Server = strings.TrimSuffix(c.Cluster.Server, "/")
		cfg.InsecureSkipVerify = c.Cluster.InsecureSkipTLSVerify
		cfg.TLSServerName = c.Cluster.TLSServerName
		if cfg.CAData, err = fileOrData("certificate-authority", c.Cluster.CertificateAuthority, c.Cluster.CertificateAuthorityData); err != nil {
			return ClientConfig{}, err
		}
	}
	if !found {
		return fail("cluster %q of context %q not found", kctx.Cluster, kc.CurrentContext)
	}
	if cfg.Server == "" {
		return fail("cluster %q has no server", kctx.Cluster)
	}

	found = false
	for _, u := range kc.Users {
		if u.Name != kctx.User {
			continue
		}
		found = true
		usr := u.User
		switch {
		case usr.Exec != nil, usr.AuthProvider != nil:
			return fail("user %q uses an exec plugin or auth provider, which pandasync does not run; give a token or a client certificate", u.Name)
		case usr.Username != "":
			return fail("user %q uses basic authentication, which Kubernetes no longer supports; give a token or a client certificate", u.Name)
		}
		cfg.Token = usr.Token
		if usr.Token == "" {
			cfg.TokenFile = rel(usr.TokenFile)
		}
		if cfg.CertData, err = fileOrData("client-certificate", usr.ClientCertificate, usr.ClientCertificateData); err != nil {
			return ClientConfig{}, err
		}
		if cfg.KeyData, err = fileOrData("client-key", usr.ClientKey, usr.ClientKeyData); err != nil {
			return ClientConfig{}, err
		}
	}
	if !found {
		return fail("user %q of context %q not found", kctx.User, kc.CurrentContext)
	}
	if cfg.Token == "" && cfg.TokenFile == "" && len(cfg.CertData) == 0 {
		return fail("user %q has no token, token file or client certificate", kctx.User)
	}
	return cfg, nil
}

// LoadClientConfig returns the kubeconfig file's config when kubeconfigPath
// is set, and the in-cluster config otherwise.
func LoadClientConfig(kubeconfigPath string, env Env) (ClientConfig, error) {
	if kubeconfigPath != "" {
		return LoadKubeconfig(kubeconfigPath, env)
	}
	return InClusterConfig(env)
}
