package loop

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pandasync/pandasync/reconcile"
)

// Metric names the loop exports, all prefixed pandasync_.
const (
	MetricPasses              = "pandasync_passes_total"
	MetricChanges             = "pandasync_changes_total"
	MetricChangesBlocked      = "pandasync_changes_blocked_total"
	MetricAPIRequests         = "pandasync_assetpanda_requests_total"
	MetricAPIThrottled        = "pandasync_assetpanda_throttled_total"
	MetricLDAPEntries         = "pandasync_ldap_entries_read_total"
	MetricLDAPSearches        = "pandasync_ldap_searches_total"
	MetricReads               = "pandasync_reads_total"
	MetricPassDuration        = "pandasync_pass_duration_seconds"
	MetricLastSuccess         = "pandasync_last_success_timestamp_seconds"
	MetricConsecutiveFailures = "pandasync_consecutive_failures"
	MetricSpecReloads         = "pandasync_spec_reloads_total"
	MetricSpecValid           = "pandasync_spec_valid"
	MetricSpecInfo            = "pandasync_spec_info"
	MetricLoopState           = "pandasync_loop_state"
	MetricNotifications       = "pandasync_notifications_total"
	MetricAuditErrors         = "pandasync_audit_write_errors_total"
)

// metrics are one loop's Prometheus metrics, in a registry of its own
// (never the global default one).
type metrics struct {
	reg                 *prometheus.Registry
	passes              *prometheus.CounterVec
	changes             *prometheus.CounterVec
	changesBlocked      *prometheus.CounterVec
	apiRequests         prometheus.Counter
	apiThrottled        prometheus.Counter
	ldapEntries         prometheus.Counter
	ldapSearches        prometheus.Counter
	reads               *prometheus.CounterVec
	passDuration        prometheus.Histogram
	lastSuccess         prometheus.Gauge
	consecutiveFailures prometheus.Gauge
	specReloads         *prometheus.CounterVec
	specValid           prometheus.Gauge
	specInfo            *prometheus.GaugeVec
	state               *prometheus.GaugeVec
	notifications       *prometheus.CounterVec
	auditErrors         prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPasses,
			Help: "Reconcile passes by outcome (success, no_changes, suspended, problems, failed, stopped)."}, []string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricChanges,
			Help: "Changes by mapping, action and result (applied, failed, or not_attempted when writes stopped first)."}, []string{"mapping", "action", "result"}),
		changesBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricChangesBlocked,
			Help: "Planned changes a safety limit or guard stopped, by mapping and limit."}, []string{"mapping", "limit"}),
		apiRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricAPIRequests,
			Help: "HTTP requests sent to the Asset Panda API."}),
		apiThrottled: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricAPIThrottled,
			Help: "Asset Panda API requests answered 429 Too Many Requests."}),
		ldapEntries: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricLDAPEntries,
			Help: "LDAP entries read from Active Directory."}),
		ldapSearches: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricLDAPSearches,
			Help: "LDAP searches sent to Active Directory."}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricReads,
			Help: "Passes by how they read both sides: full (everything) or delta (what changed since the last pass)."}, []string{"read"}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricPassDuration,
			Help:    "Duration of reconcile passes.",
			Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSuccess,
			Help: "Unix time the last green pass (success, no_changes, suspended) finished; 0 before the first."}),
		consecutiveFailures: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricConsecutiveFailures,
			Help: "Passes in a row that failed or finished with problems; 0 after a green pass."}),
		specReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricSpecReloads,
			Help: "Spec loads by result (ok or invalid)."}, []string{"result"}),
		specValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricSpecValid,
			Help: "1 when the last spec load succeeded, 0 when the new spec was rejected and the last good one is in force."}),
		specInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricSpecInfo,
			Help: "1 for the git revision of the spec in force (empty outside git); dirty says its files differ from that commit."}, []string{"revision", "dirty"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricLoopState,
			Help: "1 for the loop's current state, 0 for the others."}, []string{"state"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricNotifications,
			Help: "Webhook notifications by event and result (sent, failed, deduplicated, rate_limited, dropped)."}, []string{"event", "result"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricAuditErrors,
			Help: "Audit log writes that failed; writes to Asset Panda stop until the log works again."}),
	}
	m.reg.MustRegister(m.passes, m.changes, m.changesBlocked, m.apiRequests, m.apiThrottled, m.ldapEntries, m.ldapSearches, m.reads,
		m.passDuration, m.lastSuccess, m.consecutiveFailures, m.specReloads, m.specValid, m.specInfo, m.state,
		m.notifications, m.auditErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every outcome and state is exported from the start, so rate() and
	// alerts see 0 rather than nothing.
	for _, o := range Outcomes {
		m.passes.WithLabelValues(string(o))
	}
	for _, r := range []string{"ok", "invalid"} {
		m.specReloads.WithLabelValues(r)
	}
	for _, r := range []string{"full", "delta"} {
		m.reads.WithLabelValues(r)
	}
	m.setState(StateStarting)
	return m
}

// pass records a finished pass.
func (m *metrics) pass(r *PassReport, res Result, end time.Time) {
	m.passes.WithLabelValues(string(r.Outcome)).Inc()
	m.passDuration.Observe(r.Duration)
	if r.Outcome.Green() {
		m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
	m.apiRequests.Add(float64(res.Stats.APIRequests))
	m.apiThrottled.Add(float64(res.Stats.APIThrottled))
	m.ldapEntries.Add(float64(res.Stats.LDAPEntries))
	m.ldapSearches.Add(float64(res.Stats.LDAPSearches))
	if res.Plan != nil {
		if res.Stats.Read.Full {
			m.reads.WithLabelValues("full").Inc()
		} else {
			m.reads.WithLabelValues("delta").Inc()
		}
		for _, b := range res.Plan.Blocked {
			m.changesBlocked.WithLabelValues(b.Mapping, b.Limit).Inc()
		}
	}
}

// change counts one change's result.
func (m *metrics) change(c reconcile.Change, result string) {
	m.changes.WithLabelValues(c.Mapping, string(c.Action), result).Inc()
}

func (m *metrics) setState(s State) {
	for _, st := range States {
		v := 0.0
		if st == s {
			v = 1
		}
		m.state.WithLabelValues(string(st)).Set(v)
	}
}

func (m *metrics) setRevision(rev Revision) {
	m.specInfo.Reset()
	m.specInfo.WithLabelValues(rev.String(), strconv.FormatBool(rev.Dirty)).Set(1)
}
