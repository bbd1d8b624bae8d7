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
// The protocol layer is written directly on github.com/go-asn1-ber/asn1-ber
// (requests are decoded with it, responses are encoded by hand) rather than
// on gldap: gldap v0.1.14 cannot report the port it bound for "host:0", and
// its Stop blocks until every client has disconnected.
//
// The server is for loopback use in tests and demos; it keeps everything in
// memory and is not hardened for hostile networks beyond a cap on request size.
package embedded
