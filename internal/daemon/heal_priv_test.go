// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package daemon_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// tryCat reads path in c's pid and mount namespaces, as the container's own
// processes do.
func tryCat(c *sandbox.Container, path string) (string, error) {
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(c.Pid()), "--pid", "--mount", "--", "cat", path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// memTotalKB returns MemTotal from meminfo text.
func memTotalKB(text string) string {
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			return f[1]
		}
	}
	return ""
}

// mountCount counts the entries of pid's mount table.
func mountCount(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestPrivHealAfterKill: 10 containers (own pid and mount namespaces,
// private and slave propagation, 5 memory limits, one read-only bind set)
// bind the daemon's files over /proc. The daemon is killed with SIGKILL and
// started again, 20 times: each time every container reads its own limit
// again within 2 s, no container process restarted, and nothing leaks:
// mount tables keep their size, the daemon's descriptors stay flat. A
// descriptor opened before a crash stays ENOTCONN (the kernel ties it to
// the dead connection).
func TestPrivHealAfterKill(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	args := []string{"-heal-interval=1s"}
	d := testenv.StartDaemon(t, mp, args...)

	type ctr struct {
		c      *sandbox.Container
		wantKB string
		pid    int
		mounts int
		table  string
	}
	var ctrs []ctr
	limits := []int64{128, 256, 384, 512, 640}
	cgs := make([]*sandbox.Cgroup, len(limits))
	for i, l := range limits {
		cgs[i] = newCgroup(t, sandbox.Limits{MemoryBytes: l * mib})
	}
	for i := range 10 {
		o := sandbox.ContainerOptions{Cgroup: cgs[i%len(cgs)], LXCFSRoot: mp, ReadOnly: i == 3}
		if i%2 == 1 {
			o.Propagation = "slave"
		}
		c := startContainer(t, o)
		ctrs = append(ctrs, ctr{c: c, wantKB: strconv.FormatInt(limits[i%len(limits)]*1024, 10), pid: c.Pid()})
	}
	for i := range ctrs {
		out, err := tryCat(ctrs[i].c, "/proc/meminfo")
		if err != nil || memTotalKB(out) != ctrs[i].wantKB {
			t.Fatalf("container %d before any crash: MemTotal %q (%v), want %s", i, memTotalKB(out), err, ctrs[i].wantKB)
		}
		ctrs[i].mounts = mountCount(t, ctrs[i].pid)
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", ctrs[i].pid))
		ctrs[i].table = string(b)
	}
	held, err := os.Open(filepath.Join(mp, "proc/uptime"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	var fds []int
	var slowest time.Duration
	for round := range 20 {
		d.Kill()
		if _, err := tryCat(ctrs[0].c, "/proc/meminfo"); err == nil || !strings.Contains(err.Error(), "not connected") {
			t.Fatalf("round %d: read after kill -9 = %v, want ENOTCONN", round, err)
		}
		d = testenv.StartDaemon(t, mp, args...)
		start := time.Now()
		live := devOf(t, mp)
		for i, x := range ctrs {
			err := testenv.Eventually(t.Context(), 2*time.Second-time.Since(start), func() error {
				out, err := tryCat(x.c, "/proc/meminfo")
				if err != nil {
					return err
				}
				if got := memTotalKB(out); got != x.wantKB {
					return fmt.Errorf("MemTotal %s kB, want %s", got, x.wantKB)
				}
				// Every bind back, each on the live connection: a repair
				// neither loses nor stacks mounts.
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", x.pid))
				if err != nil {
					return err
				}
				if n := strings.Count(string(b), "\n"); n != x.mounts {
					return fmt.Errorf("%d mounts, had %d", n, x.mounts)
				}
				for _, l := range strings.Split(string(b), "\n") {
					if f := strings.Fields(l); len(f) > 9 && strings.Contains(l, " - fuse.lxcfs ") && f[2] != live {
						return fmt.Errorf("%s still on dead connection %s (live %s)", f[4], f[2], live)
					}
				}
				return nil
			})
			if err != nil {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", x.pid))
				t.Fatalf("round %d: container %d not healed within 2s of the restart: %v\nmounts before:\n%s\nnow:\n%s\n%s", round, i, err, x.table, b, d.Log())
			}
		}
		slowest = max(slowest, time.Since(start))
		for i, x := range ctrs {
			if err := unix.Kill(x.pid, 0); err != nil || x.c.Pid() != x.pid {
				t.Fatalf("round %d: container %d's init %d is gone (%v): it was restarted", round, i, x.pid, err)
			}
		}
		if n := fuseMounts(t, mp); n != 1 {
			t.Errorf("round %d: %d FUSE mounts at %s, want 1", round, n, mp)
		}
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, len(ents))
	}
	t.Logf("20 crashes: slowest restart-to-all-healed %s; daemon fds per round %v", slowest.Round(time.Millisecond), fds)
	// Every daemon is new, so its count after healing must not drift up.
	if fds[len(fds)-1] > fds[0]+2 {
		t.Errorf("daemon descriptors grew from %d to %d over 20 rounds", fds[0], fds[len(fds)-1])
	}
	if !strings.Contains(d.Log(), "Healed containers' lxcfs mounts") {
		t.Errorf("the daemon did not log the repair:\n%s", d.Log())
	}
	if _, err := held.ReadAt(make([]byte, 64), 0); !errors.Is(err, unix.ENOTCONN) {
		t.Errorf("descriptor opened before the first crash: read = %v, want ENOTCONN (it belongs to the dead connection)", err)
	}
	// The read-only container's binds stayed read-only.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", ctrs[3].pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[4] == "/proc/meminfo" && !strings.HasPrefix(f[5], "ro") {
			t.Errorf("read-only container's repaired /proc/meminfo bind is %s", f[5])
		}
	}
}

// TestPrivHealOrphanBind: a container made while nothing served got the
// directory a runtime creates in place of a missing bind source. Once the
// daemon serves, it replaces that bind with its file.
func TestPrivHealOrphanBind(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	if err := os.MkdirAll(filepath.Join(mp, "proc/meminfo"), 0o755); err != nil {
		t.Fatal(err)
	}
	cg := newCgroup(t, sandbox.Limits{MemoryBytes: 320 * mib})
	// The container binds the (empty) directory over its /proc/meminfo? A
	// directory can't be bound over a file, so bind it over a directory
	// path that the runtime would have made: we stand in with the cpu
	// directory, which containers bind as a directory.
	if err := os.MkdirAll(filepath.Join(mp, "sys/devices/system/cpu"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := startContainer(t, sandbox.ContainerOptions{Cgroup: cg, LXCFSRoot: mp, Files: []string{"sys/devices/system/cpu"}})
	if out, _ := tryCat(c, "/sys/devices/system/cpu/online"); out != "" {
		t.Fatalf("the orphan bind already shows %q", out)
	}
	d := testenv.StartDaemon(t, mp, "-heal-interval=1s")
	err := testenv.Eventually(t.Context(), 5*time.Second, func() error {
		out, err := tryCat(c, "/sys/devices/system/cpu/online")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(out, "0") {
			return fmt.Errorf("online = %q", out)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("orphan bind not repaired: %v\n%s", err, d.Log())
	}
}
