// Package spec defines pandasync's desired-state documents and loads them.
//
// A spec set is any number of YAML files, each holding one or more documents
// separated by "---". Every document has apiVersion pandasync.dev/v1alpha1, a
// kind (Connection, UserMapping, CollectionMapping or SyncPolicy), a
// metadata.name unique per kind, and a spec. Load decodes the documents
// strictly (unknown or duplicate fields are errors), fills in defaults and
// validates the whole set, reporting every problem at once with its file,
// document and field path.
package spec

import (
	"log/slog"
	"time"
)

// APIVersion is the only apiVersion this package accepts.
const APIVersion = "pandasync.dev/v1alpha1"

// The document kinds.
const (
	KindConnection        = "Connection"
	KindUserMapping       = "UserMapping"
	KindCollectionMapping = "CollectionMapping"
	KindSyncPolicy        = "SyncPolicy"
)

// Set is a loaded, defaulted and validated spec: exactly one Connection, any
// number of mappings, and one SyncPolicy (defaulted when none is given).
//
// Mappings are ordered by file name, then by their position in the file: a
// person in several user mappings of one module gets the role of the first.
type Set struct {
	Connection         Connection
	UserMappings       []UserMapping
	CollectionMappings []CollectionMapping
	Policy             SyncPolicy
	// Files lists the files the set was loaded from, in load order.
	Files []string
}

// Metadata names a document.
type Metadata struct {
	Name string `json:"name"`
}

// Source records where a document came from, for error messages.
type Source struct {
	File     string `json:"-"`
	Document int    `json:"-"` // 1-based index of the document in its file
	// Line is the 1-based line of the document's first content line in
	// File; 0 for documents not loaded from a file.
	Line int `json:"-"`
	// lines locates the document's fields (see LineOf).
	lines lineIndex
}

// LineOf returns the line in File where the field at path (for example
// "spec.module") is written, or the line of its nearest enclosing field,
// or the document's first line; 0 when the document was not loaded from a
// file.
func (s Source) LineOf(path string) int {
	if l := s.lines.lineOf(path); l > 0 {
		return l
	}
	return s.Line
}

// Connection says how to reach Active Directory and Asset Panda.
type Connection struct {
	Source   `json:"-"`
	Metadata Metadata       `json:"metadata"`
	Spec     ConnectionSpec `json:"spec"`
}

// ConnectionSpec is the body of a Connection document.
type ConnectionSpec struct {
	Directory  DirectorySpec  `json:"directory"`
	AssetPanda AssetPandaSpec `json:"assetPanda"`
}

// DirectorySpec configures the LDAP connection to Active Directory.
type DirectorySpec struct {
	URLs               []Value `json:"urls"`
	BaseDN             Value   `json:"baseDN"`
	BindDN             Value   `json:"bindDN"`
	Password           Value   `json:"password"`
	StartTLS           bool    `json:"startTLS,omitempty"`
	CAFile             Value   `json:"caFile,omitempty"`
	InsecureSkipVerify bool    `json:"insecureSkipVerify,omitempty"`
	AllowCleartextBind bool    `json:"allowCleartextBind,omitempty"`
	// Timeout bounds each LDAP request; default 30s.
	Timeout Duration `json:"timeout,omitempty"`
}

// AssetPandaSpec configures the Asset Panda API client.
type AssetPandaSpec struct {
	URL          Value     `json:"url"`
	ClientID     Value     `json:"clientID"`
	ClientSecret Value     `json:"clientSecret"`
	Email        Value     `json:"email"`
	Password     Value     `json:"password"`
	RateLimit    RateLimit `json:"rateLimit,omitempty"`
}

// RateLimit is a request budget: Requests per Per. Defaults: 400 per 180s.
type RateLimit struct {
	Requests int      `json:"requests,omitempty"`
	Per      Duration `json:"per,omitempty"`
}

// UserMapping turns the members of an AD group into Asset Panda users with a
// role in one module.
//
// Several mappings may name the same group and module with different roles;
// their order matters, as the first one gives the role. The same account,
// module, role and group twice is an error.
type UserMapping struct {
	Source   `json:"-"`
	Metadata Metadata        `json:"metadata"`
	Spec     UserMappingSpec `json:"spec"`
}

// UserMappingSpec is the body of a UserMapping document.
type UserMappingSpec struct {
	Account string `json:"account"`
	Module  string `json:"module"`
	Role    string `json:"role"`
	Group   string `json:"group"`
	// Nested includes members of nested groups; default true (see
	// IncludeNested).
	Nested *bool      `json:"nested,omitempty"`
	Fields UserFields `json:"fields,omitempty"`
	// OnRemove is what happens to a managed user who leaves the group, is
	// disabled or deleted: "deactivate" (default) or "ignore".
	OnRemove string `json:"onRemove,omitempty"`
}

