// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// privName returns a cgroup name unique to the test and this process, so a
// leftover of an earlier crashed run cannot collide.
func privName(t *testing.T) string {
	return strings.NewReplacer("/", "-", " ", "_").Replace(t.Name()) + "-" + strconv.Itoa(os.Getpid())
}

// privCgroup creates a sandbox cgroup that is removed when t ends.
func privCgroup(t *testing.T, lim Limits) *Cgroup {
	t.Helper()
	c, err := NewCgroup(privName(t), lim)
	if err != nil {
		t.Fatalf("NewCgroup() = %v", err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Errorf("Remove() = %v", err)
		}
	})
	return c
}

// privContainer starts a container that is stopped when t ends (before its
// cgroup is removed: cleanups run last-in first-out).
func privContainer(t *testing.T, o ContainerOptions) *Container {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := StartContainer(ctx, o)
	if err != nil {
		t.Fatalf("StartContainer() = %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop() = %v", err)
		}
	})
	return c
}

// mustExec runs argv in c and returns its stdout, failing t on error.
func mustExec(t *testing.T, c *Container, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, err := c.Exec(ctx, argv...)
	if err != nil {
		t.Fatalf("Exec() = %v", err)
	}
	return out
}

// readTrim returns the trimmed content of a (kernel) file, failing t if absent.
func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// wantFiles compares kernel files below dir with want (file -> value).
func wantFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for file, v := range want {
		if got := readTrim(t, filepath.Join(dir, file)); got != v {
			t.Errorf("%s/%s = %q, want %q", dir, file, got, v)
		}
	}
}

// hostMemTotal returns MemTotal of the host's /proc/meminfo in bytes.
func hostMemTotal(t *testing.T) int64 {
	t.Helper()
	return memTotal(t, readTrim(t, "/proc/meminfo"))
}

var memTotalRE = regexp.MustCompile(`(?m)^MemTotal:\s+(\d+) kB$`)

// memTotal returns MemTotal of meminfo text in bytes.
func memTotal(t *testing.T, meminfo string) int64 {
	t.Helper()
	m := memTotalRE.FindStringSubmatch(meminfo)
	if m == nil {
		t.Fatalf("no MemTotal in %q", meminfo)
	}
	kb, _ := strconv.ParseInt(m[1], 10, 64)
	return kb * 1024
}

// freeTotal returns the total of the "Mem:" line of `free -b` output.
func freeTotal(t *testing.T, out string) int64 {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Mem:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("free -b: bad total in %q", line)
			}
			return n
		}
	}
	t.Fatalf("free -b printed no Mem: line: %q", out)
	return 0
}

// gone fails t for every directory of c that still exists.
func gone(t *testing.T, c *Cgroup) {
	t.Helper()
	for _, d := range c.tree.dirs(c.rel) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Remove (stat: %v)", d, err)
		}
	}
}

const unlimitedV1 = "9223372036854771712" // PAGE_COUNTER_MAX pages in bytes, 4 KiB pages

