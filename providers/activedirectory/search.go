package activedirectory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// ReadStats counts the LDAP work a Read or Lookup did.
type ReadStats struct {
	Searches      int // logical searches (a paged search counts once)
	Pages         int // search requests sent, one per page
	Entries       int // entries received
	RangeRequests int // follow-up requests for member;range=…
	GroupsRead    int // group entries whose member attribute was read
	MemberReads   int // base reads of members that no search returned
	Probes        int // searches for the DC's identity (rootDSE, NTDS Settings), one entry each; in Searches and Entries
}

// asyncSearcher is the part of *ldap.Conn the reader uses for searches.
type asyncSearcher interface {
	SearchAsync(ctx context.Context, req *ldap.SearchRequest, bufferSize int) ldap.Response
}

// streamBuffer is the number of entries buffered between go-ldap's reading
// goroutine and the consumer.
const streamBuffer = 256

// errRequestTimeout is the cause of a search that outlived Config.Timeout.
// It is a network error: the connection is dropped and redialed.
var errRequestTimeout = ldap.NewError(ldap.ErrorNetwork, errors.New("ldap request timed out"))

func (r *Reader) newRequest(base string, scope int, f filter, attrs []string) *ldap.SearchRequest {
	return ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, int(r.cfg.Timeout.Seconds()), false,
		filterString(f), attrs, nil)
}

// pagedSearch runs a subtree or one-level search with the paged-results
// control, streaming every entry to fn as it arrives. An error on any page
// (including a lost server cookie) fails the whole search: the caller never
// sees a short result as a success.
func (r *Reader) pagedSearch(ctx context.Context, conn asyncSearcher, base string, scope int, f filter, attrs []string, st *ReadStats, fn func(*ldap.Entry) error) error {
	st.Searches++
	req := r.newRequest(base, scope, f, attrs)
	var cookie []byte
	for page := 1; ; page++ {
		paging := ldap.NewControlPaging(uint32(r.cfg.PageSize))
		paging.SetCookie(cookie)
		req.Controls = []ldap.Control{paging}
		st.Pages++
		controls, err := r.stream(ctx, conn, req, st, fn)
		if err != nil {
			return fmt.Errorf("searching %s for %s (page %d): %w", base, req.Filter, page, err)
		}
		if r.cfg.Progress != nil {
			r.cfg.Progress(*st)
		}
		pc, ok := ldap.FindControl(controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || pc == nil || len(pc.Cookie) == 0 {
			return nil
		}
		cookie = pc.Cookie
		if r.afterPage != nil {
			r.afterPage(page)
		}
	}
}

// stream sends one search request and feeds its entries to fn. It returns
// the controls of the final response.
func (r *Reader) stream(ctx context.Context, conn asyncSearcher, req *ldap.SearchRequest, st *ReadStats, fn func(*ldap.Entry) error) ([]ldap.Control, error) {
	// The per-request timeout is a context deadline rather than go-ldap's
	// connection timeout, which costs a timer for every received message.
	sctx, cancel := context.WithTimeoutCause(ctx, r.cfg.Timeout, errRequestTimeout)
	defer cancel()
	resp := conn.SearchAsync(sctx, req, streamBuffer)
	var controls []ldap.Control
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			st.Entries++
			if err := fn(e); err != nil {
				cancel()
				for resp.Next() { // let go-ldap finish the message
				}
				return nil, err
			}
			continue
		}
		if c := resp.Controls(); len(c) > 0 {
			controls = c
		}
	}
	if err := resp.Err(); err != nil {
		return nil, err
	}
	// go-ldap reports cancellation as a clean end of results.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if sctx.Err() != nil {
		return nil, context.Cause(sctx)
	}
	return controls, nil
}

// baseRead reads one entry. A missing entry (noSuchObject) returns nil, nil.
func (r *Reader) baseRead(ctx context.Context, conn asyncSearcher, dn string, attrs []string, st *ReadStats) (*ldap.Entry, error) {
	st.Searches++
	st.Pages++
	var got *ldap.Entry
	_, err := r.stream(ctx, conn, r.newRequest(dn, ldap.ScopeBaseObject, present("objectClass"), attrs), st, func(e *ldap.Entry) error {
		got = e
		return nil
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dn, err)
	}
	return got, nil
}

// groupEntry is a group read with its complete member list.
type groupEntry struct {
	dn      string   // display form, as the server returned it
	guid    string   // objectGUID, canonical form ("" if not readable)
	members []string // display DNs, sorted by normalized DN, deduplicated
	norms   []string // normalized DNs, parallel to members
}

// errRange marks a malformed or inconsistent ranged-retrieval answer.
var errRange = errors.New("inconsistent ranged retrieval")

