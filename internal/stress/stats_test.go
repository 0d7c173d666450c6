// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package stress

import (
	"slices"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Latency{N: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("summarize(1..100 ms) = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", got)
	}
	if got := summarize([]time.Duration{7}); got != (Latency{N: 1, P50: 7, P99: 7, Max: 7}) {
		t.Errorf("summarize([7]) = %+v", got)
	}
}

func TestAttribute(t *testing.T) {
	t.Parallel()
	windows := []Window{{StartNS: 100, EndNS: 200}, {StartNS: 500, EndNS: 600}}
	recs := []Record{
		{StartNS: 0, DurNS: 50},    // before both
		{StartNS: 90, DurNS: 10},   // ends exactly at the first window's start: overlaps
		{StartNS: 150, DurNS: 30},  // inside the first
		{StartNS: 190, DurNS: 400}, // spans both windows
		{StartNS: 201, DurNS: 5},   // between
		{StartNS: 600, DurNS: 1},   // starts exactly at the second's end: overlaps
		{StartNS: 700, DurNS: 2},   // after
	}
	st := attribute(recs, windows)
	if got, want := st.reads, []int{3, 2}; !slices.Equal(got, want) {
		t.Errorf("reads per window = %v, want %v", got, want)
	}
	if got, want := st.stall, []time.Duration{400, 400}; !slices.Equal(got, want) {
		t.Errorf("stall per window = %v, want %v", got, want)
	}
	if st.overall.N != 7 || st.overall.Max != 400 {
		t.Errorf("overall = %+v, want 7 reads, max 400ns", st.overall)
	}
	if st.during.N != 4 || st.during.Max != 400 || st.during.P50 != 10 {
		t.Errorf("during = %+v, want 4 reads (10, 30, 400, 1), p50 10ns, max 400ns", st.during)
	}
	if st.outside.N != 3 || st.outside.Max != 50 || st.outside.P50 != 5 {
		t.Errorf("outside = %+v, want 3 reads (50, 5, 2), p50 5ns, max 50ns", st.outside)
	}
}

func TestMemTotalKB(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		kb   uint64
		ok   bool
		want string // checkMemTotal against 262144
	}{
		{in: "MemTotal:         262144 kB\nMemFree: 1 kB\n", kb: 262144, ok: true},
		{in: "MemTotal: 524288 kB", kb: 524288, ok: true, want: "MemTotal 524288 kB, want 262144 kB"},
		{in: "XMemTotal: 262144 kB\n", want: `no MemTotal line; first line "XMemTotal: 262144 kB" (21 bytes)`},
		{in: "", want: `no MemTotal line; first line "" (0 bytes)`},
		{in: "MemTotal: 12 MB\n", want: `no MemTotal line; first line "MemTotal: 12 MB" (16 bytes)`},
	} {
		kb, ok := memTotalKB([]byte(tc.in))
		if kb != tc.kb || ok != tc.ok {
			t.Errorf("memTotalKB(%q) = %d, %v; want %d, %v", tc.in, kb, ok, tc.kb, tc.ok)
		}
		if got := checkMemTotal([]byte(tc.in), 262144); got != tc.want {
			t.Errorf("checkMemTotal(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	t.Parallel()
	p := t.TempDir() + "/recs"
	in := []Record{{StartNS: 1, DurNS: 2, Status: ReadOK}, {StartNS: 1 << 60, DurNS: 5e9, Status: ReadWrong}}
	if err := writeRecords(p, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadRecords(p)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(in, out) {
		t.Errorf("ReadRecords = %+v, want %+v", out, in)
	}
}
