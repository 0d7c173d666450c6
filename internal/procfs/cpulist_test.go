// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func seq(lo, hi int) []int {
	out := make([]int, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, i)
	}
	return out
}

func TestParseCPUList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []int
		wantErr bool
	}{
		{name: "empty", in: "", want: []int{}},
		{name: "blank line", in: " \n", want: []int{}},
		{name: "single", in: "0\n", want: []int{0}},
		{name: "range", in: "0-3", want: []int{0, 1, 2, 3}},
		{name: "kernel mixed", in: "0-3,8,10-11\n", want: []int{0, 1, 2, 3, 8, 10, 11}},
		{name: "unsorted and overlapping", in: "8,0-2,1-3,8", want: []int{0, 1, 2, 3, 8}},
		{name: "degenerate range", in: "5-5", want: []int{5}},
		{name: "spaces around items", in: " 1 , 3 - 4 ", want: []int{1, 3, 4}},
		{name: "huge cpuset", in: "0-1023", want: seq(0, 1023)},
		{name: "highest id", in: "8191", want: []int{8191}},
		{name: "whole range", in: "0-8191", want: seq(0, 8191)},
		{name: "id past MaxCPUs", in: "8192", wantErr: true},
		{name: "range past MaxCPUs", in: "0-8192", wantErr: true},
		{name: "reversed range", in: "3-1", wantErr: true},
		{name: "negative", in: "-1", wantErr: true},
		{name: "trailing comma", in: "0,", wantErr: true},
		{name: "open range", in: "0-", wantErr: true},
		{name: "double dash", in: "0--3", wantErr: true},
		{name: "letters", in: "0-x", wantErr: true},
		{name: "hex mask is not a list", in: "ff", wantErr: true},
		{name: "stride syntax unsupported", in: "0-7:2/4", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCPUList(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseCPUList(%q) = %v, want an error", tc.in, got)
				}
				if !errors.Is(err, ErrCPUList) {
					t.Errorf("ParseCPUList(%q) error %v does not wrap ErrCPUList", tc.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCPUList(%q) = %v", tc.in, err)
			}
			if got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseCPUList(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatCPUList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []int
		want string
	}{
		{name: "none", in: nil, want: ""},
		{name: "single", in: []int{3}, want: "3"},
		{name: "pair is a range", in: []int{3, 4}, want: "3-4"},
		{name: "mixed", in: []int{0, 1, 2, 3, 8, 10, 11}, want: "0-3,8,10-11"},
		{name: "sparse", in: []int{1, 3, 5}, want: "1,3,5"},
		{name: "huge", in: seq(0, 1023), want: "0-1023"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := FormatCPUList(tc.in); got != tc.want {
				t.Errorf("FormatCPUList(%v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseCPUListHostOnline(t *testing.T) {
	t.Parallel()
	got, err := ParseCPUList(string(hostFile(t, "cpu-online")))
	if err != nil || !slices.Equal(got, []int{0, 1}) {
		t.Errorf("ParseCPUList(cpu-online) = %v, %v; want [0 1]", got, err)
	}
}

// checkCPUList asserts the invariants of a parsed list.
func checkCPUList(t *testing.T, in string, ids []int) {
	t.Helper()
	for i, c := range ids {
		if c < 0 || c >= MaxCPUs {
			t.Fatalf("ParseCPUList(%q): id %d out of range", in, c)
		}
		if i > 0 && ids[i-1] >= c {
			t.Fatalf("ParseCPUList(%q) = %v: not strictly ascending", in, ids)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"", "0", "0-3,8,10-11\n", "1,3,5", "0-1023", "3-1", "8192", " 1 , 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 4096 {
			return // each item may expand to MaxCPUs ids; keep the fuzzer fast
		}
		ids, err := ParseCPUList(in)
		if err != nil {
			if !errors.Is(err, ErrCPUList) {
				t.Fatalf("ParseCPUList(%q) error %v does not wrap ErrCPUList", in, err)
			}
			return
		}
		checkCPUList(t, in, ids)
		text := FormatCPUList(ids)
		again, err := ParseCPUList(text)
		if err != nil {
			t.Fatalf("ParseCPUList(FormatCPUList(%v) = %q) = %v", ids, text, err)
		}
		if !slices.Equal(again, ids) {
			t.Fatalf("round trip of %q: %v → %q → %v", in, ids, text, again)
		}
		if FormatCPUList(again) != text {
			t.Fatalf("FormatCPUList is not canonical for %q", text)
		}
		if strings.ContainsAny(text, " \n") {
			t.Fatalf("FormatCPUList(%v) = %q has blanks", ids, text)
		}
	})
}

// FuzzFormatCPUList builds an id set from arbitrary bytes (two per id),
// formats it and checks that parsing gives the set back.
func FuzzFormatCPUList(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 8})
	f.Add([]byte{0x1f, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var set [MaxCPUs]bool
		for i := 0; i+1 < len(b); i += 2 {
			set[(int(b[i])<<8|int(b[i+1]))%MaxCPUs] = true
		}
		var ids []int
		for c, ok := range set {
			if ok {
				ids = append(ids, c)
			}
		}
		text := FormatCPUList(ids)
		got, err := ParseCPUList(text)
		if err != nil {
			t.Fatalf("ParseCPUList(%q) = %v", text, err)
		}
		if !slices.Equal(got, ids) && !(len(got) == 0 && len(ids) == 0) {
			t.Fatalf("ParseCPUList(FormatCPUList(%v)) = %v", ids, got)
		}
	})
}
