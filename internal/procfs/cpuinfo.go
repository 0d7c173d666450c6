// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"strconv"
)

// CPUInfoBlock is one processor's stanza of /proc/cpuinfo.
type CPUInfoBlock struct {
	// CPU is the value of the "processor" line, or -1 for stanzas without one
	// (s390x prints a machine-wide header first).
	CPU   int
	Lines [][]byte
}

// ParseCPUInfo splits /proc/cpuinfo into stanzas separated by blank lines.
// It accepts any text: unknown layouts come back as stanzas without a CPU.
func ParseCPUInfo(b []byte) []CPUInfoBlock {
	var out []CPUInfoBlock
	cur := CPUInfoBlock{CPU: -1}
	flush := func() {
		if len(cur.Lines) > 0 {
			out = append(out, cur)
		}
		cur = CPUInfoBlock{CPU: -1}
	}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			continue
		}
		if k, v, ok := bytes.Cut(line, []byte{':'}); ok && string(bytes.TrimSpace(k)) == "processor" {
			if id, err := strconv.Atoi(string(bytes.TrimSpace(v))); err == nil && id >= 0 {
				cur.CPU = id
			}
		}
		cur.Lines = append(cur.Lines, line)
	}
	flush()
	return out
}
