// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package cgview_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

const unlimited = cgview.Unlimited

// ctrMemStat is memory.stat of the v2 fixtures' container, normalized.
var ctrMemStat = cgview.MemStat{
	File: 58720256, Anon: 142606336, Shmem: 4096, Mapped: 25165824, Dirty: 8192,
	ActiveAnon: 138412032, InactiveAnon: 4194304, ActiveFile: 33554432, InactiveFile: 25165824,
	Slab: 3670016, SlabReclaimable: 2097152, SlabUnreclaimable: 1572864,
	KernelStack: 393216, PageTables: 1048576, AnonHuge: 8388608,
}

// v1MemStat is the total_* half of the v1 fixtures' memory.stat.
var v1MemStat = cgview.MemStat{
	File: 62914560, Anon: 142606336, Shmem: 4096, Mapped: 25165824, Dirty: 8192,
	ActiveAnon: 138412032, InactiveAnon: 4194304, ActiveFile: 33554432, InactiveFile: 29360128,
	AnonHuge: 8388608,
}

func TestMemory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		pid     int
		want    cgview.Memory
	}{
		{
			name: "v2 burstable: container limit below pod", fixture: "v2-systemd-burstable", pid: readPid,
			want: cgview.Memory{Limit: 536870912, Usage: 210763776, SwapLimit: 0, SwapUsage: 0, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 guaranteed", fixture: "v2-systemd-guaranteed", pid: readPid,
			want: cgview.Memory{Limit: 1073741824, Usage: 734003200, SwapLimit: 0, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 besteffort: kubepods.slice allocatable is the limit", fixture: "v2-systemd-besteffort", pid: readPid,
			want: cgview.Memory{Limit: 16106127360, Usage: 83886080, SwapLimit: unlimited, SwapUsage: 1048576, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 all max", fixture: "v2-max", pid: execPid,
			want: cgview.Memory{Limit: unlimited, Usage: 83886080, SwapLimit: unlimited, SwapUsage: 4194304, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 cpuset only", fixture: "v2-cpuset-only", pid: readPid,
			want: cgview.Memory{Limit: 268435456, Usage: 104857600, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 nested: pod limits win", fixture: "v2-nested", pid: readPid,
			want: cgview.Memory{Limit: 268435456, Usage: 230686720, SwapLimit: 104857600, SwapUsage: 52428800, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 limit above host", fixture: "v2-over-host", pid: readPid,
			want: cgview.Memory{Limit: 68719476736, Usage: 2147483648, SwapKnown: true, Stat: ctrMemStat},
		},
		{
			name: "v2 host reader", fixture: "v2-systemd-burstable", pid: hostPid,
			want: cgview.Memory{Limit: unlimited, Usage: 41943040, SwapLimit: unlimited, SwapKnown: true, Stat: cgview.MemStat{
				File: 16777216, Anon: 20971520, Mapped: 8388608, ActiveAnon: 18874368, InactiveAnon: 2097152,
				ActiveFile: 8388608, InactiveFile: 8388608, Slab: 1572864, SlabReclaimable: 1048576,
				SlabUnreclaimable: 524288, KernelStack: 131072, PageTables: 262144,
			}},
		},
		{
			name: "v1 burstable with swap accounting", fixture: "v1-cgroupfs-burstable", pid: readPid,
			want: cgview.Memory{Limit: 536870912, Usage: 209715200, SwapLimit: 536870912, SwapUsage: 10485760, SwapKnown: true, Stat: v1MemStat},
		},
		{
			name: "v1 without swap accounting", fixture: "v1-missing-controllers", pid: readPid,
			want: cgview.Memory{Limit: 536870912, Usage: 209715200, SwapLimit: unlimited, Stat: v1MemStat},
		},
		{
			name: "hybrid guaranteed: memsw equals the limit", fixture: "hybrid-cgroupfs-guaranteed", pid: readPid,
			want: cgview.Memory{Limit: 1073741824, Usage: 209715200, SwapLimit: 0, SwapUsage: 0, SwapKnown: true, Stat: v1MemStat},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			got, err := r.Memory(resolve(t, r, tc.pid))
			if err != nil {
				t.Fatalf("Memory() = %v", err)
			}
			if got != tc.want {
				t.Errorf("Memory() =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestMemoryV1Limits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		limit, memsw  string
		wantLimit     uint64
		wantSwapLimit uint64
	}{
		{name: "no limit prints PAGE_COUNTER_MAX", limit: "9223372036854771712", memsw: "9223372036854771712", wantLimit: unlimited, wantSwapLimit: unlimited},
		{name: "memory limit only", limit: "536870912", memsw: "9223372036854771712", wantLimit: 536870912, wantSwapLimit: unlimited},
		{name: "both limits", limit: "536870912", memsw: "805306368", wantLimit: 536870912, wantSwapLimit: 268435456},
		{name: "limit at 2^62 is none", limit: "4611686018427387904", memsw: "4611686018427387904", wantLimit: unlimited, wantSwapLimit: unlimited},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := copyFixture(t, "v1-cgroupfs-burstable")
			dir := "sys/fs/cgroup/memory" + v1Burstable
			writeFile(t, root, dir+"/memory.stat",
				"total_cache 4096\ntotal_rss 8192\nhierarchical_memory_limit "+tc.limit+"\nhierarchical_memsw_limit "+tc.memsw+"\n")
			r := newResolver(t, root)
			m, err := r.Memory(resolve(t, r, readPid))
			if err != nil {
				t.Fatalf("Memory() = %v", err)
			}
			if m.Limit != tc.wantLimit || m.SwapLimit != tc.wantSwapLimit {
				t.Errorf("Limit, SwapLimit = %d, %d; want %d, %d", m.Limit, m.SwapLimit, tc.wantLimit, tc.wantSwapLimit)
			}
		})
	}
}

func TestMemoryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fixture  string
		pid      int
		wantIs   error  // nil: any error that is neither sentinel
		wantText string // substring of the message
	}{
		{name: "v2 garbage memory.max", fixture: "v2-malformed", pid: readPid, wantText: "memory.max"},
		{name: "v2 garbage memory.stat", fixture: "v2-malformed", pid: 5300, wantText: "memory.stat"},
		{name: "v2 memory controller not enabled", fixture: "v2-missing-controllers", pid: readPid, wantIs: cgview.ErrNoController},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			m, err := r.Memory(resolve(t, r, tc.pid))
			if err == nil {
				t.Fatalf("Memory() = %+v, nil; want an error", m)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Memory() error = %v, want %v", err, tc.wantIs)
			}
			if tc.wantIs == nil && (errors.Is(err, cgview.ErrNoContainer) || errors.Is(err, cgview.ErrNoController)) {
				t.Errorf("Memory() error = %v; a malformed file is neither ErrNoContainer nor ErrNoController", err)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Memory() error = %q, want it to mention %q", err, tc.wantText)
			}
		})
	}
}

func TestCPU(t *testing.T) {
	t.Parallel()
	cpus := func(ids ...int) []int { return ids }
	all8 := cpus(0, 1, 2, 3, 4, 5, 6, 7)
	v1User := uint64(91234567890 + 88765432101 + 92345678901 + 87654321098 + 90123456789 + 89012345678 + 93456789012 + 86543210987)
	v1Sys := uint64(23456789012 + 21234567890 + 24567890123 + 22345678901 + 23456789012 + 21098765432 + 25678901234 + 20987654321)
	tests := []struct {
		name       string
		fixture    string
		pid        int
		wantCpuset []int
		wantQuota  float64
		wantUser   uint64
		wantSys    uint64
		wantPerCPU int // number of per-CPU entries (v1)
	}{
		{name: "v2 burstable: container quota below pod", fixture: "v2-systemd-burstable", pid: readPid, wantCpuset: all8, wantQuota: 1.5, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 guaranteed exclusive cpus", fixture: "v2-systemd-guaranteed", pid: readPid, wantCpuset: cpus(2, 3), wantQuota: 2, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 besteffort no quota", fixture: "v2-systemd-besteffort", pid: readPid, wantCpuset: all8, wantQuota: 0, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 all max", fixture: "v2-max", pid: readPid, wantCpuset: all8, wantQuota: 0, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 cpuset only", fixture: "v2-cpuset-only", pid: readPid, wantCpuset: cpus(1, 3, 5), wantQuota: 0, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 quota only", fixture: "v2-quota-only", pid: readPid, wantCpuset: nil, wantQuota: 0.5, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 nested: pod quota wins", fixture: "v2-nested", pid: readPid, wantCpuset: all8, wantQuota: 1, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 missing controllers", fixture: "v2-missing-controllers", pid: readPid, wantCpuset: nil, wantQuota: 0, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v2 malformed memory does not affect cpu", fixture: "v2-malformed", pid: readPid, wantCpuset: all8, wantQuota: 1.5, wantUser: 812345678000, wantSys: 234567890000},
		{name: "v1 burstable", fixture: "v1-cgroupfs-burstable", pid: readPid, wantCpuset: all8, wantQuota: 1.5, wantUser: v1User, wantSys: v1Sys, wantPerCPU: 8},
		{name: "v1 without cpuset hierarchy", fixture: "v1-missing-controllers", pid: readPid, wantCpuset: nil, wantQuota: 1.5, wantUser: v1User, wantSys: v1Sys, wantPerCPU: 8},
		{name: "hybrid guaranteed", fixture: "hybrid-cgroupfs-guaranteed", pid: readPid, wantCpuset: cpus(1), wantQuota: 1, wantUser: 1234567890 + 81234567890, wantSys: 456789012 + 31234567890, wantPerCPU: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			got, err := r.CPU(resolve(t, r, tc.pid))
			if err != nil {
				t.Fatalf("CPU() = %v", err)
			}
			if !slices.Equal(got.Cpuset, tc.wantCpuset) || (got.Cpuset == nil) != (tc.wantCpuset == nil) {
				t.Errorf("Cpuset = %v, want %v", got.Cpuset, tc.wantCpuset)
			}
			if got.Quota != tc.wantQuota {
				t.Errorf("Quota = %v, want %v", got.Quota, tc.wantQuota)
			}
			if got.User != tc.wantUser || got.System != tc.wantSys {
				t.Errorf("User, System = %d, %d; want %d, %d", got.User, got.System, tc.wantUser, tc.wantSys)
			}
			if len(got.PerCPU) != tc.wantPerCPU || (tc.wantPerCPU == 0) != (got.PerCPU == nil) {
				t.Errorf("PerCPU = %v, want %d entries", got.PerCPU, tc.wantPerCPU)
			}
		})
	}
}

func TestCPUV1PerCPU(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("hybrid-cgroupfs-guaranteed"))
	got, err := r.CPU(resolve(t, r, readPid))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]procfs.CPUUsage{0: {User: 1234567890, System: 456789012}, 1: {User: 81234567890, System: 31234567890}}
	if !reflect.DeepEqual(got.PerCPU, want) {
		t.Errorf("PerCPU = %v, want %v", got.PerCPU, want)
	}
}

