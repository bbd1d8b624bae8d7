package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names the loop exports, all prefixed pandasync_.
const (
	MetricPasses              = "pandasync_passes_total"
	MetricChanges             = "pandasync_changes_total"
	MetricChangesBlocked      = "pandasync_changes_blocked_total"
	MetricAPIRequests         = "pandasync_assetpanda_requests_total"
	MetricAPIThrottled        = "pandasync_assetpanda_throttled_total"
	MetricLDAPEntries         = "pandasync_ldap_entries_read_total"
	MetricPassDuration        = "pandasync_pass_duration_seconds"
	MetricLastSuccess         = "pandasync_last_success_timestamp_seconds"
	MetricConsecutiveFailures = "pandasync_consecutive_failures"
	MetricSpecReloads         = "pandasync_spec_reloads_total"
	MetricSpecValid           = "pandasync_spec_valid"
)

// loopMetrics are one loop's Prometheus metrics, in a registry of its own
// (never the global default one).
type loopMetrics struct {
	reg                 *prometheus.Registry
	passes              *prometheus.CounterVec
	changes             *prometheus.CounterVec
	changesBlocked      *prometheus.CounterVec
	apiRequests         prometheus.Counter
	apiThrottled        prometheus.Counter
	ldapEntries         prometheus.Counter
	passDuration        prometheus.Histogram
	lastSuccess         prometheus.Gauge
	consecutiveFailures prometheus.Gauge
	specReloads         *prometheus.CounterVec
	specValid           prometheus.Gauge
}

func newLoopMetrics() *loopMetrics {
	m := &loopMetrics{
		reg: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricPasses,
			Help: "Reconcile passes by outcome (success, no_changes, partial, suspended, failed, canceled)."}, []string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricChanges,
			Help: "Changes written to Asset Panda by mapping, action and result (applied or failed)."}, []string{"mapping", "action", "result"}),
		changesBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricChangesBlocked,
			Help: "Planned changes a safety limit or guard stopped, by mapping and limit."}, []string{"mapping", "limit"}),
		apiRequests: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricAPIRequests,
			Help: "HTTP requests sent to the Asset Panda API."}),
		apiThrottled: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricAPIThrottled,
			Help: "Asset Panda API requests answered 429 Too Many Requests."}),
		ldapEntries: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricLDAPEntries,
			Help: "LDAP entries read from Active Directory."}),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricPassDuration,
			Help:    "Duration of reconcile passes.",
			Buckets: []float64{0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSuccess,
			Help: "Unix time the last pass finished without failing; 0 before the first."}),
		consecutiveFailures: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricConsecutiveFailures,
			Help: "Passes failed in a row; 0 after a pass that did not fail."}),
		specReloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricSpecReloads,
			Help: "Spec loads by result (ok or invalid)."}, []string{"result"}),
		specValid: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricSpecValid,
			Help: "1 when the last spec load succeeded, 0 when the new spec was rejected and the last good one is in force."}),
	}
	m.reg.MustRegister(m.passes, m.changes, m.changesBlocked, m.apiRequests, m.apiThrottled, m.ldapEntries,
		m.passDuration, m.lastSuccess, m.consecutiveFailures, m.specReloads, m.specValid,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every outcome is exported from the start, so rate() and alerts see 0
	// rather than nothing.
	for _, o := range []PassOutcome{OutcomeSuccess, OutcomeNoChanges, OutcomePartial, OutcomeSuspended, OutcomeFailed, OutcomeCanceled} {
		m.passes.WithLabelValues(string(o))
	}
	for _, r := range []string{"ok", "invalid"} {
		m.specReloads.WithLabelValues(r)
	}
	return m
}

// pass records a finished pass.
func (m *loopMetrics) pass(r *PassReport, end time.Time) {
	m.passes.WithLabelValues(string(r.Outcome)).Inc()
	m.passDuration.Observe(r.Duration)
	if r.Outcome != OutcomeFailed && r.Outcome != OutcomeCanceled {
		m.lastSuccess.Set(float64(end.UnixNano()) / 1e9)
	}
}

func (m *loopMetrics) blocked(bs []Blocked) {
	for _, b := range bs {
		m.changesBlocked.WithLabelValues(b.Mapping, b.Limit).Inc()
	}
}

// metricsObserver counts applied and failed changes.
type metricsObserver struct{ m *loopMetrics }

func (o metricsObserver) Started(int) {}

func (o metricsObserver) Done(c Change, err error) {
	result := "applied"
	if err != nil {
		result = "failed"
	}
	o.m.changes.WithLabelValues(c.Mapping, string(c.Action), result).Inc()
}
