// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

const mib = 1 << 20

func newCgroup(t *testing.T, lim sandbox.Limits) *sandbox.Cgroup {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano()%1e6)
	cg, err := sandbox.NewCgroup(name, lim)
	if err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := cg.Remove(); err != nil {
			t.Errorf("remove cgroup: %v", err)
		}
	})
	return cg
}

func startContainer(t *testing.T, o sandbox.ContainerOptions) *sandbox.Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sandbox.StartContainer(ctx, o)
	if err != nil {
		t.Fatalf("start container: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stop container: %v", err)
		}
	})
	return c
}

func exec1(t *testing.T, c *sandbox.Container, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, stderr, err := c.Exec(ctx, argv...)
	if err != nil {
		t.Fatalf("%q in container: %v\nstderr: %s", argv, err, stderr)
	}
	return out
}

// TestPrivMount checks the mount itself: type, flags, layout and that
// nothing is writable.
func TestPrivMount(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp)

	ms := testenv.MountsAt(t, mp)
	top := ms[len(ms)-1]
	if top.FSType != "fuse.lxcfs" || top.Source != "lxcfs" {
		t.Errorf("mount type/source = %s/%s, want fuse.lxcfs/lxcfs", top.FSType, top.Source)
	}
	for _, want := range []string{"ro", "nosuid", "nodev"} {
		if !strings.Contains(","+top.Options+",", ","+want+",") {
			t.Errorf("mount options %q lack %s", top.Options, want)
		}
	}
	if !strings.Contains(top.VFSOptions, "allow_other") {
		t.Errorf("super options %q lack allow_other", top.VFSOptions)
	}

	for _, f := range []string{"proc/meminfo", "proc/cpuinfo", "proc/stat", "proc/uptime", "proc/loadavg",
		"proc/diskstats", "proc/swaps", "proc/slabinfo", "sys/devices/system/cpu/online"} {
		if _, err := os.ReadFile(filepath.Join(mp, f)); err != nil {
			t.Errorf("read %s: %v", f, err)
		}
	}
	if _, err := os.Stat("/proc/pressure/cpu"); err == nil {
		if _, err := os.ReadFile(filepath.Join(mp, "proc/pressure/cpu")); err != nil {
			t.Errorf("read proc/pressure/cpu: %v", err)
		}
	}

	// Each entry listed once.
	ents, err := os.ReadDir(filepath.Join(mp, "proc"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range ents {
		seen[e.Name()]++
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("proc/%s listed %d times", name, n)
		}
	}
	if seen["meminfo"] != 1 || seen["stat"] != 1 {
		t.Errorf("proc listing %v lacks meminfo or stat", seen)
	}

	meminfo := filepath.Join(mp, "proc/meminfo")
	for name, op := range map[string]func() error{
		"open for write": func() error { f, err := os.OpenFile(meminfo, os.O_WRONLY, 0); closeIf(f); return err },
		"create":         func() error { f, err := os.Create(filepath.Join(mp, "proc/new")); closeIf(f); return err },
		"chmod":          func() error { return os.Chmod(meminfo, 0o666) },
		"mkdir":          func() error { return os.Mkdir(filepath.Join(mp, "proc/d"), 0o755) },
		"remove":         func() error { return os.Remove(meminfo) },
	} {
		err := op()
		if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EACCES) {
			t.Errorf("%s: err = %v, want EROFS or EACCES", name, err)
		}
	}
}

