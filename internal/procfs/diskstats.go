// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"fmt"
	"strconv"
)

// DiskstatsLine is one device line of /proc/diskstats.
type DiskstatsLine struct {
	Major, Minor uint32
	Name         string
	// Fields are the counters after the name (11 on old kernels, 15 since 4.18,
	// 17 since 5.5), kept at whatever count the host prints.
	Fields []uint64
}

// ParseDiskstats parses /proc/diskstats.
func ParseDiskstats(b []byte) ([]DiskstatsLine, error) {
	var out []DiskstatsLine
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 4 {
			return nil, fmt.Errorf("diskstats line %q: too few fields", line)
		}
		maj, err1 := strconv.ParseUint(string(f[0]), 10, 32)
		mnr, err2 := strconv.ParseUint(string(f[1]), 10, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("diskstats line %q: bad device number", line)
		}
		d := DiskstatsLine{Major: uint32(maj), Minor: uint32(mnr), Name: string(f[2]), Fields: make([]uint64, len(f)-3)}
		for i, s := range f[3:] {
			v, err := strconv.ParseUint(string(s), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("diskstats line %q: %w", line, err)
			}
			d.Fields[i] = v
		}
		out = append(out, d)
	}
	return out, nil
}
