package activedirectory

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// memberOfLDIF has users whose memberOf the bind account cannot read
// (x-embedded-hidden-attribute), a member outside the baseDN used below
// (OU=In) and a contact.
const memberOfLDIF = `
dn: CN=Ann,OU=People,OU=In,DC=example,DC=test
objectClass: user
sAMAccountName: ann
x-embedded-hidden-attribute: memberOf

dn: CN=Cid,OU=People,OU=In,DC=example,DC=test
objectClass: user
sAMAccountName: cid
x-embedded-hidden-attribute: memberOf

dn: CN=Dee,OU=People,OU=In,DC=example,DC=test
objectClass: user
sAMAccountName: dee

dn: CN=Con,OU=People,OU=In,DC=example,DC=test
objectClass: contact

dn: CN=Bob,OU=Other,DC=example,DC=test
objectClass: user
sAMAccountName: bob

dn: CN=G,OU=In,DC=example,DC=test
objectClass: group
member: CN=Ann,OU=People,OU=In,DC=example,DC=test
member: CN=Con,OU=People,OU=In,DC=example,DC=test
member: CN=Bob,OU=Other,DC=example,DC=test

dn: CN=G2,OU=In,DC=example,DC=test
objectClass: group
member: CN=Cid,OU=People,OU=In,DC=example,DC=test
member: CN=Dee,OU=People,OU=In,DC=example,DC=test
`

func TestMembersWithoutMemberOf(t *testing.T) {
	entries, err := embedded.ParseLDIF(strings.NewReader(memberOfLDIF))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := startEmbedded(t, &fixture{entries: entries}, embedded.Options{})
	cfg.BaseDN = "OU=In,DC=example,DC=test"
	ctx := context.Background()

	t.Run("no memberOf at all: containers inside baseDN only", func(t *testing.T) {
		res, err := newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: "CN=G,OU=In,DC=example,DC=test"}}})
		if err != nil {
			t.Fatal(err)
		}
		g := res.Groups["CN=G,OU=In,DC=example,DC=test"]
		if diff := cmp.Diff([]string{"cn=ann,ou=people,ou=in,dc=example,dc=test"}, g.Members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		want := []Unresolved{{DN: "CN=Bob,OU=Other,DC=example,DC=test", Reason: UnresolvedOutsideBase, Via: []string{"CN=G,OU=In,DC=example,DC=test"}}}
		if diff := cmp.Diff(want, g.Unresolved); diff != "" {
			t.Errorf("unresolved (-want +got):\n%s", diff)
		}
		// rootDSE, schema, group, memberOf search, and one container search
		// (OU=People,OU=In); OU=Other is outside baseDN and never searched.
		if res.Stats.Searches != 5 || res.Stats.MemberReads != 0 {
			t.Errorf("searches %d, member reads %d, want 5 and 0 (%+v)", res.Stats.Searches, res.Stats.MemberReads, res.Stats)
		}
	})

	t.Run("one user's memberOf unreadable", func(t *testing.T) {
		res, err := newReader(t, cfg).Read(ctx, Query{Groups: []GroupQuery{{DN: "CN=G2,OU=In,DC=example,DC=test"}}})
		if err != nil {
			t.Fatal(err)
		}
		g := res.Groups["CN=G2,OU=In,DC=example,DC=test"]
		want := []string{"cn=cid,ou=people,ou=in,dc=example,dc=test", "cn=dee,ou=people,ou=in,dc=example,dc=test"}
		if diff := cmp.Diff(want, g.Members); diff != "" {
			t.Errorf("members (-want +got):\n%s", diff)
		}
		if len(g.Unresolved) != 0 || res.Stats.MemberReads != 1 {
			t.Errorf("unresolved %v, member reads %d, want none and 1", g.Unresolved, res.Stats.MemberReads)
		}
		if u := res.Users[want[0]]; u == nil || u.SAMAccountName != "cid" || !sidRE.MatchString(u.SID) {
			t.Errorf("user read by its base read: %+v", u)
		}
	})
}

func TestInBase(t *testing.T) {
	base := NormalizeDN("DC=example,DC=test")
	for dn, want := range map[string]bool{
		"DC=example,DC=test":                      true,
		"CN=a,OU=x,DC=example,DC=test":            true,
		"CN=a,DC=other,DC=test":                   false,
		"CN=a,DC=notexample,DC=test":              false,
		`CN=a\,DC=example,DC=test`:                false, // one RDN "a,DC=example" under DC=test
		`CN=a\\,DC=example,DC=test`:               true,  // an escaped backslash, then a real comma
		"CN=a,DC=example,DC=test,DC=else":         false,
		"cn=A , ou=X , dc=EXAMPLE , dc=test":      true,
		"CN=x,CN=Configuration,DC=example,DC=tst": false,
	} {
		if got := inBase(NormalizeDN(dn), base); got != want {
			t.Errorf("inBase(%q) = %t, want %t (normalized %q)", dn, got, want, NormalizeDN(dn))
		}
	}
}