// readGroup reads dn's member attribute completely (see readAll). It
// returns nil, nil when the entry does not exist.
func (r *Reader) readGroup(ctx context.Context, conn asyncSearcher, dn string, st *ReadStats) (*groupEntry, error) {
	st.GroupsRead++
	display, members, first, err := r.readAllWith(ctx, dn, "member", []string{attrObjectGUID}, st)
	if err != nil || display == "" {
		return nil, err
	}
	g := &groupEntry{dn: display}
	if v := first.get(attrObjectGUID); len(v) > 0 {
		if g.guid, err = FormatGUID([]byte(v[0])); err != nil {
			return nil, fmt.Errorf("group %s: objectGUID: %w", dn, err)
		}
	}
	g.members, g.norms = sortDNs(members)
	return g, nil
}

// readAll reads every value of attr of the entry dn. It asks for the plain
// attribute first (every server answers that; AD caps it at MaxValRange and
// answers attr;range=0-1499 instead) and then follows attr;range=lo-* until
// the server reports the end with "*". It returns the entry's DN as the
// server spells it, or "" when the entry does not exist.
func (r *Reader) readAll(ctx context.Context, _ asyncSearcher, dn, attr string, st *ReadStats) (string, []string, error) {
	display, values, _, err := r.readAllWith(ctx, dn, attr, nil, st)
	return display, values, err
}

// readAllWith is readAll that also asks for the attributes extra in its
// first request and returns that first answer. It reads on the mux, with
// the reader's own decoder (a large group's member list is one message).
func (r *Reader) readAllWith(ctx context.Context, dn, attr string, extra []string, st *ReadStats) (display string, values []string, first *attrEntry, err error) {
	lattr := strings.ToLower(attr)
	ask := attr
	if r.rangeStep > 0 {
		ask = fmt.Sprintf("%s;range=0-%d", attr, r.rangeStep-1)
	}
	lo := 0
	for {
		attrs := []string{ask}
		if first == nil {
			attrs = append(attrs, extra...)
		}
		e, err := r.baseReadAttrs(ctx, dn, attrs, st)
		if err != nil {
			return "", nil, nil, err
		}
		if e == nil {
			if display == "" {
				return "", nil, nil, nil
			}
			return "", nil, nil, fmt.Errorf("%s disappeared during ranged retrieval of %s: %w", dn, attr, errRange)
		}
		if first == nil {
			display, first = e.DN, e
		}
		var plain []string
		ranged, done := false, false
		for _, a := range e.Attributes {
			name := strings.ToLower(a.Name)
			if name == lattr {
				plain = a.Values
				continue
			}
			rest, ok := strings.CutPrefix(name, lattr+";range=")
			if !ok {
				continue
			}
			start, end, ok := strings.Cut(rest, "-")
			from, err := strconv.Atoi(start)
			if !ok || err != nil || from != lo {
				return "", nil, nil, fmt.Errorf("%s: asked for values of %s from %d, got %s: %w", dn, attr, lo, a.Name, errRange)
			}
			ranged = true
			values = append(values, a.Values...)
			if end == "*" {
				done = true
				break
			}
			to, err := strconv.Atoi(end)
			if err != nil || to < from || to-from+1 != len(a.Values) {
				return "", nil, nil, fmt.Errorf("%s: %s holds %d values: %w", dn, a.Name, len(a.Values), errRange)
			}
			lo = to + 1
		}
		switch {
		case !ranged && ask == attr:
			values = plain // the server returned every value
			done = true
		case !ranged:
			// A follow-up request must be answered with a range; an attribute
			// whose values all fit the first explicit range ends with "*" there.
			if lo == 0 && len(plain) == 0 {
				done = true // no value at all
			} else {
				return "", nil, nil, fmt.Errorf("%s: no %s;range in the answer for values from %d: %w", dn, attr, lo, errRange)
			}
		}
		if done {
			return display, values, first, nil
		}
		st.RangeRequests++
		if r.rangeStep > 0 {
			ask = fmt.Sprintf("%s;range=%d-%d", attr, lo, lo+r.rangeStep-1)
		} else {
			ask = fmt.Sprintf("%s;range=%d-*", attr, lo)
		}
	}
}

// sortDNs deduplicates dns by normalized form and sorts them by it.
func sortDNs(dns []string) (display, norms []string) {
	type pair struct{ d, n string }
	ps := make([]pair, 0, len(dns))
	seen := make(map[string]struct{}, len(dns))
	for _, d := range dns {
		n := NormalizeDN(d)
		if _, ok := seen[n]; ok {
			continue
		}
		seen[n] = struct{}{}
		ps = append(ps, pair{d, n})
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.n, b.n) })
	display = make([]string, len(ps))
	norms = make([]string, len(ps))
	for i, p := range ps {
		display[i], norms[i] = p.d, p.n
	}
	return display, norms
}