func TestCPUV1QuotaMinUpTheTree(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ctrQuota  string
		podQuota  string
		ctrPeriod string
		want      float64
	}{
		{name: "child lower", ctrQuota: "150000", podQuota: "200000", ctrPeriod: "100000", want: 1.5},
		{name: "parent lower", ctrQuota: "400000", podQuota: "100000", ctrPeriod: "100000", want: 1},
		{name: "child unlimited", ctrQuota: "-1", podQuota: "250000", ctrPeriod: "100000", want: 2.5},
		{name: "both unlimited", ctrQuota: "-1", podQuota: "-1", ctrPeriod: "100000", want: 0},
		{name: "child period differs", ctrQuota: "25000", podQuota: "-1", ctrPeriod: "50000", want: 0.5},
		{name: "garbage child is skipped", ctrQuota: "lots", podQuota: "300000", ctrPeriod: "100000", want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := copyFixture(t, "v1-cgroupfs-burstable")
			pod := "sys/fs/cgroup/cpu/kubepods/burstable/pod" + podUID
			writeFile(t, root, pod+"/"+ctrID+"/cpu.cfs_quota_us", tc.ctrQuota+"\n")
			writeFile(t, root, pod+"/"+ctrID+"/cpu.cfs_period_us", tc.ctrPeriod+"\n")
			writeFile(t, root, pod+"/cpu.cfs_quota_us", tc.podQuota+"\n")
			r := newResolver(t, root)
			got, err := r.CPU(resolve(t, r, readPid))
			if err != nil {
				t.Fatal(err)
			}
			if got.Quota != tc.want {
				t.Errorf("Quota = %v, want %v", got.Quota, tc.want)
			}
		})
	}
}

