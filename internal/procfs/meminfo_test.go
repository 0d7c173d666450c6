// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"strconv"
	"testing"
)

func TestParseMeminfoHost(t *testing.T) {
	t.Parallel()
	b := hostFile(t, "meminfo")
	m, err := ParseMeminfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Lines); got != bytes.Count(b, []byte{'\n'}) {
		t.Errorf("parsed %d lines, want one per line of the file", got)
	}
	tests := []struct {
		name   string
		key    string
		want   uint64
		wantKB bool
	}{
		{name: "total", key: "MemTotal", want: 24683620, wantKB: true},
		{name: "parenthesized key", key: "Active(anon)", want: 1588, wantKB: true},
		{name: "value wider than its column", key: "VmallocTotal", want: 34359738367, wantKB: true},
		{name: "count without unit", key: "HugePages_Total", want: 0},
		{name: "last line", key: "DirectMap2M", want: 25135104, wantKB: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := m.Get(tc.key)
			if !ok || got != tc.want {
				t.Errorf("Get(%q) = %d, %v; want %d, true", tc.key, got, ok, tc.want)
			}
			for _, l := range m.Lines {
				if l.Key == tc.key && l.KB != tc.wantKB {
					t.Errorf("%s: KB = %v, want %v", tc.key, l.KB, tc.wantKB)
				}
			}
		})
	}
	if _, ok := m.Get("NoSuchKey"); ok {
		t.Errorf("Get(NoSuchKey) reported present")
	}
	// Raw lines reassemble the file.
	var raw []byte
	for _, l := range m.Lines {
		raw = append(append(raw, l.Raw...), '\n')
	}
	if !bytes.Equal(raw, b) {
		t.Errorf("Raw lines do not reassemble the file")
	}
}

func TestParseMeminfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		key     string
		want    uint64
		wantErr bool
	}{
		{name: "minimal", in: "MemTotal: 1 kB\n", key: "MemTotal", want: 1},
		{name: "no trailing newline", in: "MemTotal:       24683620 kB", key: "MemTotal", want: 24683620},
		{name: "blank lines skipped", in: "\nMemTotal: 5 kB\n\n", key: "MemTotal", want: 5},
		{name: "duplicate keeps first", in: "A: 1 kB\nA: 2 kB\n", key: "A", want: 1},
		{name: "max uint64", in: "X: 18446744073709551615\n", key: "X", want: 18446744073709551615},
		{name: "empty", in: "", wantErr: true},
		{name: "only blank", in: "\n \n", wantErr: true},
		{name: "no colon", in: "MemTotal 1 kB\n", wantErr: true},
		{name: "empty key", in: ": 1 kB\n", wantErr: true},
		{name: "no value", in: "MemTotal:\n", wantErr: true},
		{name: "unknown unit", in: "MemTotal: 1 MB\n", wantErr: true},
		{name: "three fields", in: "MemTotal: 1 kB extra\n", wantErr: true},
		{name: "negative", in: "MemTotal: -1 kB\n", wantErr: true},
		{name: "overflow", in: "MemTotal: 18446744073709551616 kB\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseMeminfo([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseMeminfo(%q) = %+v, want an error", tc.in, m.Lines)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMeminfo(%q) = %v", tc.in, err)
			}
			if got, ok := m.Get(tc.key); !ok || got != tc.want {
				t.Errorf("Get(%q) = %d, %v; want %d", tc.key, got, ok, tc.want)
			}
		})
	}
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add([]byte("MemTotal:       24683620 kB\nHugePages_Total:       0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeminfo(b)
		if err != nil {
			return
		}
		if len(m.Lines) == 0 {
			t.Fatal("ParseMeminfo succeeded with no lines")
		}
		// Re-render canonically and parse again: same keys, values and units.
		var out []byte
		first := map[string]uint64{}
		for _, l := range m.Lines {
			if _, ok := first[l.Key]; !ok {
				first[l.Key] = l.Value
			}
			out = append(out, l.Key...)
			out = append(out, ": "...)
			out = strconv.AppendUint(out, l.Value, 10)
			if l.KB {
				out = append(out, " kB"...)
			}
			out = append(out, '\n')
		}
		again, err := ParseMeminfo(out)
		if err != nil {
			t.Fatalf("re-rendered meminfo %q does not parse: %v", out, err)
		}
		if len(again.Lines) != len(m.Lines) {
			t.Fatalf("re-parse has %d lines, want %d", len(again.Lines), len(m.Lines))
		}
		for i, l := range again.Lines {
			if l.Key != m.Lines[i].Key || l.Value != m.Lines[i].Value || l.KB != m.Lines[i].KB {
				t.Fatalf("line %d: %+v, want %+v", i, l, m.Lines[i])
			}
		}
		for k, v := range first {
			if got, ok := m.Get(k); !ok || got != v {
				t.Fatalf("Get(%q) = %d, %v; want the first value %d", k, got, ok, v)
			}
		}
	})
}
