package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pandasync/pandasync/reconcile"
	"github.com/pandasync/pandasync/reconcile/loop"
)

// historyArgs are the flags of `pandasync history`.
type historyArgs struct {
	n        int
	json     bool
	stateDir string
}

func parseHistoryArgs(a *app, args []string) (historyArgs, error) {
	ha := historyArgs{}
	fs := a.flags("history", "[-n N] [-json] [-state-dir DIR]")
	fs.IntVar(&ha.n, "n", 20, "show the last `N` audit entries; 0 shows all")
	fs.BoolVar(&ha.json, "json", false, "print the entries as JSON lines, as audit.jsonl holds them")
	fs.StringVar(&ha.stateDir, "state-dir", "", stateDirUsage)
	if err := parse(fs, args); err != nil {
		return ha, err
	}
	if fs.NArg() > 0 || ha.n < 0 {
		fmt.Fprintln(a.stderr, "history: takes no arguments, and -n is not negative")
		return ha, errUsage
	}
	return ha, nil
}

// history is `pandasync history`: the last writes pandasync attempted,
// oldest first, from the audit log in the state directory. It takes no
// lock: it only reads.
func (a *app) history(ctx context.Context, args []string) error {
	ha, err := parseHistoryArgs(a, args)
	if err != nil {
		return err
	}
	dir, err := a.stateDirOf(ha.stateDir)
	if err != nil {
		return err
	}
	entries, skipped, err := loop.ReadAudit(dir, ha.n)
	if err != nil {
		return err
	}
	if skipped > 0 {
		a.log.Warn("audit log lines that do not parse were skipped", "count", skipped)
	}
	if ha.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	if len(entries) == 0 {
		fmt.Fprintf(a.stdout, "No writes recorded in %s.\n", dir)
		return nil
	}
	for _, e := range entries {
		a.printAuditEntry(a.stdout, e)
	}
	return nil
}

// printAuditEntry prints one entry: a line naming the change and its
// result, then one line per field, before → after.
func (a *app) printAuditEntry(w io.Writer, e loop.AuditEntry) {
	action := reconcile.Action(e.Action)
	result := a.paint(colorGreen, e.Result)
	if e.Result != loop.ResultApplied {
		result = a.paint(colorRed, e.Result)
	}
	who := e.Name
	if who == "" {
		who = e.Key
	} else if e.Key != "" {
		who += " [" + e.Key + "]"
	}
	pass := e.Pass
	if e.Revision != "" {
		pass += " " + e.Revision
		if e.Dirty {
			pass += " (dirty)"
		}
	}
	fmt.Fprintf(w, "%s  %s  %s %s %s %s: %s  (%s)\n", e.Time.Local().Format(time.DateTime), result,
		a.paint(actionColor(action), action.Symbol()), e.Action, e.Kind, e.Mapping, who, pass)
	for _, k := range unionKeys(e.Before, e.After) {
		before, had := e.Before[k]
		after, has := e.After[k]
		switch {
		case !had:
			fmt.Fprintf(w, "      %s: %s\n", k, strconv.Quote(after))
		case !has:
			fmt.Fprintf(w, "      %s: %s (unchanged)\n", k, strconv.Quote(before))
		default:
			fmt.Fprintf(w, "      %s: %s → %s\n", k, strconv.Quote(before), strconv.Quote(after))
		}
	}
	if e.Error != "" {
		fmt.Fprintf(w, "      %s %s\n", a.paint(colorRed, "error:"), e.Error)
	}
}
