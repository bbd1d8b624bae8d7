// Package embedded is an in-process LDAP server that looks like Microsoft
// Active Directory from the wire, for the pandasync demo and for tests.
//
// It serves a set of entries (usually parsed from LDIF with ParseLDIF) and
// synthesizes what a domain controller would add: binary objectSid and
// objectGUID, uSNCreated/uSNChanged, memberOf back-links, objectCategory,
// distinguishedName, a domain root entry and a rootDSE. It answers simple
// binds, base/one/subtree searches with a full filter evaluator (including
// the AD matching rules 1.2.840.113556.1.4.803, .804 and .1941), the paged
// results control (RFC 2696) and ranged retrieval (member;range=a-b). When
// asked through Options it also enforces AD's administrative limits: an
// unpaged search returning more than MaxPageSize entries fails with
// sizeLimitExceeded, and an attribute with more than MaxValRange values comes
// back ranged, with an empty plain attribute, as Windows does.
//
// The rootDSE names a subschema entry (subschemaSubentry, at
// CN=Aggregate,CN=Schema,CN=Configuration,<base> as in AD) whose
// attributeTypes list the common AD user and group attributes
// (commonAttributeTypes in schema.go, the one list to extend) plus every
// attribute that appears in the served entries, so that clients can tell a
// misspelt attribute from an empty one.
//
// Binds behave as AD's: a wrong password is invalidCredentials (49) with
// "AcceptSecurityContext error, data 52e", an unknown name data 525, and an
// account in a refused state gets that state's sub-code when the password
// is right: 775 locked (lockoutTime > 0), 533 disabled (userAccountControl
// 0x2), 701 account expired (accountExpires in the past), 532 password
// expired (userAccountControl 0x800000) and 773 must change password
// (pwdLastSet 0). Options.BindAccountState and Server.SetBindAccountState
// put the service account itself in any of these states.
//
// Access control is simulated with two pseudo-attributes in the entries
// (for instance in LDIF), which are interpreted when the entry is loaded and
// are never returned to clients nor listed in the schema:
//
//	x-embedded-hidden: TRUE
//	    The entry is invisible to the bind account: no search returns it, a
//	    search based at it answers noSuchObject (32), but it still appears as
//	    a DN in the member values of groups (and in memberOf of its members),
//	    as an object the service account may not read does in AD.
//	x-embedded-hidden-attribute: objectSid
//	    Repeatable. The named attribute is neither returned nor matched by
//	    any filter (presence, equality, substring, matching rules), as an
//	    attribute whose read permission is denied in AD.
//
// Server.Replace sets or clears both at runtime; Server.Entry shows the
// directory's own view, hidden parts included.
//
// For change tracking it maintains uSNChanged on every change (Add, Replace,
// Rename, Delete) and highestCommittedUSN in the rootDSE, reports
// dnsHostName and the invocationId of its NTDS Settings object (SetIdentity
// changes them, as a different or restored DC would), and leaves a tombstone
// in CN=Deleted Objects for every deleted entry, returned with the
// show-deleted control (1.2.840.113556.1.4.417) when Options.ShowTombstones
// grants the bind account the right to read them. It does not implement
// DirSync.
//
// The protocol layer is written directly on github.com/go-asn1-ber/asn1-ber
// (requests are decoded with it, responses are encoded by hand) rather than
// on gldap: gldap v0.1.14 cannot report the port it bound for "host:0", and
// its Stop blocks until every client has disconnected.
//
// The server is for loopback use in tests and demos; it keeps everything in
// memory and is not hardened for hostile networks beyond a cap on request size.
package embedded
