package activedirectory

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/go-ldap/ldap/v3"
)

// DirSync (Config.ChangeTracking "dirsync") finds what changed with the
// DirSync control and its object-security flag, which a plain account may
// use but which returns only the changed attributes of a changed object
// (and, for that account, no tombstones). The changed objects are then read
// again by objectGUID, whole, so that a delta holds the same complete users
// as the uSNChanged method: DirSync costs about twice the entries per
// change. It serves only a BaseDN that is a naming context; elsewhere the
// reader falls back to uSNChanged.

var (
	// errCookieRefused means the server would not continue from the
	// watermark's DirSync cookie: the delta becomes a full read.
	errCookieRefused = errors.New("the DirSync cookie was refused")
	// errDirSyncUnavailable means DirSync cannot serve this base or account.
	errDirSyncUnavailable = errors.New("DirSync is unavailable")
)

// dirSyncFlags: object security (a plain account may ask, and gets what it
// may read) and incremental values (a changed member list comes back as
// the values added and removed, not whole).
const dirSyncFlags = ldap.DirSyncObjectSecurity | ldap.DirSyncIncrementalValues

// maxDirSyncRounds bounds the "more data" loop of one DirSync read.
const maxDirSyncRounds = 10000

// dirSyncBase returns the base DirSync searches: BaseDN, which must be a
// naming context of a server that offers the control.
func (r *Reader) dirSyncBase(id dcIdentity) (string, error) {
	if !id.dirSync {
		return "", fmt.Errorf("%w: the server does not offer the DirSync control", errDirSyncUnavailable)
	}
	nc := id.namingContext(r.cfg.BaseDN)
	if nc == "" || NormalizeDN(nc) != NormalizeDN(r.cfg.BaseDN) {
		return "", fmt.Errorf("%w: base %s is not a naming context", errDirSyncUnavailable, r.cfg.BaseDN)
	}
	return r.cfg.BaseDN, nil
}

// dirSync runs one DirSync read from cookie, following "more data", and
// returns the final cookie.
func (r *Reader) dirSync(ctx context.Context, base string, cookie []byte, f filter, attrs []string, st *ReadStats, fn func(rawEntry) error) ([]byte, error) {
	st.Searches++
	req := r.newRequest(base, ldap.ScopeWholeSubtree, f, attrs)
	for range maxDirSyncRounds {
		req.Controls = []ldap.Control{ldap.NewRequestControlDirSync(dirSyncFlags, 0, cookie)}
		st.Pages++
		done, err := r.searchRaw(ctx, req, st, fn)
		if err != nil {
			return nil, err
		}
		if !done.hasDirSync {
			return nil, fmt.Errorf("%w: the answer carries no DirSync control", errDirSyncUnavailable)
		}
		cookie = done.dirSyncCookie
		if !done.dirSyncMore {
			return cookie, nil
		}
	}
	return nil, fmt.Errorf("DirSync still reports more data after %d rounds", maxDirSyncRounds)
}

// matchNothing is a filter no object matches (an all-zero objectGUID), on
// an indexed attribute, for taking a DirSync cookie without reading objects.
func matchNothing() filter { return eqBytes("objectGUID", make([]byte, 16)) }

// dirSyncStart takes a DirSync cookie for the present state (for a full
// read, before it starts).
func (r *Reader) dirSyncStart(ctx context.Context, id dcIdentity, st *ReadStats) ([]byte, error) {
	base, err := r.dirSyncBase(id)
	if err != nil {
		return nil, err
	}
	cookie, err := r.dirSync(ctx, base, nil, matchNothing(), []string{attrObjectGUID}, st, func(rawEntry) error { return nil })
	if ldap.IsErrorAnyOf(err, ldap.LDAPResultInsufficientAccessRights, ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultUnavailableCriticalExtension) {
		return nil, fmt.Errorf("%w: %v", errDirSyncUnavailable, err)
	}
	if err != nil {
		return nil, fmt.Errorf("taking a DirSync cookie: %w", err)
	}
	return cookie, nil
}

// dirSyncChanges finds the changed users and groups with DirSync and reads
// them again, whole, by objectGUID (100 per search, with the show-deleted
// control so that tombstones the account may see come back too).
func (r *Reader) dirSyncChanges(ctx context.Context, q Query, wm Watermark, id dcIdentity, st *ReadStats) (*changes, error) {
	base, err := r.dirSyncBase(id)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", errCookieRefused, err)
	}
	var guids [][]byte
	seen := map[string]bool{}
	attrs := append(userAttrs(q.Attributes), "member", "name")
	cookie, err := r.dirSync(ctx, base, wm.Cookie, or(eq("objectClass", "user"), eq("objectClass", "group")), attrs, st, func(e rawEntry) error {
		var guid []byte
		err := e.each(func(name, vals []byte) error {
			if !equalFoldASCII(name, attrObjectGUID) {
				return nil
			}
			var err error
			guid, err = firstValue(vals)
			return err
		})
		switch {
		case err != nil:
			return err
		case guid == nil:
			// DirSync always returns objectGUID; without it the change
			// could not be read again, and the cookie would pass it by.
			return fmt.Errorf("DirSync returned %s without objectGUID", e.dn)
		case !seen[string(guid)]:
			seen[string(guid)] = true
			guids = append(guids, slices.Clone(guid))
		}
		return nil
	})
	if ldap.IsErrorAnyOf(err, ldap.LDAPResultUnavailableCriticalExtension, ldap.LDAPResultProtocolError,
		ldap.LDAPResultUnwillingToPerform, ldap.LDAPResultInsufficientAccessRights) {
		return nil, fmt.Errorf("%w: %v", errCookieRefused, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading DirSync changes: %w", err)
	}
	ch := &changes{users: map[string]*changedUser{}, cookie: cookie}
	dec := newUserDecoder(newAttrTable(q.Attributes), r.now())
	var norm []byte
	showDeleted := ldap.NewControlMicrosoftShowDeleted() // not critical: servers without it ignore it
	for chunk := range slices.Chunk(guids, groupsPerFilter) {
		ors := make([]filter, len(chunk))
		for i, g := range chunk {
			ors[i] = eqBytes(attrObjectGUID, g)
		}
		err := r.pagedSearchRaw(ctx, r.cfg.BaseDN, ldap.ScopeWholeSubtree, or(ors...), changeAttrs(q), st,
			func(e rawEntry) error { return ch.add(e, dec, &norm) }, showDeleted)
		if err != nil {
			return nil, fmt.Errorf("reading changed objects: %w", err)
		}
	}
	return ch, nil
}
