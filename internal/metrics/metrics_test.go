// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFileMetrics(t *testing.T) {
	t.Parallel()
	m := New("v1.2.3")
	mem, stat := m.File("proc/meminfo"), m.File("proc/stat")
	for range 3 {
		mem.Opened(20 * time.Microsecond)
	}
	stat.Opened(3 * time.Millisecond)
	mem.HostFallback()
	if got := testutil.ToFloat64(m.reads.WithLabelValues("proc/meminfo")); got != 3 {
		t.Errorf("reads{proc/meminfo} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.reads.WithLabelValues("proc/stat")); got != 1 {
		t.Errorf("reads{proc/stat} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.fallbacks.WithLabelValues("proc/meminfo")); got != 1 {
		t.Errorf("host_fallbacks{proc/meminfo} = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.duration, "lxcfs_read_duration_seconds"); n != 2 {
		t.Errorf("read_duration series = %d, want 2", n)
	}
	want := `
# HELP lxcfs_build_info Always 1; the version label is the daemon's.
# TYPE lxcfs_build_info gauge
lxcfs_build_info{version="v1.2.3"} 1
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "lxcfs_build_info"); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(m.Registry); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestHandoversAndErrors(t *testing.T) {
	t.Parallel()
	m := New("dev")
	m.Handover(RolePredecessor, ResultFailed)
	m.Handover(RolePredecessor, ResultHandedOver)
	m.Handover(RoleSuccessor, ResultAdopted)
	m.Error(OpEvent)
	m.Error("no such op") // dropped, not a new label value
	var render, repaired atomic.Uint64
	var stale atomic.Int64
	render.Store(5)
	repaired.Store(7)
	stale.Store(2)
	m.Watch(Sources{RenderErrors: render.Load, HealRepaired: repaired.Load, StaleMounts: stale.Load,
		Containers: func() int { return 4 }})
	want := `
# HELP lxcfs_containers Containers whose cgroup view is cached.
# TYPE lxcfs_containers gauge
lxcfs_containers 4
# HELP lxcfs_errors_total Errors by operation: render, heal_scan, handover, event.
# TYPE lxcfs_errors_total counter
lxcfs_errors_total{op="event"} 1
lxcfs_errors_total{op="handover"} 1
lxcfs_errors_total{op="heal_scan"} 0
lxcfs_errors_total{op="render"} 5
# HELP lxcfs_handovers_total Handovers of the live FUSE connection, as predecessor or successor, by result.
# TYPE lxcfs_handovers_total counter
lxcfs_handovers_total{result="adopted",role="successor"} 1
lxcfs_handovers_total{result="failed",role="predecessor"} 1
lxcfs_handovers_total{result="failed",role="successor"} 0
lxcfs_handovers_total{result="handed_over",role="predecessor"} 1
# HELP lxcfs_heal_repaired_total Containers' broken lxcfs binds repaired in place.
# TYPE lxcfs_heal_repaired_total counter
lxcfs_heal_repaired_total 7
# HELP lxcfs_stale_mounts_found Broken lxcfs binds seen by the last heal scan, repaired or not.
# TYPE lxcfs_stale_mounts_found gauge
lxcfs_stale_mounts_found 2
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "lxcfs_containers", "lxcfs_errors_total",
		"lxcfs_handovers_total", "lxcfs_heal_repaired_total", "lxcfs_heal_failed_total", "lxcfs_stale_mounts_found"); err != nil {
		t.Error(err)
	}
	render.Add(1)
	stale.Store(0)
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(`
# HELP lxcfs_stale_mounts_found Broken lxcfs binds seen by the last heal scan, repaired or not.
# TYPE lxcfs_stale_mounts_found gauge
lxcfs_stale_mounts_found 0
`), "lxcfs_stale_mounts_found"); err != nil {
		t.Error(err)
	}
}

func TestRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	// Two daemons' worth in one process (tests, or a successor built in
	// process) must not collide: nothing goes to the global registry.
	a, b := New("a"), New("b")
	a.File("proc/meminfo").Opened(time.Microsecond)
	if got := testutil.ToFloat64(b.reads.WithLabelValues("proc/meminfo")); got != 0 {
		t.Errorf("b saw a's read: %v", got)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestProbesAcrossLifecycle(t *testing.T) {
	t.Parallel()
	steps := []struct {
		name            string
		set             func(*Health)
		healthz, readyz int
	}{
		{name: "starting", set: func(*Health) {}, healthz: 200, readyz: 503},
		{name: "serving", set: func(h *Health) { h.Set(Serving) }, healthz: 200, readyz: 200},
		{name: "handed over", set: func(h *Health) { h.Set(HandedOver) }, healthz: 200, readyz: 503},
		{name: "stop after handover keeps handed over", set: func(h *Health) { h.Stop() }, healthz: 200, readyz: 503},
	}
	h := &Health{}
	handler := Handler(New("dev"), h)
	for _, s := range steps {
		s.set(h)
		if code, body := get(t, handler, "/healthz"); code != s.healthz {
			t.Errorf("%s: /healthz = %d %q, want %d", s.name, code, body, s.healthz)
		}
		if code, body := get(t, handler, "/readyz"); code != s.readyz {
			t.Errorf("%s: /readyz = %d %q, want %d", s.name, code, body, s.readyz)
		}
	}

	// The serving loop ended (the kernel dropped the connection).
	h2 := &Health{}
	h2.Set(Serving)
	h2.Stop()
	handler = Handler(nil, h2)
	if code, _ := get(t, handler, "/healthz"); code != 503 {
		t.Errorf("stopped: /healthz = %d, want 503", code)
	}
	if code, _ := get(t, handler, "/readyz"); code != 503 {
		t.Errorf("stopped: /readyz = %d, want 503", code)
	}
	if code, _ := get(t, handler, "/metrics"); code != 404 {
		t.Errorf("without metrics: /metrics = %d, want 404", code)
	}
}

func TestHandlerOddInput(t *testing.T) {
	t.Parallel()
	handler := Handler(New("dev"), &Health{})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodPost, "/metrics", 405},
		{http.MethodDelete, "/readyz", 405},
		{http.MethodGet, "/", 404},
		{http.MethodGet, "/metrics/../healthz", 307}, // cleaned path: a redirect, no panic
		{http.MethodGet, "/healthz?verbose=%zz", 200},
		{http.MethodGet, "/metrics?x=" + strings.Repeat("a", 4096), 200},
		{http.MethodHead, "/healthz", 200},
	} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.want)
		}
	}
	if p := Phase(42).String(); p != "phase(42)" {
		t.Errorf("Phase(42) = %q", p)
	}
}

// TestServe binds port 0, reports the address, serves, and frees the port
// at once when ctx ends; a second server on a busy address waits for it.
func TestServe(t *testing.T) {
	t.Parallel()
	h := &Health{}
	h.Set(Serving)
	handler := Handler(New("dev"), h)
	ctx1, stop1 := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done1 := make(chan error, 1)
	go func() { done1 <- Serve(ctx1, "127.0.0.1:0", handler, logr.Discard(), func(a net.Addr) { addrc <- a }) }()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not bind")
	}
	body := fetch(t, "http://"+addr.String()+"/metrics")
	if !strings.Contains(body, "lxcfs_build_info") || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("/metrics lacks build info, Go or process collectors:\n%.2000s", body)
	}

	// A successor on the same address: not fatal, it waits for the port.
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	bound2 := make(chan net.Addr, 1)
	done2 := make(chan error, 1)
	go func() {
		done2 <- Serve(ctx2, addr.String(), handler, logr.Discard(), func(a net.Addr) { bound2 <- a })
	}()
	select {
	case <-bound2:
		t.Fatal("second server bound a busy address")
	case err := <-done2:
		t.Fatalf("second server gave up: %v", err)
	case <-time.After(2 * bindRetry):
	}
	stop1()
	if err := <-done1; err != nil {
		t.Errorf("Serve after ctx end = %v, want nil", err)
	}
	select {
	case <-bound2:
	case <-time.After(5 * time.Second):
		t.Fatal("second server did not get the freed address")
	}
	if code := status(t, "http://"+addr.String()+"/readyz"); code != 200 {
		t.Errorf("/readyz from the second server = %d", code)
	}
	stop2()
	if err := <-done2; err != nil {
		t.Errorf("second Serve = %v", err)
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
