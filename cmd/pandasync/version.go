package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is stamped at build time by a release build:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/pandasync
//
// (.ci/release.sh does this). Without it, buildVersion falls back to the
// module version and the VCS revision Go records in the binary.
var version = ""

// buildVersion describes the running binary: the stamped version, else
// the module version (set by `go install …@v1.2.3`), else "(devel)"; plus
// the VCS revision, its time and "dirty" when Go recorded them.
func buildVersion() string {
	return describeBuild(version, debug.ReadBuildInfo)
}

// describeBuild is buildVersion with its inputs given, for tests.
func describeBuild(stamped string, read func() (*debug.BuildInfo, bool)) string {
	v := stamped
	var rev, at string
	dirty := false
	if bi, ok := read(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (" + rev
		if dirty {
			v += ", dirty"
		}
		if at != "" {
			v += ", " + at
		}
		v += ")"
	}
	return v
}

func (a *app) version(ctx context.Context, args []string) error {
	fs := a.flags("version", "")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, versionLine())
	return nil
}

// versionLine is what `version` and -version print.
func versionLine() string {
	return fmt.Sprintf("pandasync %s %s/%s %s", buildVersion(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
