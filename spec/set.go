package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// MappingNames returns the names of all mappings, user and collection, in
// set order: by file, then by position in the file.
func (s *Set) MappingNames() []string {
	type entry struct {
		file, doc int
		name      string
	}
	fileIndex := make(map[string]int, len(s.Files))
	for i, f := range s.Files {
		fileIndex[f] = i
	}
	entries := make([]entry, 0, len(s.UserMappings)+len(s.CollectionMappings))
	for _, m := range s.UserMappings {
		entries = append(entries, entry{fileIndex[m.File], m.Document, m.Metadata.Name})
	}
	for _, m := range s.CollectionMappings {
		entries = append(entries, entry{fileIndex[m.File], m.Document, m.Metadata.Name})
	}
	slices.SortStableFunc(entries, func(a, b entry) int {
		if a.file != b.file {
			return a.file - b.file
		}
		return a.doc - b.doc
	})
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.name
	}
	return names
}

// UserMapping returns the user mapping called name.
func (s *Set) UserMapping(name string) (UserMapping, bool) {
	for _, m := range s.UserMappings {
		if m.Metadata.Name == name {
			return m, true
		}
	}
	return UserMapping{}, false
}

// CollectionMapping returns the collection mapping called name.
func (s *Set) CollectionMapping(name string) (CollectionMapping, bool) {
	for _, m := range s.CollectionMappings {
		if m.Metadata.Name == name {
			return m, true
		}
	}
	return CollectionMapping{}, false
}

// Select returns a copy of the set holding only the named mappings (user or
// collection), in set order; the Connection, Policy and Files are kept. No
// names selects every mapping. An unknown name is an error that lists the
// known ones.
func (s *Set) Select(names ...string) (*Set, error) {
	out := *s
	out.Files = slices.Clone(s.Files)
	if len(names) == 0 {
		out.UserMappings = slices.Clone(s.UserMappings)
		out.CollectionMappings = slices.Clone(s.CollectionMappings)
		return &out, nil
	}
	known := s.MappingNames()
	var unknown []string
	for _, n := range names {
		if !slices.Contains(known, n) && !slices.Contains(unknown, n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown mapping %s (mappings: %s)", quoteList(unknown), strings.Join(known, ", "))
	}
	out.UserMappings = nil
	for _, m := range s.UserMappings {
		if slices.Contains(names, m.Metadata.Name) {
			out.UserMappings = append(out.UserMappings, m)
		}
	}
	out.CollectionMappings = nil
	for _, m := range s.CollectionMappings {
		if slices.Contains(names, m.Metadata.Name) {
			out.CollectionMappings = append(out.CollectionMappings, m)
		}
	}
	return &out, nil
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// Next returns the first scheduled run at or after now. Runs happen at
// Start plus any whole number of Every intervals: with start "02:00" and
// every 1h a process started at 10:20 first runs at 11:00; with every 24h,
// at 02:00 the next day. An "HH:MM" start is taken in now's location; an RFC
// 3339 start in the future is the first run. An empty Start means now. The
// schedule must have been validated (Load does it); Every ≤ 0 counts as
// DefaultEvery.
func (s Schedule) Next(now time.Time) time.Time {
	every := s.Every.Duration
	if every <= 0 {
		every = DefaultEvery
	}
	if s.Start == "" {
		return now
	}
	anchor, clock, err := parseStart(s.Start)
	if err != nil {
		return now
	}
	if clock {
		anchor = time.Date(now.Year(), now.Month(), now.Day(), anchor.Hour(), anchor.Minute(), 0, 0, now.Location())
	} else if !anchor.Before(now) {
		return anchor
	}
	// The smallest anchor + k*every that is not before now, for any
	// integer k.
	d := now.Sub(anchor)
	k := d / every
	next := anchor.Add(k * every)
	if next.Before(now) {
		next = next.Add(every)
	}
	return next
}

// parseStart parses a schedule start: "HH:MM" (clock is true; only the hour
// and minute of t count) or an RFC 3339 timestamp.
func parseStart(s string) (t time.Time, clock bool, err error) {
	if t, err := time.Parse("15:04", s); err == nil && len(s) == len("15:04") {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, false, nil
	}
	return time.Time{}, false, errors.New(`must be "HH:MM" (local time, 24-hour) or an RFC 3339 timestamp such as "2025-01-31T02:00:00+01:00", got ` + fmt.Sprintf("%q", s))
}