// UserFields names the AD attributes user fields come from.
type UserFields struct {
	// Email defaults to "mail"; when the attribute is empty the
	// userPrincipalName is used.
	Email     string `json:"email,omitempty"`
	FirstName string `json:"firstName,omitempty"` // default givenName
	LastName  string `json:"lastName,omitempty"`  // default sn
}

// CollectionMapping turns the members of an AD group into records of an
// Asset Panda collection, keyed by a field that holds their objectSid.
type CollectionMapping struct {
	Source   `json:"-"`
	Metadata Metadata              `json:"metadata"`
	Spec     CollectionMappingSpec `json:"spec"`
}

// CollectionMappingSpec is the body of a CollectionMapping document.
type CollectionMappingSpec struct {
	Account    string         `json:"account"`
	Module     string         `json:"module"`
	Collection string         `json:"collection"`
	Group      string         `json:"group"`
	Nested     *bool          `json:"nested,omitempty"` // default true (see IncludeNested)
	Key        KeyField       `json:"key"`
	Fields     []FieldMapping `json:"fields,omitempty"`
	Status     *StatusField   `json:"status,omitempty"`
	// OnRemove is what happens to a managed record whose person left the
	// group, was disabled or deleted: "inactive" (default) or "ignore".
	OnRemove string `json:"onRemove,omitempty"`
}

// KeyField is the unique field that identifies a record, fed from an AD
// attribute (objectSid by default).
type KeyField struct {
	Field     string `json:"field"`
	Attribute string `json:"attribute,omitempty"` // default objectSid
}

// FieldMapping feeds one Asset Panda field from one AD attribute.
type FieldMapping struct {
	Field     string `json:"field"`
	Attribute string `json:"attribute"`
}

// StatusField is a single-select field kept Active or Inactive.
type StatusField struct {
	Field    string `json:"field,omitempty"`    // default "Integration Status AD"
	Active   string `json:"active,omitempty"`   // default "Active"
	Inactive string `json:"inactive,omitempty"` // default "Inactive"
}

// SyncPolicy holds the schedule, the safety limits and the suspend switch.
type SyncPolicy struct {
	Source   `json:"-"`
	Metadata Metadata       `json:"metadata"`
	Spec     SyncPolicySpec `json:"spec"`
}

// SyncPolicySpec is the body of a SyncPolicy document.
type SyncPolicySpec struct {
	Schedule Schedule `json:"schedule,omitempty"`
	Limits   Limits   `json:"limits,omitempty"`
	// Suspend plans but never writes (staging mode).
	Suspend bool `json:"suspend,omitempty"`
	// RunAtStart makes `pandasync run` run a pass as soon as it has loaded
	// the spec, then follow the schedule; default true. With false the
	// first pass waits for the schedule's first slot.
	RunAtStart *bool `json:"runAtStart,omitempty"`
	// DegradedAfter is the number of failed passes in a row after which
	// the loop reports itself degraded; default 3, at least 1.
	DegradedAfter int `json:"degradedAfter,omitempty"`
	// Quarantine slows the loop down after many failed passes in a row.
	Quarantine Quarantine `json:"quarantine,omitempty"`
	// Webhooks are notified of failed passes, blocked changes, a degraded
	// or quarantined loop, and its recovery.
	Webhooks []Webhook `json:"webhooks,omitempty"`
	// Admin configures the admin listener of `pandasync run`.
	Admin Admin `json:"admin,omitempty"`
	// ChangeTracking makes `pandasync run` read only what changed in AD
	// between full reads.
	ChangeTracking ChangeTracking `json:"changeTracking,omitempty"`
}

// The values of ChangeTracking.Method.
const (
	// ChangeTrackingUSN polls the directory for objects whose uSNChanged
	// is above the last pass's watermark; read rights are enough.
	ChangeTrackingUSN = "usn"
	// ChangeTrackingDirSync uses the DirSync control with its
	// object-security flag, falling back to uSNChanged where DirSync
	// cannot serve (a baseDN that is not a naming context).
	ChangeTrackingDirSync = "dirsync"
	// ChangeTrackingOff reads everything on every pass.
	ChangeTrackingOff = "off"
)

// ChangeTracking says how `pandasync run` follows changes between full
// reads. With a method other than off, a pass runs every Every and reads
// from AD only what changed since the previous one (and from Asset Panda
// only the records modified since); a full read of both sides happens at
// start-up, after a spec change, when the directory cannot serve a delta,
// and every FullEvery. Defaults: method usn, every the schedule's every,
// fullEvery 24h.
type ChangeTracking struct {
	Method    string   `json:"method,omitempty"`
	Every     Duration `json:"every,omitempty"`
	FullEvery Duration `json:"fullEvery,omitempty"`
}

// Enabled reports whether passes read only what changed between full
// reads.
func (c ChangeTracking) Enabled() bool { return c.Method != ChangeTrackingOff }

// PassSchedule is when `pandasync run` runs passes: the schedule, with
// the change tracking interval as its repeat interval when change tracking
// is on.
func (s SyncPolicySpec) PassSchedule() Schedule {
	sch := s.Schedule
	if s.ChangeTracking.Enabled() && s.ChangeTracking.Every.Duration > 0 {
		sch.Every = s.ChangeTracking.Every
	}
	return sch
}