func TestCPUMalformedCpuMaxKeepsParentLimit(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("v2-malformed"))
	got, err := r.CPU(resolve(t, r, 5300))
	if err != nil {
		t.Fatal(err)
	}
	if got.Quota != 2 {
		t.Errorf("Quota = %v, want 2 from the pod's cpu.max", got.Quota)
	}
}

func TestCPUMalformedCpuset(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("v2-malformed"))
	got, err := r.CPU(resolve(t, r, 5300))
	if err != nil {
		t.Fatal(err)
	}
	if got.Cpuset != nil {
		t.Errorf("Cpuset = %v from garbage cpuset.cpus.effective, want nil (unknown)", got.Cpuset)
	}
}

func TestCPUErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fix    string
		mutate func(t *testing.T, root string)
	}{
		{
			name: "v2 cpu.stat missing",
			fix:  "v2-systemd-burstable",
			mutate: func(t *testing.T, root string) {
				if err := os.Remove(filepath.Join(root, "sys/fs/cgroup"+v2Burstable+"/cpu.stat")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "v2 cpu.stat garbage",
			fix:  "v2-systemd-burstable",
			mutate: func(t *testing.T, root string) {
				writeFile(t, root, "sys/fs/cgroup"+v2Burstable+"/cpu.stat", "usage_usec lots\n")
			},
		},
		{
			name: "v1 cpuacct.usage_all garbage",
			fix:  "v1-cgroupfs-burstable",
			mutate: func(t *testing.T, root string) {
				writeFile(t, root, "sys/fs/cgroup/cpuacct"+v1Burstable+"/cpuacct.usage_all", "cpu user system\n0 1\n")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := copyFixture(t, tc.fix)
			tc.mutate(t, root)
			r := newResolver(t, root)
			if got, err := r.CPU(resolve(t, r, readPid)); err == nil {
				t.Fatalf("CPU() = %+v, nil; want an error", got)
			}
		})
	}
}

func TestIO(t *testing.T) {
	t.Parallel()
	v2 := []procfs.IOStat{
		{Major: 259, Minor: 0, ReadBytes: 38281216, WriteBytes: 157286400, ReadIOs: 1187, WriteIOs: 9876},
		{Major: 259, Minor: 4, ReadBytes: 4096000, WriteBytes: 20480000, ReadIOs: 1000, WriteIOs: 2500, DiscardBytes: 1048576, DiscardIOs: 8},
		{Major: 7, Minor: 0},
	}
	v1 := []procfs.IOStat{
		{Major: 259, Minor: 0, ReadBytes: 38281216, WriteBytes: 157286400, ReadIOs: 1187, WriteIOs: 9876},
		{Major: 259, Minor: 3, ReadBytes: 4096000, WriteBytes: 20480000, ReadIOs: 1000, WriteIOs: 2500, DiscardBytes: 1048576, DiscardIOs: 8},
	}
	tests := []struct {
		name    string
		fixture string
		want    []procfs.IOStat
	}{
		{name: "v2", fixture: "v2-systemd-burstable", want: v2},
		{name: "v2 nested", fixture: "v2-nested", want: v2},
		{name: "v1 recursive files", fixture: "v1-cgroupfs-burstable", want: v1},
		{name: "hybrid", fixture: "hybrid-cgroupfs-guaranteed", want: []procfs.IOStat{{Major: 254, ReadBytes: 38281216, WriteBytes: 157286400, ReadIOs: 1187, WriteIOs: 9876}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			got, err := r.IO(resolve(t, r, readPid))
			if err != nil {
				t.Fatalf("IO() = %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("IO() =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

func TestIOV1FallsBackToNonRecursive(t *testing.T) {
	t.Parallel()
	root := copyFixture(t, "v1-cgroupfs-burstable")
	dir := filepath.Join(root, "sys/fs/cgroup/blkio"+v1Burstable)
	for _, f := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, root, "sys/fs/cgroup/blkio"+v1Burstable+"/blkio.throttle.io_service_bytes", "8:0 Read 4096\n8:0 Write 8192\nTotal 12288\n")
	writeFile(t, root, "sys/fs/cgroup/blkio"+v1Burstable+"/blkio.throttle.io_serviced", "8:0 Read 1\n8:0 Write 2\nTotal 3\n")
	r := newResolver(t, root)
	got, err := r.IO(resolve(t, r, readPid))
	if err != nil {
		t.Fatal(err)
	}
	want := []procfs.IOStat{{Major: 8, ReadBytes: 4096, WriteBytes: 8192, ReadIOs: 1, WriteIOs: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("IO() = %+v, want %+v", got, want)
	}
}

func TestIOErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		pid     int
		wantIs  error
	}{
		{name: "v1 without blkio hierarchy", fixture: "v1-missing-controllers", pid: readPid, wantIs: cgview.ErrNoController},
		{name: "v2 garbage io.stat", fixture: "v2-malformed", pid: 5300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			got, err := r.IO(resolve(t, r, tc.pid))
			if err == nil {
				t.Fatalf("IO() = %+v, nil; want an error", got)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("IO() error = %v, want %v", err, tc.wantIs)
			}
		})
	}
}

func TestIOMissingControllerIsErrNoController(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("v2-missing-controllers"))
	_, err := r.IO(resolve(t, r, readPid))
	if !errors.Is(err, cgview.ErrNoController) {
		t.Errorf("IO() error = %v, want ErrNoController", err)
	}
}

func TestPressure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fixture  string
		resource string
		want     string // prefix; "" means error
		wantIs   error
	}{
		{name: "v2 cpu", fixture: "v2-systemd-burstable", resource: "cpu", want: "some avg10=0.35 avg60=0.52 avg300=0.61 total=3456789\nfull avg10=0.12"},
		{name: "v2 memory", fixture: "v2-systemd-burstable", resource: "memory", want: "some avg10=0.00"},
		{name: "v2 io", fixture: "v2-nested", resource: "io", want: "some avg10=0.02 avg60=0.01 avg300=0.00 total=45678\n"},
		{name: "v2 controllers off: PSI still per cgroup", fixture: "v2-missing-controllers", resource: "cpu", want: "some avg10=0.35"},
		// The container's cgroup2 path is "/" on this hybrid host, so its PSI is the root's.
		{name: "hybrid reads the unified hierarchy", fixture: "hybrid-cgroupfs-guaranteed", resource: "cpu", want: "some avg10=1.42 avg60=7.09 avg300=13.44 total=100654042\n"},
		{name: "v1 has no PSI per cgroup", fixture: "v1-cgroupfs-burstable", resource: "cpu", wantIs: cgview.ErrNoController},
		{name: "unknown resource", fixture: "v2-systemd-burstable", resource: "gpu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			got, err := r.Pressure(resolve(t, r, readPid), tc.resource)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Pressure(%q) = %q, want an error", tc.resource, got)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("Pressure(%q) error = %v, want %v", tc.resource, err, tc.wantIs)
				}
				return
			}
			if err != nil {
				t.Fatalf("Pressure(%q) = %v", tc.resource, err)
			}
			if !strings.HasPrefix(string(got), tc.want) {
				t.Errorf("Pressure(%q) = %q, want prefix %q", tc.resource, got, tc.want)
			}
		})
	}
}