func TestPrivCgroupLimits(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	// A probe cgroup shows whether the kernel accounts swap: memsw files
	// (v1) or memory.swap.max (v2) exist in every non-root cgroup then.
	probe, err := NewCgroup(privName(t)+"-probe", Limits{})
	if err != nil {
		t.Fatalf("NewCgroup() = %v", err)
	}
	if got, want := probe.V2(), testenv.CgroupMode() == testenv.ModeV2; got != want {
		t.Errorf("V2() = %v, but testenv.CgroupMode() = %v", got, testenv.CgroupMode())
	}
	swap := probe.tree.fs.Exists(filepath.Join(probe.Path("memory"), "memory.memsw.limit_in_bytes")) ||
		probe.tree.fs.Exists(filepath.Join(probe.Path("memory"), "memory.swap.max"))
	if err := probe.Remove(); err != nil {
		t.Fatalf("Remove() = %v", err)
	}
	gone(t, probe)

	lim := Limits{MemoryBytes: 256 << 20, CPUQuotaUS: 50000, Cpuset: "0"}
	if swap {
		lim.SwapBytes = 64 << 20
	}
	c := privCgroup(t, lim)
	if c.V2() {
		want := map[string]string{"memory.max": "268435456", "cpu.max": "50000 100000", "cpuset.cpus": "0"}
		if swap {
			want["memory.swap.max"] = "67108864"
		}
		wantFiles(t, c.Path("memory"), want)
	} else {
		want := map[string]string{"memory.limit_in_bytes": "268435456"}
		if swap {
			want["memory.memsw.limit_in_bytes"] = "335544320"
		}
		wantFiles(t, c.Path("memory"), want)
		wantFiles(t, c.Path("cpu"), map[string]string{"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"})
		wantFiles(t, c.Path("cpuset"), map[string]string{
			"cpuset.cpus": "0",
			"cpuset.mems": readTrim(t, filepath.Join(c.tree.roots["cpuset"], "cpuset.mems")),
		})
		for _, ctrl := range v1Controllers {
			if d := c.Path(ctrl); d != "" && !strings.HasSuffix(d, c.RelPath()) {
				t.Errorf("Path(%s) = %s, want it to end in %s", ctrl, d, c.RelPath())
			}
		}
	}
	t.Logf("v2=%v swap accounting=%v dirs=%v", c.V2(), swap, c.tree.dirs(c.rel))
	if err := c.Remove(); err != nil {
		t.Fatalf("Remove() = %v", err)
	}
	gone(t, c)
}

func TestPrivNestedCgroup(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	outer := privCgroup(t, Limits{MemoryBytes: 512 << 20, CPUQuotaUS: 100000})
	inner, err := outer.NewChild("inner", Limits{MemoryBytes: 128 << 20, CPUQuotaUS: 50000, Cpuset: "0"})
	if err != nil {
		t.Fatalf("NewChild(inner) = %v", err)
	}
	free, err := inner.NewChild("free", Limits{})
	if err != nil {
		t.Fatalf("NewChild(free) = %v", err)
	}
	if got, want := inner.RelPath(), outer.RelPath()+"/inner"; got != want {
		t.Errorf("inner.RelPath() = %q, want %q", got, want)
	}
	// Each cgroup's files hold its own limit; the kernel applies the minimum.
	if outer.V2() {
		wantFiles(t, outer.Path("memory"), map[string]string{"memory.max": "536870912", "cpu.max": "100000 100000"})
		wantFiles(t, inner.Path("memory"), map[string]string{"memory.max": "134217728", "cpu.max": "50000 100000", "cpuset.cpus": "0"})
		wantFiles(t, free.Path("memory"), map[string]string{"memory.max": "max", "cpu.max": "max 100000", "cpuset.cpus.effective": "0"})
	} else {
		wantFiles(t, outer.Path("memory"), map[string]string{"memory.limit_in_bytes": "536870912"})
		wantFiles(t, outer.Path("cpu"), map[string]string{"cpu.cfs_quota_us": "100000"})
		wantFiles(t, inner.Path("memory"), map[string]string{"memory.limit_in_bytes": "134217728"})
		wantFiles(t, inner.Path("cpu"), map[string]string{"cpu.cfs_quota_us": "50000"})
		wantFiles(t, inner.Path("cpuset"), map[string]string{"cpuset.cpus": "0"})
		wantFiles(t, free.Path("memory"), map[string]string{"memory.limit_in_bytes": unlimitedV1})
		wantFiles(t, free.Path("cpu"), map[string]string{"cpu.cfs_quota_us": "-1"})
		wantFiles(t, free.Path("cpuset"), map[string]string{"cpuset.cpus": "0"}) // copied from inner
	}

	// A container in the innermost cgroup runs there, Exec included.
	ctr := privContainer(t, ContainerOptions{Cgroup: free})
	cg := mustExec(t, ctr, "cat", "/proc/self/cgroup", "/proc/1/cgroup")
	if want := free.RelPath(); strings.Count(cg, ":"+want+"\n") < 2 {
		t.Errorf("/proc/self/cgroup and /proc/1/cgroup in the container:\n%s\nwant %s in both", cg, want)
	}
	if err := ctr.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	// Removing the outer cgroup removes everything below it.
	if err := outer.Remove(); err != nil {
		t.Fatalf("outer.Remove() = %v", err)
	}
	gone(t, free)
	gone(t, inner)
	gone(t, outer)
}

