// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
	"testing"
)

func TestParseStatHost(t *testing.T) {
	t.Parallel()
	s, err := ParseStat(hostFile(t, "stat"))
	if err != nil {
		t.Fatal(err)
	}
	wantTotal := CPUTimes{User: 32866, System: 23559, Idle: 189930, IOWait: 269, SoftIRQ: 610}
	if s.Total != wantTotal {
		t.Errorf("Total = %+v, want %+v", s.Total, wantTotal)
	}
	want1 := CPUTimes{User: 16698, System: 11848, Idle: 94571, IOWait: 218, SoftIRQ: 307}
	if len(s.CPUs) != 2 || s.CPUs[1] != want1 {
		t.Errorf("CPUs = %+v, want 2 CPUs with cpu1 %+v", s.CPUs, want1)
	}
	if s.BootTime != 1795778844 || s.Processes != 22647 || s.ProcsRunning != 1 || s.ProcsBlocked != 0 {
		t.Errorf("btime, processes, running, blocked = %d, %d, %d, %d", s.BootTime, s.Processes, s.ProcsRunning, s.ProcsBlocked)
	}
	var keys []string
	for _, l := range s.Other {
		k, _, _ := bytes.Cut(l, []byte{' '})
		keys = append(keys, string(k))
	}
	if want := []string{"intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked", "softirq"}; !slices.Equal(keys, want) {
		t.Errorf("Other keys = %v, want %v", keys, want)
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		wantTotal CPUTimes
		wantCPUs  map[int]CPUTimes
		wantOther int
		wantErr   bool
	}{
		{
			name:      "old kernel with seven columns",
			in:        "cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\n",
			wantTotal: CPUTimes{User: 1, Nice: 2, System: 3, Idle: 4, IOWait: 5, IRQ: 6, SoftIRQ: 7},
			wantCPUs:  map[int]CPUTimes{0: {User: 1, Nice: 2, System: 3, Idle: 4, IOWait: 5, IRQ: 6, SoftIRQ: 7}},
		},
		{
			name:      "future extra columns ignored",
			in:        "cpu  1 2 3 4 5 6 7 8 9 10 11 12\n",
			wantTotal: CPUTimes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
			wantCPUs:  map[int]CPUTimes{},
		},
		{
			name:      "offline cpu absent",
			in:        "cpu  2 0 0 0\ncpu0 1 0 0 0\ncpu3 1 0 0 0\nintr 5\n",
			wantTotal: CPUTimes{User: 2},
			wantCPUs:  map[int]CPUTimes{0: {User: 1}, 3: {User: 1}},
			wantOther: 1,
		},
		{name: "no aggregate line", in: "cpu0 1 2 3 4\n", wantErr: true},
		{name: "too few columns", in: "cpu  1 2 3\n", wantErr: true},
		{name: "garbage counter", in: "cpu  1 2 x 4\n", wantErr: true},
		{name: "negative cpu id", in: "cpu  1 2 3 4\ncpu-1 1 2 3 4\n", wantErr: true},
		{name: "cpu id past MaxCPUs", in: "cpu  1 2 3 4\ncpu8192 1 2 3 4\n", wantErr: true},
		{name: "bad btime", in: "cpu  1 2 3 4\nbtime soon\n", wantErr: true},
		{name: "bad procs_running", in: "cpu  1 2 3 4\nprocs_running -1\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseStat([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseStat(%q) = %+v, want an error", tc.in, s)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseStat(%q) = %v", tc.in, err)
			}
			if s.Total != tc.wantTotal || !reflect.DeepEqual(s.CPUs, tc.wantCPUs) || len(s.Other) != tc.wantOther {
				t.Errorf("ParseStat(%q) = total %+v cpus %+v other %d; want %+v %+v %d", tc.in, s.Total, s.CPUs, len(s.Other), tc.wantTotal, tc.wantCPUs, tc.wantOther)
			}
		})
	}
}

// formatStat renders s in /proc/stat's layout.
func formatStat(s *Stat) []byte {
	var out []byte
	line := func(name string, c CPUTimes) {
		out = append(out, name...)
		for _, f := range c.Fields() {
			out = append(out, ' ')
			out = strconv.AppendUint(out, *f, 10)
		}
		out = append(out, '\n')
	}
	line("cpu ", s.Total)
	ids := make([]int, 0, len(s.CPUs))
	for id := range s.CPUs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		line("cpu"+strconv.Itoa(id), s.CPUs[id])
	}
	for _, l := range s.Other {
		out = append(append(out, l...), '\n')
	}
	return out
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("cpu  23581 0 20251 153444 233 0 549 0 0 0\ncpu0 11625 0 10117 76960 43 0 274 0 0 0\nbtime 1795778844\nprocesses 15672\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err != nil {
			return
		}
		for id := range s.CPUs {
			if id < 0 || id >= MaxCPUs {
				t.Fatalf("cpu id %d out of range", id)
			}
		}
		text := formatStat(s)
		again, err := ParseStat(text)
		if err != nil {
			t.Fatalf("re-rendered stat %q does not parse: %v", text, err)
		}
		if again.Total != s.Total || !reflect.DeepEqual(again.CPUs, s.CPUs) ||
			again.BootTime != s.BootTime || again.Processes != s.Processes ||
			again.ProcsRunning != s.ProcsRunning || again.ProcsBlocked != s.ProcsBlocked ||
			len(again.Other) != len(s.Other) {
			t.Fatalf("round trip changed the stat:\n%+v\n%+v", s, again)
		}
	})
}
