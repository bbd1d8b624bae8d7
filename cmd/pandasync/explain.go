package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pandasync/pandasync/reconcile"
)

// explain shows how one person maps: the mappings and groups that include
// them, the nesting path, and what the plan would do to their objects.
func (a *app) explain(ctx context.Context, args []string) error {
	fs := a.flags("explain", "USER")
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
	a.readDone()
	if err != nil {
		return err
	}
	if ex.NotFound {
		msg := fmt.Sprintf("no such person in the directory: no account under %s has the sAMAccountName, userPrincipalName, mail or SID %q, and the plan names nobody by it",
			s.set.Connection.Spec.Directory.BaseDN, who)
		if len(ex.Similar) > 0 {
			msg += "\nDid you mean " + quoteOr(ex.Similar) + "?"
		}
		return errors.New(msg)
	}
	renderExplanation(a, who, ex)
	return nil
}

// quoteOr renders `"a", "b" or "c"`.
func quoteOr(names []string) string {
	q := quoteEach(names)
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// mappingKind names a mapping's kind as the spec does.
func mappingKind(k reconcile.Kind) string {
	if k == reconcile.KindRecord {
		return "collection mapping"
	}
	return "user mapping"
}

func renderExplanation(a *app, who string, ex *reconcile.Explanation) {
	w := a.stdout
	u := ex.Person
	if u == nil {
		fmt.Fprintf(w, "%s is not in the directory (deleted, or outside the base DN), but Asset Panda still has it:\n\n", who)
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
		member := false
		for _, m := range ex.Memberships {
			switch {
			case m.Member:
				member = true
				path := m.Group
				if len(m.Via) > 1 {
					path += " → " + strings.Join(m.Via[1:], " → ")
				}
				fmt.Fprintf(w, "  %s %s %s: member via %s\n", a.paint(colorGreen, "✓"), mappingKind(m.Kind), m.Mapping, path)
			case m.Excluded != "":
				fmt.Fprintf(w, "  %s %s %s: in %s through nesting, but %s\n", a.paint(colorYellow, "·"), mappingKind(m.Kind), m.Mapping, m.Group, m.Excluded)
			default:
				fmt.Fprintf(w, "  %s %s %s: not in %s\n", a.paint(colorDim, "✗"), mappingKind(m.Kind), m.Mapping, m.Group)
			}
		}
		fmt.Fprintln(w)
		if !member {
			fmt.Fprintf(w, "%s is in none of the mapped groups, so pandasync gives them no user and no record.\n", who)
		}
		if u.Disabled || u.Expired {
			what := "disabled"
			if !u.Disabled {
				what = "expired"
			}
			fmt.Fprintf(w, "The account is %s in AD, so pandasync never creates a user or a record for it: that would give access to\n"+
				"someone AD has switched off. A user or record it already manages is deactivated (records set Inactive);\n"+
				"when the account is enabled again, the next plan creates or reactivates them.\n", what)
		}
		if !member || u.Disabled || u.Expired {
			fmt.Fprintln(w)
		}
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
	if len(ex.Notes)+len(ex.Errors)+len(ex.Blocked) > 0 {
		fmt.Fprintln(w)
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