// TestPrivContainerSeesHostMemory shows the problem k8s-lxcfs solves: in a
// 256 MiB cgroup, free(1) reports the host's memory.
func TestPrivContainerSeesHostMemory(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	cg := privCgroup(t, Limits{MemoryBytes: 256 << 20})
	ctr := privContainer(t, ContainerOptions{Cgroup: cg})
	host := hostMemTotal(t)
	if got := freeTotal(t, mustExec(t, ctr, "free", "-b")); got != host {
		t.Errorf("free -b in the container: total %d, want the host's %d", got, host)
	}
	if got := memTotal(t, mustExec(t, ctr, "cat", "/proc/meminfo")); got != host {
		t.Errorf("MemTotal in the container = %d, want the host's %d", got, host)
	}
	if host <= 256<<20 {
		t.Errorf("host MemTotal %d is not above the 256 MiB limit; the test shows nothing", host)
	}
}

func TestPrivContainerNamespaces(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	cg := privCgroup(t, Limits{})
	ctr := privContainer(t, ContainerOptions{Cgroup: cg})

	if got := strings.TrimSpace(mustExec(t, ctr, "sh", "-c", "echo $$")); got == "1" || got == "" {
		t.Errorf("Exec'd shell has pid %q inside, want a pid other than 1", got)
	}
	if got := strings.TrimSpace(mustExec(t, ctr, "cat", "/proc/1/comm")); got != "sh" {
		t.Errorf("/proc/1/comm = %q, want the init shell", got)
	}
	// Same pid namespace as the init, whose host pid is Pid().
	hostPidNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", ctr.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(mustExec(t, ctr, "readlink", "/proc/self/ns/pid")); got != hostPidNS {
		t.Errorf("pid namespace inside = %s, init's = %s", got, hostPidNS)
	}
	if got := readTrim(t, fmt.Sprintf("/proc/%d/status", ctr.Pid())); !regexp.MustCompile(`(?m)^NSpid:\s+\d+\s+1$`).MatchString(got) {
		t.Errorf("init is not pid 1 in its namespace:\n%s", got)
	}
	// A mount namespace of its own, with a /proc of its own.
	ourMntNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(mustExec(t, ctr, "readlink", "/proc/self/ns/mnt")); got == ourMntNS {
		t.Errorf("container shares our mount namespace %s", got)
	}
	var pids []string
	for _, f := range strings.Fields(mustExec(t, ctr, "ls", "/proc")) {
		if _, err := strconv.Atoi(f); err == nil {
			pids = append(pids, f)
		}
	}
	// init, its sleep, and ls (whose nsenter parent is outside).
	if len(pids) > 4 || len(pids) < 2 || pids[0] != "1" {
		t.Errorf("/proc in the container lists pids %v, want 1, its sleep and ls", pids)
	}
	// Exec runs in the container's cgroup.
	procCgroup := mustExec(t, ctr, "cat", "/proc/self/cgroup")
	memLine := regexp.MustCompile(`(?m)^\d+:(memory|):(.*)$`).FindAllStringSubmatch(procCgroup, -1)
	found := false
	for _, m := range memLine {
		if (m[1] == "memory") != cg.V2() && m[2] == cg.RelPath() {
			found = true
		}
	}
	if !found {
		t.Errorf("/proc/self/cgroup of an Exec'd process:\n%s\nwant %s for memory", procCgroup, cg.RelPath())
	}
	// Exec reports failures with stderr.
	_, stderr, err := ctr.Exec(context.Background(), "sh", "-c", "echo oops >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || strings.TrimSpace(stderr) != "oops" {
		t.Errorf("Exec(exit 3) = stderr %q, err %v; want exit status 3 and stderr oops", stderr, err)
	}
}

