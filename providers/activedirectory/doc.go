// Package activedirectory reads users and group memberships from Microsoft
// Active Directory (or any LDAP server that keeps group membership in
// member/memberOf) for pandasync.
//
// The reader always pages (RFC 2696, 1,000 entries per page by default)
// through its own loop over go-ldap's SearchAsync, follows ranged retrieval
// of member (member;range=lo-hi) until the server reports the end, expands
// nested groups client-side with a visited set and a depth cap, and reads
// user entries with a bounded number of searches (one paged search per 100
// groups, never one per user). A read that fails part-way fails as a whole.
//
// # What a read could not resolve
//
// A read never drops a member silently. Every member of a mapped group
// (transitively when nested) ends up as one of: a user account (in
// Group.Members and Result.Users); a readable entry that is not a user
// account (a contact, a foreign security principal, a computer, a group of
// a non-nested mapping), which is ignored; or an entry of Group.Unresolved,
// with the chain of groups that reaches it and a reason:
//
//   - UnresolvedUnreadable: the group lists it, but neither the memberOf
//     search nor a base read of it returned anything (noSuchObject, or an
//     entry without even objectClass, which is what AD and Samba return for
//     an object the bind account may not read). A nested group the bind
//     account cannot read, or that the listing of groups did not return, is
//     listed so too, since its members are unknown.
//   - UnresolvedOutsideBase: it lies outside Config.BaseDN, so it is never
//     read (the memberOf-less fallback reads only containers inside BaseDN).
//
// Members the memberOf search did not return cost one base read each (see
// ReadStats.MemberReads); that also finds a user whose memberOf attribute
// the bind account cannot read. A user entry whose objectSid is unreadable
// is a User with an empty SID; callers must not treat it as a different
// person. Unresolved.Explanation (and String) say in plain words why and
// how to fix it.
//
// # Schema
//
// Read also reads the attribute types the directory defines, once per read
// and on the same connection, from the subschema entry the rootDSE names in
// subschemaSubentry (attributeTypes, every NAME alias, compared
// case-insensitively; ranged retrieval is followed). Result.Schema reports
// whether an attribute exists (so a mapping naming "titel" can be refused
// rather than read as empty everywhere) and suggests close names. If the
// schema cannot be read completely the Read fails. Reader.Schema reads it
// alone.
//
// # Errors
//
// Every error of New, Ping, Read, ReadChanges, Lookup, Find and Schema is an
// *Error, whose Terminal method says whether retrying can help without a
// person acting:
// rejected credentials and account states, insufficient access, a demand
// for stronger authentication or encryption, and certificates that do not
// verify are terminal; network errors, timeouts and busy servers are not.
// A refused bind is explained in plain words from AD's sub-code in the
// diagnostic message (data 52e wrong password, 525 no such account, 530/531
// logon hours or workstation, 532 password expired, 533 disabled, 701
// account expired, 773 must change password, 775 locked out); Error.Subcode
// and Error.Reason carry it. The bind password never appears in an error.
//
// # Hostile servers
//
// Every message from the server is read whole (at most
// Config.MaxPacketBytes) and checked before go-ldap's BER decoder sees it:
// each nested element must fit inside its parent, lengths must be definite
// and nesting at most 12 levels deep, also inside control values. So a
// server cannot make the reader allocate for lengths its messages do not
// hold (ErrPacketTooLarge, ErrMalformedMessage).
//
// # Bulk decoding
//
// The bulk searches (user pages, member lists, change reads) are decoded by
// the package's own BER decoder straight into compact Users as the
// messages arrive (mux.go, decode.go), without go-ldap's packet tree; it
// checks every element against its container again and only slices the
// message. Binds, StartTLS and small reads go through go-ldap.
//
// # Change tracking
//
// ReadChanges reads only what changed since a Watermark (uSNChanged ranges,
// or DirSync), recomputes the closure of every mapped group a changed group
// belongs to with read's own walk, and falls back to a full read, saying
// why, whenever a delta could not be trusted; Result.Apply folds a Delta
// into the caller's view. delta.go says what a delta sees and what waits
// for the next full read.
//
// Connections use ldaps:// or StartTLS by default; a simple bind over
// cleartext ldap:// is refused unless Config.AllowCleartextBind is set.
// Every value placed in a filter goes through the small typed filter builder
// in this package, which escapes with ldap.EscapeFilter.
package activedirectory