func closeIf(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// TestPrivClients runs real clients in "containers": new pid and mount
// namespaces, limited cgroups, the files bind-mounted over /proc.
func TestPrivClients(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp)
	online, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		t.Fatal(err)
	}
	hostCPUs := strings.TrimSpace(string(online))
	lastCPU := hostCPUs[strings.LastIndexAny(hostCPUs, "-,")+1:]

	cases := []struct {
		name    string
		lim     sandbox.Limits
		memory  int64 // what free -b must show as total
		cpus    int
		cpuinfo []string // host model lines must still be there
	}{
		{name: "256Mi-half-cpu", lim: sandbox.Limits{MemoryBytes: 256 * mib, CPUQuotaUS: 50000, CPUPeriodUS: 100000}, memory: 256 * mib, cpus: 1},
		{name: "512Mi-cpuset-last", lim: sandbox.Limits{MemoryBytes: 512 * mib, Cpuset: lastCPU}, memory: 512 * mib, cpus: 1},
		{name: "1Gi-quota-above-host", lim: sandbox.Limits{MemoryBytes: 1024 * mib, CPUQuotaUS: 6400000, CPUPeriodUS: 100000}, memory: 1024 * mib, cpus: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // own cgroup and container each; the clients' start-up dominates under emulation
			c := startContainer(t, sandbox.ContainerOptions{Cgroup: newCgroup(t, tc.lim), LXCFSRoot: mp})
			want := tc.cpus
			if want < 0 {
				want = len(parseList(t, hostCPUs))
			}

			free := exec1(t, c, "free", "-b")
			if total := field(t, free, "Mem:", 1); total != strconv.FormatInt(tc.memory, 10) {
				t.Errorf("free -b total = %s, want %d\n%s", total, tc.memory, free)
			}
			if got := strings.TrimSpace(exec1(t, c, "getconf", "_NPROCESSORS_ONLN")); got != strconv.Itoa(want) {
				t.Errorf("_NPROCESSORS_ONLN = %s, want %d", got, want)
			}
			if got := strings.TrimSpace(exec1(t, c, "getconf", "_NPROCESSORS_CONF")); got != strconv.Itoa(want) {
				t.Errorf("_NPROCESSORS_CONF = %s, want %d", got, want)
			}
			// nproc(1) asks sched_getaffinity(2), which the kernel answers from
			// the cpuset; no /proc file can change it. So only cpusets show there.
			if tc.lim.Cpuset != "" {
				if got := strings.TrimSpace(exec1(t, c, "nproc")); got != strconv.Itoa(want) {
					t.Errorf("nproc = %s, want %d", got, want)
				}
			}
			lscpu := exec1(t, c, "lscpu")
			if got := field(t, lscpu, "CPU(s):", 1); got != strconv.Itoa(want) {
				t.Errorf("lscpu CPU(s) = %s, want %d\n%s", got, want, lscpu)
			}
			cpuinfo := exec1(t, c, "cat", "/proc/cpuinfo")
			if n := strings.Count(cpuinfo, "processor\t:"); n != want {
				t.Errorf("cpuinfo has %d processors, want %d", n, want)
			}
			stat := exec1(t, c, "cat", "/proc/stat")
			if n := len(regexp.MustCompile(`(?m)^cpu\d+ `).FindAllString(stat, -1)); n != want {
				t.Errorf("stat has %d cpuN lines, want %d", n, want)
			}
			if got := strings.TrimSpace(exec1(t, c, "cat", "/sys/devices/system/cpu/online")); got != cpuList(want) {
				t.Errorf("cpu/online = %q, want %q", got, cpuList(want))
			}

			top := exec1(t, c, "top", "-bn1")
			wantMem := fmt.Sprintf("%.1f total", float64(tc.memory)/mib)
			if !strings.Contains(top, wantMem) {
				t.Errorf("top header lacks %q:\n%s", wantMem, head(top, 5))
			}
			up := exec1(t, c, "cat", "/proc/uptime")
			upSec, idleSec := parseUptime(t, up)
			if upSec > 60 {
				t.Errorf("container uptime %.2fs, want a fresh container's (<60s)", upSec)
			}
			if idleSec > upSec*float64(want)+0.01 {
				t.Errorf("idle %.2f exceeds uptime %.2f × %d CPUs", idleSec, upSec, want)
			}
			if out := exec1(t, c, "uptime"); !regexp.MustCompile(`up\s+(0 min|\d+ sec)`).MatchString(out) && !strings.Contains(out, "up 0 min") {
				t.Errorf("uptime(1) = %q, want a fresh container's", out)
			}
		})
	}
}

