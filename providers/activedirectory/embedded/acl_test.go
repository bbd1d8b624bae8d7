package embedded

import (
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func TestBindAccountState(t *testing.T) {
	s, url := serve(t, bindFixture(), Options{BindAccountState: AccountLocked})
	bind := func(pw string) error { return dial(t, url, false).Bind(testBindDN, pw) }
	if err := bind(testPassword); resultCode(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "AcceptSecurityContext error, data 775, v4563") {
		t.Fatalf("locked service account: err = %v, want invalidCredentials with data 775", err)
	}
	if err := bind("wrong"); err == nil || !strings.Contains(err.Error(), "data 52e") {
		t.Fatalf("locked service account, wrong password: err = %v, want data 52e", err)
	}
	for _, st := range []AccountState{AccountPasswordExpired, AccountDisabled, AccountExpired, AccountMustChangePassword, AccountLogonHours, AccountWorkstation} {
		if err := s.SetBindAccountState(st); err != nil {
			t.Fatal(err)
		}
		if err := bind(testPassword); err == nil || !strings.Contains(err.Error(), "data "+string(st)+",") {
			t.Errorf("state %s: err = %v", st, err)
		}
	}
	if err := s.SetBindAccountState(AccountUsable); err != nil {
		t.Fatal(err)
	}
	if err := bind(testPassword); err != nil {
		t.Fatalf("usable again: %v", err)
	}
	if err := s.SetBindAccountState("999"); err == nil {
		t.Error("unknown state accepted")
	}
	if _, err := New(nil, Options{BaseDN: testBase, BindAccountState: "nope"}); err == nil {
		t.Error("New accepted an unknown BindAccountState")
	}
}

// aclFixture holds a group with a hidden member, a member whose objectSid
// is hidden and a hidden nested group.
const aclFixture = `
dn: CN=Visible,OU=People,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: visible

dn: CN=Hidden,OU=People,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: hidden
x-embedded-hidden: TRUE

dn: CN=NoSid,OU=People,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: nosid
mail: nosid@corp.example.com
x-embedded-hidden-attribute: objectSid
x-embedded-hidden-attribute: MAIL

dn: CN=Hidden Group,OU=Groups,DC=corp,DC=example,DC=com
objectClass: group
member: CN=Visible,OU=People,DC=corp,DC=example,DC=com
x-embedded-hidden: true

dn: CN=Staff,OU=Groups,DC=corp,DC=example,DC=com
objectClass: group
member: CN=Visible,OU=People,DC=corp,DC=example,DC=com
member: CN=Hidden,OU=People,DC=corp,DC=example,DC=com
member: CN=NoSid,OU=People,DC=corp,DC=example,DC=com
member: CN=Hidden Group,OU=Groups,DC=corp,DC=example,DC=com
`

func TestHiddenEntriesAndAttributes(t *testing.T) {
	entries, err := ParseLDIF(strings.NewReader(aclFixture))
	if err != nil {
		t.Fatal(err)
	}
	s, url := serve(t, entries, Options{BaseDN: testBase})
	c := dial(t, url, true)
	search := func(base string, scope int, filter string, attrs ...string) (*ldap.SearchResult, error) {
		return c.Search(searchReq(base, scope, filter, attrs...))
	}
	hidden := peopleDN("Hidden")
	nosid := peopleDN("NoSid")

	res, err := search(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{nosid, peopleDN("Visible")}, dns(res)); diff != "" {
		t.Errorf("subtree search (-want +got):\n%s", diff)
	}
	if _, err := search(hidden, ldap.ScopeBaseObject, "(objectClass=*)"); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("base read of a hidden entry: err = %v, want noSuchObject", err)
	}
	if _, err := search(groupDN("Hidden Group"), ldap.ScopeSingleLevel, "(objectClass=*)"); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("search based at a hidden entry: err = %v, want noSuchObject", err)
	}
	staff, err := search(groupDN("Staff"), ldap.ScopeBaseObject, "(objectClass=*)", "member")
	if err != nil {
		t.Fatal(err)
	}
	if got := staff.Entries[0].GetAttributeValues("member"); len(got) != 4 {
		t.Errorf("members of Staff = %v, want all 4 (hidden ones included)", got)
	}

	e, err := search(nosid, ldap.ScopeBaseObject, "(objectClass=*)")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range e.Entries[0].Attributes {
		if l := strings.ToLower(a.Name); l == "objectsid" || l == "mail" || strings.HasPrefix(l, "x-embedded") {
			t.Errorf("hidden attribute %s returned", a.Name)
		}
	}
	if e.Entries[0].GetAttributeValue("sAMAccountName") != "nosid" {
		t.Errorf("visible attribute missing: %v", e.Entries[0].Attributes)
	}
	for _, f := range []string{"(objectSid=*)", "(mail=nosid@corp.example.com)", "(mail=*)"} {
		res, err := search(testBase, ldap.ScopeWholeSubtree, "(&(sAMAccountName=nosid)"+f+")")
		if err != nil || len(res.Entries) != 0 {
			t.Errorf("filter %s matched a hidden attribute: %v, %v", f, dns(res), err)
		}
	}
	res, err = search(testBase, ldap.ScopeWholeSubtree, "(memberOf="+groupDN("Staff")+")")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{nosid, peopleDN("Visible")}, dns(res)); diff != "" {
		t.Errorf("memberOf search (-want +got):\n%s", diff)
	}
	// The directory's own view keeps everything; Replace toggles hiding.
	if got := s.Entry(nosid).GetAttributeValue("mail"); got != "nosid@corp.example.com" {
		t.Errorf("Entry(nosid) mail = %q", got)
	}
	if err := s.Replace(hidden, "x-embedded-hidden", "FALSE"); err != nil {
		t.Fatal(err)
	}
	if err := s.Replace(nosid, "x-embedded-hidden-attribute"); err != nil {
		t.Fatal(err)
	}
	if _, err := search(hidden, ldap.ScopeBaseObject, "(objectClass=*)"); err != nil {
		t.Errorf("after unhiding: %v", err)
	}
	res, err = search(testBase, ldap.ScopeWholeSubtree, "(mail=nosid@corp.example.com)")
	if err != nil || len(res.Entries) != 1 {
		t.Errorf("after unhiding mail: %v, %v", dns(res), err)
	}
	// Pseudo-attributes are not part of the schema.
	sch, err := search("CN=Aggregate,CN=Schema,CN=Configuration,"+testBase, ldap.ScopeBaseObject, "(objectClass=*)", "attributeTypes")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range sch.Entries[0].GetAttributeValues("attributeTypes") {
		if strings.Contains(strings.ToLower(v), "x-embedded") {
			t.Errorf("schema lists a pseudo-attribute: %s", v)
		}
	}
}

