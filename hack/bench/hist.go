// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"fmt"
	"math/bits"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a bucket is at most 1/128 (0.8%) of its value wide.
const subBits = 7

const subCount = 1 << subBits

// hist is a log-linear latency histogram in nanoseconds (the HDR histogram
// layout): exact below 128 ns, then 128 buckets per power of two. Recording
// is an index computation and an increment, cheap enough for the read loop.
type hist struct {
	counts []uint64
	n      uint64
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < 2*subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits // v>>shift is in [128, 256)
	return shift*subCount + int(v>>shift)
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < 2*subCount {
		return uint64(i), 1
	}
	shift := i/subCount - 1
	m := uint64(i%subCount + subCount)
	return m << shift, 1 << shift
}

func (h *hist) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	i := bucketOf(uint64(ns))
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+subCount)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	h.n++
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the value at quantile q (0 < q <= 1) in nanoseconds: the
// midpoint of the bucket holding the ceil(q*n)-th smallest value. It returns
// 0 for an empty histogram.
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) {
		rank++
	}
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			return float64(lo) + float64(w-1)/2
		}
	}
	lo, w := bucketRange(len(h.counts) - 1)
	return float64(lo) + float64(w-1)/2
}

// sparse returns the non-empty buckets as [index, count] pairs, the form the
// reader prints.
func (h *hist) sparse() [][2]uint64 {
	var out [][2]uint64
	for i, c := range h.counts {
		if c > 0 {
			out = append(out, [2]uint64{uint64(i), c})
		}
	}
	return out
}

// histFromSparse rebuilds a histogram printed by sparse.
func histFromSparse(s [][2]uint64) (*hist, error) {
	h := &hist{}
	for _, p := range s {
		if p[0] > 1<<16 {
			return nil, fmt.Errorf("histogram bucket %d out of range", p[0])
		}
		i := int(p[0])
		if i >= len(h.counts) {
			grown := make([]uint64, i+1)
			copy(grown, h.counts)
			h.counts = grown
		}
		h.counts[i] += p[1]
		h.n += p[1]
	}
	return h, nil
}
