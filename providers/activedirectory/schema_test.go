package activedirectory

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"github.com/google/go-cmp/cmp"
)

func TestParseAttributeTypes(t *testing.T) {
	s, err := parseAttributeTypes([]string{
		"( 2.5.4.12 NAME 'title' SYNTAX '1.3.6.1.4.1.1466.115.121.1.15' SINGLE-VALUE )",
		"( 2.5.4.3 NAME ( 'cn' 'commonName' ) DESC 'RFC4519: common name' SUP name )",
		"( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )", // unquoted SYNTAX
		"( 1.3.6.1.4.1.4203.1.3.5 )", // no NAME: allowed, adds nothing
		"(2.5.4.4 NAME 'sn')",        // no spaces inside the parentheses
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"title", "Title", "cn", "COMMONNAME", "samaccountname", "sn", "2.5.4.3", "cn;binary"} {
		if !s.HasAttribute(a) {
			t.Errorf("HasAttribute(%q) = false", a)
		}
	}
	for _, a := range []string{"titl", "name", "1.3.6.1.4.1.4203.1.3.5", ""} {
		if s.HasAttribute(a) {
			t.Errorf("HasAttribute(%q) = true", a)
		}
	}
	if n, _ := s.Name("2.5.4.3"); n != "cn" {
		t.Errorf("Name(2.5.4.3) = %q, want cn", n)
	}
	if n, _ := s.Name("SAMACCOUNTNAME"); n != "sAMAccountName" {
		t.Errorf("Name(SAMACCOUNTNAME) = %q", n)
	}
	for _, bad := range []string{"2.5.4.12 NAME 'title'", "( 2.5.4.12 NAME 'title )", "( 2.5.4.12 NAME ( 'a' b ) )", "( 2.5.4.12 NAME )"} {
		if _, err := parseAttributeTypes([]string{bad}); err == nil {
			t.Errorf("parseAttributeTypes(%q) succeeded", bad)
		}
	}
}

func TestSuggest(t *testing.T) {
	s := NewSchema("title", "mail", "givenName", "sn", "department", "departmentNumber", "employeeID", "employeeNumber",
		"employeeType", "telephoneNumber", "physicalDeliveryOfficeName", "l", "st", "c", "co", "description", "displayName")
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"titel", []string{"title"}},
		{"TITLE", []string{"title"}},
		{"mial", []string{"mail"}},
		{"givenname", []string{"givenName"}},
		{"departmnet", []string{"department"}},
		{"employee", []string{"employeeID", "employeeType", "employeeNumber"}},
		{"telephonenumbr", []string{"telephoneNumber"}},
		{"physicalDeliveryOficeName", []string{"physicalDeliveryOfficeName"}},
		{"xyz", nil},
		{"s", []string{"c", "l", "sn"}},
		{"", nil},
	} {
		if diff := cmp.Diff(tt.want, s.Suggest(tt.name)); diff != "" {
			t.Errorf("Suggest(%q) (-want +got):\n%s", tt.name, diff)
		}
	}
	var nilSchema *Schema
	if nilSchema.HasAttribute("mail") || nilSchema.Suggest("mail") != nil || nilSchema.Len() != 0 {
		t.Error("a nil schema knows attributes")
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"titel", "title", 3, 1},
		{"title", "title", 3, 0},
		{"kitten", "sitting", 3, 3},
		{"kitten", "sitting", 2, 3}, // gives up at limit+1
		{"", "abc", 3, 3},
		{"abc", "", 1, 2},
		{"ca", "abc", 3, 3}, // OSA, not Damerau
	} {
		if got := editDistance(tt.a, tt.b, tt.limit); got != tt.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tt.a, tt.b, tt.limit, got, tt.want)
		}
	}
}

// scriptedServer answers a simple bind with success and each search with
// answer(base, attributes): the entries to send (DN and attributes) and a
// result code.
func scriptedServer(t *testing.T, answer func(base string, attrs []string) ([]*ldap.Entry, uint16)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				for {
					req, err := ber.ReadPacket(c)
					if err != nil || len(req.Children) < 2 {
						return
					}
					id := req.Children[0].Value
					op := req.Children[1]
					var out []byte
					result := func(app ber.Tag, code uint16) []byte {
						msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
						msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
						r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, app, nil, "")
						r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), ""))
						r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
						r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
						msg.AppendChild(r)
						return msg.Bytes()
					}
					switch op.Tag {
					case ldap.ApplicationBindRequest:
						out = result(ldap.ApplicationBindResponse, 0)
					case ldap.ApplicationSearchRequest:
						base := string(op.Children[0].ByteValue)
						var attrs []string
						for _, a := range op.Children[7].Children {
							attrs = append(attrs, string(a.ByteValue))
						}
						entries, code := answer(base, attrs)
						for _, e := range entries {
							msg := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
							msg.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
							se := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationSearchResultEntry, nil, "")
							se.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.DN, ""))
							list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
							for _, a := range e.Attributes {
								pa := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
								pa.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, a.Name, ""))
								set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
								for _, v := range a.Values {
									set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, ""))
								}
								pa.AppendChild(set)
								list.AppendChild(pa)
							}
							se.AppendChild(list)
							msg.AppendChild(se)
							out = append(out, msg.Bytes()...)
						}
						out = append(out, result(ldap.ApplicationSearchResultDone, code)...)
					case ldap.ApplicationUnbindRequest:
						return
					default:
						continue
					}
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "ldap://" + ln.Addr().String()
}

