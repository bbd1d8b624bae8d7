package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/providers/assetpanda"
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
	fs := a.flags("check", "[-api]")
	api := fs.Bool("api", false, "only check, read-only, that the Asset Panda API answers with the shapes pandasync assumes; prints a report without values or secrets, to send to the maintainers")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "check: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *api {
		return a.checkAPI(ctx)
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
		return fmt.Sprintf("members of %s → collection %q in %s / %s, key field %q, %s",
			m.Spec.Group, m.Spec.Collection, m.Spec.Account, m.Spec.Module, m.Spec.Key.Field, count(len(m.Spec.Fields), "mapped field"))
	}
	return ""
}

// checkAPI is `check -api`: probe, read-only, every Asset Panda endpoint
// pandasync reads and report how each reply differs from the shape
// pandasync assumes. Only the Asset Panda part of the Connection is
// resolved: AD is not contacted.
func (a *app) checkAPI(ctx context.Context) error {
	set, err := a.loadSpec()
	if err != nil {
		return err
	}
	cfg, err := assetPandaConfig(set.Connection.Spec.AssetPanda, a.resolver())
	if err != nil {
		return fmt.Errorf("connection %q: %w", set.Connection.Metadata.Name, err)
	}
	cfg.Logger = a.log.With("component", "assetpanda")
	ap, err := assetpanda.New(cfg)
	if err != nil {
		return fmt.Errorf("asset panda: %w", err)
	}
	account, module, collection := probeTarget(set)
	fmt.Fprintf(a.stdout, "%s\n", a.paint(colorBold, "Asset Panda API: the shapes pandasync assumes (README \"Asset Panda API: what pandasync assumes\")"))
	fmt.Fprintf(a.stdout, "pandasync %s; read-only; the report holds no values and no secrets.\n", buildVersion())
	where := "the first account, module and collection the service lists"
	if account != "" {
		where = strings.Join(nonEmpty(account, module, collection), " / ")
	}
	fmt.Fprintf(a.stdout, "Roles, fields and records are read in %s.\n\n", where)
	r := ap.Probe(ctx, account, module, collection)
	fmt.Fprintln(a.stdout, r)
	if !r.OK() {
		fmt.Fprintln(a.stdout, "\nSend this report to the pandasync maintainers: each difference is one edit to providers/assetpanda/wire.go.")
		return errCheckFailed
	}
	return nil
}

// probeTarget picks where check -api reads roles, fields and records: the
// first collection mapping's collection, else the first user mapping's
// module; "" lets the probe take the first the service lists.
func probeTarget(set *spec.Set) (account, module, collection string) {
	if len(set.CollectionMappings) > 0 {
		m := set.CollectionMappings[0].Spec
		return m.Account, m.Module, m.Collection
	}
	if len(set.UserMappings) > 0 {
		m := set.UserMappings[0].Spec
		return m.Account, m.Module, ""
	}
	return "", "", ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
