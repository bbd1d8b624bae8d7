package spec

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Defaults filled in by Load.
const (
	// DefaultAssetPandaURL is the Asset Panda API used when assetPanda.url
	// is not given.
	DefaultAssetPandaURL = "https://api.assetpanda.com"
	// DefaultTimeout bounds each LDAP request.
	DefaultTimeout = 30 * time.Second
	// DefaultRateLimitRequests and DefaultRateLimitPer are Asset Panda's
	// documented budget: 400 requests per 180 seconds.
	DefaultRateLimitRequests = 400
	DefaultRateLimitPer      = 180 * time.Second
	// DefaultKeyAttribute feeds a collection mapping's key field.
	DefaultKeyAttribute = "objectSid"
	// DefaultStatusField, DefaultStatusActive and DefaultStatusInactive
	// fill in a collection mapping's status when `status: {}` is given.
	DefaultStatusField    = "Integration Status AD"
	DefaultStatusActive   = "Active"
	DefaultStatusInactive = "Inactive"
	// DefaultEvery is the schedule's repeat interval.
	DefaultEvery = time.Hour
	// MinEvery is the shortest repeat interval accepted.
	MinEvery = time.Minute
	// DefaultMaxDeactivations and DefaultMaxDeactivationPercent are the
	// safety limits per mapping per run; role changes and field clears
	// default to the same figures. Creates are not limited by default.
	DefaultMaxDeactivations       = 500
	DefaultMaxDeactivationPercent = 20
	DefaultMaxRoleChanges         = 500
	DefaultMaxRoleChangePercent   = 20
	DefaultMaxFieldClears         = 500
	DefaultMaxFieldClearPercent   = 20
	DefaultMaxCreates             = Disabled
	DefaultMaxCreatePercent       = Disabled
	// DefaultNested is whether members of nested groups count.
	DefaultNested = true
	// DefaultPolicyName names the SyncPolicy Load makes up when the set has
	// none.
	DefaultPolicyName = "default"
	// DefaultDegradedAfter is the number of failed passes in a row after
	// which the loop reports itself degraded.
	DefaultDegradedAfter = 3
	// DefaultQuarantineAfter and DefaultQuarantineRetryEvery configure the
	// loop's slow mode after many failed passes in a row.
	DefaultQuarantineAfter      = 10
	DefaultQuarantineRetryEvery = 4 * time.Hour
	// DefaultChangeTracking is the change tracking method; the poll
	// interval defaults to the schedule's every.
	DefaultChangeTracking = ChangeTrackingUSN
	// DefaultFullEvery is the interval of full reads under change
	// tracking.
	DefaultFullEvery = 24 * time.Hour
	// MinChangeTrackingEvery is the shortest poll interval accepted with
	// change tracking on.
	MinChangeTrackingEvery = 10 * time.Second
)

// The values of UserMappingSpec.OnRemove and CollectionMappingSpec.OnRemove.
const (
	OnRemoveDeactivate = "deactivate" // users: deactivate (default)
	OnRemoveInactive   = "inactive"   // records: set the status Inactive (default)
	OnRemoveIgnore     = "ignore"     // leave the object alone
)

// Disabled is the value a limit holds after Load when the spec disabled it
// with a negative number.
const Disabled = -1

func defaultConnection(c *Connection) {
	d := &c.Spec.Directory
	if d.Timeout.Duration == 0 {
		d.Timeout.Duration = DefaultTimeout
	}
	a := &c.Spec.AssetPanda
	if a.URL.IsZero() {
		a.URL = Value{Literal: DefaultAssetPandaURL}
	}
	if a.RateLimit.Requests == 0 {
		a.RateLimit.Requests = DefaultRateLimitRequests
	}
	if a.RateLimit.Per.Duration == 0 {
		a.RateLimit.Per.Duration = DefaultRateLimitPer
	}
}

func defaultUserMapping(m *UserMapping) {
	s := &m.Spec
	if s.Nested == nil {
		s.Nested = ptr(DefaultNested)
	}
	if s.Fields.Email == "" {
		s.Fields.Email = "mail"
	}
	if s.Fields.FirstName == "" {
		s.Fields.FirstName = "givenName"
	}
	if s.Fields.LastName == "" {
		s.Fields.LastName = "sn"
	}
	if s.OnRemove == "" {
		s.OnRemove = OnRemoveDeactivate
	}
}

