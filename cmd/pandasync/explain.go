package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
)

// explain shows how one person maps: the mappings and groups that include
// them, the nesting path, and what the plan would do to their objects.
func (a *app) explain(ctx context.Context, args []string) error {
	fs := a.flags("explain", "USER  (sAMAccountName, userPrincipalName, email or SID)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	who := fs.Arg(0)
	s, err := a.open()
	if err != nil {
		return err
	}
	defer s.Close()
	ex, err := reconcile.Explain(ctx, s.set, s.dir, s.ap, who)
	if err != nil {
		return err
	}
	renderExplanation(a, who, ex)
	return nil
}

func renderExplanation(a *app, who string, ex *reconcile.Explanation) {
	w := a.stdout
	u := ex.Person
	if u == nil {
		fmt.Fprintf(w, "%s is not a member of any mapped group", who)
		if len(ex.Changes)+len(ex.Blocked) == 0 {
			fmt.Fprintln(w, ", and the plan does nothing to them.")
			return
		}
		fmt.Fprintln(w, ".")
	} else {
		fmt.Fprintf(w, "%s\n", a.paint(colorBold, u.DN))
		fmt.Fprintf(w, "  SID %s, GUID %s\n", u.SID, u.GUID)
		fmt.Fprintf(w, "  sAMAccountName %s, userPrincipalName %s\n", orNone(u.SAMAccountName), orNone(u.UPN))
		state := "enabled"
		if u.Disabled {
			state = "disabled"
		}
		if u.Expired {
			state += ", expired"
		}
		fmt.Fprintf(w, "  account %s\n\n", state)
		for _, m := range ex.Memberships {
			switch {
			case m.Member:
				path := m.Group
				if len(m.Via) > 1 {
					path += " → " + strings.Join(m.Via[1:], " → ")
				}
				fmt.Fprintf(w, "  %s %s mapping %s: member via %s\n", a.paint(colorGreen, "✓"), m.Kind, m.Mapping, path)
			case m.Excluded != "":
				fmt.Fprintf(w, "  %s %s mapping %s: in %s through nesting, but %s\n", a.paint(colorYellow, "·"), m.Kind, m.Mapping, m.Group, m.Excluded)
			default:
				fmt.Fprintf(w, "  %s %s mapping %s: not in %s\n", a.paint(colorDim, "✗"), m.Kind, m.Mapping, m.Group)
			}
		}
		fmt.Fprintln(w)
	}
	for _, n := range ex.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, e := range ex.Errors {
		fmt.Fprintf(w, "! %s\n", e)
	}
	for _, b := range ex.Blocked {
		fmt.Fprintf(w, "blocked by %s: %s %s %s (%s)\n", b.Limit, b.Action, b.Kind, label(b.Change), b.Detail)
	}
	if len(ex.Changes) == 0 {
		fmt.Fprintln(w, "The plan changes nothing for this person.")
		return
	}
	fmt.Fprintln(w, "The plan would:")
	fmt.Fprintln(w)
	for _, c := range ex.Changes {
		renderChange(w, c, a.paint, "")
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
