package embedded

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func bindFixture() []*ldap.Entry {
	return []*ldap.Entry{
		ldap.NewEntry(testBindDN, map[string][]string{"objectClass": {"user"}, "userPrincipalName": {"svc@corp.example.com"}}),
		user("Pat Doe", map[string][]string{"userPrincipalName": {"pat@corp.example.com"}, "userPassword": {"pat-pw"}}),
		user("Old Timer", map[string][]string{"userPassword": {"old-pw"}, "userAccountControl": {"514"}}),
		user("No Password", nil),
		user("Locked Out", map[string][]string{"userPassword": {"lock-pw"}, "lockoutTime": {"133000000000000000"}}),
		user("Pw Expired", map[string][]string{"userPassword": {"exp-pw"}, "userAccountControl": {"8389120"}}), // 512|0x800000
		user("Acct Expired", map[string][]string{"userPassword": {"acct-pw"}, "accountExpires": {"130000000000000000"}}),
		user("Acct Future", map[string][]string{"userPassword": {"fut-pw"}, "accountExpires": {"9000000000000000000"}}),
		user("Must Change", map[string][]string{"userPassword": {"must-pw"}, "pwdLastSet": {"0"}}),
	}
}

func TestBind(t *testing.T) {
	_, url := serve(t, bindFixture(), Options{})
	tests := map[string]struct {
		name, password string
		wantCode       uint16
		wantDiag       string
	}{
		"service account by DN":           {name: testBindDN, password: testPassword},
		"service account by DN, any case": {name: "cn=SVC, ou=service,dc=CORP,dc=example,dc=com", password: testPassword},
		"service account by UPN":          {name: "svc@corp.example.com", password: testPassword},
		"service account by sAM@realm":    {name: "SVC@CORP.EXAMPLE.COM", password: testPassword},
		"wrong password":                  {name: testBindDN, password: "nope", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 52e"},
		"user with userPassword by UPN":   {name: "pat@corp.example.com", password: "pat-pw"},
		"user with userPassword by DN":    {name: peopleDN("Pat Doe"), password: "pat-pw"},
		"user with wrong password":        {name: peopleDN("Pat Doe"), password: testPassword, wantCode: ldap.LDAPResultInvalidCredentials},
		"disabled user":                   {name: peopleDN("Old Timer"), password: "old-pw", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 533"},
		"user without password":           {name: peopleDN("No Password"), password: "x", wantCode: ldap.LDAPResultInvalidCredentials},
		"unknown UPN":                     {name: "ghost@corp.example.com", password: "x", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 525"},
		"unknown DN":                      {name: peopleDN("Ghost"), password: "x", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 525"},
		"garbage name":                    {name: "=,=", password: "x", wantCode: ldap.LDAPResultInvalidCredentials},
		"locked out":                      {name: peopleDN("Locked Out"), password: "lock-pw", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 775"},
		"password expired":                {name: peopleDN("Pw Expired"), password: "exp-pw", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 532"},
		"account expired":                 {name: peopleDN("Acct Expired"), password: "acct-pw", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 701"},
		"account expiring in the future":  {name: peopleDN("Acct Future"), password: "fut-pw"},
		"must change password":            {name: peopleDN("Must Change"), password: "must-pw", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 773"},
		"locked out, wrong password":      {name: peopleDN("Locked Out"), password: "nope", wantCode: ldap.LDAPResultInvalidCredentials, wantDiag: "data 52e"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := dial(t, url, false)
			err := c.Bind(tc.name, tc.password)
			if got := resultCode(err); got != tc.wantCode {
				t.Fatalf("Bind result code = %d (%v), want %d", got, err, tc.wantCode)
			}
			if tc.wantDiag != "" && !strings.Contains(err.Error(), tc.wantDiag) {
				t.Errorf("Bind error = %q, want it to contain %q", err, tc.wantDiag)
			}
			if err == nil {
				if _, err := c.Search(searchReq(testBase, ldap.ScopeBaseObject, "(objectClass=*)")); err != nil {
					t.Errorf("search after bind: %v", err)
				}
			}
		})
	}
}

func TestAnonymous(t *testing.T) {
	s, url := serve(t, bindFixture(), Options{})
	c := dial(t, url, false)
	root, err := c.Search(searchReq("", ldap.ScopeBaseObject, "(objectClass=*)"))
	if err != nil {
		t.Fatalf("anonymous rootDSE search: %v", err)
	}
	if len(root.Entries) != 1 {
		t.Fatalf("rootDSE entries = %d, want 1", len(root.Entries))
	}
	r := root.Entries[0]
	got := map[string][]string{
		"defaultNamingContext": r.GetAttributeValues("defaultNamingContext"),
		"highestCommittedUSN":  r.GetAttributeValues("highestCommittedUSN"),
		"supportedControl":     r.GetAttributeValues("supportedControl"),
		"dnsHostName":          r.GetAttributeValues("dnsHostName"),
	}
	want := map[string][]string{
		"defaultNamingContext": {testBase},
		"highestCommittedUSN":  {strconv.FormatInt(s.HighestUSN(), 10)},
		"supportedControl":     {ldap.ControlTypePaging, ldap.ControlTypeMicrosoftShowDeleted},
		"dnsHostName":          {"dc1.corp.example.com"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rootDSE (-want +got):\n%s", diff)
	}
	_, err = c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=*)"))
	if code := resultCode(err); code != ldap.LDAPResultOperationsError || !strings.Contains(err.Error(), "successful bind must be completed") {
		t.Errorf("anonymous domain search error = %v (code %d), want operationsError about binding", err, code)
	}
	// A failed bind leaves the connection anonymous.
	c2 := dial(t, url, true)
	if err := c2.Bind(testBindDN, "wrong"); err == nil {
		t.Fatal("bind with a wrong password succeeded")
	}
	if _, err := c2.Search(searchReq(testBase, ldap.ScopeBaseObject, "(objectClass=*)")); resultCode(err) != ldap.LDAPResultOperationsError {
		t.Errorf("search after failed bind: err = %v, want operationsError", err)
	}
}

func TestPagedSearch(t *testing.T) {
	const n = 2500
	s, url := serve(t, manyUsers(n), Options{MaxPageSize: 1000})
	c := dial(t, url, true)
	filter := "(&(objectCategory=person)(objectClass=user))"

	before := s.Stats()
	res, err := c.SearchWithPaging(searchReq(testBase, ldap.ScopeWholeSubtree, filter, "sAMAccountName"), 1000)
	if err != nil {
		t.Fatalf("SearchWithPaging: %v", err)
	}
	if len(res.Entries) != n {
		t.Errorf("entries = %d, want %d", len(res.Entries), n)
	}
	seen := make(map[string]bool)
	for _, e := range res.Entries {
		seen[e.GetAttributeValue("sAMAccountName")] = true
	}
	if len(seen) != n {
		t.Errorf("distinct sAMAccountNames = %d, want %d", len(seen), n)
	}
	after := s.Stats()
	if got := after.PagedPages - before.PagedPages; got != 3 {
		t.Errorf("paged pages = %d, want 3", got)
	}
	if got := after.Entries - before.Entries; got != n {
		t.Errorf("entries sent = %d, want %d", got, n)
	}

	// A page size above MaxPageSize is served in pages of MaxPageSize.
	req := searchReq(testBase, ldap.ScopeWholeSubtree, filter, "1.1")
	req.Controls = []ldap.Control{ldap.NewControlPaging(5000)}
	first, err := c.Search(req)
	if err != nil {
		t.Fatalf("page 1: %v", err)
	}
	if len(first.Entries) != 1000 {
		t.Errorf("page of 5000 requested: got %d entries, want 1000", len(first.Entries))
	}
	if len(first.Entries[0].Attributes) != 0 {
		t.Errorf("1.1 returned attributes %v", first.Entries[0].Attributes)
	}
}

// pageOnce sends one paged request and returns the entries and next cookie.
func pageOnce(t *testing.T, c *ldap.Conn, req *ldap.SearchRequest, size uint32, cookie []byte) ([]*ldap.Entry, []byte, error) {
	t.Helper()
	pc := ldap.NewControlPaging(size)
	pc.SetCookie(cookie)
	r := *req
	r.Controls = []ldap.Control{pc}
	res, err := c.Search(&r)
	if err != nil {
		return nil, nil, err
	}
	ctl, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
	if !ok {
		t.Fatalf("response without a paging control")
	}
	return res.Entries, ctl.Cookie, nil
}

func TestPagedSearchCookies(t *testing.T) {
	s, url := serve(t, manyUsers(300), Options{})
	c := dial(t, url, true)
	users := searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)", "cn")
	groups := searchReq(testBase, ldap.ScopeSingleLevel, "(objectClass=*)", "cn")

	// Two paged searches interleaved on one connection.
	e1, c1, err := pageOnce(t, c, users, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	e2, c2, err := pageOnce(t, c, groups, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(e2) != 1 || len(c2) != 0 {
		t.Errorf("one-level search under the base: %d entries, cookie %q; want 1 (OU=People) and no cookie", len(e2), c2)
	}
	total := len(e1)
	for len(c1) > 0 {
		var page []*ldap.Entry
		page, c1, err = pageOnce(t, c, users, 100, c1)
		if err != nil {
			t.Fatalf("next page: %v", err)
		}
		total += len(page)
	}
	if total != 300 {
		t.Errorf("paged total = %d, want 300", total)
	}

	// An unknown cookie is an error.
	_, _, err = pageOnce(t, c, users, 100, []byte("bogus"))
	if code := resultCode(err); code != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("bogus cookie: err = %v, want unwillingToPerform", err)
	}

	// Cookie loss mid-search fails the next page.
	_, ck, err := pageOnce(t, c, users, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.ExpireCookies(); n != 1 {
		t.Errorf("ExpireCookies = %d, want 1", n)
	}
	if _, _, err := pageOnce(t, c, users, 100, ck); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("expired cookie: err = %v, want unwillingToPerform", err)
	}

	// Size 0 with a cookie abandons the search.
	_, ck, err = pageOnce(t, c, users, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	entries, next, err := pageOnce(t, c, users, 0, ck)
	if err != nil || len(entries) != 0 || len(next) != 0 {
		t.Errorf("abandon: %d entries, cookie %q, err %v; want none", len(entries), next, err)
	}

	// The eleventh stored search on a connection evicts the oldest.
	var cookies [][]byte
	for range 11 {
		_, ck, err := pageOnce(t, c, users, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		cookies = append(cookies, ck)
	}
	if _, _, err := pageOnce(t, c, users, 10, cookies[0]); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("evicted cookie: err = %v, want unwillingToPerform", err)
	}
	if _, _, err := pageOnce(t, c, users, 10, cookies[10]); err != nil {
		t.Errorf("newest cookie: %v", err)
	}
}

func TestSizeLimits(t *testing.T) {
	s, url := serve(t, manyUsers(1500), Options{MaxPageSize: 1000})
	c := dial(t, url, true)

	res, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)", "cn"))
	if code := resultCode(err); code != ldap.LDAPResultSizeLimitExceeded {
		t.Fatalf("unpaged search over MaxPageSize: err = %v, want sizeLimitExceeded", err)
	}
	if res == nil || len(res.Entries) != 1000 {
		t.Errorf("entries before sizeLimitExceeded = %v, want 1000", res)
	}
	if got := s.Stats().SizeLimits; got != 1 {
		t.Errorf("Stats.SizeLimits = %d, want 1", got)
	}

	// Small unpaged searches are fine.
	if _, err := c.Search(searchReq(testBase, ldap.ScopeWholeSubtree, "(sAMAccountName=u0000*)", "cn")); err != nil {
		t.Errorf("unpaged search of 10 entries: %v", err)
	}

	// The client's sizeLimit is honoured too.
	req := searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)", "cn")
	req.SizeLimit = 7
	res, err = c.Search(req)
	if resultCode(err) != ldap.LDAPResultSizeLimitExceeded || res == nil || len(res.Entries) != 7 {
		t.Errorf("sizeLimit 7: err = %v, entries = %v; want sizeLimitExceeded after 7", err, res)
	}
}

func TestRangedRetrieval(t *testing.T) {
	const n = 3000
	users := manyUsers(n)
	members := make([]string, n)
	for i, u := range users {
		members[i] = u.DN
	}
	entries := append(users, group("Big", members...), group("Small", members[:3]...))
	_, url := serve(t, entries, Options{MaxValRange: 1500})
	c := dial(t, url, true)

	get := func(attrs ...string) *ldap.Entry {
		t.Helper()
		res, err := c.Search(searchReq(groupDN("Big"), ldap.ScopeBaseObject, "(objectClass=*)", attrs...))
		if err != nil {
			t.Fatalf("search %v: %v", attrs, err)
		}
		if len(res.Entries) != 1 {
			t.Fatalf("search %v: %d entries", attrs, len(res.Entries))
		}
		return res.Entries[0]
	}
	summary := func(e *ldap.Entry) map[string]int {
		out := make(map[string]int)
		for _, a := range e.Attributes {
			if strings.HasPrefix(strings.ToLower(a.Name), "member") {
				out[a.Name] = len(a.Values)
			}
		}
		return out
	}
	tests := map[string]struct {
		attrs []string
		want  map[string]int
	}{
		"plain member is forced into a range": {attrs: []string{"member"}, want: map[string]int{"member": 0, "member;range=0-1499": 1500}},
		"all attributes":                      {attrs: nil, want: map[string]int{"member": 0, "member;range=0-1499": 1500}},
		"explicit bounded range":              {attrs: []string{"member;range=0-99"}, want: map[string]int{"member;range=0-99": 100}},
		"explicit open range is capped":       {attrs: []string{"member;range=0-*"}, want: map[string]int{"member;range=0-1499": 1500}},
		"last slice ends with a star":         {attrs: []string{"Member;Range=1500-*"}, want: map[string]int{"member;range=1500-*": 1500}},
		"range past the end":                  {attrs: []string{"member;range=2990-3100"}, want: map[string]int{"member;range=2990-*": 10}},
		"range beyond the values":             {attrs: []string{"member;range=3000-*"}, want: map[string]int{"member;range=3000-*": 0}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summary(get(tc.attrs...))); diff != "" {
				t.Errorf("member attributes (-want +got):\n%s", diff)
			}
		})
	}

	// The loop a reader runs gets every member exactly once.
	var all []string
	for lo := 0; ; {
		e := get(fmt.Sprintf("member;range=%d-*", lo))
		var a *ldap.EntryAttribute
		for _, x := range e.Attributes {
			if strings.HasPrefix(x.Name, "member;range=") {
				a = x
			}
		}
		if a == nil {
			t.Fatal("no ranged member attribute")
		}
		all = append(all, a.Values...)
		if strings.HasSuffix(a.Name, "-*") {
			break
		}
		lo += len(a.Values)
	}
	if diff := cmp.Diff(members, all); diff != "" {
		t.Errorf("members read by ranges (-want +got):\n%s", diff)
	}

	// A small group is not ranged; memberOf of a user is not ranged either.
	res, err := c.Search(searchReq(groupDN("Small"), ldap.ScopeBaseObject, "(objectClass=*)", "member"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(members[:3], res.Entries[0].GetAttributeValues("member")); diff != "" {
		t.Errorf("small group members (-want +got):\n%s", diff)
	}
}

func TestCloseDisconnectsClients(t *testing.T) {
	s, err := New(manyUsers(3), Options{BindDN: testBindDN, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(testBindDN, testPassword); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with a connected client: %v", err)
	}
	if _, err := c.Search(searchReq(testBase, ldap.ScopeBaseObject, "(objectClass=*)")); err == nil {
		t.Error("search after Close succeeded")
	}
	if _, err := s.Listen("127.0.0.1:0"); err == nil {
		t.Error("Listen after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOptionsRedactPassword(t *testing.T) {
	o := Options{BindDN: testBindDN, Password: testPassword, MaxPageSize: 1000}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("opts", "options", o)
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", o),
		"%+v":  fmt.Sprintf("%+v", o),
		"%#v":  fmt.Sprintf("%#v", o),
		"%s":   fmt.Sprintf("%s", o),
		"slog": buf.String(),
	}
	for verb, out := range outputs {
		if strings.Contains(out, testPassword) {
			t.Errorf("%s output reveals the password: %s", verb, out)
		}
		if !strings.Contains(out, "REDACTED") {
			t.Errorf("%s output does not mark the password redacted: %s", verb, out)
		}
	}
}

func TestReadOnlyOverLDAP(t *testing.T) {
	_, url := serve(t, manyUsers(1), Options{})
	c := dial(t, url, true)
	err := c.Modify(&ldap.ModifyRequest{DN: peopleDN("u00000"), Changes: []ldap.Change{{Operation: ldap.ReplaceAttribute,
		Modification: ldap.PartialAttribute{Type: "title", Vals: []string{"x"}}}}})
	if resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("modify over LDAP: err = %v, want unwillingToPerform", err)
	}
	if err := c.Del(&ldap.DelRequest{DN: peopleDN("u00000")}); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Errorf("delete over LDAP: err = %v, want unwillingToPerform", err)
	}
}

func TestNoSuchBase(t *testing.T) {
	_, url := serve(t, manyUsers(1), Options{})
	c := dial(t, url, true)
	_, err := c.Search(searchReq("OU=Nowhere,"+testBase, ldap.ScopeWholeSubtree, "(objectClass=*)"))
	if resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("search under a missing base: err = %v, want noSuchObject", err)
	}
	// Missing ancestors of given entries are synthesized, so OU=People exists.
	res, err := c.Search(searchReq("OU=People,"+testBase, ldap.ScopeBaseObject, "(objectClass=organizationalUnit)", "ou"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("ou") != "People" {
		t.Errorf("synthesized OU=People: got %d entries %v", len(res.Entries), dns(res))
	}
}

// TestConcurrentReadersAndWriters runs paged reads on several connections
// while the directory is mutated; run with -race.
func TestConcurrentReadersAndWriters(t *testing.T) {
	users := manyUsers(600)
	entries := append(users, group("Team", users[0].DN))
	s, url := serve(t, entries, Options{MaxPageSize: 100})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		c := dial(t, url, true)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				res, err := c.SearchWithPaging(searchReq(testBase, ldap.ScopeWholeSubtree, "(objectClass=user)", "cn", "memberOf"), 100)
				if err != nil {
					errs <- err
					return
				}
				if len(res.Entries) < 590 {
					errs <- fmt.Errorf("read %d users, want at least 590", len(res.Entries))
					return
				}
			}
		}()
	}
	for i := range 10 {
		if err := s.Replace(groupDN("Team"), "member", users[i].DN, users[i+1].DN); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(users[590+i].DN); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := s.Stats().Connections; got != 4 {
		t.Errorf("Stats.Connections = %d, want 4", got)
	}
}

func TestMalformedRequestsKeepServing(t *testing.T) {
	_, url := serve(t, manyUsers(1), Options{})
	addr := strings.TrimPrefix(url, "ldap://")
	junk := map[string][]byte{
		"not BER":                 []byte("GET / HTTP/1.1\r\n\r\n"),
		"message without op":      {0x30, 0x03, 0x02, 0x01, 0x01},
		"oversized length":        {0x30, 0x84, 0x7f, 0xff, 0xff, 0xff},
		"truncated search":        {0x30, 0x08, 0x02, 0x01, 0x02, 0x63, 0x03, 0x04, 0x01, 0x41},
		"search with junk filter": append([]byte{0x30, 0x19, 0x02, 0x01, 0x03, 0x63, 0x14, 0x04, 0x00, 0x0a, 0x01, 0x02, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x01, 0x01, 0x00}, 0x9f, 0x1f, 0x00, 0x30, 0x00),
	}
	for name, b := range junk {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write(b); err != nil {
				t.Fatal(err)
			}
			_ = nc.Close()
			c := dial(t, url, true)
			if _, err := c.Search(searchReq(testBase, ldap.ScopeBaseObject, "(objectClass=*)", "1.1")); err != nil {
				t.Errorf("server unusable after %s: %v", name, err)
			}
		})
	}
}