// TestPrivNestedLimit: the limit is the minimum up the tree.
func TestPrivNestedLimit(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp)
	parent := newCgroup(t, sandbox.Limits{MemoryBytes: 192 * mib})
	child, err := parent.NewChild("child", sandbox.Limits{MemoryBytes: 768 * mib})
	if err != nil {
		t.Fatal(err)
	}
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: child, LXCFSRoot: mp})
	if total := field(t, exec1(t, c, "free", "-b"), "Mem:", 1); total != strconv.Itoa(192*mib) {
		t.Errorf("free -b total = %s, want the parent's %d", total, 192*mib)
	}
}

// TestPrivHostNamespaceReader: a reader in the daemon's pid namespace gets
// its own cgroup.
func TestPrivHostNamespaceReader(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp)
	cg := newCgroup(t, sandbox.Limits{MemoryBytes: 320 * mib})
	var script strings.Builder
	for _, ctl := range []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", ""} {
		if p := cg.Path(ctl); p != "" {
			fmt.Fprintf(&script, "echo $$ > %s/cgroup.procs 2>/dev/null; ", p)
		}
	}
	script.WriteString("exec head -1 " + filepath.Join(mp, "proc/meminfo"))
	out, err := exec.Command("sh", "-c", script.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("reader: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) < 2 || got[1] != strconv.Itoa(320*1024) {
		t.Errorf("MemTotal line %q, want %d kB", out, 320*1024)
	}
}

// TestPrivChunkedReads: each open is one snapshot, whatever the read sizes.
func TestPrivChunkedReads(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-cache-ttl=0")
	for _, name := range []string{"proc/meminfo", "proc/stat", "proc/cpuinfo", "proc/diskstats", "proc/uptime"} {
		p := filepath.Join(mp, name)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		big := make([]byte, 1<<20)
		n, err := f.ReadAt(big, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("%s: read: %v", name, err)
		}
		whole := big[:n]
		for _, chunk := range []int{1, 7, 1024} {
			var got []byte
			buf := make([]byte, chunk)
			for off := int64(0); ; off += int64(chunk) {
				m, err := f.ReadAt(buf, off)
				got = append(got, buf[:m]...)
				if err != nil || m < chunk {
					break
				}
			}
			if !bytes.Equal(got, whole) {
				t.Errorf("%s: %d-byte reads assembled %d bytes differing from one read of %d", name, chunk, len(got), len(whole))
			}
		}
		if len(whole) > 10 {
			mid := make([]byte, 5)
			if _, err := f.ReadAt(mid, 5); err != nil || !bytes.Equal(mid, whole[5:10]) {
				t.Errorf("%s: pread at 5 = %q, %v; want %q", name, mid, err, whole[5:10])
			}
		}
		_ = f.Close()
	}
}

