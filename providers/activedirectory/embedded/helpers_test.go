package embedded

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

const (
	testBase     = "DC=corp,DC=example,DC=com"
	testBindDN   = "CN=svc,OU=Service,DC=corp,DC=example,DC=com"
	testPassword = "s3cret-Passw0rd"
)

// user builds a user entry under OU=People.
func user(cn string, attrs map[string][]string) *ldap.Entry {
	m := map[string][]string{
		"objectClass":        {"user"},
		"cn":                 {cn},
		"sAMAccountName":     {strings.ToLower(strings.ReplaceAll(cn, " ", "."))},
		"userAccountControl": {"512"},
	}
	for k, v := range attrs {
		m[k] = v
	}
	return ldap.NewEntry("CN="+ldap.EscapeDN(cn)+",OU=People,"+testBase, m)
}

// group builds a group entry under OU=Groups with the given member DNs.
func group(cn string, members ...string) *ldap.Entry {
	m := map[string][]string{"objectClass": {"top", "group"}, "cn": {cn}, "sAMAccountName": {cn}}
	if len(members) > 0 {
		m["member"] = members
	}
	return ldap.NewEntry("CN="+ldap.EscapeDN(cn)+",OU=Groups,"+testBase, m)
}

func peopleDN(cn string) string { return "CN=" + ldap.EscapeDN(cn) + ",OU=People," + testBase }
func groupDN(cn string) string  { return "CN=" + ldap.EscapeDN(cn) + ",OU=Groups," + testBase }

// manyUsers returns n users named u00000...
func manyUsers(n int) []*ldap.Entry {
	out := make([]*ldap.Entry, n)
	for i := range out {
		name := fmt.Sprintf("u%05d", i)
		out[i] = user(name, map[string][]string{
			"mail":              {name + "@corp.example.com"},
			"givenName":         {"Given" + name},
			"sn":                {"Sur" + name},
			"userPrincipalName": {name + "@corp.example.com"},
		})
	}
	return out
}

// serve starts a server on loopback and returns it with its URL.
func serve(t testing.TB, entries []*ldap.Entry, opts Options) (*Server, string) {
	t.Helper()
	if opts.BindDN == "" {
		opts.BindDN, opts.Password = testBindDN, testPassword
	}
	s, err := New(entries, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	url, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, url
}

// dial connects and, unless anonymous, binds as the service account.
func dial(t testing.TB, url string, bind bool) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	if bind {
		if err := c.Bind(testBindDN, testPassword); err != nil {
			t.Fatalf("bind: %v", err)
		}
	}
	return c
}

func searchReq(base string, scope int, filter string, attrs ...string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil)
}

// dns returns the sorted DNs of a result (nil when there are none).
func dns(res *ldap.SearchResult) []string {
	var out []string
	for _, e := range res.Entries {
		out = append(out, e.DN)
	}
	slices.Sort(out)
	return out
}

// resultCode returns the LDAP result code of err, 0 for nil, 65535 otherwise.
func resultCode(err error) uint16 {
	if err == nil {
		return 0
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 65535
}
