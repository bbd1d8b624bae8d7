package main

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDescribeBuild(t *testing.T) {
	info := func(version string, settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: version}}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	tests := map[string]struct {
		stamped string
		read    func() (*debug.BuildInfo, bool)
		want    string
	}{
		"stamped":       {stamped: "v1.2.3", read: info("(devel)"), want: "v1.2.3"},
		"stamped wins":  {stamped: "v1.2.3", read: info("v1.0.0"), want: "v1.2.3"},
		"go install @v": {read: info("v1.4.0"), want: "v1.4.0"},
		"devel":         {read: info("(devel)"), want: "(devel)"},
		"no build info": {read: none, want: "(devel)"},
		"vcs":           {read: info("(devel)", "vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-11-26T10:00:00Z"), want: "(devel) (0123456789ab, 2026-11-26T10:00:00Z)"},
		"vcs dirty":     {read: info("(devel)", "vcs.revision", "0123456789ab", "vcs.modified", "true"), want: "(devel) (0123456789ab, dirty)"},
		"stamped + vcs": {stamped: "v2.0.0", read: info("", "vcs.revision", "abc"), want: "v2.0.0 (abc)"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, describeBuild(tt.stamped, tt.read)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