// TestPrivContainerBinds binds a fake lxcfs tree (plain files) and checks
// what the container sees, read-only, with nothing leaking to the host.
func TestPrivContainerBinds(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	root := t.TempDir()
	meminfo := strings.Join([]string{
		"MemTotal:         262144 kB", "MemFree:          200000 kB", "MemAvailable:     210000 kB",
		"Buffers:               0 kB", "Cached:             1000 kB", "SwapCached:            0 kB",
		"Active:             1000 kB", "Inactive:           1000 kB", "Shmem:                 0 kB",
		"SReclaimable:          0 kB", "SwapTotal:             0 kB", "SwapFree:              0 kB", "",
	}, "\n")
	files := map[string]string{
		"proc/meminfo":                  meminfo,
		"proc/uptime":                   "12.34 5.67\n",
		"sys/devices/system/cpu/online": "0\n",
	}
	for rel, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cg := privCgroup(t, Limits{MemoryBytes: 256 << 20})
	ctr := privContainer(t, ContainerOptions{Cgroup: cg, LXCFSRoot: root, ReadOnly: true})

	if got := mustExec(t, ctr, "cat", "/proc/meminfo"); got != meminfo {
		t.Errorf("/proc/meminfo in the container = %q, want the lxcfs file", got)
	}
	if got := freeTotal(t, mustExec(t, ctr, "free", "-b")); got != 256<<20 {
		t.Errorf("free -b total = %d, want %d", got, 256<<20)
	}
	if got := mustExec(t, ctr, "cat", "/proc/uptime", "/sys/devices/system/cpu/online"); got != "12.34 5.67\n0\n" {
		t.Errorf("uptime and cpu/online in the container = %q", got)
	}
	// Not in the tree, so not bound: the container's own proc answers.
	if got := mustExec(t, ctr, "cat", "/proc/cpuinfo"); !strings.Contains(got, "processor") {
		t.Errorf("/proc/cpuinfo in the container = %q, want the kernel's", got)
	}
	if _, _, err := ctr.Exec(context.Background(), "sh", "-c", "echo 1 2 >/proc/uptime"); err == nil || !strings.Contains(err.Error(), "Read-only file system") {
		t.Errorf("writing a read-only bind: %v, want Read-only file system", err)
	}
	if got := readTrim(t, filepath.Join(root, "proc/uptime")); got != "12.34 5.67" {
		t.Errorf("source changed to %q", got)
	}
	// Nothing leaked into our mount namespace.
	if mi := readTrim(t, "/proc/self/mountinfo"); strings.Contains(mi, root) {
		t.Errorf("our mount table mentions %s:\n%s", root, mi)
	}
	if got := memTotal(t, readTrim(t, "/proc/meminfo")); got == 256<<20 {
		t.Error("host /proc/meminfo shows the fake MemTotal")
	}
}

// TestPrivContainerPropagation shows the difference between private and
// slave containers for mounts the host makes later below a shared mount.
func TestPrivContainerPropagation(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("make %s shared: %v", dir, err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	private := privContainer(t, ContainerOptions{})
	slave := privContainer(t, ContainerOptions{Propagation: "slave"})

	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", sub, err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(sub, unix.MNT_DETACH) // best effort; dir's detach takes it too
		}
	})
	if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(sub, "marker")
	if got := mustExec(t, slave, "cat", marker); got != "hello\n" {
		t.Errorf("slave container reads %q from the host's new mount", got)
	}
	if _, _, err := private.Exec(context.Background(), "cat", marker); err == nil {
		t.Error("private container sees the host's new mount")
	}
	// Unmounts propagate too.
	if err := unix.Unmount(sub, 0); err != nil {
		t.Fatalf("unmount %s: %v", sub, err)
	}
	mounted = false
	if _, _, err := slave.Exec(context.Background(), "cat", marker); err == nil {
		t.Error("slave container still sees the host's mount after unmount")
	}
}

