// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"math"
	"testing"
)

func TestBucketRoundTrip(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 12345, 1 << 20, 987654321, 1 << 40} {
		i := bucketOf(v)
		lo, w := bucketRange(i)
		if v < lo || v >= lo+w {
			t.Errorf("bucketOf(%d) = %d holding [%d, %d)", v, i, lo, lo+w)
		}
		if v >= 256 && float64(w)/float64(lo) > 1.0/128 {
			t.Errorf("bucket %d of %d is %d wide, over 1/128 of %d", i, v, w, lo)
		}
	}
	// Buckets are contiguous: every bucket starts where the previous ends.
	for i := 1; i < 40*subCount; i++ {
		plo, pw := bucketRange(i - 1)
		if lo, _ := bucketRange(i); lo != plo+pw {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, plo+pw)
		}
	}
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	h := &hist{}
	for v := int64(1); v <= 1000; v++ {
		h.record(v * 1000) // 1..1000 µs
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 500e3}, {0.99, 990e3}, {1, 1000e3}} {
		if got := h.quantile(tc.q); math.Abs(got-tc.want)/tc.want > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v ±1%%", tc.q, got, tc.want)
		}
	}
	back, err := histFromSparse(h.sparse())
	if err != nil {
		t.Fatal(err)
	}
	merged := &hist{}
	merged.merge(back)
	merged.merge(h)
	if merged.n != 2000 || merged.quantile(0.5) != h.quantile(0.5) {
		t.Errorf("merged twice: n %d, p50 %v; want 2000, %v", merged.n, merged.quantile(0.5), h.quantile(0.5))
	}
	if got := (&hist{}).quantile(0.5); got != 0 {
		t.Errorf("empty quantile = %v, want 0", got)
	}
}