// TestReadFailsWithoutSchema: a directory whose schema cannot be read fails
// the Read (fail closed) instead of returning a Result that would make every
// mapped attribute look misspelt, or none.
func TestReadFailsWithoutSchema(t *testing.T) {
	const base = "DC=example,DC=test"
	const sub = "CN=Aggregate,CN=Schema,CN=Configuration," + base
	for _, tt := range []struct {
		name   string
		root   map[string][]string
		schema func() ([]*ldap.Entry, uint16)
		want   string
	}{
		{"no subschemaSubentry", map[string][]string{"highestCommittedUSN": {"5"}}, nil, "names no subschemaSubentry"},
		{"subschema not readable", map[string][]string{"subschemaSubentry": {sub}},
			func() ([]*ldap.Entry, uint16) { return nil, ldap.LDAPResultNoSuchObject }, "does not exist or is not readable"},
		{"subschema without attributeTypes", map[string][]string{"subschemaSubentry": {sub}},
			func() ([]*ldap.Entry, uint16) { return []*ldap.Entry{ldap.NewEntry(sub, nil)}, 0 }, "lists no attributeTypes"},
		{"malformed attributeTypes", map[string][]string{"subschemaSubentry": {sub}},
			func() ([]*ldap.Entry, uint16) {
				return []*ldap.Entry{ldap.NewEntry(sub, map[string][]string{"attributeTypes": {"( 2.5.4.12 NAME 'title )"}})}, 0
			}, "unterminated"},
		{"busy", map[string][]string{"subschemaSubentry": {sub}},
			func() ([]*ldap.Entry, uint16) { return nil, ldap.LDAPResultBusy }, "Busy"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := scriptedServer(t, func(b string, _ []string) ([]*ldap.Entry, uint16) {
				switch b {
				case "":
					return []*ldap.Entry{ldap.NewEntry("", tt.root)}, 0
				case sub:
					return tt.schema()
				}
				t.Errorf("unexpected search based at %q", b)
				return nil, ldap.LDAPResultOperationsError
			})
			r := newReader(t, Config{URLs: []string{url}, BaseDN: base, BindDN: "svc@example.test", Password: "Canary-Pw",
				AllowCleartextBind: true, Timeout: 5 * time.Second})
			_, err := r.Read(context.Background(), Query{Groups: []GroupQuery{{DN: "CN=G," + base}}})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("Read err = %v, want a schema error mentioning %q", err, tt.want)
			}
			if _, err := r.Schema(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Schema err = %v, want %q", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not an *Error", err)
			}
		})
	}
}

// TestSchemaRanged reads a schema the server returns in ranges, as AD does
// for attributes with more values than MaxValRange.
func TestSchemaRanged(t *testing.T) {
	const base = "DC=example,DC=test"
	const sub = "CN=Aggregate,CN=Schema,CN=Configuration," + base
	var all []string
	for i := range 2500 {
		all = append(all, "( 1.2.3."+strconv.Itoa(i)+" NAME 'attr"+strconv.Itoa(i)+"' )")
	}
	var asked []string
	url := scriptedServer(t, func(b string, attrs []string) ([]*ldap.Entry, uint16) {
		if b == "" {
			return []*ldap.Entry{ldap.NewEntry("", map[string][]string{"subschemaSubentry": {sub}})}, 0
		}
		asked = append(asked, attrs...)
		switch attrs[0] {
		case "attributeTypes":
			return []*ldap.Entry{ldap.NewEntry(sub, map[string][]string{"attributeTypes": nil, "attributeTypes;range=0-1499": all[:1500]})}, 0
		case "attributeTypes;range=1500-*":
			return []*ldap.Entry{ldap.NewEntry(sub, map[string][]string{"attributeTypes;range=1500-*": all[1500:]})}, 0
		}
		return nil, ldap.LDAPResultOperationsError
	})
	r := newReader(t, Config{URLs: []string{url}, BaseDN: base, BindDN: "svc@example.test", Password: "Canary-Pw",
		AllowCleartextBind: true, Timeout: 5 * time.Second})
	s, err := r.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2500 || !s.HasAttribute("attr0") || !s.HasAttribute("attr2499") {
		t.Errorf("schema holds %d names", s.Len())
	}
	if want := []string{"attributeTypes", "attributeTypes;range=1500-*"}; !slices.Equal(asked, want) {
		t.Errorf("asked %v, want %v", asked, want)
	}
}
