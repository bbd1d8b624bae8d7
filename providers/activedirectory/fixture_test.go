package activedirectory

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/go-ldap/ldap/v3"
)

// fixture is the directory content the conformance suite reads. The same
// entries are added to Samba over LDAP and served by the embedded server.
type fixture struct {
	root   string // the fixture's own OU, holding base and outside
	base   string // OU=Base under root; used as BaseDN
	prefix string // sAMAccountName prefix, unique per run
	bigN   int

	// entries are parents first; groups carry their final member values.
	// Entries the bind account must not read carry the embedded server's
	// pseudo-attributes x-embedded-hidden / x-embedded-hidden-attribute,
	// which the Samba loader turns into deny ACEs for the reader.
	entries []*ldap.Entry

	alice, bob, carol, obrien, expired, contact string
	top, mid, low, flat, special, big, missing  string
	chain                                       []string // chain[0] ⊃ chain[1] ⊃ … ⊃ chain[len-1] ∋ alice
	bigUsers                                    []string

	// G-Partial holds alice, sidless (objectSid unreadable), outside
	// (outside baseDN), hiddenGroup (unreadable, holds carol), the contact
	// and partialSub, which holds hidden (unreadable) and bob.
	partial, partialSub, hiddenGroup string
	hidden, sidless, outside         string

	// Accounts with fixtureBindPassword to bind as, by the AD sub-code a
	// bind with that password gets ("" binds).
	binders map[string]string
}

// fixtureBindPassword is the password of the fixture's bind accounts.
const fixtureBindPassword = "Canary-Fixture-B1nd!"

const fixtureChainLen = MaxNestingDepth + 2 // chain[0] nests one level too deep

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newFixture builds the entries under OU=pandasync-test-<suffix>,parent.
func newFixture(parent, suffix string, bigN int) *fixture {
	f := &fixture{prefix: "p" + suffix, bigN: bigN, binders: map[string]string{}}
	f.root = "OU=pandasync-test-" + suffix + "," + parent
	f.base = "OU=Base," + f.root
	users := "OU=Users," + f.base
	groups := "OU=Groups," + f.base
	bigOU := "OU=Big," + f.base
	outsideOU := "OU=Outside," + f.root
	realm := "example.test"
	for _, ou := range []string{f.root, f.base, users, groups, bigOU, outsideOU} {
		d, _ := ldap.ParseDN(ou)
		f.add(ou, map[string][]string{"objectClass": {"top", "organizationalUnit"}, "ou": {d.RDNs[0].Attributes[0].Value}})
	}
	user := func(cn, sam, ou string, uac int, extra map[string][]string) string {
		dn := "CN=" + ldap.EscapeDN(cn) + "," + ou
		attrs := map[string][]string{
			"objectClass":        {"top", "person", "organizationalPerson", "user"},
			"cn":                 {cn},
			"sAMAccountName":     {f.prefix + sam},
			"userPrincipalName":  {f.prefix + sam + "@" + realm},
			"userAccountControl": {strconv.Itoa(uac)},
		}
		for k, v := range extra {
			attrs[k] = v
		}
		f.add(dn, attrs)
		return dn
	}
	f.alice = user("Alice Able", "-alice", users, 544, map[string][]string{"mail": {"alice@example.test"}, "givenName": {"Alice"}, "sn": {"Able"}})
	f.bob = user("Bob Baker", "-bob", users, 546, map[string][]string{"mail": {"bob@example.test"}, "givenName": {"Bob"}, "sn": {"Baker"}})
	f.carol = user("Carol Cole", "-carol", users, 544, map[string][]string{"givenName": {"Carol"}, "sn": {"Cole"}})
	f.obrien = user(`O'Brien, "Zoë" Ærø`, "-obrien", users, 544, map[string][]string{"mail": {"zoe@example.test"}, "givenName": {"Zoë"}, "sn": {"O'Brien"}})
	// accountExpires 2012-12-11: in the past.
	f.expired = user("Eve Expired", "-eve", users, 544, map[string][]string{"accountExpires": {"130000000000000000"}, "mail": {"eve@example.test"}})
	f.contact = "CN=Some Contact," + users
	f.add(f.contact, map[string][]string{"objectClass": {"top", "person", "organizationalPerson", "contact"}, "cn": {"Some Contact"}})
	f.hidden = user("Hidden Hannah", "-hidden", users, 544, map[string][]string{"mail": {"hannah@example.test"}, "x-embedded-hidden": {"TRUE"}})
	f.sidless = user("Sidless Sam", "-sidless", users, 544, map[string][]string{"mail": {"sam@example.test"}, "x-embedded-hidden-attribute": {"objectSid"}})
	f.outside = user("Outside Olga", "-outside", outsideOU, 544, map[string][]string{"mail": {"olga@example.test"}})
	bindAs := func(cn, sam, subcode string, uac int, extra map[string][]string) {
		extra["userPassword"] = []string{fixtureBindPassword}
		f.binders[subcode] = user(cn, sam, users, uac, extra)
	}
	bindAs("Bind Usable", "-bind-ok", "", 512, map[string][]string{})
	bindAs("Bind Disabled", "-bind-dis", "533", 514, map[string][]string{})
	bindAs("Bind Expired", "-bind-exp", "701", 512, map[string][]string{"accountExpires": {"130000000000000000"}})
	bindAs("Bind Must Change", "-bind-chg", "773", 512, map[string][]string{"pwdLastSet": {"0"}})
	for i := range bigN {
		f.bigUsers = append(f.bigUsers, user(fmt.Sprintf("Big %05d", i), fmt.Sprintf("-b%05d", i), bigOU, 544, map[string][]string{"mail": {fmt.Sprintf("b%05d@example.test", i)}}))
	}

	ngroups := 0
	group := func(cn string, members ...string) string {
		dn := "CN=" + ldap.EscapeDN(cn) + "," + groups
		ngroups++
		f.add(dn, map[string][]string{
			"objectClass":    {"top", "group"},
			"cn":             {cn},
			"sAMAccountName": {fmt.Sprintf("%s-g%02d", f.prefix, ngroups)},
			"member":         members,
		})
		return dn
	}
	f.top = "CN=G-Top," + groups
	f.low = group("G-Low", f.carol, f.obrien, f.expired, f.top) // cycle back to the top
	f.mid = group("G-Mid", f.low, f.bob)
	f.top = group("G-Top", f.mid, f.alice, f.contact)
	f.flat = group("G-Flat", f.alice, f.mid)
	f.special = group(`Grp+(x), "Ü" #1*`, f.alice, f.obrien)
	f.big = group("G-Big", f.bigUsers...)
	f.missing = "CN=G-Missing," + groups
	f.hiddenGroup = group("G-Hidden", f.carol)
	f.entries[len(f.entries)-1].Attributes = append(f.entries[len(f.entries)-1].Attributes,
		ldap.NewEntryAttribute("x-embedded-hidden", []string{"TRUE"}))
	f.partialSub = group("G-PartialSub", f.hidden, f.bob)
	f.partial = group("G-Partial", f.alice, f.sidless, f.outside, f.hiddenGroup, f.partialSub, f.contact)
	f.chain = make([]string, fixtureChainLen)
	next := f.alice
	for i := fixtureChainLen - 1; i >= 0; i-- {
		next = group(fmt.Sprintf("G-Chain-%02d", i), next)
		f.chain[i] = next
	}
	return f
}

func (f *fixture) add(dn string, attrs map[string][]string) {
	f.entries = append(f.entries, ldap.NewEntry(dn, attrs))
}