func TestSlabInfo(t *testing.T) {
	t.Parallel()
	const slab = "slabinfo - version: 2.1\n# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\ndentry               819    819    192   21    1 : tunables    0    0    0 : slabdata     39     39      0\n"
	tests := []struct {
		name    string
		fixture string
		content *string // written into the container's memory.kmem.slabinfo
		want    string
		wantIs  error
	}{
		{name: "v2 has none", fixture: "v2-systemd-burstable", wantIs: cgview.ErrNoController},
		{name: "v1 empty on new kernels", fixture: "v1-cgroupfs-burstable", wantIs: cgview.ErrNoController},
		{name: "hybrid empty", fixture: "hybrid-cgroupfs-guaranteed", wantIs: cgview.ErrNoController},
		{name: "v1 with content", fixture: "v1-cgroupfs-burstable", content: ptr(slab), want: slab},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := fixture(tc.fixture)
			if tc.content != nil {
				root = copyFixture(t, tc.fixture)
				writeFile(t, root, "sys/fs/cgroup/memory"+v1Burstable+"/memory.kmem.slabinfo", *tc.content)
			}
			r := newResolver(t, root)
			got, err := r.SlabInfo(resolve(t, r, readPid))
			if tc.wantIs != nil {
				if !errors.Is(err, tc.wantIs) {
					t.Errorf("SlabInfo() = %q, %v; want %v", got, err, tc.wantIs)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("SlabInfo() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestTasks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		max     int
		want    []int
	}{
		{name: "v2 cgroup.threads", fixture: "v2-systemd-guaranteed", max: 100, want: stdTasks},
		{name: "v2 with nested sandbox", fixture: "v2-systemd-burstable", max: 100, want: append(slices.Clone(stdTasks), nestPid)},
		{name: "v2 capped", fixture: "v2-systemd-burstable", max: 2, want: stdTasks[:2]},
		{name: "v2 zero max", fixture: "v2-systemd-burstable", max: 0, want: nil},
		{name: "v2 controllers off", fixture: "v2-missing-controllers", max: 100, want: stdTasks},
		{name: "v1 pids hierarchy", fixture: "v1-cgroupfs-burstable", max: 100, want: stdTasks},
		{name: "v1 without pids falls back to cpuacct", fixture: "v1-missing-controllers", max: 100, want: stdTasks},
		{name: "hybrid", fixture: "hybrid-cgroupfs-guaranteed", max: 3, want: stdTasks[:3]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			got, err := r.Tasks(resolve(t, r, readPid), tc.max)
			if err != nil {
				t.Fatalf("Tasks() = %v", err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Tasks() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTasksDescendants(t *testing.T) {
	t.Parallel()
	root := copyFixture(t, "v2-systemd-burstable")
	writeFile(t, root, "sys/fs/cgroup"+v2Burstable+"/child/cgroup.threads", "5001\n5002\n")
	writeFile(t, root, "sys/fs/cgroup"+v2Burstable+"/child/grandchild/cgroup.threads", "5003\n")
	r := newResolver(t, root)
	c := resolve(t, r, readPid)
	got, err := r.Tasks(c, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(stdTasks), nestPid, 5001, 5002, 5003)
	if !slices.Equal(got, want) {
		t.Errorf("Tasks() = %v, want %v", got, want)
	}
	writeFile(t, root, "sys/fs/cgroup"+v2Burstable+"/child/cgroup.threads", "5001\nfive\n")
	if got, err := r.Tasks(c, 100); err == nil {
		t.Errorf("Tasks() with a garbage cgroup.threads = %v, nil; want an error", got)
	}
}

func TestCgroupPathOutsideNamespace(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("v2-systemd-burstable"))
	c, err := r.Resolve(cgnsPid)
	if err != nil {
		// Refusing at resolution is as good as refusing at every read.
		if !errors.Is(err, cgview.ErrNoContainer) {
			t.Fatalf("Resolve(%d) = %v, want ErrNoContainer", cgnsPid, err)
		}
		return
	}
	if m, err := r.Memory(c); !errors.Is(err, cgview.ErrNoContainer) {
		t.Errorf("Memory() of cgroup %q = %+v, %v; want ErrNoContainer", c.V2, m, err)
	}
}

func TestMemoryMalformedSwapMax(t *testing.T) {
	t.Parallel()
	root := copyFixture(t, "v2-nested")
	writeFile(t, root, "sys/fs/cgroup"+v2Burstable+"/memory.swap.max", "lots\n")
	r := newResolver(t, root)
	m, err := r.Memory(resolve(t, r, readPid))
	if err != nil {
		return // refusing the view is acceptable too
	}
	if m.SwapLimit != 104857600 {
		t.Errorf("SwapLimit = %d, want the pod's 104857600", m.SwapLimit)
	}
}
