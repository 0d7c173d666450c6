// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxCPUs bounds the CPU ids a list may name. The kernel's NR_CPUS tops out at
// 8192; anything above is malformed input, not a machine.
const MaxCPUs = 8192

// ErrCPUList is wrapped by every error ParseCPUList returns.
var ErrCPUList = errors.New("procfs: malformed cpu list")

// ParseCPUList parses the kernel's list format ("0-3,8,10-11", as in cpuset.cpus
// and /sys/devices/system/cpu/online) into ascending, de-duplicated ids.
// An empty or blank list yields an empty slice.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return []int{}, nil
	}
	var set [MaxCPUs / 64]uint64
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseCPU(lo)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrCPUList, s, err)
		}
		b := a
		if isRange {
			if b, err = parseCPU(hi); err != nil {
				return nil, fmt.Errorf("%w %q: %w", ErrCPUList, s, err)
			}
			if b < a {
				return nil, fmt.Errorf("%w %q: range %d-%d is reversed", ErrCPUList, s, a, b)
			}
		}
		for c := a; c <= b; c++ {
			if set[c/64]&(1<<(c%64)) == 0 {
				set[c/64] |= 1 << (c % 64)
				n++
			}
		}
	}
	out := make([]int, 0, n)
	for i, w := range set {
		for w != 0 {
			bit := bits.TrailingZeros64(w)
			out = append(out, i*64+bit)
			w &= w - 1
		}
	}
	return out, nil
}

func parseCPU(s string) (int, error) {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("cpu id %q: %w", s, err)
	}
	if v < 0 || v >= MaxCPUs {
		return 0, fmt.Errorf("cpu id %d out of range [0,%d)", v, MaxCPUs)
	}
	return v, nil
}

// FormatCPUList renders ascending ids in the kernel's list format.
func FormatCPUList(cpus []int) string {
	var b strings.Builder
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(cpus[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return b.String()
}
