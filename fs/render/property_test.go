// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package render_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/fs/render"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

const hostMemTotalKB = 16393076

// hostMeminfo is a 16 GiB host with 2 GiB of swap.
func hostMeminfo(t testing.TB) *procfs.Meminfo {
	t.Helper()
	m, err := procfs.ParseMeminfo([]byte("MemTotal:       16393076 kB\nMemFree:         9123456 kB\nMemAvailable:   13456789 kB\n" +
		"Buffers:          312456 kB\nCached:          3876543 kB\nSwapCached:         1024 kB\nActive:          3456789 kB\n" +
		"Inactive:        2654321 kB\nActive(anon):    1876543 kB\nInactive(anon):   123456 kB\nActive(file):    1580246 kB\n" +
		"Inactive(file):  2530865 kB\nUnevictable:       34567 kB\nMlocked:           27648 kB\nSwapTotal:       2097148 kB\n" +
		"SwapFree:        2031612 kB\nDirty:              1234 kB\nWriteback:             0 kB\nAnonPages:       1923456 kB\n" +
		"Mapped:           765432 kB\nShmem:             98765 kB\nKReclaimable:     345678 kB\nSlab:             567890 kB\n" +
		"SReclaimable:     345678 kB\nSUnreclaim:       222212 kB\nKernelStack:       18432 kB\nPageTables:        34567 kB\n" +
		"AnonHugePages:    204800 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func meminfoValues(t *testing.T, b []byte) map[string]uint64 {
	t.Helper()
	m, err := procfs.ParseMeminfo(b)
	if err != nil {
		t.Fatalf("rendered meminfo does not parse: %v\n%s", err, b)
	}
	out := map[string]uint64{}
	for _, l := range m.Lines {
		out[l.Key] = l.Value
	}
	return out
}

// randomMemory draws a memory view: limits below and above the host, usage
// up to the limit and page cache and reclaimable slab that may exceed free.
func randomMemory(rng *rand.Rand) cgview.Memory {
	var m cgview.Memory
	switch rng.IntN(4) {
	case 0:
		m.Limit = cgview.Unlimited
	case 1:
		m.Limit = (hostMemTotalKB + 1 + rng.Uint64N(1<<30)) * 1024 // above the host
	default:
		m.Limit = rng.Uint64N(hostMemTotalKB*1024 + 1)
	}
	m.Usage = rng.Uint64N(min(m.Limit, 32<<30) + 1)
	m.Stat = cgview.MemStat{
		File: rng.Uint64N(m.Usage + 1), ActiveFile: rng.Uint64N(m.Usage + 1), InactiveFile: rng.Uint64N(m.Usage + 1),
		SlabReclaimable: rng.Uint64N(1 << 30), ActiveAnon: rng.Uint64N(m.Usage + 1),
	}
	if rng.IntN(2) == 0 {
		m.SwapKnown = true
		m.SwapLimit = []uint64{0, cgview.Unlimited, rng.Uint64N(8 << 30)}[rng.IntN(3)]
		m.SwapUsage = rng.Uint64N(4 << 30)
	}
	return m
}

func TestMeminfoProperties(t *testing.T) {
	t.Parallel()
	host := hostMeminfo(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		m := randomMemory(rng)
		swap := rng.IntN(4) != 0
		out := render.Meminfo(host, m, swap)
		v := meminfoValues(t, out)
		ctx := fmt.Sprintf("case %d: %+v swap=%v", i, m, swap)
		if m.Limit/1024 < hostMemTotalKB {
			if v["MemTotal"] != m.Limit/1024 {
				t.Fatalf("%s: MemTotal = %d kB, want the limit %d kB", ctx, v["MemTotal"], m.Limit/1024)
			}
		} else if v["MemTotal"] != hostMemTotalKB {
			t.Fatalf("%s: MemTotal = %d kB, want the host's %d kB", ctx, v["MemTotal"], hostMemTotalKB)
		}
		if v["MemFree"] > v["MemTotal"] || v["MemAvailable"] > v["MemTotal"] || v["MemAvailable"] < v["MemFree"] {
			t.Fatalf("%s: MemTotal %d, MemFree %d, MemAvailable %d: want free ≤ available ≤ total", ctx, v["MemTotal"], v["MemFree"], v["MemAvailable"])
		}
		if v["SwapFree"] > v["SwapTotal"] || v["SwapTotal"] > 2097148 {
			t.Fatalf("%s: SwapTotal %d, SwapFree %d: want free ≤ total ≤ host's 2097148", ctx, v["SwapTotal"], v["SwapFree"])
		}
		if !swap && v["SwapTotal"] != 0 {
			t.Fatalf("%s: SwapTotal %d with swap off", ctx, v["SwapTotal"])
		}
		// Lines keep the host's order and count.
		if got, want := strings.Count(string(out), "\n"), len(host.Lines); got != want {
			t.Fatalf("%s: %d lines, want %d", ctx, got, want)
		}
	}
}

func TestMeminfo(t *testing.T) {
	t.Parallel()
	host := hostMeminfo(t)
	tests := []struct {
		name string
		m    cgview.Memory
		swap bool
		want map[string]uint64
	}{
		{
			name: "512Mi limit",
			m: cgview.Memory{Limit: 512 << 20, Usage: 200 << 20, Stat: cgview.MemStat{
				File: 50 << 20, ActiveFile: 30 << 20, InactiveFile: 20 << 20, SlabReclaimable: 2 << 20, ActiveAnon: 100 << 20,
				InactiveAnon: 10 << 20, Anon: 110 << 20, Shmem: 1 << 20, Slab: 3 << 20, SlabUnreclaimable: 1 << 20,
				KernelStack: 1 << 19, PageTables: 1 << 18,
			}},
			want: map[string]uint64{
				"MemTotal": 524288, "MemFree": 319488, "MemAvailable": 372736, "Buffers": 0, "Cached": 51200,
				"Active": 133120, "Inactive": 30720, "Active(file)": 30720, "AnonPages": 112640, "Shmem": 1024,
				"Slab": 3072, "SReclaimable": 2048, "SUnreclaim": 1024, "KernelStack": 512, "PageTables": 256,
				"SwapTotal": 0, "SwapFree": 0, "Mlocked": 27648, "KReclaimable": 2048, "HugePages_Total": 0,
			},
		},
		{
			name: "usage above the limit is capped",
			m:    cgview.Memory{Limit: 100 << 20, Usage: 200 << 20},
			want: map[string]uint64{"MemTotal": 102400, "MemFree": 0, "MemAvailable": 0},
		},
		{
			name: "no swap accounting shows the host's swap",
			m:    cgview.Memory{Limit: 1 << 30, Usage: 1 << 20},
			swap: true,
			want: map[string]uint64{"SwapTotal": 2097148, "SwapFree": 2031612},
		},
		{
			name: "swap limit below the host",
			m:    cgview.Memory{Limit: 1 << 30, SwapKnown: true, SwapLimit: 100 << 20, SwapUsage: 10 << 20},
			swap: true,
			want: map[string]uint64{"SwapTotal": 102400, "SwapFree": 92160},
		},
		{
			name: "swap limit zero",
			m:    cgview.Memory{Limit: 1 << 30, SwapKnown: true, SwapLimit: 0, SwapUsage: 0},
			swap: true,
			want: map[string]uint64{"SwapTotal": 0, "SwapFree": 0},
		},
		{
			name: "unlimited swap is the host's",
			m:    cgview.Memory{Limit: 1 << 30, SwapKnown: true, SwapLimit: cgview.Unlimited, SwapUsage: 1 << 30},
			swap: true,
			want: map[string]uint64{"SwapTotal": 2097148, "SwapFree": 2097148 - 1048576},
		},
		{
			name: "zero kernel stack keeps the host's line",
			m:    cgview.Memory{Limit: 1 << 30},
			want: map[string]uint64{"KernelStack": 18432, "PageTables": 34567},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := meminfoValues(t, render.Meminfo(host, tc.m, tc.swap))
			for k, want := range tc.want {
				if v[k] != want {
					t.Errorf("%s = %d, want %d", k, v[k], want)
				}
			}
		})
	}
}

func TestMeminfoLayout(t *testing.T) {
	t.Parallel()
	out := string(render.Meminfo(hostMeminfo(t), cgview.Memory{Limit: 512 << 20, Usage: 1 << 20}, true))
	for _, want := range []string{"MemTotal:         524288 kB\n", "HugePages_Total:       0\n", "Hugepagesize:       2048 kB\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("meminfo lacks %q:\n%s", want, out)
		}
	}
}

