// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package render_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/fs/render"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
	"github.com/k8s-lxcfs/k8s-lxcfs/loadavg"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixtures is where the node trees live; see cgview/testdata/README.md.
const fixtures = "../../cgview/testdata"

// readerPid is the process that reads the files in every fixture tree.
const readerPid = 4300

// goldenFiles are the renderings compared per scenario, by golden file suffix.
var goldenFiles = []string{"meminfo", "swaps", "cpuinfo", "stat", "uptime", "diskstats", "loadavg", "online"}

// scenarioView is what one reader of a fixture tree is served.
type scenarioView struct {
	files     map[string][]byte
	fallbacks []string // files served from the host because the view failed
	visible   []int
}

// renderScenario renders every file for readerPid of the fixture tree name
// the way fs does: a view that can't be built serves the host's file.
func renderScenario(t *testing.T, name string) scenarioView {
	t.Helper()
	root := filepath.Join(fixtures, name)
	procRoot := filepath.Join(root, "proc")
	r, err := cgview.New(cgview.Options{
		ProcRoot:   procRoot,
		CgroupRoot: filepath.Join(root, "sys", "fs", "cgroup"),
		Now:        func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Resolve(readerPid)
	if err != nil {
		t.Fatalf("Resolve(%d) = %v", readerPid, err)
	}
	host := func(rel string) []byte {
		b, err := procfs.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v := scenarioView{files: map[string][]byte{}}
	fallback := func(file, rel string) {
		v.fallbacks = append(v.fallbacks, file)
		v.files[file] = host(rel)
	}

	online, err := procfs.ParseCPUList(string(host("sys/devices/system/cpu/online")))
	if err != nil {
		t.Fatal(err)
	}
	cpu, cpuErr := r.CPU(c)
	v.visible = online
	if cpuErr == nil {
		v.visible = render.VisibleCPUs(online, cpu, true)
	}
	v.files["online"] = render.CPUList(len(v.visible))

	hostMem, err := procfs.ParseMeminfo(host("proc/meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := r.Memory(c); err != nil {
		fallback("meminfo", "proc/meminfo")
		fallback("swaps", "proc/swaps")
	} else {
		v.files["meminfo"] = render.Meminfo(hostMem, m, true)
		v.files["swaps"] = render.Swaps(hostMem, m, true)
	}

	v.files["cpuinfo"] = render.CPUInfo(procfs.ParseCPUInfo(host("proc/cpuinfo")), v.visible)

	up, _, err := procfs.ParseUptime(host("proc/uptime"))
	if err != nil {
		t.Fatal(err)
	}
	up = max(up, c.InitStart) - c.InitStart

	sampler := loadavg.New(r, procRoot, 5*time.Second, logr.Discard())
	s := sampler.Get(c)
	v.files["loadavg"] = render.Loadavg(s.Avg, s.Running, s.Total, s.LastPid)

	if cpuErr != nil {
		fallback("stat", "proc/stat")
	} else {
		hostStat, err := procfs.ParseStat(host("proc/stat"))
		if err != nil {
			t.Fatal(err)
		}
		in := render.StatInput{
			CPU:       cpu,
			Allowed:   render.VisibleCPUs(online, cpu, false),
			Visible:   v.visible,
			Uptime:    up,
			InitStart: c.InitStart,
			Tasks:     s.Total, Running: s.Running, Blocked: s.Blocked,
		}
		v.files["stat"], _ = render.Stat(hostStat, in, nil)
	}
	v.files["uptime"], _ = render.Uptime(up, len(v.visible), cpu.User+cpu.System, 0)

	if io, err := r.IO(c); err != nil {
		fallback("diskstats", "proc/diskstats")
	} else {
		disks, err := procfs.ParseDiskstats(host("proc/diskstats"))
		if err != nil {
			t.Fatal(err)
		}
		v.files["diskstats"] = render.Diskstats(disks, io)
	}
	slices.Sort(v.fallbacks)
	return v
}

func TestGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fixture      string
		memTotalKB   uint64   // MemTotal in the rendered meminfo; 0 when meminfo falls back
		ncpu         int      // visible CPUs
		wantFallback []string // files that fall back to the host's
	}{
		{name: "v2 burstable 512Mi 1.5 CPUs", fixture: "v2-systemd-burstable", memTotalKB: 524288, ncpu: 2},
		{name: "v2 guaranteed 1Gi cpus 2-3", fixture: "v2-systemd-guaranteed", memTotalKB: 1048576, ncpu: 2},
		{name: "v2 besteffort allocatable", fixture: "v2-systemd-besteffort", memTotalKB: 15728640, ncpu: 8},
		{name: "v2 max", fixture: "v2-max", memTotalKB: 16393076, ncpu: 8},
		{name: "v2 cpuset only", fixture: "v2-cpuset-only", memTotalKB: 262144, ncpu: 3},
		{name: "v2 quota only", fixture: "v2-quota-only", memTotalKB: 262144, ncpu: 1},
		{name: "v2 nested pod limits", fixture: "v2-nested", memTotalKB: 262144, ncpu: 1},
		{name: "v2 limit above host", fixture: "v2-over-host", memTotalKB: 16393076, ncpu: 8},
		{name: "v2 malformed memory.max", fixture: "v2-malformed", ncpu: 2, wantFallback: []string{"meminfo", "swaps"}},
		{name: "v2 missing controllers", fixture: "v2-missing-controllers", ncpu: 8, wantFallback: []string{"diskstats", "meminfo", "swaps"}},
		{name: "v1 cgroupfs burstable", fixture: "v1-cgroupfs-burstable", memTotalKB: 524288, ncpu: 2},
		{name: "v1 missing controllers", fixture: "v1-missing-controllers", memTotalKB: 524288, ncpu: 2, wantFallback: []string{"diskstats"}},
		{name: "hybrid guaranteed cpu 1", fixture: "hybrid-cgroupfs-guaranteed", memTotalKB: 1048576, ncpu: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := renderScenario(t, tc.fixture)
			if !slices.Equal(v.fallbacks, tc.wantFallback) {
				t.Errorf("fallbacks = %v, want %v", v.fallbacks, tc.wantFallback)
			}
			if len(v.visible) != tc.ncpu {
				t.Errorf("visible CPUs = %v, want %d", v.visible, tc.ncpu)
			}
			if tc.memTotalKB != 0 {
				m, err := procfs.ParseMeminfo(v.files["meminfo"])
				if err != nil {
					t.Fatalf("rendered meminfo does not parse: %v", err)
				}
				if got, _ := m.Get("MemTotal"); got != tc.memTotalKB {
					t.Errorf("MemTotal = %d kB, want %d", got, tc.memTotalKB)
				}
			}
			checkCPUCountsAgree(t, v.files["cpuinfo"], v.files["stat"], v.files["online"], tc.ncpu, !slices.Contains(v.fallbacks, "stat"))
			for _, f := range goldenFiles {
				compareGolden(t, tc.fixture+"."+f, v.files[f])
			}
		})
	}
}

// compareGolden compares got with testdata/golden/name, or rewrites the
// file under -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./fs/render -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n%s", name, lineDiff(string(want), string(got)))
	}
}

