package spec

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMappingNames(t *testing.T) {
	set, err := Load("testdata/valid/full")
	if err != nil {
		t.Fatal(err)
	}
	// helpdesk is a UserMapping after the people CollectionMapping in
	// 30-collections.yml: set order interleaves the kinds.
	want := []string{"admins", "admins-as-users", "people", "helpdesk"}
	if diff := cmp.Diff(want, set.MappingNames()); diff != "" {
		t.Errorf("MappingNames mismatch (-want +got):\n%s", diff)
	}
	if m, ok := set.UserMapping("helpdesk"); !ok || m.Spec.Role != "Agent" {
		t.Errorf(`UserMapping("helpdesk") = %+v, %t; want the Agent mapping`, m, ok)
	}
	if _, ok := set.UserMapping("people"); ok {
		t.Errorf(`UserMapping("people") found a collection mapping`)
	}
	if m, ok := set.CollectionMapping("people"); !ok || m.Spec.Collection != "People" {
		t.Errorf(`CollectionMapping("people") = %+v, %t; want the People mapping`, m, ok)
	}
}

func TestSelect(t *testing.T) {
	set, err := Load("testdata/valid/full")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		names   []string
		want    []string
		wantErr string
	}{
		"all":            {want: []string{"admins", "admins-as-users", "people", "helpdesk"}},
		"one user":       {names: []string{"helpdesk"}, want: []string{"helpdesk"}},
		"keeps order":    {names: []string{"helpdesk", "people", "admins"}, want: []string{"admins", "people", "helpdesk"}},
		"unknown":        {names: []string{"people", "nope", "nope"}, wantErr: `unknown mapping "nope" (mappings: admins, admins-as-users, people, helpdesk)`},
		"one collection": {names: []string{"people"}, want: []string{"people"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := set.Select(tt.names...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Select(%q) error = %v, want %q", tt.names, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got.MappingNames()); diff != "" {
				t.Errorf("Select(%q) mismatch (-want +got):\n%s", tt.names, diff)
			}
			if diff := cmp.Diff(set.Connection, got.Connection, ignoreFieldLines); diff != "" {
				t.Errorf("Select changed the connection (-want +got):\n%s", diff)
			}
		})
	}
	if len(set.MappingNames()) != 4 {
		t.Errorf("Select modified the original set: %q", set.MappingNames())
	}
}

func TestScheduleNext(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	now := time.Date(2025, 3, 10, 10, 20, 0, 0, berlin)
	tests := map[string]struct {
		s    Schedule
		want time.Time
	}{
		"no start":             {s: Schedule{Every: Duration{time.Hour}}, want: now},
		"clock hourly":         {s: Schedule{Start: "02:00", Every: Duration{time.Hour}}, want: time.Date(2025, 3, 10, 11, 0, 0, 0, berlin)},
		"clock daily":          {s: Schedule{Start: "02:00", Every: Duration{24 * time.Hour}}, want: time.Date(2025, 3, 11, 2, 0, 0, 0, berlin)},
		"clock later today":    {s: Schedule{Start: "23:30", Every: Duration{24 * time.Hour}}, want: time.Date(2025, 3, 10, 23, 30, 0, 0, berlin)},
		"clock before, hourly": {s: Schedule{Start: "23:30", Every: Duration{time.Hour}}, want: time.Date(2025, 3, 10, 10, 30, 0, 0, berlin)},
		"clock exactly now":    {s: Schedule{Start: "10:20", Every: Duration{time.Hour}}, want: now},
		"rfc3339 future":       {s: Schedule{Start: "2025-03-12T02:00:00+01:00", Every: Duration{time.Hour}}, want: time.Date(2025, 3, 12, 2, 0, 0, 0, berlin)},
		"rfc3339 past":         {s: Schedule{Start: "2025-03-01T02:05:00Z", Every: Duration{6 * time.Hour}}, want: time.Date(2025, 3, 10, 14, 5, 0, 0, time.UTC)},
		"default every":        {s: Schedule{Start: "02:00"}, want: time.Date(2025, 3, 10, 11, 0, 0, 0, berlin)},
		"every thirty minutes": {s: Schedule{Start: "00:10", Every: Duration{30 * time.Minute}}, want: time.Date(2025, 3, 10, 10, 40, 0, 0, berlin)},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got := tt.s.Next(now)
			if !got.Equal(tt.want) {
				t.Errorf("Next(%s) = %s, want %s", now, got, tt.want)
			}
		})
	}
}

// TestCheckReferences reports each {env} and {file} value that cannot be
// read, with its line, and never a value.
func TestCheckReferences(t *testing.T) {
	set, err := Load("testdata/valid/minimal")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		env  map[string]string
		want []string
	}{
		"all there": {env: map[string]string{"AD_PASSWORD": "CANARY-1", "AP_PASSWORD": "CANARY-2"}, want: nil},
		"missing": {env: map[string]string{"AD_PASSWORD": ""}, want: []string{
			`testdata/valid/minimal/spec.yaml:10 (document 1, Connection "corp"): spec.directory.password: environment variable AD_PASSWORD is empty`,
			`testdata/valid/minimal/spec.yaml:15 (document 1, Connection "corp"): spec.assetPanda.password: environment variable AP_PASSWORD is not set`,
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := Resolver{
				LookupEnv: func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok },
				ReadFile:  func(string) ([]byte, error) { return []byte("CANARY-3\n"), nil },
			}
			var got []string
			for _, p := range set.CheckReferences(r) {
				got = append(got, p.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// The secret file is missing.
	r := Resolver{LookupEnv: func(string) (string, bool) { return "x", true }}
	ps := set.CheckReferences(r)
	if len(ps) != 1 || ps[0].Path != "spec.assetPanda.clientSecret" || ps[0].Line != 13 {
		t.Errorf("with /run/secrets/ap-client-secret missing: %v", ps)
	}
}

// TestCheckReferencesPolicy covers the SyncPolicy's references: webhook
// URLs and the admin token.
func TestCheckReferencesPolicy(t *testing.T) {
	set, err := Load("testdata/valid/full")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range set.CheckReferences(Resolver{LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile: func(string) ([]byte, error) { return []byte("x"), nil }}) {
		if p.Kind == KindSyncPolicy {
			got = append(got, fmt.Sprintf("%s:%d %s", p.Path, p.Line, p.Message))
		}
	}
	want := []string{"spec.webhooks[0].url:13 environment variable PANDASYNC_SLACK_URL is not set"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
