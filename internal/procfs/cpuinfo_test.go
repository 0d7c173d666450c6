// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"testing"
)

func TestParseCPUInfoHost(t *testing.T) {
	t.Parallel()
	b := hostFile(t, "cpuinfo")
	blocks := ParseCPUInfo(b)
	if len(blocks) != 2 || blocks[0].CPU != 0 || blocks[1].CPU != 1 {
		t.Fatalf("ParseCPUInfo(host) gave %d blocks, want CPUs 0 and 1", len(blocks))
	}
	if got := len(blocks[0].Lines); got != 26 {
		t.Errorf("block 0 has %d lines, want 26", got)
	}
	if !bytes.HasPrefix(blocks[1].Lines[len(blocks[1].Lines)-1], []byte("power management:")) {
		t.Errorf("last line of block 1 = %q", blocks[1].Lines[len(blocks[1].Lines)-1])
	}
}

func TestParseCPUInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		wantCPUs  []int
		wantLines []int
	}{
		{name: "empty", in: "", wantCPUs: nil},
		{name: "only blank lines", in: "\n\n \t\n", wantCPUs: nil},
		{name: "x86 two stanzas", in: "processor\t: 0\nvendor_id\t: X\n\nprocessor\t: 1\nvendor_id\t: X\n\n", wantCPUs: []int{0, 1}, wantLines: []int{2, 2}},
		{name: "no trailing blank line", in: "processor : 3\nflags : fpu", wantCPUs: []int{3}, wantLines: []int{2}},
		{
			name:      "s390x machine header then per-cpu stanzas",
			in:        "vendor_id       : IBM/S390\n# processors    : 2\nbogomips per cpu: 3241.00\n\nprocessor 0: version = FF\n\ncpu number      : 0\ncpu MHz dynamic : 5200\n\n",
			wantCPUs:  []int{-1, -1, -1},
			wantLines: []int{3, 1, 2},
		},
		{name: "arm64 stanza", in: "processor\t: 7\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n\nHardware\t: BCM2835\n", wantCPUs: []int{7, -1}, wantLines: []int{3, 1}},
		{name: "negative processor ignored", in: "processor : -2\n", wantCPUs: []int{-1}, wantLines: []int{1}},
		{name: "non-numeric processor ignored", in: "processor : x\n", wantCPUs: []int{-1}, wantLines: []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ParseCPUInfo([]byte(tc.in))
			if len(got) != len(tc.wantCPUs) {
				t.Fatalf("ParseCPUInfo(%q) gave %d blocks, want %d", tc.in, len(got), len(tc.wantCPUs))
			}
			for i, b := range got {
				if b.CPU != tc.wantCPUs[i] || len(b.Lines) != tc.wantLines[i] {
					t.Errorf("block %d = CPU %d with %d lines, want CPU %d with %d lines", i, b.CPU, len(b.Lines), tc.wantCPUs[i], tc.wantLines[i])
				}
			}
		})
	}
}

func FuzzParseCPUInfo(f *testing.F) {
	f.Add([]byte("processor\t: 0\nvendor_id\t: GenuineIntel\n\nprocessor\t: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		blocks := ParseCPUInfo(b)
		nonBlank := 0
		for _, l := range bytes.Split(b, []byte{'\n'}) {
			if len(bytes.TrimSpace(l)) > 0 {
				nonBlank++
			}
		}
		lines := 0
		for _, blk := range blocks {
			if len(blk.Lines) == 0 {
				t.Fatal("empty block")
			}
			if blk.CPU < -1 {
				t.Fatalf("CPU %d", blk.CPU)
			}
			lines += len(blk.Lines)
		}
		if lines != nonBlank {
			t.Fatalf("blocks hold %d lines, input has %d non-blank lines", lines, nonBlank)
		}
		// Joining the blocks with blank lines gives the same blocks back.
		var out []byte
		for _, blk := range blocks {
			for _, l := range blk.Lines {
				out = append(append(out, l...), '\n')
			}
			out = append(out, '\n')
		}
		again := ParseCPUInfo(out)
		if len(again) != len(blocks) {
			t.Fatalf("re-parse gave %d blocks, want %d", len(again), len(blocks))
		}
		for i := range again {
			if again[i].CPU != blocks[i].CPU || len(again[i].Lines) != len(blocks[i].Lines) {
				t.Fatalf("block %d changed: %+v → %+v", i, blocks[i], again[i])
			}
		}
	})
}