// TestPrivContainerStop checks that Stop leaves no process, and that a
// removed cgroup leaves no directory.
func TestPrivContainerStop(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	cg, err := NewCgroup(privName(t), Limits{MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatalf("NewCgroup() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctr, err := StartContainer(ctx, ContainerOptions{Cgroup: cg})
	if err != nil {
		t.Fatalf("StartContainer() = %v", err)
	}
	// A daemon that outlives the Exec that started it.
	bg := strings.TrimSpace(mustExec(t, ctr, "sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"))
	if ps := mustExec(t, ctr, "ps", "-o", "pid=", "-p", bg); strings.TrimSpace(ps) != bg {
		t.Fatalf("background sleep %s not running: %q", bg, ps)
	}
	pids, err := cg.Procs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 3 { // init, its sleep, the background sleep
		t.Errorf("cgroup holds %v, want 3 processes", pids)
	}

	if err := ctr.Stop(); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if err := ctr.Stop(); err != nil {
		t.Errorf("second Stop() = %v", err)
	}
	if err := unix.Kill(ctr.Pid(), 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("kill -0 %d after Stop: %v, want ESRCH", ctr.Pid(), err)
	}
	if pids, err := cg.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("cgroup holds %v (%v) after Stop, want nothing", pids, err)
	}
	if _, _, err := ctr.Exec(ctx, "true"); !errors.Is(err, ErrStopped) {
		t.Errorf("Exec() after Stop = %v, want ErrStopped", err)
	}
	if err := cg.Remove(); err != nil {
		t.Fatalf("Remove() = %v", err)
	}
	gone(t, cg)
	// The parent went with its last child, unless another sandbox cgroup
	// (a parallel test, another package) still lives there.
	for _, d := range cg.tree.dirs(ParentName) {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var subs []string
		for _, e := range ents {
			if e.IsDir() {
				subs = append(subs, e.Name())
			}
		}
		if len(subs) == 0 {
			t.Errorf("%s left behind empty", d)
		}
	}
}

// TestPrivExecContext checks that a cancelled Exec kills what it ran inside
// the container and that the init reaps the orphans.
func TestPrivExecContext(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	ctr := privContainer(t, ContainerOptions{Cgroup: privCgroup(t, Limits{})})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := ctr.Exec(ctx, "sleep", "1001")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec(sleep) past its deadline = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Exec took %v after its deadline", d)
	}
	// An orphan: the subshell exits at once and leaves sleep to the init.
	mustExec(t, ctr, "sh", "-c", "(sleep 0.2 &); echo started")

	deadline := time.Now().Add(5 * time.Second)
	for {
		ps := mustExec(t, ctr, "ps", "-e", "-o", "pid=,stat=,args=")
		bad := regexp.MustCompile(`(?m)^\s*\d+\s+Z|sleep 1001|sleep 0\.2`).FindAllString(ps, -1)
		if len(bad) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container still has %q:\n%s", bad, ps)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPrivStartContainerCancelled checks that a start that cannot finish
// leaves no process behind.
func TestPrivStartContainerCancelled(t *testing.T) {
	testenv.RequirePrivileged(t)
	t.Parallel()
	cg := privCgroup(t, Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ctr, err := StartContainer(ctx, ContainerOptions{Cgroup: cg})
	if err == nil {
		_ = ctr.Stop()
		t.Skip("init became ready before the cancelled context was noticed")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("StartContainer() = %v, want context.Canceled", err)
	}
	if pids, err := cg.Procs(); err != nil || len(pids) != 0 {
		t.Errorf("cgroup holds %v (%v) after a failed start", pids, err)
	}
}
