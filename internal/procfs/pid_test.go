// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const statTail = " 0 0 0 -1 4194560 17869 3269568 0 432 116 280 14551 12900 10 -10 13 0 18 40042496 2584 18446744073709551615 1 1 0 0 0 0 0 4096 1256 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

func TestParsePidStat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    PidStat
		wantErr bool
	}{
		{name: "init", in: "1 (process_api) S 0" + statTail, want: PidStat{State: 'S', PPid: 0, StartTime: 18}},
		{name: "comm with spaces and parens", in: "4300 (my (odd) name) R 4250" + statTail, want: PidStat{State: 'R', PPid: 4250, StartTime: 18}},
		{name: "comm with a newline", in: "77 (a\nb) D 2" + statTail, want: PidStat{State: 'D', PPid: 2, StartTime: 18}},
		{name: "minimal twenty fields", in: "9 (x) Z 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 12345", want: PidStat{State: 'Z', PPid: 1, StartTime: 12345}},
		{name: "no comm", in: "9 x Z 1", wantErr: true},
		{name: "too few fields", in: "9 (x) S 1 0 0", wantErr: true},
		{name: "state not one byte", in: "9 (x) SS 1" + statTail, wantErr: true},
		{name: "bad ppid", in: "9 (x) S p" + statTail, wantErr: true},
		{name: "bad starttime", in: "9 (x) S 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 -5", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParsePidStat([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParsePidStat(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParsePidStat(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParsePidStatHostAndSelf(t *testing.T) {
	t.Parallel()
	got, err := ParsePidStat(hostFile(t, "pid1-stat"))
	if err != nil || got.State != 'S' || got.PPid != 0 || got.StartTime != 18 {
		t.Errorf("ParsePidStat(pid1-stat) = %+v, %v", got, err)
	}
	b, err := ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	self, err := ParsePidStat(b)
	if err != nil || self.PPid != os.Getppid() || self.StartTime == 0 {
		t.Errorf("ParsePidStat(/proc/self/stat) = %+v, %v; want ppid %d and a start time", self, err, os.Getppid())
	}
}

func FuzzParsePidStat(f *testing.F) {
	f.Add([]byte("1 (process_api) S 0" + statTail))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParsePidStat(b)
		if err != nil {
			return
		}
		line := fmt.Sprintf("1 (x) %s %d 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 %d\n", []byte{st.State}, st.PPid, st.StartTime)
		again, err := ParsePidStat([]byte(line))
		if st.State == ' ' || st.State == '\n' || st.State == '\t' || st.State == '\v' || st.State == '\f' || st.State == '\r' {
			t.Fatalf("state %q is a blank", st.State)
		}
		if err != nil || again != st {
			t.Fatalf("round trip %+v → %q → %+v, %v", st, line, again, err)
		}
	})
}

func TestParseNSpid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []int
		wantErr bool
	}{
		{name: "host process", in: "Name:\tcat\nNSpid:\t15692\nNSpgid:\t15687\n", want: []int{15692}},
		{name: "container init", in: "Tgid:\t4242\nNSpid:\t4242\t1\n", want: []int{4242, 1}},
		{name: "nested namespaces", in: "NSpid:\t4500\t40\t1\n", want: []int{4500, 40, 1}},
		{name: "NStgid is not NSpid", in: "NStgid:\t4242\t1\nNSpid:\t4243\t2\n", want: []int{4243, 2}},
		{name: "kernel without NSpid", in: "Name:\tcat\nPid:\t1\n", wantErr: true},
		{name: "empty NSpid", in: "NSpid:\t\n", wantErr: true},
		{name: "garbage NSpid", in: "NSpid:\t12\tx\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseNSpid([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseNSpid(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseNSpid(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseNSpidHost(t *testing.T) {
	t.Parallel()
	got, err := ParseNSpid(hostFile(t, "pid1-status"))
	if err != nil || !slices.Equal(got, []int{1}) {
		t.Errorf("ParseNSpid(pid1-status) = %v, %v; want [1]", got, err)
	}
}

func FuzzParseNSpid(f *testing.F) {
	f.Add([]byte("Name:\tcat\nNSpid:\t4500\t40\t1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := ParseNSpid(b)
		if err != nil {
			return
		}
		if len(ids) == 0 {
			t.Fatal("ParseNSpid succeeded with no ids")
		}
		parts := make([]string, len(ids))
		for i, v := range ids {
			parts[i] = strconv.Itoa(v)
		}
		text := "NSpid:\t" + strings.Join(parts, "\t") + "\n"
		again, err := ParseNSpid([]byte(text))
		if err != nil || !slices.Equal(again, ids) {
			t.Fatalf("round trip %v → %q → %v, %v", ids, text, again, err)
		}
	})
}

func TestParseUptime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantUp   uint64
		wantIdle uint64
		wantErr  bool
	}{
		{name: "kernel format", in: "1239.54 1899.31\n", wantUp: 123954, wantIdle: 189931},
		{name: "zero", in: "0.00 0.00\n", wantUp: 0, wantIdle: 0},
		{name: "one decimal", in: "5.5 7.0", wantUp: 550, wantIdle: 700},
		{name: "no decimals", in: "12 34", wantUp: 1200, wantIdle: 3400},
		{name: "more decimals truncated", in: "1.239 2.999", wantUp: 123, wantIdle: 299},
		{name: "largest", in: "92233720368547758.07 0.00", wantUp: 9223372036854775807, wantIdle: 0},
		{name: "past the range", in: "92233720368547759.00 0.00", wantErr: true},
		{name: "one field", in: "1239.54\n", wantErr: true},
		{name: "three fields", in: "1 2 3", wantErr: true},
		{name: "negative", in: "-1.00 2.00", wantErr: true},
		{name: "bad fraction", in: "1.x0 2.00", wantErr: true},
		{name: "exponent", in: "1e3 2.00", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up, idle, err := ParseUptime([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseUptime(%q) = %d, %d; want an error", tc.in, up, idle)
				}
				return
			}
			if err != nil || up != tc.wantUp || idle != tc.wantIdle {
				t.Errorf("ParseUptime(%q) = %d, %d, %v; want %d, %d", tc.in, up, idle, err, tc.wantUp, tc.wantIdle)
			}
		})
	}
}

func TestParseUptimeHost(t *testing.T) {
	t.Parallel()
	up, idle, err := ParseUptime(hostFile(t, "uptime"))
	if err != nil || up != 123954 || idle != 189931 {
		t.Errorf("ParseUptime(host) = %d, %d, %v", up, idle, err)
	}
}

func FuzzParseUptime(f *testing.F) {
	f.Add([]byte("1239.54 1899.31\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		up, idle, err := ParseUptime(b)
		if err != nil {
			return
		}
		text := fmt.Sprintf("%d.%02d %d.%02d\n", up/100, up%100, idle/100, idle%100)
		up2, idle2, err := ParseUptime([]byte(text))
		if err != nil || up2 != up || idle2 != idle {
			t.Fatalf("round trip %d %d → %q → %d %d %v", up, idle, text, up2, idle2, err)
		}
	})
}
