// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Handover roles and results, the label values of lxcfs_handovers_total.
const (
	RolePredecessor = "predecessor"
	RoleSuccessor   = "successor"

	ResultHandedOver = "handed_over" // predecessor: the successor serves
	ResultAdopted    = "adopted"     // successor: we serve the connection
	ResultFailed     = "failed"      // either side; the predecessor serves on
)

// Error operations, the label values of lxcfs_errors_total.
const (
	OpRender   = "render"    // a file rendered for a container failed (host file served)
	OpHealScan = "heal_scan" // a heal scan could not read the mount tables
	OpHandover = "handover"  // a handover attempt failed
	OpEvent    = "event"     // a Kubernetes Event could not be recorded
)

// ReadBuckets are the buckets of lxcfs_read_duration_seconds: 10µs to
// 100ms (a cached render takes microseconds, a cold one with cgroup reads
// up to a few milliseconds).
var ReadBuckets = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3}

// Metrics holds the daemon's collectors in a registry of its own.
type Metrics struct {
	// Registry is what /metrics serves.
	Registry *prometheus.Registry

	reads     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
	handovers *prometheus.CounterVec

	funcs *funcCollector
}

// New returns the daemon's metrics with Go and process collectors and
// lxcfs_build_info for version.
func New(version string) *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lxcfs_reads_total", Help: "Opens of each virtual file served (each open renders one snapshot that its reads slice).",
		}, []string{"file"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lxcfs_read_duration_seconds", Help: "Time to render a file's snapshot for an open.", Buckets: ReadBuckets,
		}, []string{"file"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lxcfs_host_fallbacks_total", Help: "Opens answered with the host's file because the reader's container could not be resolved or rendered.",
		}, []string{"file"}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lxcfs_handovers_total", Help: "Handovers of the live FUSE connection, as predecessor or successor, by result.",
		}, []string{"role", "result"}),
		funcs: &funcCollector{},
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lxcfs_build_info", Help: "Always 1; the version label is the daemon's.",
	}, []string{"version"})
	buildInfo.WithLabelValues(version).Set(1)
	for _, r := range []string{ResultHandedOver, ResultFailed} {
		m.handovers.WithLabelValues(RolePredecessor, r) // present at 0 from the start, so rate() works
	}
	for _, r := range []string{ResultAdopted, ResultFailed} {
		m.handovers.WithLabelValues(RoleSuccessor, r)
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reads, m.duration, m.fallbacks, m.handovers, buildInfo, m.funcs,
	)
	return m
}

// File returns the observer of one file: its series resolved once, so that
// an open costs no label lookup. Its methods match fs.FileMetrics.
func (m *Metrics) File(file string) *File {
	return &File{
		reads:     m.reads.WithLabelValues(file),
		duration:  m.duration.WithLabelValues(file),
		fallbacks: m.fallbacks.WithLabelValues(file),
	}
}

// File observes one file's opens.
type File struct {
	reads, fallbacks prometheus.Counter
	duration         prometheus.Observer
}

// Opened counts an open and observes how long rendering took.
func (f *File) Opened(render time.Duration) {
	f.reads.Inc()
	f.duration.Observe(render.Seconds())
}

// HostFallback counts an open answered with the host's file.
func (f *File) HostFallback() { f.fallbacks.Inc() }

// Handover counts a handover as role (RolePredecessor, RoleSuccessor) with
// result (ResultHandedOver, ResultAdopted, ResultFailed).
func (m *Metrics) Handover(role, result string) {
	m.handovers.WithLabelValues(role, result).Inc()
	if result == ResultFailed {
		m.Error(OpHandover)
	}
}

// Error counts an error of op (one of the Op constants; others are
// dropped, to keep the label's values bounded).
func (m *Metrics) Error(op string) {
	if i, ok := opIndex(op); ok {
		m.funcs.errs[i].Add(1)
	}
}

var ops = [...]string{OpRender, OpHealScan, OpHandover, OpEvent}

func opIndex(op string) (int, bool) {
	for i, o := range ops {
		if o == op {
			return i, true
		}
	}
	return 0, false
}

// Sources are counters the daemon keeps elsewhere, read at scrape time.
// Nil functions are left out.
type Sources struct {
	// RenderErrors adds to lxcfs_errors_total{op="render"}.
	RenderErrors func() uint64
	// HealScanErrors adds to lxcfs_errors_total{op="heal_scan"}.
	HealScanErrors func() uint64
	// Heal counters: mounts repaired in place, namespaces whose repair
	// failed, pods restarted through the API, broken binds in the last scan.
	HealRepaired, HealFailed, HealRestarted func() uint64
	StaleMounts                             func() int64
	// Containers is how many containers the resolver has cached.
	Containers func() int
}

// Watch exposes s. A later call replaces an earlier one.
func (m *Metrics) Watch(s Sources) {
	m.funcs.mu.Lock()
	m.funcs.s = s
	m.funcs.mu.Unlock()
}

var (
	descErrors        = prometheus.NewDesc("lxcfs_errors_total", "Errors by operation: render, heal_scan, handover, event.", []string{"op"}, nil)
	descHealRepaired  = prometheus.NewDesc("lxcfs_heal_repaired_total", "Containers' broken lxcfs binds repaired in place.", nil, nil)
	descHealFailed    = prometheus.NewDesc("lxcfs_heal_failed_total", "Mount namespaces whose in-place repair failed.", nil, nil)
	descHealRestarted = prometheus.NewDesc("lxcfs_heal_restarted_total", "Pods restarted (evicted or deleted) because their binds could not be repaired.", nil, nil)
	descStaleMounts   = prometheus.NewDesc("lxcfs_stale_mounts_found", "Broken lxcfs binds seen by the last heal scan, repaired or not.", nil, nil)
	descContainers    = prometheus.NewDesc("lxcfs_containers", "Containers whose cgroup view is cached.", nil, nil)
)

// funcCollector reports Sources, and lxcfs_errors_total: the errors
// counted here plus those the daemon's components count themselves.
type funcCollector struct {
	mu   sync.Mutex
	s    Sources
	errs [len(ops)]atomic.Uint64
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descErrors, descHealRepaired, descHealFailed, descHealRestarted, descStaleMounts, descContainers} {
		ch <- d
	}
}

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	s := c.s
	c.mu.Unlock()
	counter := func(d *prometheus.Desc, f func() uint64) {
		if f != nil {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(f()))
		}
	}
	for i, op := range ops {
		n := c.errs[i].Load()
		switch {
		case op == OpRender && s.RenderErrors != nil:
			n += s.RenderErrors()
		case op == OpHealScan && s.HealScanErrors != nil:
			n += s.HealScanErrors()
		}
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(n), op)
	}
	counter(descHealRepaired, s.HealRepaired)
	counter(descHealFailed, s.HealFailed)
	counter(descHealRestarted, s.HealRestarted)
	if s.StaleMounts != nil {
		ch <- prometheus.MustNewConstMetric(descStaleMounts, prometheus.GaugeValue, float64(s.StaleMounts()))
	}
	if s.Containers != nil {
		ch <- prometheus.MustNewConstMetric(descContainers, prometheus.GaugeValue, float64(s.Containers()))
	}
}