func defaultCollectionMapping(m *CollectionMapping) {
	s := &m.Spec
	if s.Nested == nil {
		s.Nested = ptr(DefaultNested)
	}
	if s.Key.Attribute == "" {
		s.Key.Attribute = DefaultKeyAttribute
	}
	if st := s.Status; st != nil {
		if st.Field == "" {
			st.Field = DefaultStatusField
		}
		if st.Active == "" {
			st.Active = DefaultStatusActive
		}
		if st.Inactive == "" {
			st.Inactive = DefaultStatusInactive
		}
	}
	if s.OnRemove == "" {
		s.OnRemove = OnRemoveInactive
	}
}

func defaultSyncPolicy(p *SyncPolicy) {
	s := &p.Spec
	if s.Schedule.Every.Duration == 0 {
		s.Schedule.Every.Duration = DefaultEvery
	}
	l := &s.Limits
	l.MaxDeactivations = defaultLimit(l.MaxDeactivations, DefaultMaxDeactivations)
	l.MaxDeactivationPercent = defaultLimit(l.MaxDeactivationPercent, DefaultMaxDeactivationPercent)
	l.MaxRoleChanges = defaultLimit(l.MaxRoleChanges, DefaultMaxRoleChanges)
	l.MaxRoleChangePercent = defaultLimit(l.MaxRoleChangePercent, DefaultMaxRoleChangePercent)
	l.MaxFieldClears = defaultLimit(l.MaxFieldClears, DefaultMaxFieldClears)
	l.MaxFieldClearPercent = defaultLimit(l.MaxFieldClearPercent, DefaultMaxFieldClearPercent)
	l.MaxCreates = defaultLimit(l.MaxCreates, DefaultMaxCreates)
	l.MaxCreatePercent = defaultLimit(l.MaxCreatePercent, DefaultMaxCreatePercent)
	defaultRuntime(s)
}

// defaultRuntime fills in the SyncPolicy fields `pandasync run` reads.
func defaultRuntime(s *SyncPolicySpec) {
	if s.RunAtStart == nil {
		s.RunAtStart = ptr(true)
	}
	if s.DegradedAfter == 0 {
		s.DegradedAfter = DefaultDegradedAfter
	}
	s.Quarantine.After = defaultLimit(s.Quarantine.After, DefaultQuarantineAfter)
	ct := &s.ChangeTracking
	if ct.Method == "" {
		ct.Method = DefaultChangeTracking
	}
	if ct.Every.Duration == 0 {
		ct.Every = s.Schedule.Every // defaulted by defaultSyncPolicy
	}
	if ct.FullEvery.Duration == 0 {
		ct.FullEvery.Duration = DefaultFullEvery
	}
	if s.Quarantine.RetryEvery.Duration == 0 {
		s.Quarantine.RetryEvery.Duration = DefaultQuarantineRetryEvery
	}
	for i := range s.Webhooks {
		w := &s.Webhooks[i]
		if w.Name == "" {
			w.Name = fmt.Sprintf("webhook-%d", i+1)
		}
		if w.Format == "" {
			w.Format = WebhookJSON
		}
	}
}

// defaultLimit maps 0 to def and any negative number to Disabled.
func defaultLimit(v, def int) int {
	switch {
	case v == 0:
		return def
	case v < 0:
		return Disabled
	default:
		return v
	}
}

func ptr[T any](v T) *T { return &v }

// validateName checks metadata.name.
func validateName(ctx docContext, name string) {
	const p = "metadata.name"
	switch {
	case name == "":
		ctx.add(p, "required")
	case len(name) > 63:
		ctx.add(p, "must be at most 63 characters, got %d", len(name))
	case !isDNSLabel(name):
		ctx.add(p, "must consist of lower-case letters, digits and '-', and start and end with a letter or digit, got %q", name)
	}
}

// isDNSLabel reports whether s matches [a-z0-9]([-a-z0-9]*[a-z0-9])?.
func isDNSLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return s != ""
}

// validateRef checks the env or file reference of a Value.
func validateRef(ctx docContext, path string, v Value) {
	if v.Env != "" && !isEnvName(v.Env) {
		// The name is not quoted: it might be a secret typed in the wrong
		// place.
		ctx.add(join(path, "env"), "not a valid environment variable name (letters, digits and _, not starting with a digit)")
	}
}

