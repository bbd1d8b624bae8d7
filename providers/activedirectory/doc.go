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
// Connections use ldaps:// or StartTLS by default; a simple bind over
// cleartext ldap:// is refused unless Config.AllowCleartextBind is set.
// Every value placed in a filter goes through the small typed filter builder
// in this package, which escapes with ldap.EscapeFilter.
package activedirectory
