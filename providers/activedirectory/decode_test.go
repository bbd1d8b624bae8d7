package activedirectory

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// berTL encodes one BER element with a definite length.
func berTL(tag byte, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	return append(berHeader1(tag, len(c)), c...)
}

func berHeader1(tag byte, n int) []byte {
	switch {
	case n < 0x80:
		return []byte{tag, byte(n)}
	case n < 0x100:
		return []byte{tag, 0x81, byte(n)}
	case n < 0x10000:
		return []byte{tag, 0x82, byte(n >> 8), byte(n)}
	}
	return []byte{tag, 0x84, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func berStr(s string) []byte { return berTL(tagOctetString, []byte(s)) }

// entryMsg encodes a SearchResultEntry message.
func entryMsg(id byte, dn string, attrs ...[]byte) []byte {
	return berTL(tagSequence, berTL(tagInteger, []byte{id}),
		berTL(opSearchEntry, berStr(dn), berTL(tagSequence, attrs...)))
}

func attr(name string, vals ...string) []byte {
	vs := make([][]byte, len(vals))
	for i, v := range vals {
		vs[i] = berStr(v)
	}
	return berTL(tagSequence, berStr(name), berTL(tagSet, vs...))
}

func doneMsg(id byte, code byte, diag string, controls ...[]byte) []byte {
	parts := [][]byte{berTL(tagInteger, []byte{id}),
		berTL(opSearchDone, berTL(tagEnumerated, []byte{code}), berStr(""), berStr(diag))}
	if len(controls) > 0 {
		parts = append(parts, berTL(tagControls, controls...))
	}
	return berTL(tagSequence, parts...)
}

func pagingControl(cookie string) []byte {
	return berTL(tagSequence, berStr("1.2.840.113556.1.4.319"),
		berTL(tagOctetString, berTL(tagSequence, berTL(tagInteger, []byte{0}), berStr(cookie))))
}

// TestDecodeUserMatchesToUser checks the lean decoder against the go-ldap
// path (toUser) on the same entries read from the embedded server: Lookup
// decodes with go-ldap, Read with decode.go.
func TestDecodeUserMatchesToUser(t *testing.T) {
	fx := newFixture(embeddedBase, randomSuffix(), 0)
	cfg, _ := startEmbedded(t, fx, embeddedOptions())
	r := newReader(t, cfg)
	ctx := context.Background()
	attrs := []string{"mail", "givenName", "sn", "objectSid", "objectGUID", "displayName", "MAIL", "userAccountControl", "objectClass", "cn"}
	res, err := r.Read(ctx, Query{Groups: []GroupQuery{{DN: fx.top, Nested: true}, {DN: fx.special}}, Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	var sids []string
	for _, u := range res.Users {
		sids = append(sids, u.SID)
	}
	looked, err := r.Lookup(ctx, sids, attrs)
	if err != nil {
		t.Fatal(err)
	}
	if len(looked) != len(res.Users) || len(looked) < 5 {
		t.Fatalf("Lookup found %d users, Read %d", len(looked), len(res.Users))
	}
	for _, u := range res.Users {
		if diff := cmp.Diff(userView(looked[u.SID]), userView(u)); diff != "" {
			t.Errorf("user %s: toUser (-) and the lean decoder (+) differ:\n%s", u.DN, diff)
		}
	}
}

// userView is a comparable picture of a User.
func userView(u *User) map[string]any {
	if u == nil {
		return nil
	}
	return map[string]any{"DN": u.DN, "SID": u.SID, "GUID": u.GUID, "SAM": u.SAMAccountName, "UPN": u.UPN,
		"Disabled": u.Disabled, "Expired": u.Expired, "Expires": u.Expires, "Attrs": u.Attrs()}
}

func TestDecodeUser(t *testing.T) {
	sid := string([]byte{1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0x51, 4, 0, 0})
	guid := string([]byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff})
	table := newAttrTable([]string{"mail", "jpegPhoto", "sIDHistory", "description", "empty"})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		attrs   [][]byte
		want    map[string]any // userView; nil for "no user"
		wantErr string
	}{
		{"full", [][]byte{attr("objectSid", sid), attr("objectGUID", guid), attr("userAccountControl", "514"),
			attr("sAMAccountName", "ada"), attr("userPrincipalName", "ada@example.test"), attr("accountExpires", "130000000000000000"),
			attr("Mail", "ada@example.test", "lovelace@example.test"), attr("jpegPhoto", "\xff\xd8"), attr("sIDHistory", sid),
			attr("description", "caf\xc3\xa9"), attr("empty")},
			map[string]any{"DN": "CN=Ada,DC=example,DC=test", "SID": "S-1-5-21-1-2-3-1105", "GUID": "00112233-4455-6677-8899-aabbccddeeff",
				"SAM": "ada", "UPN": "ada@example.test", "Disabled": true, "Expired": true,
				"Expires": time.Date(2012, 12, 14, 23, 6, 40, 0, time.UTC),
				"Attrs": map[string][]string{"mail": {"ada@example.test", "lovelace@example.test"}, "jpegPhoto": {"/9g="},
					// An attribute without values is an absent one.
					"sIDHistory": {"S-1-5-21-1-2-3-1105"}, "description": {"café"}}}, ""},
		{"invalid utf-8 is base64", [][]byte{attr("description", "\xc3\x28")},
			map[string]any{"DN": "CN=Ada,DC=example,DC=test", "SID": "", "GUID": "", "SAM": "", "UPN": "", "Disabled": false,
				"Expired": false, "Expires": time.Time{}, "Attrs": map[string][]string{"description": {"wyg="}}}, ""},
		{"later duplicate wins", [][]byte{attr("mail", "a@x"), attr("MAIL", "b@x")},
			map[string]any{"DN": "CN=Ada,DC=example,DC=test", "SID": "", "GUID": "", "SAM": "", "UPN": "", "Disabled": false,
				"Expired": false, "Expires": time.Time{}, "Attrs": map[string][]string{"mail": {"b@x"}}}, ""},
		{"computer", [][]byte{attr("userAccountControl", "4096"), attr("objectSid", "bad")}, nil, ""},
		{"bad sid", [][]byte{attr("objectSid", "xx")}, nil, "objectSid"},
		{"bad guid", [][]byte{attr("objectGUID", "xx")}, nil, "objectGUID"},
		{"bad uac", [][]byte{attr("userAccountControl", "x")}, nil, "userAccountControl"},
		{"bad expiry", [][]byte{attr("accountExpires", "x")}, nil, "accountExpires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMessage(entryMsg(1, "CN=Ada,DC=example,DC=test", tt.attrs...))
			if err != nil {
				t.Fatal(err)
			}
			e, err := parseEntry(m.body)
			if err != nil {
				t.Fatal(err)
			}
			u, err := newUserDecoder(table, now).decode(e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, userView(u)); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeHostile feeds malformed and hostile messages to the decoder:
// each is an error, none panics, and none makes it allocate more than a
// small multiple of the message it was given.
func TestDecodeHostile(t *testing.T) {
	good := entryMsg(7, "CN=x", attr("mail", "a"))
	huge := []byte{0x84, 0x7f, 0xff, 0xff, 0xff} // a length of 2 GiB
	tests := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0x30}},
		{"not a sequence", append([]byte{0x31}, good[1:]...)},
		{"indefinite length", []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00}},
		{"five length octets", []byte{0x30, 0x85, 0, 0, 0, 0, 3, 0x02, 0x01, 0x01}},
		{"top length beyond the message", append([]byte{0x30}, append(huge, good[2:]...)...)},
		{"inner dn length beyond the message", berTL(tagSequence, berTL(tagInteger, []byte{7}),
			append([]byte{opSearchEntry, 0x0a, tagOctetString}, append(huge, 'x')...))},
		{"inner value length beyond its set", entryMsg(7, "CN=x", berTL(tagSequence, berStr("mail"),
			append([]byte{tagSet, 0x07, tagOctetString}, append(huge, 'a')...)))},
		{"value longer than its set", entryMsg(7, "CN=x", berTL(tagSequence, berStr("mail"),
			berTL(tagSet, []byte{tagOctetString, 0x05, 'a'})))},
		{"high tag number", entryMsg(7, "CN=x", []byte{0x3f, 0x81, 0x01, 0x00})},
		{"deep nesting", entryMsg(7, "CN=x", bytes.Repeat([]byte{0x30, 0x80}, 5000))},
		{"wrong attribute tag", entryMsg(7, "CN=x", berTL(tagSet, berStr("mail")))},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"message id of 9 octets", berTL(tagSequence, berTL(tagInteger, make([]byte, 9)), berTL(opSearchEntry))},
	}
	table := newAttrTable([]string{"mail"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := decodeOne(tt.msg, table)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("decoded without an error")
			}
			if !errors.Is(err, errBER) {
				t.Errorf("err = %v, want errBER", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > uint64(4*len(tt.msg)+8192) {
				t.Errorf("allocated %d bytes for a %d-byte message", got, len(tt.msg))
			}
		})
	}
	if err := decodeOne(good, table); err != nil {
		t.Fatalf("the well-formed message: %v", err)
	}
}