// isEnvName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// validateRequired checks that v is a reference or a non-blank literal and
// returns the literal to check further ("" for references).
func validateRequired(ctx docContext, path string, v Value) (literal string, ok bool) {
	validateRef(ctx, path, v)
	if !v.IsLiteral() {
		return "", false
	}
	if strings.TrimSpace(v.Literal) == "" {
		ctx.add(path, "required")
		return "", false
	}
	return v.Literal, true
}

// validateSecret checks that v is a reference to the environment or a file.
// The message never includes a literal's value.
func validateSecret(ctx docContext, path string, v Value) {
	validateRef(ctx, path, v)
	switch {
	case !v.IsLiteral():
	case v.Literal == "":
		ctx.add(path, "required, as {env: NAME} or {file: PATH}")
	default:
		ctx.add(path, "must be {env: NAME} or {file: PATH}, not a literal")
	}
}

// required checks that a plain string field is not blank.
func required(ctx docContext, path, s string) bool {
	if strings.TrimSpace(s) == "" {
		ctx.add(path, "required")
		return false
	}
	return true
}

// validateDN checks that s parses as a non-empty distinguished name.
func validateDN(ctx docContext, path, s string) {
	dn, err := ldap.ParseDN(s)
	switch {
	case err != nil:
		ctx.add(path, "not a valid DN: %v", err)
	case len(dn.RDNs) == 0:
		ctx.add(path, "not a valid DN: no RDNs")
	}
}

// validateAttribute checks an LDAP attribute description: a name
// ([A-Za-z][A-Za-z0-9-]*) or a numeric OID.
func validateAttribute(ctx docContext, path, s string) {
	if !required(ctx, path, s) {
		return
	}
	if !isAttributeName(s) {
		ctx.add(path, "%q is not an LDAP attribute name (letters, digits and '-', starting with a letter, or a numeric OID)", s)
	}
}

