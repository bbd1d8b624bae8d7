package embedded

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

// escapeBytes renders raw bytes as a filter value (\01\05...), as readers
// send binary SIDs and GUIDs.
func escapeBytes(b []byte) string {
	var sb strings.Builder
	for _, x := range b {
		fmt.Fprintf(&sb, `\%02x`, x)
	}
	return sb.String()
}

// filterFixture has awkward DNs and a two-level nested group.
func filterFixture() []*ldap.Entry {
	return []*ldap.Entry{
		user("Lovelace, Ada", map[string][]string{"mail": {"ada@corp.example.com"}, "title": {"Engineer"}}),
		user(`Bob "Bobby" Tables`, map[string][]string{"mail": {"bob@corp.example.com"}, "userAccountControl": {"514"}}),
		user("José Núñez", map[string][]string{"mail": {"jose@corp.example.com"}, "department": {"Ingeniería"}}),
		user("Star*Power (x)", map[string][]string{"userAccountControl": {"66050"}}),
		group("Inner", peopleDN("Lovelace, Ada"), peopleDN("José Núñez")),
		group("Middle, Group", groupDN("Inner"), peopleDN(`Bob "Bobby" Tables`)),
		group("Outer", groupDN("Middle, Group")),
		group("Loop A", groupDN("Loop B")),
		group("Loop B", groupDN("Loop A"), peopleDN("Star*Power (x)")),
	}
}

func TestFilters(t *testing.T) {
	s, url := serve(t, filterFixture(), Options{})
	c := dial(t, url, true)

	sidOf := func(dn string) []byte {
		t.Helper()
		e := s.Entry(dn)
		if e == nil {
			t.Fatalf("no entry %s", dn)
		}
		return e.GetRawAttributeValue("objectSid")
	}
	adaSID := sidOf(peopleDN("Lovelace, Ada"))
	adaSIDString, err := FormatSID(adaSID)
	if err != nil {
		t.Fatal(err)
	}
	adaGUID := s.Entry(peopleDN("Lovelace, Ada")).GetRawAttributeValue("objectGUID")
	joseUSN, err := strconv.ParseInt(s.Entry(peopleDN("José Núñez")).GetAttributeValue("uSNChanged"), 10, 64)
	if err != nil {
		t.Fatalf("José's uSNChanged: %v", err)
	}

	ada, bob, jose, star := peopleDN("Lovelace, Ada"), peopleDN(`Bob "Bobby" Tables`), peopleDN("José Núñez"), peopleDN("Star*Power (x)")
	inner, middle, outer, loopA, loopB := groupDN("Inner"), groupDN("Middle, Group"), groupDN("Outer"), groupDN("Loop A"), groupDN("Loop B")
	esc := ldap.EscapeFilter
	tests := map[string]struct {
		filter string
		want   []string
	}{
		"memberOf with an escaped comma in the DN": {filter: "(memberOf=" + esc(middle) + ")", want: []string{bob, inner}},
		"memberOf, DN in other case and spacing":   {filter: "(memberOf=" + esc("cn=inner, ou=GROUPS, dc=corp,dc=example,dc=com") + ")", want: []string{ada, jose}},
		"member with quotes in the DN":             {filter: "(member=" + esc(bob) + ")", want: []string{middle}},
		"member with non-ASCII DN":                 {filter: "(member=" + esc(jose) + ")", want: []string{inner}},
		"equality on non-ASCII value, other case":  {filter: "(department=" + esc("INGENIERÍA") + ")", want: []string{jose}},
		"value with filter metacharacters":         {filter: "(cn=" + esc("Star*Power (x)") + ")", want: []string{star}},
		"binary SID equality":                      {filter: "(objectSid=" + escapeBytes(adaSID) + ")", want: []string{ada}},
		"SID string form":                          {filter: "(objectSid=" + adaSIDString + ")", want: []string{ada}},
		"binary GUID equality":                     {filter: "(objectGUID=" + escapeBytes(adaGUID) + ")", want: []string{ada}},
		"disabled users (803)":                     {filter: "(&(objectCategory=person)(userAccountControl:1.2.840.113556.1.4.803:=2))", want: []string{bob, star}},
		"enabled users (not 803)":                  {filter: "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", want: []string{ada, jose}},
		"bit OR rule (804)":                        {filter: "(userAccountControl:1.2.840.113556.1.4.804:=65536)", want: []string{star}},
		"in-chain memberOf through two levels":     {filter: "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=" + esc(outer) + "))", want: []string{ada, bob, jose}},
		"in-chain member: groups of a user":        {filter: "(member:1.2.840.113556.1.4.1941:=" + esc(ada) + ")", want: []string{inner, middle, outer}},
		"in-chain survives a membership loop":      {filter: "(memberOf:1.2.840.113556.1.4.1941:=" + esc(loopA) + ")", want: []string{loopA, loopB, star}},
		"objectCategory short name":                {filter: "(objectCategory=group)", want: []string{inner, loopA, loopB, middle, outer}},
		"objectCategory full DN":                   {filter: "(objectCategory=CN=Person,CN=Schema,CN=Configuration," + testBase + ")", want: []string{ada, bob, jose, star}},
		"presence of mail":                         {filter: "(&(objectClass=user)(mail=*))", want: []string{ada, bob, jose}},
		"initial substring":                        {filter: "(mail=j*)", want: []string{jose}},
		"any and final substring":                  {filter: "(mail=*@CORP*.com)", want: []string{ada, bob, jose}},
		"or of sAMAccountNames":                    {filter: "(|(sAMAccountName=lovelace,.ada)(sAMAccountName=josé.núñez))", want: []string{ada, jose}},
		"uSNChanged greater or equal":              {filter: fmt.Sprintf("(&(objectClass=user)(uSNChanged>=%d))", joseUSN), want: []string{jose, star}},
		"uSNChanged less or equal, numeric":        {filter: fmt.Sprintf("(&(objectClass=user)(uSNChanged<=%d))", joseUSN-1), want: []string{ada, bob}},
		"no match for a missing DN":                {filter: "(memberOf=" + esc(groupDN("Nope")) + ")", want: nil},
		"injection attempt stays a literal":        {filter: "(cn=" + esc("*)(objectClass=*") + ")", want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, tc.filter, "1.1"))
			if err != nil {
				t.Fatalf("search %s: %v", tc.filter, err)
			}
			want := slices.Sorted(slices.Values(tc.want))
			if diff := cmp.Diff(want, dns(res)); diff != "" {
				t.Errorf("search %s (-want +got):\n%s", tc.filter, diff)
			}
		})
	}

	t.Run("unsupported matching rule", func(t *testing.T) {
		_, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(cn:1.2.3.4:=x)", "1.1"))
		if resultCode(err) != ldap.LDAPResultInappropriateMatching {
			t.Errorf("err = %v, want inappropriateMatching", err)
		}
	})
	t.Run("binary attributes come back raw", func(t *testing.T) {
		res, err := c.Search(searchReq(ada, ldap.ScopeBaseObject, "(objectClass=*)", "objectSid", "objectGUID"))
		if err != nil {
			t.Fatal(err)
		}
		e := res.Entries[0]
		if diff := cmp.Diff(adaSID, e.GetRawAttributeValue("objectSid")); diff != "" {
			t.Errorf("objectSid (-want +got):\n%s", diff)
		}
		if got := len(e.GetRawAttributeValue("objectGUID")); got != 16 {
			t.Errorf("objectGUID length = %d, want 16", got)
		}
	})
}

