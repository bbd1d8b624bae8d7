package main

import (
	"context"
	"fmt"
	"runtime/debug"
)

func (a *app) version(ctx context.Context, args []string) error {
	fs := a.flags("version", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && v == "(devel)" {
				v += " " + s.Value
			}
		}
	}
	fmt.Fprintf(a.stdout, "pandasync %s\n", v)
	return nil
}
