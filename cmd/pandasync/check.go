package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/spec"
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
	adOK := true
	if err := dir.Ping(ctx); err != nil {
		adOK = false
		bad("connect and bind (%s): %v", strings.Join(urls, ", "), err)
	} else {
		ok("connected and bound to %s as %s", strings.Join(urls, ", "), d.BindDN)
	}

	fmt.Fprintln(a.stdout, a.paint(colorBold, "Asset Panda"))
	apOK := true
	perms, err := ap.Permissions(ctx)
	if err != nil {
		apOK = false
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
	}
	if !adOK || !apOK {
		return errCheckFailed
	}

	// The mappings resolve exactly as a plan resolves them.
	fmt.Fprintln(a.stdout, a.paint(colorBold, "Mappings"))
	p, err := reconcile.MakePlan(ctx, set, dir, ap, reconcile.Options{})
	a.readDone()
	if err != nil {
		bad("read both sides: %v", err)
		return errCheckFailed
	}
	byMapping := map[string][]reconcile.Problem{}
	for _, e := range p.Errors {
		byMapping[e.Mapping] = append(byMapping[e.Mapping], e)
	}
	for _, e := range byMapping[""] {
		bad("%s", problemLine(e))
	}
	for _, name := range set.MappingNames() {
		ps := byMapping[name]
		if len(ps) == 0 {
			ok("mapping %s resolves: %s", name, mappingSummary(set, name))
			continue
		}
		for _, e := range ps {
			bad("mapping %s: %s", name, problemLine(reconcile.Problem{Object: e.Object, Key: e.Key, Message: e.Message, Fix: e.Fix}))
		}
	}
	if failed {
		return errCheckFailed
	}
	fmt.Fprintln(a.stdout, a.paint(colorGreen, "All checks passed."))
	return nil
}

// problemLine renders a problem with its fix on one line.
func problemLine(e reconcile.Problem) string {
	s := e.String()
	if e.Fix != "" {
		s += " — " + e.Fix
	}
	return s
}

// mappingSummary describes what a mapping connects, for check.
func mappingSummary(set *spec.Set, name string) string {
	if m, ok := set.UserMapping(name); ok {
		return fmt.Sprintf("members of %s → role %q in %s / %s", m.Spec.Group, m.Spec.Role, m.Spec.Account, m.Spec.Module)
	}
	if m, ok := set.CollectionMapping(name); ok {
		return fmt.Sprintf("members of %s → collection %q in %s / %s, key field %q, %d mapped field(s)",
			m.Spec.Group, m.Spec.Collection, m.Spec.Account, m.Spec.Module, m.Spec.Key.Field, len(m.Spec.Fields))
	}
	return ""
}
