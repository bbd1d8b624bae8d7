package embedded_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/pandasync/pandasync/providers/activedirectory/embedded"
)

// Serve a tiny AD-shaped directory and read it back with go-ldap.
func Example() {
	entries, err := embedded.ParseLDIF(strings.NewReader(`
dn: CN=Ada,OU=People,DC=corp,DC=example,DC=com
objectClass: user
sAMAccountName: ada
userAccountControl: 512

dn: CN=Staff,OU=Groups,DC=corp,DC=example,DC=com
objectClass: group
member: CN=Ada,OU=People,DC=corp,DC=example,DC=com
`))
	if err != nil {
		log.Fatal(err)
	}
	srv, err := embedded.New(entries, embedded.Options{
		BindDN: "CN=svc,DC=corp,DC=example,DC=com", Password: "example-only",
		MaxPageSize: 1000, MaxValRange: 1500, // Windows defaults
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	url, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}

	c, err := ldap.DialURL(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("CN=svc,DC=corp,DC=example,DC=com", "example-only"); err != nil {
		log.Fatal(err)
	}
	res, err := c.SearchWithPaging(ldap.NewSearchRequest(srv.BaseDN(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectCategory=person)(memberOf:1.2.840.113556.1.4.1941:=CN=Staff,OU=Groups,DC=corp,DC=example,DC=com))",
		[]string{"sAMAccountName", "objectSid", "memberOf"}, nil), 1000)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range res.Entries {
		sid, _ := embedded.FormatSID(e.GetRawAttributeValue("objectSid"))
		fmt.Println(e.GetAttributeValue("sAMAccountName"), sid, e.GetAttributeValue("memberOf"))
	}
	// Output:
	// ada S-1-5-21-1004336348-1177238915-682003330-1100 CN=Staff,OU=Groups,DC=corp,DC=example,DC=com
}