// TestPrivStatOwnCPUTime: busy loops in a 0.5-CPU container move its
// /proc/stat by about half the wall time, and no counter goes backwards
// meanwhile (lxcfs 5.0.3 --enable-cfs makes idle go backwards). The samples
// are taken from outside the container's cgroup (in its namespaces), so the
// sampling itself doesn't count against the quota.
func TestPrivStatOwnCPUTime(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-cache-ttl=0")
	c := startContainer(t, sandbox.ContainerOptions{
		Cgroup:    newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib, CPUQuotaUS: 50000, CPUPeriodUS: 100000}),
		LXCFSRoot: mp,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	busyDone := make(chan error, 1)
	go func() {
		// Two busy loops, for longer than we sample.
		_, _, err := c.Exec(ctx, "sh", "-c", `for i in 1 2; do ( end=$(( $(date +%s) + 5 )); while [ $(date +%s) -lt $end ]; do :; done ) & done; wait`)
		busyDone <- err
	}()
	sample := func() ([]uint64, time.Time) {
		out := nsCat(t, c, "/proc/stat")
		now := time.Now()
		lines := strings.SplitN(out, "\n", 3)
		var vals []uint64
		for _, l := range lines[:2] {
			for _, f := range strings.Fields(l)[1:] {
				v, err := strconv.ParseUint(f, 10, 64)
				if err != nil {
					t.Fatalf("stat line %q: %v", l, err)
				}
				vals = append(vals, v)
			}
		}
		return vals, now
	}
	time.Sleep(500 * time.Millisecond) // let the loops start
	first, t0 := sample()
	prev := first
	var last []uint64
	var t1 time.Time
	for range 15 {
		time.Sleep(100 * time.Millisecond)
		last, t1 = sample()
		for i := range prev {
			if last[i] < prev[i] {
				t.Errorf("counter %d went backwards: %d → %d", i, prev[i], last[i])
			}
		}
		prev = last
	}
	wall := t1.Sub(t0).Seconds() * 100 // ticks
	busy := float64(last[0]+last[2]) - float64(first[0]+first[2])
	if share := busy / wall; share < 0.35 || share > 0.65 {
		t.Errorf("container CPU time moved %.0f ticks over %.0f ticks of wall time (%.2f CPUs), want ≈0.5 (its quota)", busy, wall, share)
	}
	if idle := float64(last[3]) - float64(first[3]); idle <= 0 {
		t.Errorf("idle did not move (%v)", idle)
	}
	cancel()
	<-busyDone
}

// TestPrivLoadavg: two busy loops in a container raise its load average,
// while a reader outside sees none of it.
func TestPrivLoadavg(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-loadavg-interval=1s", "-cache-ttl=0")
	busy := startContainer(t, sandbox.ContainerOptions{Cgroup: newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib}), LXCFSRoot: mp})
	idle := startContainer(t, sandbox.ContainerOptions{Cgroup: newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib}), LXCFSRoot: mp})
	_ = exec1(t, idle, "cat", "/proc/loadavg") // register
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _, _ = busy.Exec(ctx, "sh", "-c", "cat /proc/loadavg >/dev/null; (while :; do :; done) & while :; do :; done")
	}()
	defer wg.Wait()
	defer cancel()
	err := testenv.Eventually(context.Background(), 20*time.Second, func() error {
		la := exec1(t, busy, "cat", "/proc/loadavg")
		f := strings.Fields(la)
		one, _ := strconv.ParseFloat(f[0], 64)
		if one < 0.1 { // 2 runnable tasks pass 0.1 after ~3s; an idle container shows 0.00
			return fmt.Errorf("busy container's loadavg %q, want 1-minute load ≥ 0.1", strings.TrimSpace(la))
		}
		run := strings.Split(f[3], "/")
		if n, _ := strconv.Atoi(run[0]); n < 2 {
			return fmt.Errorf("busy container's running tasks %q, want ≥2", f[3])
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	la := exec1(t, idle, "cat", "/proc/loadavg")
	if one, _ := strconv.ParseFloat(strings.Fields(la)[0], 64); one > 0.05 {
		t.Errorf("idle container's loadavg %q shows someone else's load", strings.TrimSpace(la))
	}
}

// TestPrivDiskstats: bytes written with O_DIRECT by a container show in its
// diskstats, and another container's show nothing. K8S_LXCFS_SCRATCH_DEV
// names a block device to write to (the VM's spare disk); otherwise a file in
// /var/tmp is used.
func TestPrivDiskstats(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-cache-ttl=0")
	cg := newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib})
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: cg, LXCFSRoot: mp})
	other := startContainer(t, sandbox.ContainerOptions{Cgroup: newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib}), LXCFSRoot: mp})
	target := os.Getenv("K8S_LXCFS_SCRATCH_DEV")
	var dev uint64
	if target == "" {
		dir, err := os.MkdirTemp("/var/tmp", "k8s-lxcfs-dio-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		target = dir + "/f"
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		dev = st.Dev
	} else {
		var st unix.Stat_t
		if err := unix.Stat(target, &st); err != nil {
			t.Fatal(err)
		}
		dev = st.Rdev
	}
	// An I/O limit the writes stay under, as a pod's would be. (cgroup v1
	// also needs it: it keeps per-cgroup I/O counters only for devices with
	// a blk-throttle rule or under BFQ. v2's io.stat always counts.)
	file, rule := "blkio.throttle.write_bps_device", fmt.Sprintf("%s 1099511627776", wholeDisk(t, dev))
	if cg.V2() {
		file, rule = "io.max", fmt.Sprintf("%s wbps=1099511627776", wholeDisk(t, dev))
	}
	if err := os.WriteFile(filepath.Join(cg.Path("blkio"), file), []byte(rule), 0o644); err != nil {
		t.Fatalf("set I/O limit %s %q: %v", file, rule, err)
	}
	before := sectorsWritten(t, exec1(t, c, "cat", "/proc/diskstats"))
	exec1(t, c, "dd", "if=/dev/zero", "of="+target, "bs=1M", "count=8", "oflag=direct", "status=none")
	after := sectorsWritten(t, exec1(t, c, "cat", "/proc/diskstats"))
	if moved := after - before; moved < 8*mib/512 {
		t.Errorf("diskstats sectors written moved by %d, want ≥ %d after 8 MiB O_DIRECT", moved, 8*mib/512)
	}
	if n := sectorsWritten(t, exec1(t, other, "cat", "/proc/diskstats")); n >= 8*mib/512 {
		t.Errorf("an idle container's diskstats show %d sectors written: someone else's I/O", n)
	}
}