// decodeOne decodes one message the way the search path does.
func decodeOne(msg []byte, table *attrTable) error {
	m, err := parseMessage(msg)
	if err != nil {
		return err
	}
	switch m.op {
	case opSearchEntry:
		e, err := parseEntry(m.body)
		if err != nil {
			return err
		}
		_, err = newUserDecoder(table, time.Now()).decode(e)
		return err
	case opSearchDone:
		_, err := parseDone(m)
		return err
	}
	return errBER
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(entryMsg(7, "CN=x,DC=y", attr("mail", "a@b"), attr("objectSid", "\x01\x00\x00\x00\x00\x00\x00\x05")))
	f.Add(doneMsg(7, 0, "", pagingControl("abc")))
	f.Add(doneMsg(7, 53, "unwilling"))
	table := newAttrTable([]string{"mail", "objectSid"})
	f.Fuzz(func(t *testing.T, msg []byte) {
		_ = decodeOne(msg, table) // must not panic
	})
}

func TestParseDone(t *testing.T) {
	dirsync := berTL(tagSequence, berStr("1.2.840.113556.1.4.841"), berTL(tagBoolean, []byte{0xff}),
		berTL(tagOctetString, berTL(tagSequence, berTL(tagInteger, []byte{1}), berTL(tagInteger, []byte{0}), berStr("ck"))))
	m, err := parseMessage(doneMsg(3, 0, "", pagingControl("next"), dirsync))
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDone(m)
	if err != nil {
		t.Fatal(err)
	}
	if string(d.pagingCookie) != "next" || string(d.dirSyncCookie) != "ck" || !d.dirSyncMore || !d.hasDirSync || d.err() != nil {
		t.Errorf("done = %+v", d)
	}
	m, _ = parseMessage(doneMsg(3, 12, "0000202C: Unable to unmarshall cookie"))
	d, err = parseDone(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.err(); err == nil || !strings.Contains(err.Error(), "unmarshall") {
		t.Errorf("err = %v", err)
	}
}

func TestAppendNormalizedDN(t *testing.T) {
	for _, dn := range []string{
		"CN=Ada Lovelace,OU=Users,DC=Example,DC=Test", " cn = x , dc=y ", "CN=a\\,b,DC=x", "CN=Grp+(x), \"Ü\" #1*,DC=x",
		"", "=x", "cn=", "CN=x;DC=y", "CN=#41,DC=x", "uid=a+cn=b,dc=x", "CN=Zoë,DC=x", "garbage",
	} {
		if got, want := string(appendNormalizedDN([]byte("prefix"), []byte(dn))), "prefix"+NormalizeDN(dn); got != want {
			t.Errorf("appendNormalizedDN(%q) = %q, want %q", dn, got, want)
		}
	}
}

// embeddedOptions are AD's limits, as the conformance suite uses them.
func embeddedOptions() embedded.Options {
	return embedded.Options{MaxPageSize: 1000, MaxValRange: 1500}
}

// TestChangeEntryMalformed: a malformed value in a changed entry fails the
// change read instead of being skipped (a tombstone whose isDeleted did not
// decode would pass for a live object); an empty value set is an absent
// attribute.
func TestChangeEntryMalformed(t *testing.T) {
	bad := func(name string) []byte {
		return berTL(tagSequence, berStr(name), berTL(tagSet, []byte{tagOctetString, 0x05, 'T'}))
	}
	classes := attr("objectClass", "top", "group") // a group is classified without decoding it as a user
	tests := []struct {
		name    string
		attrs   [][]byte
		wantErr bool
	}{
		{"well-formed", [][]byte{classes, attr("isDeleted", "TRUE"), attr("lastKnownParent", "OU=x")}, false},
		{"empty value sets", [][]byte{classes, attr("isDeleted"), attr("objectGUID"), attr("lastKnownParent")}, false},
		{"malformed isDeleted", [][]byte{classes, bad("isDeleted")}, true},
		{"malformed objectGUID", [][]byte{classes, bad("objectGUID")}, true},
		{"malformed lastKnownParent", [][]byte{classes, bad("lastKnownParent")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMessage(entryMsg(1, "CN=Ada,DC=example,DC=test", tt.attrs...))
			if err != nil {
				t.Fatal(err)
			}
			e, err := parseEntry(m.body)
			if err != nil {
				t.Fatal(err)
			}
			ch := &changes{users: map[string]*changedUser{}}
			var norm []byte
			err = ch.add(e, newUserDecoder(newAttrTable(nil), time.Now()), &norm)
			if tt.wantErr {
				if !errors.Is(err, errBER) {
					t.Errorf("err = %v, want errBER", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ch.deleted) + len(ch.groups); got != 1 {
				t.Errorf("%d objects classified, want 1", got)
			}
		})
	}
}