// TestNestedGroupGoneOnItsBaseRead: a nested group that the group listing
// returns but whose own base read answers noSuchObject (deleted meanwhile,
// or listable but not readable) is an unreadable member, not an empty group.
func TestNestedGroupGoneOnItsBaseRead(t *testing.T) {
	const base = "DC=example,DC=test"
	const sub = "CN=Aggregate,CN=Schema,CN=Configuration," + base
	const g, gone, u = "CN=G,DC=example,DC=test", "CN=Gone,DC=example,DC=test", "CN=U,DC=example,DC=test"
	url := scriptedServer(t, func(b string, attrs []string) ([]*ldap.Entry, uint16) {
		switch {
		case b == "":
			return []*ldap.Entry{ldap.NewEntry("", map[string][]string{"subschemaSubentry": {sub}})}, 0
		case b == sub:
			return []*ldap.Entry{ldap.NewEntry(sub, map[string][]string{"attributeTypes": {"( 2.5.4.31 NAME 'member' )"}})}, 0
		case b == g:
			return []*ldap.Entry{ldap.NewEntry(g, map[string][]string{"member": {gone, u}})}, 0
		case b == gone:
			return nil, ldap.LDAPResultNoSuchObject
		case b == base && attrs[0] == "1.1": // the group listing
			return []*ldap.Entry{ldap.NewEntry(g, nil), ldap.NewEntry(gone, nil)}, 0
		case b == base: // the memberOf search
			return []*ldap.Entry{ldap.NewEntry(u, map[string][]string{"sAMAccountName": {"u"}})}, 0
		}
		return nil, ldap.LDAPResultOperationsError
	})
	r := newReader(t, Config{URLs: []string{url}, BaseDN: base, BindDN: "svc@example.test", Password: "Canary-Pw",
		AllowCleartextBind: true, Timeout: 5 * time.Second})
	res, err := r.Read(context.Background(), Query{Groups: []GroupQuery{{DN: g, Nested: true}}})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Groups[g]
	if diff := cmp.Diff([]string{"cn=u,dc=example,dc=test"}, got.Members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	want := []Unresolved{{DN: gone, Reason: UnresolvedUnreadable, Via: []string{g}}}
	if diff := cmp.Diff(want, got.Unresolved); diff != "" {
		t.Errorf("unresolved (-want +got):\n%s", diff)
	}
}

// TestNestedGroupMissedByTheListing: a member of a nested mapped group that
// the group listing did not return but whose base read shows a group (the
// listing was cut short, say) is an unreadable member, never an ignored
// non-user: its members are unknown.
func TestNestedGroupMissedByTheListing(t *testing.T) {
	const base = "DC=example,DC=test"
	const sub = "CN=Aggregate,CN=Schema,CN=Configuration," + base
	const g, missed, u = "CN=G,DC=example,DC=test", "CN=Missed,DC=example,DC=test", "CN=U,DC=example,DC=test"
	url := scriptedServer(t, func(b string, attrs []string) ([]*ldap.Entry, uint16) {
		switch {
		case b == "":
			return []*ldap.Entry{ldap.NewEntry("", map[string][]string{"subschemaSubentry": {sub}})}, 0
		case b == sub:
			return []*ldap.Entry{ldap.NewEntry(sub, map[string][]string{"attributeTypes": {"( 2.5.4.31 NAME 'member' )"}})}, 0
		case b == g:
			return []*ldap.Entry{ldap.NewEntry(g, map[string][]string{"member": {missed, u}})}, 0
		case b == missed:
			return []*ldap.Entry{ldap.NewEntry(missed, map[string][]string{"objectClass": {"top", "group"}})}, 0
		case b == base && attrs[0] == "1.1": // the group listing, without Missed
			return []*ldap.Entry{ldap.NewEntry(g, nil)}, 0
		case b == base: // the memberOf search
			return []*ldap.Entry{ldap.NewEntry(u, map[string][]string{"sAMAccountName": {"u"}})}, 0
		}
		return nil, ldap.LDAPResultOperationsError
	})
	r := newReader(t, Config{URLs: []string{url}, BaseDN: base, BindDN: "svc@example.test", Password: "Canary-Pw",
		AllowCleartextBind: true, Timeout: 5 * time.Second})
	for _, nested := range []bool{true, false} {
		res, err := r.Read(context.Background(), Query{Groups: []GroupQuery{{DN: g, Nested: nested}}})
		if err != nil {
			t.Fatal(err)
		}
		got := res.Groups[g]
		if diff := cmp.Diff([]string{"cn=u,dc=example,dc=test"}, got.Members); diff != "" {
			t.Errorf("nested %t: members (-want +got):\n%s", nested, diff)
		}
		var want []Unresolved
		if nested {
			want = []Unresolved{{DN: missed, Reason: UnresolvedUnreadable, Via: []string{g}}}
		}
		if diff := cmp.Diff(want, got.Unresolved); diff != "" {
			t.Errorf("nested %t: unresolved (-want +got):\n%s", nested, diff)
		}
	}
}
