package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/providers/activedirectory"
	"github.com/pandasync/pandasync/reconcile"
)

// errCheckFailed is returned when any check failed; each failure has been
// printed with what is wrong.
var errCheckFailed = errors.New("some checks failed; see above")

// check connects to both sides and verifies everything the spec names:
// credentials, TLS, groups, accounts, modules, roles, collections, fields,
// status options and the permission to create users. It writes nothing.
func (a *app) check(ctx context.Context, args []string) error {
	fs := a.flags("check", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	set, dir, ap := s.set, s.dir, s.ap

	failed := false
	ok := func(format string, args ...any) {
		fmt.Fprintf(a.stdout, "  %s %s\n", a.paint(colorGreen, "✓"), fmt.Sprintf(format, args...))
	}
	bad := func(format string, args ...any) {
		failed = true
		fmt.Fprintf(a.stdout, "  %s %s\n", a.paint(colorRed, "✗"), fmt.Sprintf(format, args...))
	}

	fmt.Fprintln(a.stdout, a.paint(colorBold, "Active Directory"))
	d := set.Connection.Spec.Directory
	urls := make([]string, 0, len(d.URLs))
	for _, u := range d.URLs {
		urls = append(urls, u.String())
	}
	if err := dir.Ping(ctx); err != nil {
		bad("connect and bind (%s): %v", strings.Join(urls, ", "), err)
	} else {
		ok("connected and bound to %s as %s", strings.Join(urls, ", "), d.BindDN)
		var q activedirectory.Query
		seen := map[string]bool{}
		for _, m := range set.UserMappings {
			if !seen[m.Spec.Group] {
				seen[m.Spec.Group] = true
				q.Groups = append(q.Groups, activedirectory.GroupQuery{DN: m.Spec.Group, Nested: nested(m.Spec.Nested)})
			}
		}
		for _, m := range set.CollectionMappings {
			if !seen[m.Spec.Group] {
				seen[m.Spec.Group] = true
				q.Groups = append(q.Groups, activedirectory.GroupQuery{DN: m.Spec.Group, Nested: nested(m.Spec.Nested)})
			}
		}
		res, err := dir.Read(ctx, q)
		if err != nil {
			bad("read the mapped groups: %v", err)
		} else {
			for _, g := range q.Groups {
				switch r := res.Groups[g.DN]; {
				case r == nil || !r.Exists:
					bad("group %s not found under %s", g.DN, d.BaseDN)
				case len(r.Members) == 0:
					bad("group %s has no user members (pandasync will not deprovision from an empty group)", g.DN)
				default:
					ok("group %s: %d user member(s)", g.DN, len(r.Members))
				}
			}
		}
	}

	fmt.Fprintln(a.stdout, a.paint(colorBold, "Asset Panda"))
	perms, err := ap.Permissions(ctx)
	if err != nil {
		bad("authenticate to %s: %v", set.Connection.Spec.AssetPanda.URL, err)
	} else {
		ok("authenticated to %s", set.Connection.Spec.AssetPanda.URL)
		switch {
		case len(set.UserMappings) == 0:
		case perms.CreateUsers:
			ok("user creation is granted to this API client")
		default:
			bad("user creation is not granted to this API client: ask Asset Panda support to grant it for the accounts and modules of the user mappings")
		}
		if !perms.Write && (len(set.CollectionMappings) > 0 || len(set.UserMappings) > 0) {
			bad("this API client cannot write (read-only key)")
		}
		for _, m := range set.UserMappings {
			r, err := ap.Role(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Role)
			if err != nil {
				bad("user mapping %s: %v", m.Metadata.Name, err)
				continue
			}
			ok("user mapping %s: role %q in %s / %s", m.Metadata.Name, r.Name, m.Spec.Account, m.Spec.Module)
		}
		for _, m := range set.CollectionMappings {
			col, err := ap.Collection(ctx, m.Spec.Account, m.Spec.Module, m.Spec.Collection)
			if err != nil {
				bad("collection mapping %s: %v", m.Metadata.Name, err)
				continue
			}
			if err := reconcile.CheckFields(col, m); err != nil {
				bad("collection mapping %s: %v", m.Metadata.Name, err)
				continue
			}
			ok("collection mapping %s: collection %q with key field %q and %d mapped field(s)", m.Metadata.Name, col.Name, m.Spec.Key.Field, len(m.Spec.Fields))
		}
	}
	if failed {
		return errCheckFailed
	}
	fmt.Fprintln(a.stdout, a.paint(colorGreen, "All checks passed."))
	return nil
}

func nested(b *bool) bool { return b == nil || *b }
