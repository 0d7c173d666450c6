// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package stress

import (
	"slices"
	"sort"
	"time"
)

// Latency summarises a set of durations. Quantiles are exact (nearest rank
// over the sorted values), not bucketed.
type Latency struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	Max time.Duration `json:"max"`
}

// summarize sorts ds in place and returns its quantiles.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{N: len(ds), P50: quantile(ds, 0.50), P99: quantile(ds, 0.99), Max: ds[len(ds)-1]}
}

// quantile returns the nearest-rank q-quantile of sorted: the
// ceil(q*n)-th smallest value.
func quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	rank := int(q * float64(n))
	if float64(rank) < q*float64(n) {
		rank++
	}
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Window is a handover: from the successor's start to the moment the
// successor was seen serving, in CLOCK_MONOTONIC nanoseconds.
type Window struct {
	StartNS, EndNS int64
}

// readStats is what [attribute] derives from the readers' records.
type readStats struct {
	overall, during, outside Latency
	// stall[i] is the longest read overlapping window i, and reads[i] the
	// number of reads overlapping it.
	stall []time.Duration
	reads []int
}

// attribute computes overall latency, latency of the reads that overlap a
// window and of those that do not (a read [s, s+d] overlaps [w0, w1] when s <= w1 and s+d >= w0), and
// the longest such read per window. windows must be sorted by StartNS and
// must not overlap.
func attribute(recs []Record, windows []Window) readStats {
	st := readStats{stall: make([]time.Duration, len(windows)), reads: make([]int, len(windows))}
	all := make([]time.Duration, 0, len(recs))
	var during, outside []time.Duration
	for _, r := range recs {
		d := time.Duration(r.DurNS)
		all = append(all, d)
		end := r.StartNS + r.DurNS
		// The first window that does not end before the read starts.
		i := sort.Search(len(windows), func(i int) bool { return windows[i].EndNS >= r.StartNS })
		hit := false
		for ; i < len(windows) && windows[i].StartNS <= end; i++ {
			hit = true
			st.reads[i]++
			st.stall[i] = max(st.stall[i], d)
		}
		if hit {
			during = append(during, d)
		} else {
			outside = append(outside, d)
		}
	}
	st.overall = summarize(all)
	st.during = summarize(during)
	st.outside = summarize(outside)
	return st
}