// wholeDisk returns "MAJ:MIN" of the disk holding device dev (a partition's
// parent), as blk-throttle rules need.
func wholeDisk(t *testing.T, dev uint64) string {
	t.Helper()
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(dev), unix.Minor(dev))
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		sys = filepath.Join(sys, "..")
	}
	b, err := os.ReadFile(filepath.Join(sys, "dev"))
	if err != nil {
		t.Fatalf("find the disk of device %d:%d: %v", unix.Major(dev), unix.Minor(dev), err)
	}
	return strings.TrimSpace(string(b))
}

func sectorsWritten(t *testing.T, diskstats string) int64 {
	t.Helper()
	var total int64
	for _, line := range strings.Split(strings.TrimSpace(diskstats), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		v, err := strconv.ParseInt(f[9], 10, 64)
		if err != nil {
			t.Fatalf("diskstats line %q", line)
		}
		total += v
	}
	return total
}

// TestPrivCgroupRemovedDuringReads: a container's cgroup vanishes while it
// reads (its processes moved to a sibling, then the cgroup removed); every
// read still succeeds and none hangs. Siblings, not the parent, because v2
// forbids processes in a cgroup whose controllers are enabled for children.
func TestPrivCgroupRemovedDuringReads(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-cache-ttl=0")
	first := newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib})
	second := newCgroup(t, sandbox.Limits{MemoryBytes: 512 * mib})
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: first, LXCFSRoot: mp})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type res struct {
		out string
		err error
	}
	done := make(chan res, 1)
	go func() {
		out, stderr, err := c.Exec(ctx, "sh", "-c", `n=0; while [ $n -lt 150 ]; do cat /proc/meminfo /proc/stat /proc/cpuinfo /proc/uptime > /dev/null || echo FAIL; n=$((n+1)); done; head -1 /proc/meminfo; echo done`)
		done <- res{out + stderr, err}
	}()
	// Wait until the reader has joined the cgroup (its init holds two
	// processes: sh and its sleep), so the move happens mid-reads.
	err := testenv.Eventually(ctx, 20*time.Second, func() error {
		if procs, err := first.Procs(); err != nil || len(procs) <= 2 {
			return fmt.Errorf("reader not started in the cgroup yet (%v, %v)", procs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var moved atomic.Int32
	err = testenv.Eventually(ctx, 10*time.Second, func() error {
		procs, err := first.Procs()
		if err != nil {
			return err
		}
		for _, p := range procs {
			if second.AddProc(p) == nil {
				moved.Add(1)
			}
		}
		if len(procs) > 0 {
			return fmt.Errorf("%d processes still in the first cgroup", len(procs))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("move processes out: %v", err)
	}
	if err := first.Remove(); err != nil {
		t.Fatalf("remove the container's cgroup: %v", err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("reader: %v\n%s", r.err, r.out)
	}
	if strings.Contains(r.out, "FAIL") || !strings.Contains(r.out, "done") {
		t.Errorf("reads failed while the cgroup went away:\n%s", r.out)
	}
	if moved.Load() == 0 {
		t.Errorf("no process was moved out of the removed cgroup; the test proved nothing")
	}
	// Once the resolution is revalidated (1s), the new cgroup's limit shows.
	// (Exec would join the removed cgroup; nsenter alone enters the
	// namespaces, and the init's cgroup is what counts.)
	err = testenv.Eventually(context.Background(), 5*time.Second, func() error {
		if got := field(t, nsCat(t, c, "/proc/meminfo"), "MemTotal:", 1); got != strconv.Itoa(512*1024) {
			return fmt.Errorf("MemTotal %s kB, want the second cgroup's %d", got, 512*1024)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestPrivRestartAfterKill: kill -9 leaves a dead mount ("Transport endpoint
// is not connected"); serve on the same mount point cleans it and serves.
func TestPrivRestartAfterKill(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	d := testenv.StartDaemon(t, mp)
	d.Kill()
	if _, err := os.ReadFile(filepath.Join(mp, "proc/meminfo")); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("after kill -9: read = %v, want ENOTCONN", err)
	}
	d2 := testenv.StartDaemon(t, mp)
	if !strings.Contains(d2.Log(), "Detached stale FUSE mounts") {
		t.Errorf("second daemon did not report detaching the stale mount:\n%s", d2.Log())
	}
	if n := fuseMounts(t, mp); n != 1 {
		t.Errorf("%d FUSE mounts at %s after restart, want 1", n, mp)
	}
	if err := d2.Stop(t); err != nil {
		t.Errorf("SIGTERM: exit %v, want 0", err)
	}
	if n := fuseMounts(t, mp); n != 0 {
		t.Errorf("%d FUSE mounts left at %s after SIGTERM", n, mp)
	}
}

// fuseMounts counts the FUSE mounts at mp. The daemon leaves the shared
// bind of mp on itself that it makes before its first mount.
func fuseMounts(t *testing.T, mp string) int {
	n := 0
	for _, m := range testenv.MountsAt(t, mp) {
		if strings.HasPrefix(m.FSType, "fuse") {
			n++
		}
	}
	return n
}

func field(t *testing.T, text, key string, idx int) string {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) > idx && f[0] == key {
			return f[idx]
		}
	}
	t.Fatalf("no %q line in:\n%s", key, text)
	return ""
}

func parseList(t *testing.T, s string) []int {
	t.Helper()
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		a, _ := strconv.Atoi(lo)
		b := a
		if ok {
			b, _ = strconv.Atoi(hi)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out
}

func cpuList(n int) string {
	if n == 1 {
		return "0"
	}
	return "0-" + strconv.Itoa(n-1)
}

func parseUptime(t *testing.T, s string) (up, idle float64) {
	t.Helper()
	f := strings.Fields(s)
	if len(f) != 2 {
		t.Fatalf("uptime %q", s)
	}
	up, _ = strconv.ParseFloat(f[0], 64)
	idle, _ = strconv.ParseFloat(f[1], 64)
	return up, idle
}

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