func TestSwaps(t *testing.T) {
	t.Parallel()
	const header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
	host := hostMeminfo(t)
	tests := []struct {
		name string
		m    cgview.Memory
		swap bool
		want string
	}{
		{name: "swap off", m: cgview.Memory{SwapKnown: true, SwapLimit: cgview.Unlimited}, swap: false, want: header},
		{name: "no swap allowed", m: cgview.Memory{SwapKnown: true, SwapLimit: 0}, swap: true, want: header},
		{name: "limited", m: cgview.Memory{SwapKnown: true, SwapLimit: 100 << 20, SwapUsage: 50 << 20}, swap: true,
			want: header + "none\t\t\t\t\tvirtual\t\t102400\t\t51200\t\t0\n"},
		{name: "host swap", m: cgview.Memory{}, swap: true, want: header + "none\t\t\t\t\tvirtual\t\t2097148\t\t65536\t\t0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(render.Swaps(host, tc.m, tc.swap)); got != tc.want {
				t.Errorf("Swaps() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSwapHostWithoutSwap(t *testing.T) {
	t.Parallel()
	host, err := procfs.ParseMeminfo([]byte("MemTotal: 1000 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	total, free := render.Swap(host, cgview.Memory{SwapKnown: true, SwapLimit: cgview.Unlimited}, true)
	if total != 0 || free != 0 {
		t.Errorf("Swap() = %d, %d; want 0, 0 on a host without swap", total, free)
	}
}

func TestVisibleCPUs(t *testing.T) {
	t.Parallel()
	online := []int{0, 1, 2, 3, 4, 5, 6, 7}
	tests := []struct {
		name string
		on   []int
		cpu  cgview.CPU
		cfs  bool
		want []int
	}{
		{name: "no limits", on: online, want: online},
		{name: "cpuset", on: online, cpu: cgview.CPU{Cpuset: []int{1, 3, 5}}, want: []int{1, 3, 5}},
		{name: "cpuset with offline cpus", on: []int{0, 1, 2, 3}, cpu: cgview.CPU{Cpuset: []int{2, 3, 4, 5}}, want: []int{2, 3}},
		{name: "cpuset all offline shows online", on: []int{0, 1}, cpu: cgview.CPU{Cpuset: []int{6, 7}}, want: []int{0, 1}},
		{name: "quota ignored without cfs", on: online, cpu: cgview.CPU{Quota: 1.5}, want: online},
		{name: "quota rounds up", on: online, cpu: cgview.CPU{Quota: 1.5}, cfs: true, want: []int{0, 1}},
		{name: "tiny quota shows one", on: online, cpu: cgview.CPU{Quota: 0.01}, cfs: true, want: []int{0}},
		{name: "whole quota", on: online, cpu: cgview.CPU{Quota: 2}, cfs: true, want: []int{0, 1}},
		{name: "float noise above a whole quota", on: online, cpu: cgview.CPU{Quota: 2.0000000001}, cfs: true, want: []int{0, 1}},
		{name: "quota above cpuset", on: online, cpu: cgview.CPU{Cpuset: []int{4, 6}, Quota: 3}, cfs: true, want: []int{4, 6}},
		{name: "quota cuts cpuset", on: online, cpu: cgview.CPU{Cpuset: []int{4, 5, 6}, Quota: 1}, cfs: true, want: []int{4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := render.VisibleCPUs(tc.on, tc.cpu, tc.cfs); !slices.Equal(got, tc.want) {
				t.Errorf("VisibleCPUs() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCPUList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    int
		want string
	}{
		{name: "zero shows cpu 0", n: 0, want: "0\n"},
		{name: "one", n: 1, want: "0\n"},
		{name: "two", n: 2, want: "0-1\n"},
		{name: "huge", n: 1024, want: "0-1023\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(render.CPUList(tc.n)); got != tc.want {
				t.Errorf("CPUList(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
}

// syntheticCPUInfo is an x86-like cpuinfo of n CPUs.
func syntheticCPUInfo(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "processor\t: %d\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nphysical id\t: %d\nsiblings\t: %d\ncore id\t\t: %d\ncpu cores\t: %d\napicid\t\t: %d\nflags\t\t: fpu sse2\npower management:\n\n",
			i, i/64, min(n, 64), i%64, min(n, 64), i)
	}
	return []byte(b.String())
}

// syntheticStat is a /proc/stat of n CPUs.
func syntheticStat(n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "cpu  %d 0 %d %d 0 0 0 0 0 0\n", 100*n, 50*n, 1000*n)
	for i := range n {
		fmt.Fprintf(&b, "cpu%d 100 0 50 1000 0 0 0 0 0 0\n", i)
	}
	b.WriteString("intr 12345 0 1\nctxt 999\nbtime 1767645179\nprocesses 4242\nprocs_running 3\nprocs_blocked 1\nsoftirq 10 1 2\n")
	return []byte(b.String())
}

func TestCPUInfo(t *testing.T) {
	t.Parallel()
	blocks := procfs.ParseCPUInfo(syntheticCPUInfo(8))
	out := string(render.CPUInfo(blocks, []int{5, 7}))
	want := "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 5\ncpu cores\t: 2\napicid\t\t: 5\nflags\t\t: fpu sse2\npower management:\n\n" +
		"processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nphysical id\t: 0\nsiblings\t: 2\ncore id\t\t: 7\ncpu cores\t: 2\napicid\t\t: 7\nflags\t\t: fpu sse2\npower management:\n\n"
	if out != want {
		t.Errorf("CPUInfo() =\n%s\nwant\n%s", out, want)
	}
}

func TestCPUInfoKeepsHeaderStanzas(t *testing.T) {
	t.Parallel()
	in := "Hardware\t: BCM2835\n\nprocessor\t: 0\nBogoMIPS\t: 108.00\n\nprocessor\t: 1\nBogoMIPS\t: 108.00\n\n"
	out := string(render.CPUInfo(procfs.ParseCPUInfo([]byte(in)), []int{1}))
	want := "Hardware\t: BCM2835\n\nprocessor\t: 0\nBogoMIPS\t: 108.00\n\n"
	if out != want {
		t.Errorf("CPUInfo() = %q, want %q", out, want)
	}
}

// statSnapshot is the parsed output of one Stat render.
type statSnapshot struct {
	total procfs.CPUTimes
	cpus  map[int]procfs.CPUTimes
}

func parseStatOut(t *testing.T, out []byte) statSnapshot {
	t.Helper()
	s, err := procfs.ParseStat(out)
	if err != nil {
		t.Fatalf("rendered stat does not parse: %v\n%s", err, out)
	}
	return statSnapshot{total: s.Total, cpus: s.CPUs}
}

// checkNotBackwards fails if any counter of next is below prev: the
// aggregate line always, and each cpuN line present in both.
func checkNotBackwards(t *testing.T, step string, prev, next statSnapshot) {
	t.Helper()
	less := func(a, b procfs.CPUTimes) string {
		af, bf := a.Fields(), b.Fields()
		names := []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"}
		for i := range af {
			if *bf[i] < *af[i] {
				return fmt.Sprintf("%s %d → %d", names[i], *af[i], *bf[i])
			}
		}
		return ""
	}
	if d := less(prev.total, next.total); d != "" {
		t.Fatalf("%s: aggregate cpu line went backwards: %s", step, d)
	}
	for id, p := range prev.cpus {
		if n, ok := next.cpus[id]; ok {
			if d := less(p, n); d != "" {
				t.Fatalf("%s: cpu%d went backwards: %s", step, id, d)
			}
		}
	}
}

// statStep is one render's input in a sequence.
type statStep struct {
	name    string
	cpuset  []int
	quota   float64
	user    uint64 // ns, v2-style totals
	system  uint64
	perCPU  map[int]procfs.CPUUsage // v1; overrides user/system
	uptimeT uint64                  // container uptime in ticks
}

func runStatSequence(t *testing.T, steps []statStep) {
	t.Helper()
	host, err := procfs.ParseStat(syntheticStat(8))
	if err != nil {
		t.Fatal(err)
	}
	online := []int{0, 1, 2, 3, 4, 5, 6, 7}
	var memo []uint64
	var prev *statSnapshot
	for _, st := range steps {
		cpu := cgview.CPU{Cpuset: st.cpuset, Quota: st.quota, User: st.user, System: st.system, PerCPU: st.perCPU}
		if st.perCPU != nil {
			cpu.User, cpu.System = 0, 0
			for _, u := range st.perCPU {
				cpu.User += u.User
				cpu.System += u.System
			}
		}
		in := render.StatInput{
			CPU:     cpu,
			Allowed: render.VisibleCPUs(online, cpu, false),
			Visible: render.VisibleCPUs(online, cpu, true),
			Uptime:  st.uptimeT,
		}
		var out []byte
		out, memo = render.Stat(host, in, memo)
		snap := parseStatOut(t, out)
		if len(snap.cpus) != len(in.Visible) {
			t.Fatalf("%s: %d cpuN lines, want %d", st.name, len(snap.cpus), len(in.Visible))
		}
		if prev != nil {
			checkNotBackwards(t, st.name, *prev, snap)
		}
		prev = &snap
	}
}

func TestStatMonotonic(t *testing.T) {
	t.Parallel()
	const s = uint64(1e9) // one second of CPU time in ns
	four := []int{0, 1, 2, 3}
	tests := []struct {
		name  string
		steps []statStep
	}{
		{
			name: "v2 usage grows and bursts",
			steps: []statStep{
				{name: "start", cpuset: four, user: 10 * s, system: 5 * s, uptimeT: 10000},
				{name: "idle second", cpuset: four, user: 10 * s, system: 5 * s, uptimeT: 10100},
				{name: "burst beyond capacity", cpuset: four, user: 50 * s, system: 20 * s, uptimeT: 10200},
				{name: "odd ns counts", cpuset: four, user: 50*s + 7e6 + 3, system: 20*s + 13e6, uptimeT: 10201},
				{name: "quiet again", cpuset: four, user: 51 * s, system: 20*s + 14e6, uptimeT: 12000},
			},
		},
		{
			name: "v2 remainder moves between cpu0 and the rest",
			steps: func() []statStep {
				var out []statStep
				for i := range uint64(40) {
					out = append(out, statStep{name: "tick " + strconv.FormatUint(i, 10), cpuset: []int{0, 1, 2}, user: (5 + i) * 1e7, uptimeT: 100 + i})
				}
				return out
			}(),
		},
		{
			name: "v1 usage moves between host cpus",
			steps: []statStep{
				{name: "start", cpuset: four, perCPU: map[int]procfs.CPUUsage{0: {User: 5 * s}, 1: {User: 1 * s}, 2: {}, 3: {}}, uptimeT: 1000},
				{name: "cpu3 busy", cpuset: four, perCPU: map[int]procfs.CPUUsage{0: {User: 5 * s}, 1: {User: 1 * s}, 2: {}, 3: {User: 9 * s, System: s}}, uptimeT: 1100},
				{name: "cpu0 again", cpuset: four, perCPU: map[int]procfs.CPUUsage{0: {User: 6 * s}, 1: {User: 1 * s}, 2: {}, 3: {User: 9 * s, System: s}}, uptimeT: 1200},
			},
		},
		{
			name: "cpuset changes to other cpus of the same count",
			steps: []statStep{
				{name: "cpus 0-1", cpuset: []int{0, 1}, user: 10 * s, uptimeT: 1000},
				{name: "cpus 6-7", cpuset: []int{6, 7}, user: 11 * s, uptimeT: 1100},
			},
		},
		{
			name: "cpuset shrinks",
			steps: []statStep{
				{name: "four cpus", cpuset: four, user: 40 * s, uptimeT: 10000},
				{name: "two cpus", cpuset: []int{0, 1}, user: 41 * s, uptimeT: 10100},
			},
		},
		{
			name: "cpuset grows",
			steps: []statStep{
				{name: "two cpus", cpuset: []int{0, 1}, user: 40 * s, uptimeT: 10000},
				{name: "four cpus", cpuset: four, user: 41 * s, uptimeT: 10100},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runStatSequence(t, tc.steps)
		})
	}
}

func TestStatRandomSequences(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 11))
	for seq := range 200 {
		cpuset := []int{0, 1, 2, 3}
		var user, system, up uint64 = 0, 0, 1000
		var steps []statStep
		for i := range 30 {
			up += rng.Uint64N(500)
			user += rng.Uint64N(4 * 5e9)
			system += rng.Uint64N(1e9)
			if rng.IntN(8) == 0 { // a burst: more CPU time than the interval had
				user += rng.Uint64N(100e9)
			}
			steps = append(steps, statStep{name: fmt.Sprintf("seq %d step %d", seq, i), cpuset: cpuset, quota: []float64{0, 1.5, 4}[seq%3], user: user, system: system, uptimeT: up})
		}
		runStatSequence(t, steps)
	}
}

func TestStatOtherLines(t *testing.T) {
	t.Parallel()
	host, err := procfs.ParseStat(syntheticStat(2))
	if err != nil {
		t.Fatal(err)
	}
	in := render.StatInput{
		CPU:     cgview.CPU{User: 3e9, System: 1e9},
		Allowed: []int{0, 1}, Visible: []int{0, 1},
		Uptime: 1000, InitStart: 12345,
		Tasks: 5, Running: 1, Blocked: 1,
	}
	out, next := render.Stat(host, in, nil)
	want := "cpu  300 0 100 1600 0 0 0 0 0 0\n" +
		"cpu0 150 0 50 800 0 0 0 0 0 0\n" +
		"cpu1 150 0 50 800 0 0 0 0 0 0\n" +
		"intr 12345 0 1\nctxt 999\nbtime 1767645302\nprocesses 5\nprocs_running 1\nprocs_blocked 1\nsoftirq 10 1 2\n"
	if string(out) != want {
		t.Errorf("Stat() =\n%s\nwant\n%s", out, want)
	}
	// The memo: the aggregate's user, system, idle, then each CPU's.
	if !slices.Equal(next, []uint64{300, 100, 1600, 150, 50, 800, 150, 50, 800}) {
		t.Errorf("memo = %v", next)
	}
}

func TestStatV1HiddenCPUsKeepTheirTime(t *testing.T) {
	t.Parallel()
	host, err := procfs.ParseStat(syntheticStat(4))
	if err != nil {
		t.Fatal(err)
	}
	in := render.StatInput{
		CPU: cgview.CPU{PerCPU: map[int]procfs.CPUUsage{
			0: {User: 1e9}, 1: {User: 2e9}, 2: {User: 3e9}, 3: {User: 4e9},
			5: {User: 5e9}, // a CPU no longer in the cpuset
		}},
		Allowed: []int{0, 1, 2, 3}, Visible: []int{0, 1},
		Uptime: 10000,
	}
	out, _ := render.Stat(host, in, nil)
	snap := parseStatOut(t, out)
	// cpu0 gets host cpus 0 and 2, cpu1 gets 1 and 3, and host cpu 5 (5 % 2).
	if snap.cpus[0].User != 400 || snap.cpus[1].User != 1100 || snap.total.User != 1500 {
		t.Errorf("user ticks cpu0 %d, cpu1 %d, total %d; want 400, 1100, 1500", snap.cpus[0].User, snap.cpus[1].User, snap.total.User)
	}
}

func TestUptimeProperties(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 5000 {
		up := rng.Uint64N(1 << 40)
		ncpu := rng.IntN(300) - 2 // includes 0 and negatives: treated as one
		usage := rng.Uint64N(1 << 62)
		prevIdle := rng.Uint64N(1 << 50)
		out, idle := render.Uptime(up, ncpu, usage, prevIdle)
		gotUp, gotIdle, err := procfs.ParseUptime(out)
		if err != nil {
			t.Fatalf("Uptime output %q does not parse: %v", out, err)
		}
		capacity := up * uint64(max(ncpu, 1))
		if gotUp != up || gotIdle != idle {
			t.Fatalf("case %d: printed %d %d, returned idle %d, want up %d", i, gotUp, gotIdle, idle, up)
		}
		if idle > capacity {
			t.Fatalf("case %d: idle %d > uptime %d × %d cpus", i, idle, up, max(ncpu, 1))
		}
		if prevIdle <= capacity && idle < prevIdle {
			t.Fatalf("case %d: idle %d went below the previous %d", i, idle, prevIdle)
		}
	}
}

func TestUptime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		up       uint64
		ncpu     int
		usage    uint64
		prev     uint64
		want     string
		wantIdle uint64
	}{
		{name: "idle container", up: 12345, ncpu: 2, want: "123.45 246.90\n", wantIdle: 24690},
		{name: "busy", up: 10000, ncpu: 2, usage: 150e9, want: "100.00 50.00\n", wantIdle: 5000},
		{name: "usage above capacity", up: 100, ncpu: 1, usage: 5e9, want: "1.00 0.00\n", wantIdle: 0},
		{name: "previous idle kept", up: 10000, ncpu: 2, usage: 150e9, prev: 6000, want: "100.00 60.00\n", wantIdle: 6000},
		{name: "previous idle above capacity dropped", up: 100, ncpu: 1, prev: 500, want: "1.00 1.00\n", wantIdle: 100},
		{name: "zero cpus count as one", up: 100, ncpu: 0, want: "1.00 1.00\n", wantIdle: 100},
		{name: "just started", up: 0, ncpu: 4, want: "0.00 0.00\n", wantIdle: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, idle := render.Uptime(tc.up, tc.ncpu, tc.usage, tc.prev)
			if string(out) != tc.want || idle != tc.wantIdle {
				t.Errorf("Uptime() = %q, %d; want %q, %d", out, idle, tc.want, tc.wantIdle)
			}
		})
	}
}

func TestLoadavg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		avg     [3]uint64
		running uint64
		total   uint64
		last    int
		want    string
	}{
		{name: "idle", running: 1, total: 5, last: 123, want: "0.00 0.00 0.00 1/5 123\n"},
		{name: "one task after one sample", avg: [3]uint64{164, 34, 11}, running: 1, total: 1, last: 1, want: "0.08 0.02 0.01 1/1 1\n"},
		{name: "exactly one", avg: [3]uint64{2048, 2048, 2048}, running: 2, total: 9, last: 77, want: "1.00 1.00 1.00 2/9 77\n"},
		{name: "rounds to nearest hundredth", avg: [3]uint64{2047, 1034, 10}, want: "1.00 0.50 0.00 0/0 0\n"},
		{name: "just below rounding up", avg: [3]uint64{9, 1033, 3062}, want: "0.00 0.50 1.50 0/0 0\n"},
		{name: "large", avg: [3]uint64{123 << 11, 65 << 11, 7 << 11}, running: 100, total: 4096, last: 4194304, want: "123.00 65.00 7.00 100/4096 4194304\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(render.Loadavg(tc.avg, tc.running, tc.total, tc.last)); got != tc.want {
				t.Errorf("Loadavg() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiskstats(t *testing.T) {
	t.Parallel()
	host, err := procfs.ParseDiskstats([]byte(
		"   7       0 loop0 512 0 12345 101 0 0 0 0 0 212 101 0 0 0 0 0 0\n" +
			"   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n" +
			" 259       0 nvme0n1 1234567 23456 87654321 456789 2345678 345678 123456789 2345678 0 1876543 2901234 12345 0 9876543 1234\n" +
			" 259       1 nvme0n1p1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n" +
			" 259       4 nvme1n1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	io := []procfs.IOStat{
		{Major: 259, Minor: 4, ReadBytes: 4096000, WriteBytes: 20480000, ReadIOs: 1000, WriteIOs: 2500, DiscardBytes: 1048576, DiscardIOs: 8},
		{Major: 8, Minor: 0, ReadBytes: 1024, ReadIOs: 2},
		{Major: 259, Minor: 0, ReadBytes: 38281216, WriteBytes: 157286400, ReadIOs: 1187, WriteIOs: 9876},
		{Major: 7, Minor: 0},             // no I/O: not shown
		{Major: 9, Minor: 9, ReadIOs: 5}, // not a host device: not shown
	}
	want := "   8       0 sda 2 0 2 0 0 0 0 0 0 0 0\n" +
		" 259       0 nvme0n1 1187 0 74768 0 9876 0 307200 0 0 0 0 0 0 0 0\n" +
		" 259       4 nvme1n1 1000 0 8000 0 2500 0 40000 0 0 0 0 8 0 2048 0 0 0\n"
	if got := string(render.Diskstats(host, io)); got != want {
		t.Errorf("Diskstats() =\n%s\nwant\n%s", got, want)
	}
	if got := render.Diskstats(host, nil); len(got) != 0 {
		t.Errorf("Diskstats() without I/O = %q, want empty", got)
	}
}

func TestHugeCpuset(t *testing.T) {
	t.Parallel()
	const n = 1024
	online, err := procfs.ParseCPUList("0-1023")
	if err != nil {
		t.Fatal(err)
	}
	blocks := procfs.ParseCPUInfo(syntheticCPUInfo(n))
	host, err := procfs.ParseStat(syntheticStat(n))
	if err != nil {
		t.Fatal(err)
	}
	perCPU := make(map[int]procfs.CPUUsage, n)
	for i := range n {
		perCPU[i] = procfs.CPUUsage{User: uint64(i) * 1e7, System: 1e7}
	}
	tests := []struct {
		name  string
		cpu   cgview.CPU
		wantN int
	}{
		{name: "cpuset 0-1023 v2", cpu: cgview.CPU{Cpuset: online, User: 1e12, System: 1e11}, wantN: 1024},
		{name: "cpuset 0-1023 v1 per cpu", cpu: cgview.CPU{Cpuset: online, PerCPU: perCPU}, wantN: 1024},
		{name: "quota of 512", cpu: cgview.CPU{Cpuset: online, Quota: 512, User: 1e12}, wantN: 512},
		{name: "upper half", cpu: cgview.CPU{Cpuset: online[512:]}, wantN: 512},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vis := render.VisibleCPUs(online, tc.cpu, true)
			if len(vis) != tc.wantN {
				t.Fatalf("VisibleCPUs() = %d CPUs, want %d", len(vis), tc.wantN)
			}
			in := render.StatInput{CPU: tc.cpu, Allowed: render.VisibleCPUs(online, tc.cpu, false), Visible: vis, Uptime: 1e6}
			stat, memo := render.Stat(host, in, nil)
			checkCPUCountsAgree(t, render.CPUInfo(blocks, vis), stat, render.CPUList(len(vis)), tc.wantN, true)
			if want := "0-" + strconv.Itoa(tc.wantN-1) + "\n"; string(render.CPUList(len(vis))) != want {
				t.Errorf("CPUList = %q, want %q", render.CPUList(len(vis)), want)
			}
			tc.cpu.User += 1e9
			in.CPU = tc.cpu
			in.Uptime += 100
			stat2, _ := render.Stat(host, in, memo)
			checkNotBackwards(t, "second render", parseStatOut(t, stat), parseStatOut(t, stat2))
			if !strings.Contains(string(render.CPUInfo(blocks, vis)), "siblings\t: "+strconv.Itoa(tc.wantN)+"\n") {
				t.Errorf("cpuinfo siblings not set to %d", tc.wantN)
			}
		})
	}
}

func TestCPUCountsAgreeRandom(t *testing.T) {
	t.Parallel()
	const n = 16
	online := make([]int, n)
	for i := range online {
		online[i] = i
	}
	blocks := procfs.ParseCPUInfo(syntheticCPUInfo(n))
	host, err := procfs.ParseStat(syntheticStat(n))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 500 {
		var cpu cgview.CPU
		if rng.IntN(3) > 0 {
			for c := range 24 { // may name CPUs that aren't online
				if rng.IntN(3) == 0 {
					cpu.Cpuset = append(cpu.Cpuset, c)
				}
			}
		}
		if rng.IntN(2) == 0 {
			cpu.Quota = rng.Float64() * 20
		}
		cpu.User = rng.Uint64N(1e13)
		vis := render.VisibleCPUs(online, cpu, rng.IntN(4) > 0)
		if len(vis) == 0 {
			t.Fatalf("VisibleCPUs(%+v) is empty", cpu)
		}
		in := render.StatInput{CPU: cpu, Allowed: render.VisibleCPUs(online, cpu, false), Visible: vis, Uptime: 1e5}
		stat, _ := render.Stat(host, in, nil)
		checkCPUCountsAgree(t, render.CPUInfo(blocks, vis), stat, render.CPUList(len(vis)), len(vis), true)
	}
}