// lineDiff lists the lines that differ, at most ten.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			shown++
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want " + strconv.Quote(wl) + "\n  got  " + strconv.Quote(gl) + "\n")
		}
	}
	return b.String()
}

// checkCPUCountsAgree asserts that cpuinfo, /proc/stat and the cpu online
// list all show n CPUs, numbered 0..n-1.
func checkCPUCountsAgree(t *testing.T, cpuinfo, stat, online []byte, n int, statRendered bool) {
	t.Helper()
	blocks := procfs.ParseCPUInfo(cpuinfo)
	var procs []int
	for _, b := range blocks {
		if b.CPU >= 0 {
			procs = append(procs, b.CPU)
		}
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(procs, want) {
		t.Errorf("cpuinfo processors = %v, want %v", procs, want)
	}
	ids, err := procfs.ParseCPUList(string(online))
	if err != nil || !slices.Equal(ids, want) {
		t.Errorf("cpu online %q = %v, %v; want %v", online, ids, err, want)
	}
	if !statRendered {
		return
	}
	st, err := procfs.ParseStat(stat)
	if err != nil {
		t.Fatalf("rendered stat does not parse: %v", err)
	}
	var statIDs []int
	for id := range st.CPUs {
		statIDs = append(statIDs, id)
	}
	slices.Sort(statIDs)
	if !slices.Equal(statIDs, want) {
		t.Errorf("stat cpuN lines = %v, want %v", statIDs, want)
	}
}

func TestGoldenFilesHaveScenarios(t *testing.T) {
	t.Parallel()
	ents, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		scenario, file, ok := strings.Cut(e.Name(), ".")
		if !ok || !slices.Contains(goldenFiles, file) {
			t.Errorf("unexpected golden file %s", e.Name())
			continue
		}
		if _, err := os.Stat(filepath.Join(fixtures, scenario)); errors.Is(err, os.ErrNotExist) {
			t.Errorf("golden file %s has no fixture %s (stale after a rename?)", e.Name(), scenario)
		}
	}
}
