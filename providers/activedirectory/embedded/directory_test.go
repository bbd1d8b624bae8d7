package embedded

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func sidString(t *testing.T, e *ldap.Entry) string {
	t.Helper()
	s, err := FormatSID(e.GetRawAttributeValue("objectSid"))
	if err != nil {
		t.Fatalf("%s: objectSid: %v", e.DN, err)
	}
	return s
}

func usnOf(t *testing.T, s *Server, dn string) int64 {
	t.Helper()
	e := s.Entry(dn)
	if e == nil {
		t.Fatalf("no entry %s", dn)
	}
	n, err := strconv.ParseInt(e.GetAttributeValue("uSNChanged"), 10, 64)
	if err != nil {
		t.Fatalf("%s: uSNChanged: %v", dn, err)
	}
	return n
}

func TestSynthesizedSIDsAndGUIDs(t *testing.T) {
	explicit, err := ParseSID(DefaultDomainSID + "-1101")
	if err != nil {
		t.Fatal(err)
	}
	entries := []*ldap.Entry{
		user("First", nil),
		user("Explicit", map[string][]string{"objectSid": {string(explicit)}}),
		user("Second", nil),
		group("Team", peopleDN("First")),
		ldap.NewEntry("OU=Other,"+testBase, map[string][]string{"objectClass": {"organizationalUnit"}}),
	}
	build := func() *Server {
		s, err := New(entries, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s1, s2 := build(), build()
	got := map[string]string{}
	for _, cn := range []string{"First", "Explicit", "Second"} {
		got[cn] = sidString(t, s1.Entry(peopleDN(cn)))
	}
	got["Team"] = sidString(t, s1.Entry(groupDN("Team")))
	got["domain"] = sidString(t, s1.Entry(testBase))
	want := map[string]string{
		"First":    DefaultDomainSID + "-1100",
		"Explicit": DefaultDomainSID + "-1101",
		"Second":   DefaultDomainSID + "-1102", // 1101 is taken by the explicit SID
		"Team":     DefaultDomainSID + "-1103",
		"domain":   DefaultDomainSID,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SIDs (-want +got):\n%s", diff)
	}
	if ou := s1.Entry("OU=Other," + testBase); len(ou.GetRawAttributeValue("objectSid")) != 0 {
		t.Errorf("an OU got an objectSid")
	}
	g1 := s1.Entry(peopleDN("First")).GetRawAttributeValue("objectGUID")
	g2 := s2.Entry(peopleDN("First")).GetRawAttributeValue("objectGUID")
	g3 := s1.Entry(peopleDN("Second")).GetRawAttributeValue("objectGUID")
	if len(g1) != 16 || !bytes.Equal(g1, g2) || bytes.Equal(g1, g3) {
		t.Errorf("objectGUID not a stable per-DN 16-byte value: %x %x %x", g1, g2, g3)
	}
	if u1, u2 := usnOf(t, s1, peopleDN("First")), usnOf(t, s1, peopleDN("Second")); u2 <= u1 || s1.HighestUSN() < u2 {
		t.Errorf("USNs not increasing: First %d, Second %d, highest %d", u1, u2, s1.HighestUSN())
	}

	// Add continues the RID sequence.
	if err := s1.Add(user("Third", nil)); err != nil {
		t.Fatal(err)
	}
	if got, want := sidString(t, s1.Entry(peopleDN("Third"))), DefaultDomainSID+"-1104"; got != want {
		t.Errorf("added user SID = %s, want %s", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	tests := map[string]struct {
		entries []*ldap.Entry
		opts    Options
		want    string
	}{
		"duplicate DN":      {entries: []*ldap.Entry{user("A", nil), ldap.NewEntry("cn=a, ou=people,"+testBase, nil)}, want: "duplicate entry"},
		"bad DN":            {entries: []*ldap.Entry{ldap.NewEntry("not a dn", nil)}, want: "parse dn"},
		"bad member":        {entries: []*ldap.Entry{group("G", "garbage")}, want: "member"},
		"bad domain SID":    {entries: []*ldap.Entry{user("A", nil)}, opts: Options{DomainSID: "S-x"}, want: "domain sid"},
		"no naming context": {entries: []*ldap.Entry{ldap.NewEntry("CN=x,O=y", nil)}, want: "naming context"},
		"starttls w/o tls":  {entries: []*ldap.Entry{user("A", nil)}, opts: Options{StartTLS: true}, want: "StartTLS needs"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := New(tc.entries, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestMutations(t *testing.T) {
	entries := []*ldap.Entry{
		user("Ann", nil), user("Ben", nil), user("Cid", nil),
		group("Team", peopleDN("Ann")),
		group("All", groupDN("Team"), peopleDN("Cid")),
	}
	s, url := serve(t, entries, Options{})
	c := dial(t, url, true)
	memberOf := func(cn string) []string {
		t.Helper()
		res, err := c.Search(searchReq(peopleDN(cn), ldap.ScopeBaseObject, "(objectClass=*)", "memberOf"))
		if err != nil {
			t.Fatal(err)
		}
		return res.Entries[0].GetAttributeValues("memberOf")
	}
	inAll := func() []string {
		t.Helper()
		res, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree,
			"(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(groupDN("All"))+"))", "1.1"))
		if err != nil {
			t.Fatal(err)
		}
		return dns(res)
	}
	if diff := cmp.Diff([]string{peopleDN("Ann"), peopleDN("Cid")}, inAll()); diff != "" {
		t.Errorf("initial nested members (-want +got):\n%s", diff)
	}

	// Adding Ben to Team bumps Team's uSNChanged, not Ben's, and updates memberOf.
	teamUSN, benUSN, high := usnOf(t, s, groupDN("Team")), usnOf(t, s, peopleDN("Ben")), s.HighestUSN()
	if err := s.Replace(groupDN("Team"), "member", peopleDN("Ann"), peopleDN("Ben")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{groupDN("Team")}, memberOf("Ben")); diff != "" {
		t.Errorf("Ben's memberOf (-want +got):\n%s", diff)
	}
	if got := usnOf(t, s, groupDN("Team")); got <= teamUSN || got != s.HighestUSN() || s.HighestUSN() <= high {
		t.Errorf("Team uSNChanged %d -> %d, highest %d -> %d: want the group bumped to the new highest", teamUSN, got, high, s.HighestUSN())
	}
	if got := usnOf(t, s, peopleDN("Ben")); got != benUSN {
		t.Errorf("Ben's uSNChanged moved %d -> %d; membership lives on the group", benUSN, got)
	}
	if diff := cmp.Diff([]string{peopleDN("Ann"), peopleDN("Ben"), peopleDN("Cid")}, inAll()); diff != "" {
		t.Errorf("nested members after add (-want +got):\n%s", diff)
	}
	// The uSNChanged delta query finds exactly the group.
	res, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(uSNChanged>="+strconv.FormatInt(high+1, 10)+")", "1.1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{groupDN("Team")}, dns(res)); diff != "" {
		t.Errorf("delta query (-want +got):\n%s", diff)
	}

	// Replacing an ordinary attribute bumps the entry.
	before := usnOf(t, s, peopleDN("Cid"))
	if err := s.Replace(peopleDN("Cid"), "userAccountControl", "514"); err != nil {
		t.Fatal(err)
	}
	if usnOf(t, s, peopleDN("Cid")) <= before {
		t.Errorf("Cid's uSNChanged did not move")
	}

	// Deleting Ann removes her from Team without moving Team's uSNChanged
	// (as Samba 4.17 does); only her tombstone gets a new USN.
	teamUSN, high = usnOf(t, s, groupDN("Team")), s.HighestUSN()
	if err := s.Delete(peopleDN("Ann")); err != nil {
		t.Fatal(err)
	}
	if got := s.Entry(groupDN("Team")).GetAttributeValues("member"); !cmp.Equal(got, []string{peopleDN("Ben")}) {
		t.Errorf("Team members after deleting Ann = %v", got)
	}
	if got := usnOf(t, s, groupDN("Team")); got != teamUSN {
		t.Errorf("Team's uSNChanged moved %d -> %d when Ann was deleted", teamUSN, got)
	}
	if s.HighestUSN() != high+1 {
		t.Errorf("highest USN %d -> %d, want one more for the tombstone", high, s.HighestUSN())
	}

	// A new user already named by a group gets memberOf at once.
	if err := s.Replace(groupDN("All"), "member", groupDN("Team"), peopleDN("Cid"), peopleDN("Dee")); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(user("Dee", nil)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{groupDN("All")}, memberOf("Dee")); diff != "" {
		t.Errorf("Dee's memberOf (-want +got):\n%s", diff)
	}

	errs := map[string]error{
		"add duplicate":         s.Add(user("Dee", nil)),
		"replace missing entry": s.Replace(peopleDN("Nobody"), "title", "x"),
		"replace memberOf":      s.Replace(peopleDN("Dee"), "memberOf", groupDN("Team")),
		"delete missing":        s.Delete(peopleDN("Ann")),
		"delete non-leaf":       s.Delete("OU=People," + testBase),
		"replace with a bad DN": s.Replace(groupDN("Team"), "member", "garbage"),
		"add nil":               s.Add(nil),
	}
	for name, err := range errs {
		if err == nil {
			t.Errorf("%s: succeeded, want an error", name)
		}
	}
}

// TestTombstonesRenameIdentity covers what change tracking relies on:
// tombstones seen only with the show-deleted control and the right to read
// them, renames that move only the renamed entry's USN, and a DC identity
// tests can change.
func TestTombstonesRenameIdentity(t *testing.T) {
	entries := []*ldap.Entry{user("Ann", nil), user("Ben", nil), group("Team", peopleDN("Ann"), peopleDN("Ben"))}
	showDeleted := []ldap.Control{ldap.NewControlMicrosoftShowDeleted()}
	for _, visible := range []bool{false, true} {
		s, url := serve(t, entries, Options{ShowTombstones: visible})
		c := dial(t, url, true)
		annGUID := s.Entry(peopleDN("Ann")).GetRawAttributeValue("objectGUID")
		high := s.HighestUSN()
		if err := s.Delete(peopleDN("Ann")); err != nil {
			t.Fatal(err)
		}
		search := func(base string, ctls []ldap.Control) []*ldap.Entry {
			req := searchReq(base, ldap.ScopeWholeSubtree, "(&(isDeleted=TRUE)(uSNChanged>="+strconv.FormatInt(high+1, 10)+"))",
				"objectGUID", "lastKnownParent", "isDeleted")
			req.Controls = ctls
			res, err := c.Search(req)
			if err != nil {
				t.Fatalf("search %s: %v", base, err)
			}
			return res.Entries
		}
		if got := search(testBase, nil); len(got) != 0 {
			t.Errorf("without show-deleted: %d tombstones", len(got))
		}
		got := search(testBase, showDeleted)
		if !visible {
			if len(got) != 0 {
				t.Errorf("tombstones not granted: got %d", len(got))
			}
			continue
		}
		if len(got) != 1 || !bytes.Equal(got[0].GetRawAttributeValue("objectGUID"), annGUID) ||
			got[0].GetAttributeValue("lastKnownParent") != "OU=People,"+testBase ||
			!strings.HasPrefix(got[0].DN, `CN=Ann\0ADEL:`) || !strings.HasSuffix(got[0].DN, ",CN=Deleted Objects,"+testBase) {
			t.Fatalf("tombstones = %v", got)
		}

		// Rename Ben: only Ben's USN moves; Team lists the new DN.
		teamUSN := usnOf(t, s, groupDN("Team"))
		if err := s.Rename(peopleDN("Ben"), "CN=Benjamin,OU=Groups,"+testBase); err != nil {
			t.Fatal(err)
		}
		if got := s.Entry(groupDN("Team")).GetAttributeValues("member"); !cmp.Equal(got, []string{"CN=Benjamin,OU=Groups," + testBase}) {
			t.Errorf("Team members after the rename = %v", got)
		}
		if usnOf(t, s, groupDN("Team")) != teamUSN || usnOf(t, s, "CN=Benjamin,OU=Groups,"+testBase) != s.HighestUSN() {
			t.Errorf("USNs after the rename: Team %d (was %d), Benjamin %d, highest %d", usnOf(t, s, groupDN("Team")), teamUSN,
				usnOf(t, s, "CN=Benjamin,OU=Groups,"+testBase), s.HighestUSN())
		}
		if got := s.Entry("CN=Benjamin,OU=Groups," + testBase).GetAttributeValues("memberOf"); !cmp.Equal(got, []string{groupDN("Team")}) {
			t.Errorf("memberOf after the rename = %v", got)
		}

		// Identity: rootDSE dnsHostName and the NTDS Settings invocationId.
		id := bytes.Repeat([]byte{7}, 16)
		if err := s.SetIdentity("dc2.corp.example.com", id); err != nil {
			t.Fatal(err)
		}
		root, err := c.Search(searchReq("", ldap.ScopeBaseObject, "(objectClass=*)", "dnsHostName", "dsServiceName"))
		if err != nil {
			t.Fatal(err)
		}
		ntds, err := c.Search(searchReq(root.Entries[0].GetAttributeValue("dsServiceName"), ldap.ScopeBaseObject, "(objectClass=*)", "invocationId"))
		if err != nil {
			t.Fatal(err)
		}
		if root.Entries[0].GetAttributeValue("dnsHostName") != "dc2.corp.example.com" || !bytes.Equal(ntds.Entries[0].GetRawAttributeValue("invocationId"), id) {
			t.Errorf("identity = %s %x", root.Entries[0].GetAttributeValue("dnsHostName"), ntds.Entries[0].GetRawAttributeValue("invocationId"))
		}
	}
}
