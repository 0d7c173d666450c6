// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"fmt"
	"strconv"
)

// CPUTimes are the per-CPU columns of /proc/stat, in USER_HZ ticks.
type CPUTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal, Guest, GuestNice uint64
}

// Fields returns the columns in /proc/stat order.
func (c *CPUTimes) Fields() [10]*uint64 {
	return [10]*uint64{&c.User, &c.Nice, &c.System, &c.Idle, &c.IOWait, &c.IRQ, &c.SoftIRQ, &c.Steal, &c.Guest, &c.GuestNice}
}

// Stat is the parsed host /proc/stat.
type Stat struct {
	Total CPUTimes
	// CPUs maps a host CPU id to its times; offline CPUs are absent, as in the file.
	CPUs map[int]CPUTimes
	// Other holds the non-cpu lines (intr, ctxt, btime, processes, procs_running,
	// procs_blocked, softirq) verbatim, in order.
	Other        [][]byte
	BootTime     uint64
	Processes    uint64
	ProcsRunning uint64
	ProcsBlocked uint64
}

// ParseStat parses /proc/stat.
func ParseStat(b []byte) (*Stat, error) {
	s := &Stat{CPUs: make(map[int]CPUTimes)}
	sawTotal := false
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		if bytes.HasPrefix(line, []byte("cpu")) {
			fields := bytes.Fields(line)
			var t CPUTimes
			ptrs := t.Fields()
			if len(fields) < 5 {
				return nil, fmt.Errorf("stat line %q: too few columns", line)
			}
			for i, f := range fields[1:] {
				if i >= len(ptrs) {
					break
				}
				v, err := strconv.ParseUint(string(f), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("stat line %q: %w", line, err)
				}
				*ptrs[i] = v
			}
			name := fields[0][3:]
			if len(name) == 0 {
				s.Total, sawTotal = t, true
				continue
			}
			id, err := strconv.Atoi(string(name))
			if err != nil || id < 0 || id >= MaxCPUs {
				return nil, fmt.Errorf("stat line %q: bad cpu id", line)
			}
			s.CPUs[id] = t
			continue
		}
		key, val, _ := bytes.Cut(line, []byte{' '})
		var dst *uint64
		switch string(key) {
		case "btime":
			dst = &s.BootTime
		case "processes":
			dst = &s.Processes
		case "procs_running":
			dst = &s.ProcsRunning
		case "procs_blocked":
			dst = &s.ProcsBlocked
		}
		if dst != nil {
			v, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("stat line %q: %w", line, err)
			}
			*dst = v
		}
		s.Other = append(s.Other, line)
	}
	if !sawTotal {
		return nil, fmt.Errorf("stat: no aggregate cpu line")
	}
	return s, nil
}
