package spec_test

import (
	"fmt"

	"github.com/pandasync/pandasync/spec"
)

func ExampleParse() {
	_, err := spec.Parse(map[string][]byte{"pandasync.yaml": []byte(`
apiVersion: pandasync.dev/v1alpha1
kind: Connection
metadata: {name: corp}
spec:
  directory:
    urls: [ldap://dc1.corp.example.com]
    baseDN: DC=corp,DC=example,DC=com
    bindDN: svc-pandasync@corp.example.com
    password: hunter2
  assetPanda:
    clientID: {env: AP_CLIENT_ID}
    clientSecret: {env: AP_CLIENT_SECRET}
    email: {env: AP_EMAIL}
    password: {env: AP_PASSWORD}
---
apiVersion: pandasync.dev/v1alpha1
kind: UserMapping
metadata: {name: it-admins}
spec:
  account: Acme
  module: IT Assets
  rol: Module Admin
  group: CN=AP Admins,OU=Groups,DC=corp,DC=example,DC=com
`)})
	fmt.Println(err)
	// Output:
	// pandasync.yaml:7 (document 1, Connection "corp"): spec.directory.urls[0]: ldap:// without TLS would send the bind password in clear text; use an ldaps:// URL, or set startTLS: true, or set allowCleartextBind: true (only for tests and loopback servers)
	// pandasync.yaml:10 (document 1, Connection "corp"): spec.directory.password: must be {env: NAME} or {file: PATH}, not a literal
	// pandasync.yaml:23 (document 2, UserMapping "it-admins"): spec.rol: unknown field (did you mean "role"?)
}

func ExampleResolver_Resolve() {
	r := spec.Resolver{LookupEnv: func(name string) (string, bool) {
		return map[string]string{"AP_CLIENT_ID": "demo-client"}[name], name == "AP_CLIENT_ID"
	}}
	for _, v := range []spec.Value{{Env: "AP_CLIENT_ID"}, {Env: "AP_PASSWORD"}, {Literal: "https://api.assetpanda.com"}} {
		s, err := r.Resolve(v)
		fmt.Printf("%s: %q %v\n", v, s, err)
	}
	// Output:
	// {env: AP_CLIENT_ID}: "demo-client" <nil>
	// {env: AP_PASSWORD}: "" environment variable AP_PASSWORD is not set
	// https://api.assetpanda.com: "https://api.assetpanda.com" <nil>
}