// Quarantine is the slow mode of the loop: after After failed passes in a
// row it stops retrying quickly and runs one pass every RetryEvery (never
// more often than the schedule) until a pass succeeds. A spec change,
// SIGHUP or POST /sync still runs a pass at once. Defaults: 10 and 4h; a
// negative After disables quarantine and is stored as Disabled by Load.
type Quarantine struct {
	After      int      `json:"after,omitempty"`
	RetryEvery Duration `json:"retryEvery,omitempty"`
}

// The webhook formats.
const (
	WebhookJSON  = "json"  // pandasync's own JSON object (default)
	WebhookSlack = "slack" // a Slack incoming webhook
	WebhookTeams = "teams" // a Microsoft Teams workflow webhook (Adaptive Card)
)

// Webhook is an HTTP endpoint told about what needs a person. URL may be a
// literal, {env: NAME} or {file: PATH}; as webhook URLs often hold a token,
// it is never logged.
type Webhook struct {
	// Name labels the webhook in logs and metrics; default "webhook-N"
	// (N counting from 1 in the list).
	Name   string `json:"name,omitempty"`
	URL    Value  `json:"url"`
	Format string `json:"format,omitempty"` // json (default), slack or teams
}

// String names the webhook and its format, never its URL.
func (w Webhook) String() string { return w.Name + " (" + w.Format + ")" }

// GoString is String, so that %#v does not print the URL either.
func (w Webhook) GoString() string { return "spec.Webhook{" + w.String() + "}" }

// LogValue logs the webhook's name and format, never its URL.
func (w Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", w.Name), slog.String("format", w.Format))
}

// Admin configures the admin listener.
type Admin struct {
	// Token, when set, is the bearer token that POST /sync and every other
	// request that is not read-only must carry. It is required when the
	// listener is reachable from other hosts. {env: NAME} or {file: PATH},
	// never a literal.
	Token Value `json:"token,omitempty"`
}

// Schedule says when `pandasync run` reconciles: first at Start, then every
// Every. Start is "HH:MM" local time or an RFC 3339 timestamp; empty means
// now. Every is at least MinEvery (1m); Next computes the run times.
type Schedule struct {
	Start string   `json:"start,omitempty"`
	Every Duration `json:"every,omitempty"` // default 1h
}

// Limits caps, per mapping and run, the changes that take something away
// from people, and the creates. Each limit is a count and a percentage of
// the mapping's active managed objects. A zero value takes the default; a
// negative value disables that limit and is stored as Disabled (-1) by
// Load, so after Load a limit is either positive or Disabled. Percentages
// are at most 100.
//
// Defaults: deactivations, role changes and field clears 500 and 20 %;
// creates are not limited (a first load creates everyone).
type Limits struct {
	// MaxDeactivations and MaxDeactivationPercent cap users deactivated
	// and records set Inactive.
	MaxDeactivations       int `json:"maxDeactivations,omitempty"`
	MaxDeactivationPercent int `json:"maxDeactivationPercent,omitempty"`
	// MaxRoleChanges and MaxRoleChangePercent cap users whose role in a
	// module changes from one role to another.
	MaxRoleChanges       int `json:"maxRoleChanges,omitempty"`
	MaxRoleChangePercent int `json:"maxRoleChangePercent,omitempty"`
	// MaxFieldClears and MaxFieldClearPercent cap objects that would have a
	// field with a value emptied.
	MaxFieldClears       int `json:"maxFieldClears,omitempty"`
	MaxFieldClearPercent int `json:"maxFieldClearPercent,omitempty"`
	// MaxCreates and MaxCreatePercent cap users and records created.
	MaxCreates       int `json:"maxCreates,omitempty"`
	MaxCreatePercent int `json:"maxCreatePercent,omitempty"`
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("90s", "1h").
type Duration struct {
	time.Duration
}

// Value is a string given literally or read from the environment or a file:
//
//	url: https://api.assetpanda.com
//	password: {env: PANDASYNC_AD_PASSWORD}
//	password: {file: /run/secrets/ad-password}
//
// Exactly one of Literal, Env or File is set. Secrets (passwords, client
// secrets) must not be literals.
type Value struct {
	Literal string
	Env     string
	File    string
}

// IncludeNested reports whether members of nested groups count. Load sets
// Nested; a nil Nested, in a set built by hand, is the default.
func (s UserMappingSpec) IncludeNested() bool { return nestedOrDefault(s.Nested) }

// IncludeNested reports whether members of nested groups count. Load sets
// Nested; a nil Nested, in a set built by hand, is the default.
func (s CollectionMappingSpec) IncludeNested() bool { return nestedOrDefault(s.Nested) }

func nestedOrDefault(b *bool) bool {
	if b == nil {
		return DefaultNested
	}
	return *b
}
