// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
)

// Unlimited is how parsers report "max" (v2) or v1's huge sentinel limits.
const Unlimited = math.MaxUint64

// ParseLimit parses a single-value cgroup limit file: a number, or "max"
// (cgroup v2) for no limit. v1 prints 9223372036854771712 or -1 for no limit;
// those come back as large values or Unlimited and the caller caps them.
func ParseLimit(b []byte) (uint64, error) {
	s := string(bytes.TrimSpace(b))
	if s == "max" || s == "-1" {
		return Unlimited, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("limit %q: %w", s, err)
	}
	return v, nil
}

// ParseInt parses a single signed integer (cpu.cfs_quota_us is -1 for none).
func ParseInt(b []byte) (int64, error) {
	s := string(bytes.TrimSpace(b))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("integer %q: %w", s, err)
	}
	return v, nil
}

// ParseFlatKeyed calls fn for each "key value" line (memory.stat, cpu.stat,
// cpuacct.stat). Lines that don't parse are reported, not skipped: a cgroup
// file in an unknown shape must not silently turn into zeros.
func ParseFlatKeyed(b []byte, fn func(key string, v uint64)) error {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			return fmt.Errorf("keyed line %q: no value", line)
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return fmt.Errorf("keyed line %q: %w", line, err)
		}
		fn(string(k), n)
	}
	return nil
}

// CPUMax is cgroup v2's cpu.max: quota (Unlimited for "max") and period in µs.
func ParseCPUMax(b []byte) (quota, period uint64, err error) {
	f := bytes.Fields(b)
	if len(f) == 0 || len(f) > 2 {
		return 0, 0, fmt.Errorf("cpu.max %q: want \"QUOTA [PERIOD]\"", b)
	}
	if quota, err = ParseLimit(f[0]); err != nil {
		return 0, 0, fmt.Errorf("cpu.max %q: %w", b, err)
	}
	period = 100000
	if len(f) == 2 {
		if period, err = strconv.ParseUint(string(f[1]), 10, 64); err != nil || period == 0 {
			return 0, 0, fmt.Errorf("cpu.max %q: bad period", b)
		}
	}
	return quota, period, nil
}

// IOStat is one device's I/O counters from io.stat or blkio.
type IOStat struct {
	Major, Minor             uint32
	ReadBytes, WriteBytes    uint64
	ReadIOs, WriteIOs        uint64
	DiscardBytes, DiscardIOs uint64
}

// ParseIOStatV2 parses cgroup v2's io.stat ("8:0 rbytes=1 wbytes=2 rios=3 ...").
func ParseIOStatV2(b []byte) ([]IOStat, error) {
	var out []IOStat
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		var s IOStat
		if err := parseDevNum(f[0], &s); err != nil {
			return nil, fmt.Errorf("io.stat line %q: %w", line, err)
		}
		for _, kv := range f[1:] {
			k, v, ok := bytes.Cut(kv, []byte{'='})
			if !ok {
				return nil, fmt.Errorf("io.stat line %q: field %q has no value", line, kv)
			}
			var dst *uint64
			switch string(k) {
			case "rbytes":
				dst = &s.ReadBytes
			case "wbytes":
				dst = &s.WriteBytes
			case "rios":
				dst = &s.ReadIOs
			case "wios":
				dst = &s.WriteIOs
			case "dbytes":
				dst = &s.DiscardBytes
			case "dios":
				dst = &s.DiscardIOs
			default:
				continue // other controllers' keys, e.g. iocost's "cost.vrate=100.00"
			}
			n, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("io.stat line %q: %w", line, err)
			}
			*dst = n
		}
		out = append(out, s)
	}
	return out, nil
}

// ParseBlkioV1 merges v1's blkio.throttle.io_service_bytes and io_serviced
// ("8:0 Read 4096" lines, then a "Total N" line) into per-device counters.
func ParseBlkioV1(bytesFile, opsFile []byte) ([]IOStat, error) {
	idx := map[[2]uint32]int{}
	var out []IOStat
	apply := func(b []byte, isBytes bool) error {
		for len(b) > 0 {
			var line []byte
			line, b, _ = bytes.Cut(b, []byte{'\n'})
			f := bytes.Fields(line)
			if len(f) == 0 || (len(f) == 2 && string(f[0]) == "Total") {
				continue
			}
			if len(f) != 3 {
				return fmt.Errorf("blkio line %q: want \"MAJ:MIN OP VALUE\"", line)
			}
			var s IOStat
			if err := parseDevNum(f[0], &s); err != nil {
				return fmt.Errorf("blkio line %q: %w", line, err)
			}
			n, err := strconv.ParseUint(string(f[2]), 10, 64)
			if err != nil {
				return fmt.Errorf("blkio line %q: %w", line, err)
			}
			key := [2]uint32{s.Major, s.Minor}
			i, ok := idx[key]
			if !ok {
				i = len(out)
				idx[key] = i
				out = append(out, s)
			}
			d := &out[i]
			switch string(f[1]) {
			case "Read":
				if isBytes {
					d.ReadBytes = n
				} else {
					d.ReadIOs = n
				}
			case "Write":
				if isBytes {
					d.WriteBytes = n
				} else {
					d.WriteIOs = n
				}
			case "Discard":
				if isBytes {
					d.DiscardBytes = n
				} else {
					d.DiscardIOs = n
				}
			}
		}
		return nil
	}
	if err := apply(bytesFile, true); err != nil {
		return nil, err
	}
	if err := apply(opsFile, false); err != nil {
		return nil, err
	}
	return out, nil
}

func parseDevNum(b []byte, s *IOStat) error {
	ma, mi, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return fmt.Errorf("device %q: want MAJ:MIN", b)
	}
	a, err1 := strconv.ParseUint(string(ma), 10, 32)
	c, err2 := strconv.ParseUint(string(mi), 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("device %q: bad number", b)
	}
	s.Major, s.Minor = uint32(a), uint32(c)
	return nil
}

// CPUUsage is one CPU's time in nanoseconds.
type CPUUsage struct{ User, System uint64 }

// ParseCpuacctUsageAll parses v1's cpuacct.usage_all ("cpu user system" header,
// then one line per CPU in nanoseconds).
func ParseCpuacctUsageAll(b []byte) (map[int]CPUUsage, error) {
	out := map[int]CPUUsage{}
	first := true
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if first {
			first = false
			if string(f[0]) == "cpu" {
				continue
			}
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("cpuacct.usage_all line %q: want 3 fields", line)
		}
		id, err := strconv.Atoi(string(f[0]))
		if err != nil || id < 0 || id >= MaxCPUs {
			return nil, fmt.Errorf("cpuacct.usage_all line %q: bad cpu", line)
		}
		u, err1 := strconv.ParseUint(string(f[1]), 10, 64)
		s, err2 := strconv.ParseUint(string(f[2]), 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("cpuacct.usage_all line %q: bad counter", line)
		}
		out[id] = CPUUsage{User: u, System: s}
	}
	return out, nil
}

// ParseUints parses whitespace-separated unsigned integers (cpuacct.usage_percpu,
// cgroup.procs, tasks).
func ParseUints(b []byte) ([]uint64, error) {
	f := bytes.Fields(b)
	out := make([]uint64, 0, len(f))
	for _, s := range f {
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer list: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}