func isAttributeName(s string) bool {
	if s == "" {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' {
		prevDot := true
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c >= '0' && c <= '9':
				prevDot = false
			case c == '.' && !prevDot:
				prevDot = true
			default:
				return false
			}
		}
		return !prevDot
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case (c >= '0' && c <= '9' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func validateConnection(ctx docContext, c *Connection) {
	validateName(ctx, c.Metadata.Name)
	d := c.Spec.Directory
	const dp = "spec.directory"
	if len(d.URLs) == 0 {
		ctx.add(join(dp, "urls"), "required: at least one ldap:// or ldaps:// URL")
	}
	for i, u := range d.URLs {
		p := index(join(dp, "urls"), i)
		if s, ok := validateRequired(ctx, p, u); ok {
			if msg := CheckDirectoryURL(s, d.StartTLS, d.AllowCleartextBind); msg != nil {
				ctx.add(p, "%s", msg)
			}
		}
	}
	if s, ok := validateRequired(ctx, join(dp, "baseDN"), d.BaseDN); ok {
		validateDN(ctx, join(dp, "baseDN"), s)
	}
	if s, ok := validateRequired(ctx, join(dp, "bindDN"), d.BindDN); ok {
		if strings.Contains(s, "=") {
			validateDN(ctx, join(dp, "bindDN"), s)
		} else if !strings.Contains(s, "@") && !strings.Contains(s, `\`) {
			ctx.add(join(dp, "bindDN"), "must be a DN (CN=...,DC=...) or a user principal name (user@domain)")
		}
	}
	validateSecret(ctx, join(dp, "password"), d.Password)
	validateRef(ctx, join(dp, "caFile"), d.CAFile)
	if !d.CAFile.IsZero() && d.InsecureSkipVerify {
		ctx.add(join(dp, "insecureSkipVerify"), "cannot be combined with caFile: either verify the server with the CA in caFile, or skip verification (unsafe)")
	}
	if d.Timeout.Duration < 0 {
		ctx.add(join(dp, "timeout"), "must be positive")
	}

	a := c.Spec.AssetPanda
	const ap = "spec.assetPanda"
	if s, ok := validateRequired(ctx, join(ap, "url"), a.URL); ok {
		if msg := checkHTTPURL(s); msg != "" {
			ctx.add(join(ap, "url"), "%s", msg)
		}
	}
	validateRequired(ctx, join(ap, "clientID"), a.ClientID)
	validateSecret(ctx, join(ap, "clientSecret"), a.ClientSecret)
	if s, ok := validateRequired(ctx, join(ap, "email"), a.Email); ok && !strings.Contains(s, "@") {
		ctx.add(join(ap, "email"), "must be an email address")
	}
	validateSecret(ctx, join(ap, "password"), a.Password)
	if a.RateLimit.Requests < 0 {
		ctx.add(join(ap, "rateLimit.requests"), "must be positive")
	}
	if a.RateLimit.Per.Duration < 0 {
		ctx.add(join(ap, "rateLimit.per"), "must be positive")
	}
}

// CheckDirectoryURL checks one directory URL: ldap:// or ldaps://, a host,
// no path, and no password in clear text: plain ldap:// needs startTLS or
// allowCleartextBind, and ldaps:// excludes startTLS. Load applies it to
// literal URLs; a caller resolving a URL from the environment or a file
// should apply it to the result.
func CheckDirectoryURL(raw string, startTLS, allowCleartextBind bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a valid URL: %w", urlErrorCause(err))
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" {
		return errors.New("must be an ldap:// or ldaps:// URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("has no host")
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("must be %s://HOST[:PORT] with nothing after the port (the base DN goes in baseDN)", u.Scheme)
	}
	if u.Scheme == "ldaps" && startTLS {
		return errors.New("startTLS: true cannot be used with ldaps:// (the connection is already TLS); use ldap:// with startTLS, or ldaps:// without it")
	}
	if u.Scheme == "ldap" && !startTLS && !allowCleartextBind {
		return errors.New("ldap:// without TLS would send the bind password in clear text; use an ldaps:// URL, or set startTLS: true, or set allowCleartextBind: true (only for tests and loopback servers)")
	}
	return nil
}

// urlErrorCause strips the URL, which may hold credentials, from a
// url.Parse error.
func urlErrorCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// checkHTTPURL checks the Asset Panda URL.
func checkHTTPURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("not a valid URL: %v", urlErrorCause(err))
	case u.Scheme != "https" && u.Scheme != "http":
		return "must be an https:// (or http://) URL"
	case u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not contain credentials"
	}
	return ""
}

func validateUserMapping(ctx docContext, m *UserMapping) {
	validateName(ctx, m.Metadata.Name)
	s := m.Spec
	required(ctx, "spec.account", s.Account)
	required(ctx, "spec.module", s.Module)
	required(ctx, "spec.role", s.Role)
	if required(ctx, "spec.group", s.Group) {
		validateDN(ctx, "spec.group", s.Group)
	}
	validateAttribute(ctx, "spec.fields.email", s.Fields.Email)
	validateAttribute(ctx, "spec.fields.firstName", s.Fields.FirstName)
	validateAttribute(ctx, "spec.fields.lastName", s.Fields.LastName)
	if s.OnRemove != OnRemoveDeactivate && s.OnRemove != OnRemoveIgnore {
		ctx.add("spec.onRemove", "must be %q or %q, got %q", OnRemoveDeactivate, OnRemoveIgnore, s.OnRemove)
	}
}

func validateCollectionMapping(ctx docContext, m *CollectionMapping) {
	validateName(ctx, m.Metadata.Name)
	s := m.Spec
	required(ctx, "spec.account", s.Account)
	required(ctx, "spec.module", s.Module)
	required(ctx, "spec.collection", s.Collection)
	if required(ctx, "spec.group", s.Group) {
		validateDN(ctx, "spec.group", s.Group)
	}
	required(ctx, "spec.key.field", s.Key.Field)
	validateAttribute(ctx, "spec.key.attribute", s.Key.Attribute)

	statusField := ""
	if st := s.Status; st != nil {
		statusField = st.Field
		if strings.EqualFold(st.Field, s.Key.Field) {
			ctx.add("spec.status.field", "%q is already the key field", st.Field)
		}
		if strings.EqualFold(st.Active, st.Inactive) {
			ctx.add("spec.status.inactive", "must differ from active (%q)", st.Active)
		}
	}
	seen := make(map[string]int)
	for i, f := range s.Fields {
		p := index("spec.fields", i)
		if required(ctx, join(p, "field"), f.Field) {
			key := strings.ToLower(f.Field)
			switch j, dup := seen[key]; {
			case dup:
				ctx.add(join(p, "field"), "%q is already mapped by spec.fields[%d]", f.Field, j)
			case s.Key.Field != "" && strings.EqualFold(f.Field, s.Key.Field):
				ctx.add(join(p, "field"), "%q is the key field, which is always fed from key.attribute", f.Field)
			case statusField != "" && strings.EqualFold(f.Field, statusField):
				ctx.add(join(p, "field"), "%q is the status field, which pandasync sets itself", f.Field)
			default:
				seen[key] = i
			}
		}
		validateAttribute(ctx, join(p, "attribute"), f.Attribute)
	}
	if s.OnRemove != OnRemoveInactive && s.OnRemove != OnRemoveIgnore {
		ctx.add("spec.onRemove", "must be %q or %q, got %q", OnRemoveInactive, OnRemoveIgnore, s.OnRemove)
	}
}

func validateSyncPolicy(ctx docContext, p *SyncPolicy) {
	validateName(ctx, p.Metadata.Name)
	s := p.Spec
	if s.Schedule.Start != "" {
		if _, _, err := parseStart(s.Schedule.Start); err != nil {
			ctx.add("spec.schedule.start", "%v", err)
		}
	}
	if s.Schedule.Every.Duration < MinEvery {
		ctx.add("spec.schedule.every", "must be at least %s, got %s", shortDuration(MinEvery), s.Schedule.Every.Duration)
	}
	for _, pct := range []struct {
		name string
		v    int
	}{
		{"maxDeactivationPercent", s.Limits.MaxDeactivationPercent},
		{"maxRoleChangePercent", s.Limits.MaxRoleChangePercent},
		{"maxFieldClearPercent", s.Limits.MaxFieldClearPercent},
		{"maxCreatePercent", s.Limits.MaxCreatePercent},
	} {
		if pct.v > 100 {
			ctx.add("spec.limits."+pct.name, "must be at most 100 (a negative value disables the limit), got %d", pct.v)
		}
	}
	validateRuntime(ctx, s)
}

// validateRuntime checks the SyncPolicy fields `pandasync run` reads.
func validateRuntime(ctx docContext, s SyncPolicySpec) {
	if s.DegradedAfter < 1 {
		ctx.add("spec.degradedAfter", "must be at least 1, got %d", s.DegradedAfter)
	}
	if s.Quarantine.RetryEvery.Duration < MinEvery {
		ctx.add("spec.quarantine.retryEvery", "must be at least %s, got %s", shortDuration(MinEvery), s.Quarantine.RetryEvery.Duration)
	}
	ct := s.ChangeTracking
	switch ct.Method {
	case ChangeTrackingUSN, ChangeTrackingDirSync:
		inherited := ct.Every == s.Schedule.Every // the default; a bad schedule is reported above
		if ct.Every.Duration < MinChangeTrackingEvery && !(inherited && s.Schedule.Every.Duration < MinEvery) {
			ctx.add("spec.changeTracking.every", "must be at least %s, got %s", shortDuration(MinChangeTrackingEvery), ct.Every.Duration)
		}
		if ct.FullEvery.Duration < MinEvery {
			ctx.add("spec.changeTracking.fullEvery", "must be at least %s, got %s", shortDuration(MinEvery), ct.FullEvery.Duration)
		} else if ct.FullEvery.Duration < ct.Every.Duration {
			ctx.add("spec.changeTracking.fullEvery", "must not be shorter than changeTracking.every (%s), got %s", ct.Every.Duration, ct.FullEvery.Duration)
		}
	case ChangeTrackingOff:
	default:
		ctx.add("spec.changeTracking.method", "must be %q, %q or %q, got %q", ChangeTrackingUSN, ChangeTrackingDirSync, ChangeTrackingOff, ct.Method)
	}
	names := map[string]int{}
	for i, w := range s.Webhooks {
		p := fmt.Sprintf("spec.webhooks[%d]", i)
		if j, dup := names[w.Name]; dup {
			ctx.add(join(p, "name"), "%q is also the name of webhooks[%d]", w.Name, j)
		}
		names[w.Name] = i
		// The URL is not quoted in messages: it often holds a token.
		if lit, ok := validateRequired(ctx, join(p, "url"), w.URL); ok {
			if u, err := url.Parse(lit); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				ctx.add(join(p, "url"), "must be an http or https URL")
			}
		}
		switch w.Format {
		case WebhookJSON, WebhookSlack, WebhookTeams:
		default:
			ctx.add(join(p, "format"), "must be %q, %q or %q, got %q", WebhookJSON, WebhookSlack, WebhookTeams, w.Format)
		}
	}
	if !s.Admin.Token.IsZero() {
		validateSecret(ctx, "spec.admin.token", s.Admin.Token)
	}
}

// shortDuration formats whole minutes and hours without trailing zero
// units ("1m" rather than "1m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// validateSet checks the rules that span documents and fills in
// set.Connection and set.Policy. When some documents could not be decoded
// (broken), a missing Connection is not reported: it may be one of them.
func validateSet(ps *Problems, set *Set, connections []Connection, policies []SyncPolicy, broken bool) {
	switch len(connections) {
	case 0:
		if !broken {
			*ps = append(*ps, Problem{Message: "no Connection document; exactly one is required"})
		}
	default:
		set.Connection = connections[0]
		for _, c := range connections[1:] {
			docCtx(ps, c.Source, KindConnection, c.Metadata.Name).add("kind",
				"only one Connection is allowed, another is in %s", where(connections[0].Source))
		}
	}
	switch len(policies) {
	case 0:
		p := SyncPolicy{Metadata: Metadata{Name: DefaultPolicyName}}
		defaultSyncPolicy(&p)
		set.Policy = p
	default:
		set.Policy = policies[0]
		for _, p := range policies[1:] {
			docCtx(ps, p.Source, KindSyncPolicy, p.Metadata.Name).add("kind",
				"at most one SyncPolicy is allowed, another is in %s", where(policies[0].Source))
		}
	}

	// Mapping names are unique across both mapping kinds: -mapping NAME
	// selects either.
	type named struct {
		kind string
		src  Source
	}
	names := make(map[string]named)
	checkName := func(kind, name string, src Source) {
		if name == "" {
			return
		}
		if first, dup := names[name]; dup {
			docCtx(ps, src, kind, name).add("metadata.name",
				"%q is already the name of the %s in %s; mapping names must be unique across UserMapping and CollectionMapping", name, first.kind, where(first.src))
			return
		}
		names[name] = named{kind, src}
	}
	for _, m := range set.UserMappings {
		checkName(KindUserMapping, m.Metadata.Name, m.Source)
	}
	for _, m := range set.CollectionMappings {
		checkName(KindCollectionMapping, m.Metadata.Name, m.Source)
	}

	// The same role for the same group in the same module twice is a
	// mistake; the same group in one module with different roles is
	// allowed (the first mapping wins).
	users := make(map[string]UserMapping)
	for _, m := range set.UserMappings {
		key := foldKey(m.Spec.Account, m.Spec.Module, m.Spec.Role, canonicalDN(m.Spec.Group))
		if first, dup := users[key]; dup {
			docCtx(ps, m.Source, KindUserMapping, m.Metadata.Name).add("spec",
				"maps the same account, module, role and group as UserMapping %q in %s", first.Metadata.Name, where(first.Source))
			continue
		}
		users[key] = m
	}
	// Two mappings feeding one collection would each mark the other's
	// records Inactive.
	collections := make(map[string]CollectionMapping)
	for _, m := range set.CollectionMappings {
		key := foldKey(m.Spec.Account, m.Spec.Module, m.Spec.Collection)
		if first, dup := collections[key]; dup {
			docCtx(ps, m.Source, KindCollectionMapping, m.Metadata.Name).add("spec.collection",
				"collection %q is already fed by CollectionMapping %q in %s; one collection takes one mapping", m.Spec.Collection, first.Metadata.Name, where(first.Source))
			continue
		}
		collections[key] = m
	}
}

// foldKey joins case-folded parts into a map key.
func foldKey(parts ...string) string {
	for i, p := range parts {
		parts[i] = strings.ToLower(p)
	}
	return strings.Join(parts, "\x00")
}

// canonicalDN returns a DN with spacing normalised and attribute types and
// values lower-cased, or s itself when it does not parse, so that equal DNs
// compare equal as strings.
func canonicalDN(s string) string {
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return s
	}
	rdns := make([]string, len(dn.RDNs))
	for i, rdn := range dn.RDNs {
		attrs := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			attrs[j] = strings.ToLower(a.Type) + "=" + strings.ToLower(a.Value)
		}
		slices.Sort(attrs)
		rdns[i] = strings.Join(attrs, "+")
	}
	return strings.Join(rdns, ",")
}

// docCtx returns the context for problems about the document at src.
func docCtx(ps *Problems, src Source, kind, name string) docContext {
	return docContext{problems: ps, file: src.File, document: src.Document, kind: kind, name: name, lines: src.lines, docLine: src.Line}
}

// where names a document for messages: "file.yaml:12 (document 2)".
func where(src Source) string {
	if src.Line > 0 {
		return fmt.Sprintf("%s:%d (document %d)", src.File, src.Line, src.Document)
	}
	return fmt.Sprintf("%s document %d", src.File, src.Document)
}
