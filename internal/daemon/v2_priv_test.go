// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package daemon_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// These scenarios matter most on cgroup v2, where lxcfs is weakest; `make
// test-v2` runs them in a VM booted with cgroup v2 only, and with v1.

func hostSwapKB(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.ParseUint(field(t, string(b), "SwapTotal:", 1), 10, 64)
	return v
}

// TestPrivSwap: SwapTotal is the container's swap limit (v2 memory.swap.max,
// v1 memsw minus memory) and SwapFree drops as the container swaps. On a
// host without swap, the container has none either.
func TestPrivSwap(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-cache-ttl=0")
	host := hostSwapKB(t)
	lim := sandbox.Limits{MemoryBytes: 128 * mib}
	if host > 0 {
		lim.SwapBytes = 96 * mib
	}
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: newCgroup(t, lim), LXCFSRoot: mp})
	swapTotal := func() (total, free uint64) {
		out := exec1(t, c, "cat", "/proc/meminfo")
		total, _ = strconv.ParseUint(field(t, out, "SwapTotal:", 1), 10, 64)
		free, _ = strconv.ParseUint(field(t, out, "SwapFree:", 1), 10, 64)
		return total, free
	}
	total, free := swapTotal()
	if host == 0 {
		if total != 0 || free != 0 {
			t.Errorf("host has no swap, container shows SwapTotal %d SwapFree %d kB", total, free)
		}
		if got := strings.TrimSpace(exec1(t, c, "cat", "/proc/swaps")); strings.Contains(got, "\n") {
			t.Errorf("/proc/swaps lists a device on a host without swap:\n%s", got)
		}
		t.Logf("host has no swap: checked that the container has none (the VM run checks limits)")
		return
	}
	if total != 96*1024 || free != total {
		t.Fatalf("SwapTotal %d SwapFree %d kB, want %d and %d", total, free, 96*1024, 96*1024)
	}
	if got := field(t, exec1(t, c, "free", "-b"), "Swap:", 1); got != strconv.Itoa(96*mib) {
		t.Errorf("free -b swap total %s, want %d", got, 96*mib)
	}
	// Allocate 96 MiB (under the limit), then push it out to swap: v2's
	// memory.reclaim, v1 by lowering the memory limit under the usage. The
	// allocator is this test binary run inside the container (Exec joins
	// the cgroup before it starts, so every page is charged there).
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t.Setenv(helperEnv, "alloc:96") // inherited by Exec; the daemon already runs
	allocDone := make(chan error, 1)
	go func() {
		_, stderr, err := c.Exec(ctx, os.Args[0])
		if ctx.Err() == nil {
			err = fmt.Errorf("allocator exited early: %v: %s", err, stderr)
		} else {
			err = nil
		}
		allocDone <- err
	}()
	defer func() {
		cancel()
		if err := <-allocDone; err != nil {
			t.Error(err)
		}
	}()
	anon := func() (uint64, error) {
		b, err := os.ReadFile(filepath.Join(c.Cgroup().Path("memory"), "memory.stat"))
		if err != nil {
			return 0, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && (f[0] == "anon" || f[0] == "total_rss") {
				return strconv.ParseUint(f[1], 10, 64)
			}
		}
		return 0, fmt.Errorf("no anon in memory.stat")
	}
	if err := testenv.Eventually(ctx, 60*time.Second, func() error {
		if a, err := anon(); err != nil || a < 90*mib {
			return fmt.Errorf("container anon memory %d, want ≥ 90 MiB (%v)", a, err)
		}
		return nil
	}); err != nil {
		t.Fatalf("allocator: %v", err)
	}
	t.Logf("allocated; pushing to swap")
	dir := c.Cgroup().Path("memory")
	if c.Cgroup().V2() {
		if err := os.WriteFile(filepath.Join(dir, "memory.reclaim"), []byte("64M"), 0o644); err != nil {
			t.Logf("memory.reclaim: %v (partial reclaim is fine)", err)
		}
	} else if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(48*mib)), 0o644); err != nil {
		t.Fatalf("lower the memory limit to force swapping: %v", err)
	}
	err := testenv.Eventually(ctx, 20*time.Second, func() error {
		total, free := swapTotal()
		if used := total - free; used < 16*1024 {
			return fmt.Errorf("SwapFree %d of %d kB: want ≥ 16 MiB used after pushing 96 MiB out", free, total)
		}
		return nil
	})
	if err != nil {
		var diag strings.Builder
		for _, f := range []string{"memory.swap.current", "memory.memsw.usage_in_bytes", "memory.usage_in_bytes", "memory.current"} {
			if b, rerr := os.ReadFile(filepath.Join(dir, f)); rerr == nil {
				fmt.Fprintf(&diag, " %s=%s", f, strings.TrimSpace(string(b)))
			}
		}
		t.Errorf("%v;%s", err, diag.String())
	}
	if swaps := exec1(t, c, "cat", "/proc/swaps"); !strings.Contains(swaps, "virtual") {
		t.Errorf("/proc/swaps lacks the container's virtual device:\n%s", swaps)
	}
}