func TestHiddenPseudoAttributeErrors(t *testing.T) {
	for name, ldif := range map[string]string{
		"bad flag":       "dn: CN=A,DC=corp,DC=example,DC=com\nobjectClass: user\nx-embedded-hidden: yes\n",
		"two flags":      "dn: CN=A,DC=corp,DC=example,DC=com\nobjectClass: user\nx-embedded-hidden: TRUE\nx-embedded-hidden: FALSE\n",
		"bad attr name":  "dn: CN=A,DC=corp,DC=example,DC=com\nobjectClass: user\nx-embedded-hidden-attribute: not valid\n",
		"pseudo as attr": "dn: CN=A,DC=corp,DC=example,DC=com\nobjectClass: user\nx-embedded-hidden-attribute: x-embedded-hidden\n",
	} {
		entries, err := ParseLDIF(strings.NewReader(ldif))
		if err != nil {
			t.Fatalf("%s: ParseLDIF: %v", name, err)
		}
		if _, err := New(entries, Options{}); err == nil || !strings.Contains(err.Error(), "x-embedded") {
			t.Errorf("%s: New err = %v, want an x-embedded error", name, err)
		}
	}
}

func TestSubschema(t *testing.T) {
	_, url := serve(t, append(bindFixture(), user("Custom", map[string][]string{"extensionAttribute7": {"x"}})), Options{})
	c := dial(t, url, true)
	root, err := c.Search(searchReq("", ldap.ScopeBaseObject, "(objectClass=*)", "subschemaSubentry"))
	if err != nil {
		t.Fatal(err)
	}
	dn := root.Entries[0].GetAttributeValue("subschemaSubentry")
	if want := "CN=Aggregate,CN=Schema,CN=Configuration," + testBase; dn != want {
		t.Fatalf("subschemaSubentry = %q, want %q", dn, want)
	}
	res, err := c.Search(searchReq(dn, ldap.ScopeBaseObject, "(objectClass=subSchema)", "attributeTypes"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, v := range res.Entries[0].GetAttributeValues("attributeTypes") {
		m := nameRE.FindStringSubmatch(v)
		if m == nil || !strings.HasPrefix(v, "( ") || !strings.HasSuffix(v, " )") {
			t.Fatalf("malformed attributeTypes value %q", v)
		}
		if _, dup := names[strings.ToLower(m[1])]; dup {
			t.Errorf("attribute %s listed twice", m[1])
		}
		names[strings.ToLower(m[1])] = v
	}
	for _, a := range []string{"mail", "title", "department", "employeeID", "objectSid", "memberOf", "userPassword", "extensionAttribute7", "sAMAccountName"} {
		if names[strings.ToLower(a)] == "" {
			t.Errorf("schema lacks %s", a)
		}
	}
	if v := names["extensionattribute7"]; !strings.HasPrefix(v, "( 2.25.") {
		t.Errorf("synthesized attribute %q, want an OID under 2.25", v)
	}
	if _, err := dial(t, url, false).Search(searchReq(dn, ldap.ScopeBaseObject, "(objectClass=*)", "attributeTypes")); err == nil {
		t.Error("anonymous read of the subschema succeeded")
	}
}
