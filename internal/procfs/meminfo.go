// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"fmt"
	"strconv"
)

// MeminfoLine is one "Key: value [kB]" line of /proc/meminfo, kept in order
// so lines we don't virtualize are passed through as the host printed them.
type MeminfoLine struct {
	Key   string
	Value uint64 // in kB when KB is set
	KB    bool
	Raw   []byte // the line without its newline
}

// Meminfo is the parsed host /proc/meminfo.
type Meminfo struct {
	Lines []MeminfoLine
	index map[string]int
}

// Get returns the value of key in kB (or the raw count for lines without a
// unit) and whether the host printed it.
func (m *Meminfo) Get(key string) (uint64, bool) {
	i, ok := m.index[key]
	if !ok {
		return 0, false
	}
	return m.Lines[i].Value, true
}

// ParseMeminfo parses /proc/meminfo. Lines that don't have the "Key: number"
// shape are an error: the kernel never prints them, so they mean the input is
// not meminfo.
func ParseMeminfo(b []byte) (*Meminfo, error) {
	m := &Meminfo{index: make(map[string]int, 64)}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		key, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(key) == 0 {
			return nil, fmt.Errorf("meminfo line %q: no key", line)
		}
		fields := bytes.Fields(rest)
		if len(fields) == 0 || len(fields) > 2 {
			return nil, fmt.Errorf("meminfo line %q: want a value and an optional unit", line)
		}
		v, err := strconv.ParseUint(string(fields[0]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("meminfo line %q: %w", line, err)
		}
		kb := len(fields) == 2
		if kb && string(fields[1]) != "kB" {
			return nil, fmt.Errorf("meminfo line %q: unknown unit %q", line, fields[1])
		}
		k := string(key)
		if _, dup := m.index[k]; !dup {
			m.index[k] = len(m.Lines)
		}
		m.Lines = append(m.Lines, MeminfoLine{Key: k, Value: v, KB: kb, Raw: line})
	}
	if len(m.Lines) == 0 {
		return nil, fmt.Errorf("meminfo: empty")
	}
	return m, nil
}