// nsCat reads path in c's pid and mount namespaces without joining its
// cgroup.
func nsCat(t *testing.T, c *sandbox.Container, path string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(c.Pid()), "--pid", "--mount", "--", "cat", path).Output()
	if err != nil {
		t.Fatalf("read %s in container %d: %v", path, c.Pid(), err)
	}
	return string(out)
}

func pressureTotal(t *testing.T, text string) uint64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "some ") {
			continue
		}
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "total="); ok {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					t.Fatalf("pressure line %q", l)
				}
				return n
			}
		}
	}
	t.Fatalf("no \"some ... total=\" line in %q", text)
	return 0
}

// TestPrivPressure: on cgroup v2 /proc/pressure/* is the container's own
// PSI (a 0.2-CPU container running busy loops stalls, and its file is its
// cgroup's cpu.pressure); where the kernel keeps none per cgroup (v1), it's
// the host's.
func TestPrivPressure(t *testing.T) {
	testenv.RequirePrivileged(t)
	if _, err := os.Stat("/proc/pressure/cpu"); err != nil {
		t.Fatalf("the kernel has no PSI (/proc/pressure): boot with psi=1: %v", err)
	}
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp, "-cache-ttl=0")
	cg := newCgroup(t, sandbox.Limits{MemoryBytes: 256 * mib, CPUQuotaUS: 20000, CPUPeriodUS: 100000})
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: cg, LXCFSRoot: mp})
	// Read from outside the cgroup, in the container's namespaces: the
	// 0.2-CPU quota would slow every reader down (the init's cgroup is what
	// decides the view).
	for _, r := range []string{"cpu", "memory", "io"} {
		if out := nsCat(t, c, "/proc/pressure/"+r); !strings.HasPrefix(out, "some avg10=") {
			t.Errorf("/proc/pressure/%s = %q", r, out)
		}
	}
	if !cg.V2() {
		in := pressureTotal(t, nsCat(t, c, "/proc/pressure/cpu"))
		b, _ := os.ReadFile("/proc/pressure/cpu")
		if host := pressureTotal(t, string(b)); host < in {
			t.Errorf("v1: container's cpu pressure total %d is not the host's (%d, read later)", in, host)
		}
		return
	}
	exec1(t, c, "sh", "-c", `for i in 1 2; do ( end=$(( $(date +%s) + 2 )); while [ $(date +%s) -lt $end ]; do :; done ) & done; wait`)
	in := pressureTotal(t, nsCat(t, c, "/proc/pressure/cpu"))
	b, err := os.ReadFile(filepath.Join(cg.Path(""), "cpu.pressure"))
	if err != nil {
		t.Fatal(err)
	}
	own := pressureTotal(t, string(b))
	if in == 0 {
		t.Errorf("a 0.2-CPU container ran two busy loops for 2s and shows no CPU pressure")
	}
	if own < in || own-in > 2_000_000 {
		t.Errorf("container's /proc/pressure/cpu total %dµs, its cgroup's cpu.pressure (read after) %dµs: not the same counter", in, own)
	}
}

// TestPrivCgroupNamespace: a reader in its own cgroup namespace (unshare
// --cgroup inside the container, so the namespace is rooted at the
// container's cgroup and /proc/self/cgroup says "/") still sees its
// container's view: the daemon reads cgroups from its own namespace.
func TestPrivCgroupNamespace(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	testenv.StartDaemon(t, mp)
	cg := newCgroup(t, sandbox.Limits{MemoryBytes: 160 * mib})
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: cg, LXCFSRoot: mp})
	out := exec1(t, c, "unshare", "--cgroup", "--", "sh", "-c", "cat /proc/self/cgroup; free -b")
	for _, l := range strings.Split(out, "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (f[1] == "memory" || f[1] == "") && f[2] != "/" {
			t.Errorf("reader's cgroup line %q: not rooted at its own cgroup, the namespace proves nothing", l)
		}
	}
	if total := field(t, out, "Mem:", 1); total != strconv.Itoa(160*mib) {
		t.Errorf("free -b in a cgroup namespace: total %s, want %d\n%s", total, 160*mib, out)
	}
}
