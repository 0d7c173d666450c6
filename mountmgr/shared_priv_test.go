// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package mountmgr_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr/mountns"
)

// tempDir is t.TempDir with symlinks resolved, as mount tables show paths.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// unmountAtCleanup lazily detaches whatever the test left on dir in the
// test's own namespace.
func unmountAtCleanup(t *testing.T, dir string) {
	t.Cleanup(func() {
		for range 8 {
			if unix.Unmount(dir, unix.MNT_DETACH) != nil {
				break
			}
		}
	})
}

// TestPrivPropagation plays a node: a "host" mount namespace with shared
// propagation everywhere (systemd's default), in which MakeShared prepares the
// mount point through mountns.Do from the test's own (private) namespace; a
// "pod" cloned from the host with slave propagation (HostToContainer), a
// "daemon" cloned with propagation unchanged, so its copy of the mount point
// is a peer of the host's (Bidirectional), and a pod that also has its own pid
// namespace and /proc, as pods without hostPID do. All are created before
// anything is mounted on the mount point.
func TestPrivPropagation(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := filepath.Join(tempDir(t), "var", "lib", "lxcfs")
	self := os.Getpid()

	host := startNS(t, false, "unshare", "--mount", "--propagation", "shared", "sleep", "600")
	if same, err := mountns.Same(host.NSPath); err != nil || same {
		t.Fatalf("Same(host) = %v, %v; want false", same, err)
	}
	if err := mountns.Do(host.NSPath, func() error { return mountmgr.MakeShared(dir) }); err != nil {
		t.Fatalf("MakeShared in the host namespace: %v", err)
	}
	// The host's / is shared: a mount at dir propagates through its peer
	// group as it is, so MakeShared must not bind dir (that would orphan
	// copies of dir made before).
	if hm := mountsOf(t, host.Pid, dir); len(hm) != 0 {
		t.Fatalf("host mounts at %s after MakeShared: %s; want none under a shared parent", dir, describe(hm))
	}
	if ms := mountsOf(t, self, dir); len(ms) != 0 {
		t.Fatalf("MakeShared inside Do mounted in the test's namespace: %+v", ms)
	}

	pod := startNS(t, false, "nsenter", "-t", fmt.Sprint(host.Pid), "-m",
		"unshare", "--mount", "--propagation", "slave", "sleep", "600")
	daemon := startNS(t, false, "nsenter", "-t", fmt.Sprint(host.Pid), "-m",
		"unshare", "--mount", "--propagation", "unchanged", "sleep", "600")
	pidPod := startNS(t, true, "nsenter", "-t", fmt.Sprint(host.Pid), "-m",
		"unshare", "--mount", "--propagation", "slave", "--pid", "--fork", "--kill-child", "--mount-proc", "sleep", "600")
	// mountIn mounts a tmpfs holding a marker file on dir in namespace ns.
	mountIn := func(t *testing.T, ns nsProc, marker string) {
		t.Helper()
		err := mountns.Do(ns.NSPath, func() error {
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
				return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
			}
			return os.WriteFile(filepath.Join(dir, "marker"), []byte(marker), 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	unmountIn := func(t *testing.T, ns nsProc) {
		t.Helper()
		if err := mountns.Do(ns.NSPath, func() error { return unix.Unmount(dir, 0) }); err != nil {
			t.Fatalf("unmount %s in pid %d's namespace: %v", dir, ns.Pid, err)
		}
	}
	// markerIn reads the marker on dir inside ns.
	markerIn := func(t *testing.T, ns nsProc) string {
		t.Helper()
		var b []byte
		err := mountns.Do(ns.NSPath, func() (err error) {
			b, err = os.ReadFile(filepath.Join(dir, "marker"))
			return err
		})
		if err != nil {
			t.Errorf("read marker in pid %d's namespace: %v", ns.Pid, err)
		}
		return string(b)
	}

	t.Run("HostToContainer", func(t *testing.T) {
		mountIn(t, host, "host")
		for name, ns := range map[string]nsProc{"host": host, "pod": pod, "daemon": daemon, "pod with own /proc": pidPod} {
			if ms := mountsOf(t, ns.Pid, dir); top(ms) != "tmpfs" {
				t.Errorf("%s: mounts at %s = %+v; want the host's tmpfs on top", name, dir, ms)
			}
			if got := markerIn(t, ns); got != "host" {
				t.Errorf("%s: marker %q, want %q", name, got, "host")
			}
		}
		if ms := mountsOf(t, self, dir); len(ms) != 0 {
			t.Errorf("test namespace: mounts at %s = %+v; want none (not a peer of the host)", dir, ms)
		}
		// The mount made under the shared parent is itself shared, and the
		// pod's copy is its slave.
		hm := mountsOf(t, host.Pid, dir)
		pm := mountsOf(t, pod.Pid, dir)
		t.Logf("host tmpfs optional fields %q, pod's copy %q", hm[len(hm)-1].Optional, pm[len(pm)-1].Optional)
		if g := optional(hm[len(hm)-1], "shared"); g == "" || optional(pm[len(pm)-1], "master") != "master:"+strings.TrimPrefix(g, "shared:") {
			t.Errorf("host tmpfs %q, pod's copy %q; want shared:N and master:N", hm[len(hm)-1].Optional, pm[len(pm)-1].Optional)
		}

		// mountmgr reads the joined namespace's table inside Do, also where
		// /proc is another pid namespace's and /proc/thread-self is missing.
		for name, ns := range map[string]nsProc{"pod": pod, "pod with own /proc": pidPod} {
			err := mountns.Do(ns.NSPath, func() error {
				ms, err := mountmgr.Mounts(dir)
				if err != nil {
					return err
				}
				if top(ms) != "tmpfs" {
					return fmt.Errorf("Mounts(%s) inside Do = %+v; want the tmpfs on top", dir, ms)
				}
				return nil
			})
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
		err := mountns.Do(pidPod.NSPath, func() error {
			if _, err := os.Stat("/proc/thread-self"); err == nil {
				return errors.New("/proc/thread-self resolves in a pod's pid namespace; this case tests nothing")
			}
			_, err := mountinfo.GetMounts(nil)
			t.Logf("inside the pod with its own /proc, mountinfo.GetMounts: %v", err)
			return nil
		})
		if err != nil {
			t.Error(err)
		}

		// Mounts in a slave do not travel back.
		mountIn(t, pod, "pod")
		if ms := mountsOf(t, host.Pid, dir); len(ms) != 1 {
			t.Errorf("host: mounts at %s after the pod mounted = %s; want its own tmpfs only", dir, describe(ms))
			t.Logf("pod: %s", describe(mountsOf(t, pod.Pid, dir)))
		}
		if got := markerIn(t, host); got != "host" {
			t.Errorf("host marker after the pod mounted: %q, want %q", got, "host")
		}
		unmountIn(t, pod)

		// Unmounting propagates like mounting.
		unmountIn(t, host)
		for name, ns := range map[string]nsProc{"host": host, "pod": pod, "daemon": daemon, "pod with own /proc": pidPod} {
			if ms := mountsOf(t, ns.Pid, dir); top(ms) == "tmpfs" {
				t.Errorf("%s: tmpfs still at %s after the host unmounted it: %+v", name, dir, ms)
			}
		}
	})

	t.Run("Bidirectional", func(t *testing.T) {
		mountIn(t, daemon, "daemon")
		for name, ns := range map[string]nsProc{"host": host, "pod": pod, "daemon": daemon, "pod with own /proc": pidPod} {
			if ms := mountsOf(t, ns.Pid, dir); top(ms) != "tmpfs" {
				t.Errorf("%s: mounts at %s = %+v; want the daemon's tmpfs on top", name, dir, ms)
			}
			if got := markerIn(t, ns); got != "daemon" {
				t.Errorf("%s: marker %q, want %q", name, got, "daemon")
			}
		}
		if ms := mountsOf(t, self, dir); len(ms) != 0 {
			t.Errorf("test namespace: mounts at %s = %+v; want none", dir, ms)
		}
		unmountIn(t, daemon)
		if ms := mountsOf(t, host.Pid, dir); len(ms) != 0 {
			t.Errorf("host: mounts at %s after the daemon unmounted = %+v; want none", dir, ms)
		}
	})
}

// TestPrivMakeShared checks MakeShared in the test's own namespace: it
// creates the directory, binds it onto itself once, marks it shared, keeps
// mounts below it visible, and is idempotent.
func TestPrivMakeShared(t *testing.T) {
	testenv.RequirePrivileged(t)
	self := os.Getpid()
	base := tempDir(t)

	t.Run("plain directory", func(t *testing.T) {
		dir := filepath.Join(base, "a", "b", "lxcfs")
		unmountAtCleanup(t, dir)
		var group string
		for i := range 3 {
			if err := mountmgr.MakeShared(dir); err != nil {
				t.Fatalf("MakeShared #%d: %v", i+1, err)
			}
			ms := mountsOf(t, self, dir)
			if len(ms) != 1 || optional(ms[0], "shared") == "" {
				t.Fatalf("after MakeShared #%d: mounts at %s = %+v; want one shared bind", i+1, dir, ms)
			}
			if i == 0 {
				group = optional(ms[0], "shared")
				t.Logf("bind of %s: root %s, optional fields %q", dir, ms[0].Root, ms[0].Optional)
			} else if g := optional(ms[0], "shared"); g != group {
				t.Errorf("after MakeShared #%d: peer group %s, want %s unchanged", i+1, g, group)
			}
		}
	})

	t.Run("already a mount point", func(t *testing.T) {
		dir := filepath.Join(base, "tmpfs")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		unmountAtCleanup(t, dir)
		if err := mountmgr.MakeShared(dir); err != nil {
			t.Fatal(err)
		}
		if ms := mountsOf(t, self, dir); len(ms) != 1 || ms[0].FSType != "tmpfs" || optional(ms[0], "shared") == "" {
			t.Errorf("mounts at %s = %+v; want the tmpfs alone, now shared", dir, ms)
		}
	})

	t.Run("mounts below stay visible", func(t *testing.T) {
		dir := filepath.Join(base, "withsub")
		sub := filepath.Join(dir, "sub")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
			t.Fatal(err)
		}
		unmountAtCleanup(t, sub)
		unmountAtCleanup(t, dir) // runs first: LIFO
		if err := os.WriteFile(filepath.Join(sub, "marker"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := mountmgr.MakeShared(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(sub, "marker")); err != nil {
			t.Errorf("mount below %s hidden by the bind: %v", dir, err)
		}
		if ms := mountsOf(t, self, sub); top(ms) != "tmpfs" {
			t.Errorf("mounts at %s = %+v; want the tmpfs carried into the bind", sub, ms)
		}
	})

	t.Run("symlink", func(t *testing.T) {
		dir := filepath.Join(base, "real")
		link := filepath.Join(base, "link")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, link); err != nil {
			t.Fatal(err)
		}
		unmountAtCleanup(t, dir)
		for range 2 {
			if err := mountmgr.MakeShared(link); err != nil {
				t.Fatal(err)
			}
		}
		if ms := mountsOf(t, self, dir); len(ms) != 1 || optional(ms[0], "shared") == "" {
			t.Errorf("mounts at %s through symlink %s = %+v; want one shared bind", dir, link, ms)
		}
	})
}
