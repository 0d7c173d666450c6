// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/metrics"
)

type countingFile struct{ opens, fallbacks atomic.Uint64 }

func (c *countingFile) Opened(time.Duration) { c.opens.Add(1) }
func (c *countingFile) HostFallback()        { c.fallbacks.Add(1) }

func newMeteredFS(t testing.TB, metrics func(string) FileMetrics) *FS {
	t.Helper()
	root := "testdata/host"
	r, err := cgview.New(cgview.Options{ProcRoot: root + "/proc", CgroupRoot: root + "/cgroup"})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{ProcRoot: root + "/proc", SysRoot: root + "/sys", Resolver: r, CFS: true, Swap: true,
		Log: logr.Discard(), Metrics: metrics})
}

func TestFileMetrics(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	files := map[string]*countingFile{}
	f := newMeteredFS(t, func(file string) FileMetrics {
		mu.Lock()
		defer mu.Unlock()
		c := &countingFile{}
		files[file] = c
		return c
	})
	for _, p := range Files() {
		if files[p] == nil {
			t.Errorf("no observer for %s", p)
		}
	}
	readAll(t, f, "proc/meminfo", reader)
	readAll(t, f, "proc/meminfo", reader)
	readAll(t, f, "proc/loadavg", 1) // unresolvable reader: host fallback
	readAll(t, f, "sys/devices/system/cpu/online", reader)
	readAll(t, f, "sys/devices/system/cpu/cpu0/topology/core_id", reader)
	for _, c := range []struct {
		file             string
		opens, fallbacks uint64
	}{
		{"proc/meminfo", 2, 0},
		{"proc/loadavg", 1, 1},
		{"sys/devices/system/cpu/online", 1, 0},
		{OtherFiles, 1, 0},
		{"proc/stat", 0, 0},
	} {
		got := files[c.file]
		if got.opens.Load() != c.opens || got.fallbacks.Load() != c.fallbacks {
			t.Errorf("%s: opens %d, fallbacks %d; want %d, %d", c.file, got.opens.Load(), got.fallbacks.Load(), c.opens, c.fallbacks)
		}
	}
}

type nopFile struct{}

func (nopFile) Opened(time.Duration) {}
func (nopFile) HostFallback()        {}

// BenchmarkOpen measures the FUSE Open of proc/meminfo (a render cache
// hit, the common case under polling) and Release, without metrics and
// with a no-op observer (the hook alone), and with the daemon's Prometheus
// observers (internal/metrics: a counter and a histogram observation).
// Compare: go test -run - -bench Open -count 10 ./fs | benchstat.
func BenchmarkOpen(b *testing.B) {
	prom := metrics.New("bench")
	for _, bc := range []struct {
		name    string
		metrics func(string) FileMetrics
	}{
		{"nometrics", nil},
		{"nophook", func(string) FileMetrics { return nopFile{} }},
		{"prometheus", func(file string) FileMetrics { return prom.File(file) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newMeteredFS(b, bc.metrics)
			var out fuse.EntryOut
			h := header(1, reader)
			f.Lookup(nil, &h, "proc", &out)
			h = header(out.NodeId, reader)
			f.Lookup(nil, &h, "meminfo", &out)
			in := fuse.OpenIn{InHeader: header(out.NodeId, reader)}
			b.ReportAllocs()
			for b.Loop() {
				var oo fuse.OpenOut
				if st := f.Open(nil, &in, &oo); !st.Ok() {
					b.Fatal(st)
				}
				f.Release(nil, &fuse.ReleaseIn{Fh: oo.Fh})
			}
		})
	}
}
