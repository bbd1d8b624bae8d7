package activedirectory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// maxFound caps the accounts Find returns.
const maxFound = 20

// Find looks a person up anywhere under BaseDN by sAMAccountName,
// userPrincipalName or mail (AD compares them case-insensitively); a
// DOMAIN\user name is looked up by its user part. It is for explaining one
// person, not for reads that decide changes. Computer accounts are left
// out, and at most 20 accounts are returned. The error is an *Error.
func (r *Reader) Find(ctx context.Context, who string, attrs []string) ([]*User, error) {
	for _, a := range attrs {
		if !validAttr(a) {
			return nil, invalid(fmt.Errorf("attribute name %q is not valid", a))
		}
	}
	who = strings.TrimSpace(who)
	if who == "" {
		return nil, nil
	}
	sam := who
	if _, user, ok := strings.Cut(who, `\`); ok {
		sam = user
	}
	f := and(eq("objectClass", "user"), or(eq(attrSAMAccountName, sam), eq(attrUPN, who), eq("mail", who)))
	r.mu.Lock()
	defer r.mu.Unlock()
	all := userAttrs(attrs)
	table := newAttrTable(attrs)
	var out []*User
	err := r.withConn(ctx, func(conn *ldap.Conn) error {
		out = out[:0]
		var st ReadStats
		return r.pagedSearch(ctx, conn, r.cfg.BaseDN, ldap.ScopeWholeSubtree, f, all, &st, func(e *ldap.Entry) error {
			u, err := r.toUser(e, table)
			if err != nil || u == nil || len(out) == maxFound {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, classify(fmt.Errorf("looking up %q: %w", who, err))
	}
	return out, nil
}
