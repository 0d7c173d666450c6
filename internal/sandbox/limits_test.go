// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package sandbox

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		lim     Limits
		wantErr []string // substrings; nil means valid
	}{
		{name: "zero", lim: Limits{}},
		{name: "full", lim: Limits{MemoryBytes: 256 << 20, SwapBytes: 64 << 20, CPUQuotaUS: 50000, CPUPeriodUS: 100000, Cpuset: "0-1,3"}},
		{name: "unlimited swap without memory", lim: Limits{SwapBytes: -1}},
		{name: "quota with default period", lim: Limits{CPUQuotaUS: 20000}},
		{name: "negative memory", lim: Limits{MemoryBytes: -1}, wantErr: []string{"MemoryBytes -1"}},
		{name: "swap below -1", lim: Limits{MemoryBytes: 1, SwapBytes: -2}, wantErr: []string{"SwapBytes -2"}},
		{name: "swap without memory", lim: Limits{SwapBytes: 1 << 20}, wantErr: []string{"needs MemoryBytes"}},
		{name: "period without quota", lim: Limits{CPUPeriodUS: 100000}, wantErr: []string{"without CPUQuotaUS"}},
		{name: "negative cpu", lim: Limits{CPUQuotaUS: -5, CPUPeriodUS: -1}, wantErr: []string{"CPUQuotaUS -5", "CPUPeriodUS -1"}},
		{name: "bad cpuset", lim: Limits{Cpuset: "0-"}, wantErr: []string{`bad item "0-"`}},
		{name: "reversed cpuset", lim: Limits{Cpuset: "3-1"}, wantErr: []string{`bad item "3-1"`}},
		{name: "cpuset with spaces", lim: Limits{Cpuset: "0, 1"}, wantErr: []string{`bad item " 1"`}},
		{name: "all problems at once", lim: Limits{MemoryBytes: -1, Cpuset: "x"}, wantErr: []string{"MemoryBytes -1", `bad item "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.lim.validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate() = nil, want errors containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestLimitsWrites(t *testing.T) {
	t.Parallel()
	full := Limits{MemoryBytes: 256 << 20, SwapBytes: 64 << 20, CPUQuotaUS: 50000, Cpuset: "0"}
	tests := []struct {
		name    string
		lim     Limits
		v2      bool
		swap    bool
		want    []write
		wantErr error
	}{
		{name: "v1 none", lim: Limits{}, swap: true},
		{name: "v2 none", lim: Limits{}, v2: true, swap: true},
		{
			name: "v1 full", lim: full, swap: true,
			want: []write{
				{"cpuset", "cpuset.cpus", "0"},
				{"memory", "memory.limit_in_bytes", "268435456"},
				{"memory", "memory.memsw.limit_in_bytes", "335544320"},
				{"cpu", "cpu.cfs_period_us", "100000"},
				{"cpu", "cpu.cfs_quota_us", "50000"},
			},
		},
		{
			name: "v2 full", lim: full, v2: true, swap: true,
			want: []write{
				{"cpuset", "cpuset.cpus", "0"},
				{"memory", "memory.max", "268435456"},
				{"memory", "memory.swap.max", "67108864"},
				{"cpu", "cpu.max", "50000 100000"},
			},
		},
		{
			name: "v1 unlimited swap", lim: Limits{MemoryBytes: 1 << 30, SwapBytes: -1}, swap: true,
			want: []write{{"memory", "memory.limit_in_bytes", "1073741824"}, {"memory", "memory.memsw.limit_in_bytes", "-1"}},
		},
		{
			name: "v2 unlimited swap", lim: Limits{SwapBytes: -1}, v2: true, swap: true,
			want: []write{{"memory", "memory.swap.max", "max"}},
		},
		{
			name: "v1 unlimited swap without accounting is a no-op", lim: Limits{MemoryBytes: 1 << 30, SwapBytes: -1},
			want: []write{{"memory", "memory.limit_in_bytes", "1073741824"}},
		},
		{name: "v1 swap without accounting", lim: full, wantErr: ErrNoSwapAccounting},
		{name: "v2 swap without accounting", lim: full, v2: true, wantErr: ErrNoSwapAccounting},
		{
			name: "v2 explicit period", lim: Limits{CPUQuotaUS: 5000, CPUPeriodUS: 10000}, v2: true,
			want: []write{{"cpu", "cpu.max", "5000 10000"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			writes := tc.lim.v1Writes
			if tc.v2 {
				writes = tc.lim.v2Writes
			}
			got, err := writes(tc.swap)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("writes =\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
}