func TestScopesAndAttributeSelection(t *testing.T) {
	_, url := serve(t, filterFixture(), Options{})
	c := dial(t, url, true)
	tests := map[string]struct {
		base   string
		scope  int
		filter string
		attrs  []string
		want   map[string][]string // dn -> sorted attribute names
	}{
		"base scope, names case-insensitive, stored case returned": {
			base: peopleDN("Lovelace, Ada"), scope: ldap.ScopeBaseObject, filter: "(objectClass=*)",
			attrs: []string{"MAIL", "memberof", "sAMAccountName", "nonexistent"},
			want:  map[string][]string{peopleDN("Lovelace, Ada"): {"mail", "memberOf", "sAMAccountName"}}, // sorted
		},
		"one level under OU=Groups": {
			base: "OU=Groups," + testBase, scope: ldap.ScopeSingleLevel, filter: "(cn=Loop*)", attrs: []string{"cn"},
			want: map[string][]string{groupDN("Loop A"): {"cn"}, groupDN("Loop B"): {"cn"}},
		},
		"1.1 returns no attributes": {
			base: groupDN("Outer"), scope: ldap.ScopeBaseObject, filter: "(objectClass=group)", attrs: []string{"1.1"},
			want: map[string][]string{groupDN("Outer"): {}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := c.Search(searchReq(tc.base, tc.scope, tc.filter, tc.attrs...))
			if err != nil {
				t.Fatal(err)
			}
			got := make(map[string][]string)
			for _, e := range res.Entries {
				names := []string{}
				for _, a := range e.Attributes {
					names = append(names, a.Name)
				}
				slices.Sort(names)
				got[e.DN] = names
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("all attributes include the synthesized ones", func(t *testing.T) {
		res, err := c.Search(searchReq(peopleDN("Lovelace, Ada"), ldap.ScopeBaseObject, "(objectClass=*)"))
		if err != nil {
			t.Fatal(err)
		}
		e := res.Entries[0]
		got := map[string][]string{
			"objectClass":       e.GetAttributeValues("objectClass"),
			"objectCategory":    e.GetAttributeValues("objectCategory"),
			"distinguishedName": e.GetAttributeValues("distinguishedName"),
			"memberOf":          e.GetAttributeValues("memberOf"),
			"name":              e.GetAttributeValues("name"),
		}
		want := map[string][]string{
			"objectClass":       {"top", "person", "organizationalPerson", "user"},
			"objectCategory":    {"CN=Person,CN=Schema,CN=Configuration," + testBase},
			"distinguishedName": {peopleDN("Lovelace, Ada")},
			"memberOf":          {groupDN("Inner")},
			"name":              {"Lovelace, Ada"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("synthesized attributes (-want +got):\n%s", diff)
		}
		for _, a := range []string{"objectSid", "objectGUID", "uSNCreated", "uSNChanged"} {
			if len(e.GetRawAttributeValue(a)) == 0 {
				t.Errorf("attribute %s missing", a)
			}
		}
	})
}
