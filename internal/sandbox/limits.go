// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package sandbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultCPUPeriodUS is the CFS period used when [Limits.CPUQuotaUS] is set
// and [Limits.CPUPeriodUS] is not; it is the kernel's default period.
const DefaultCPUPeriodUS = 100000

// Limits are the resource limits of a sandbox cgroup. The zero value sets no
// limit at all. Limits of nested cgroups combine as the kernel combines them:
// the effective limit is the minimum up the tree.
type Limits struct {
	// MemoryBytes is the memory limit (v1 memory.limit_in_bytes, v2
	// memory.max). 0 means no limit.
	MemoryBytes int64
	// SwapBytes is the swap allowed on top of MemoryBytes: v1
	// memory.memsw.limit_in_bytes = MemoryBytes+SwapBytes, v2
	// memory.swap.max = SwapBytes. -1 means unlimited, 0 leaves the kernel
	// default (unlimited). A positive value needs MemoryBytes, and returns
	// [ErrNoSwapAccounting] when the kernel does not account swap.
	SwapBytes int64
	// CPUQuotaUS and CPUPeriodUS are the CFS bandwidth limit (v1
	// cpu.cfs_quota_us/cpu.cfs_period_us, v2 cpu.max). CPUQuotaUS 0 means no
	// quota; CPUPeriodUS 0 means [DefaultCPUPeriodUS]. On cgroup v1 the kernel
	// rejects (EINVAL) a child whose quota/period ratio exceeds its parent's;
	// v2 accepts it and throttles at the parent.
	CPUQuotaUS, CPUPeriodUS int64
	// Cpuset is the cpu list the cgroup may run on, e.g. "0" or "0-1,3".
	// "" inherits the parent's cpus. It must be a subset of the parent's.
	Cpuset string
}

// validate reports every problem with l at once.
func (l Limits) validate() error {
	var errs []error
	if l.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("MemoryBytes %d is negative", l.MemoryBytes))
	}
	if l.SwapBytes < -1 {
		errs = append(errs, fmt.Errorf("SwapBytes %d is below -1 (unlimited)", l.SwapBytes))
	}
	if l.SwapBytes > 0 && l.MemoryBytes == 0 {
		errs = append(errs, fmt.Errorf("SwapBytes %d needs MemoryBytes: swap is allowed on top of the memory limit", l.SwapBytes))
	}
	if l.CPUQuotaUS < 0 {
		errs = append(errs, fmt.Errorf("CPUQuotaUS %d is negative", l.CPUQuotaUS))
	}
	if l.CPUPeriodUS < 0 {
		errs = append(errs, fmt.Errorf("CPUPeriodUS %d is negative", l.CPUPeriodUS))
	}
	if l.CPUPeriodUS > 0 && l.CPUQuotaUS == 0 {
		errs = append(errs, fmt.Errorf("CPUPeriodUS %d without CPUQuotaUS", l.CPUPeriodUS))
	}
	if l.Cpuset != "" {
		if err := validateCPUList(l.Cpuset); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid limits %+v: %w", l, err)
	}
	return nil
}

// cpuPeriod returns the CFS period to write with the quota.
func (l Limits) cpuPeriod() int64 {
	if l.CPUPeriodUS == 0 {
		return DefaultCPUPeriodUS
	}
	return l.CPUPeriodUS
}

// validateCPUList checks the kernel's cpu list syntax ("0", "0-3", "0,2-3"),
// so a typo is reported with the value rather than as a bare EINVAL.
func validateCPUList(s string) error {
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, errA := strconv.ParseUint(lo, 10, 32)
		b, errB := a, error(nil)
		if isRange {
			b, errB = strconv.ParseUint(hi, 10, 32)
		}
		if errA != nil || errB != nil || b < a {
			return fmt.Errorf("cpuset %q: bad item %q, want N or N-M with N<=M", s, item)
		}
	}
	return nil
}

// write is one value written to one cgroup file, relative to the cgroup dir
// of its controller.
type write struct {
	controller string
	file       string
	value      string
}

// v1Writes returns the cgroup v1 files that set l, in the order they must be
// written. swapAccounting tells whether memory.memsw.* exists.
func (l Limits) v1Writes(swapAccounting bool) ([]write, error) {
	var ws []write
	if l.Cpuset != "" {
		ws = append(ws, write{"cpuset", "cpuset.cpus", l.Cpuset})
	}
	if l.MemoryBytes > 0 {
		// A fresh cgroup has an unlimited memsw limit, and memsw must stay
		// >= the memory limit, so memory goes first.
		ws = append(ws, write{"memory", "memory.limit_in_bytes", strconv.FormatInt(l.MemoryBytes, 10)})
	}
	switch {
	case l.SwapBytes == 0:
	case !swapAccounting && l.SwapBytes == -1:
		// Without swap accounting there is no swap limit: already unlimited.
	case !swapAccounting:
		return nil, ErrNoSwapAccounting
	case l.SwapBytes == -1:
		ws = append(ws, write{"memory", "memory.memsw.limit_in_bytes", "-1"})
	default:
		ws = append(ws, write{"memory", "memory.memsw.limit_in_bytes", strconv.FormatInt(l.MemoryBytes+l.SwapBytes, 10)})
	}
	if l.CPUQuotaUS > 0 {
		// Period first: the kernel checks quota/period against the parent.
		ws = append(ws,
			write{"cpu", "cpu.cfs_period_us", strconv.FormatInt(l.cpuPeriod(), 10)},
			write{"cpu", "cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuotaUS, 10)})
	}
	return ws, nil
}

// v2Writes is v1Writes for cgroup v2. swapAccounting tells whether
// memory.swap.max exists.
func (l Limits) v2Writes(swapAccounting bool) ([]write, error) {
	var ws []write
	if l.Cpuset != "" {
		ws = append(ws, write{"cpuset", "cpuset.cpus", l.Cpuset})
	}
	if l.MemoryBytes > 0 {
		ws = append(ws, write{"memory", "memory.max", strconv.FormatInt(l.MemoryBytes, 10)})
	}
	switch {
	case l.SwapBytes == 0:
	case !swapAccounting && l.SwapBytes == -1:
	case !swapAccounting:
		return nil, ErrNoSwapAccounting
	case l.SwapBytes == -1:
		ws = append(ws, write{"memory", "memory.swap.max", "max"})
	default:
		ws = append(ws, write{"memory", "memory.swap.max", strconv.FormatInt(l.SwapBytes, 10)})
	}
	if l.CPUQuotaUS > 0 {
		ws = append(ws, write{"cpu", "cpu.max", strconv.FormatInt(l.CPUQuotaUS, 10) + " " + strconv.FormatInt(l.cpuPeriod(), 10)})
	}
	return ws, nil
}
