// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCensusFixture(t *testing.T) {
	t.Parallel()
	procRoot := filepath.Join("testdata", "census", "proc")
	live, stale := Device{Major: 0, Minor: 52}, Device{Major: 0, Minor: 48}
	got, err := Census(procRoot, "/var/lib/lxcfs/", live)
	if err != nil {
		t.Fatalf("Census: %v", err)
	}
	const opts = "rw,nosuid,nodev,relatime"
	own := FuseMount{MountPoint: "/var/lib/lxcfs", Root: "/", Device: live, Options: opts, Own: true}
	bind := func(path string, d Device) FuseMount {
		return FuseMount{MountPoint: path, Root: path, Device: d, Options: opts}
	}
	nsID := func(name string) string {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join("testdata", "census", "ns", name), &st); err != nil {
			t.Fatal(err)
		}
		return "mnt:[" + strconv.FormatUint(st.Ino, 10) + "]"
	}
	nsPath := func(pid string) string { return filepath.Join(procRoot, pid, "ns", "mnt") }
	want := []Namespace{
		{ID: nsID("host"), Pid: 50, NSPath: nsPath("50"), Pids: 3, Mounts: []FuseMount{own}},
		{ID: nsID("daemon"), Pid: 60, NSPath: nsPath("60"), Pids: 1, Mounts: []FuseMount{own}},
		{ID: nsID("pod-a"), Pid: 100, NSPath: nsPath("100"), Pids: 2, Live: true, Mounts: []FuseMount{
			bind("/proc/meminfo", live), bind("/proc/cpuinfo", live),
		}},
		{ID: nsID("pod-b"), Pid: 200, NSPath: nsPath("200"), Pids: 1, Stale: true, Mounts: []FuseMount{
			bind("/proc/meminfo", stale), bind("/proc/uptime", stale),
		}},
		{ID: nsID("pod-c"), Pid: 300, NSPath: nsPath("300"), Pids: 1, Live: true, Stale: true, Mounts: []FuseMount{
			bind("/proc/meminfo", stale), bind("/proc/stat", live), own,
		}},
		{Pid: 700, Pids: 1, Live: true, Mounts: []FuseMount{
			{MountPoint: "/sys/devices/system/cpu/online", Root: "/sys/devices/system/cpu/online", Device: live, Options: "ro,nosuid,nodev,relatime"},
		}},
	}
	if len(got.Namespaces) != len(want) {
		t.Fatalf("Census found %d namespaces, want %d: %+v", len(got.Namespaces), len(want), got.Namespaces)
	}
	for i, ns := range got.Namespaces {
		w := want[i]
		if w.ID == "" { // identified by its mountinfo only
			if !strings.HasPrefix(ns.ID, "mountinfo:") {
				t.Errorf("namespace of pid %d: ID %q, want a mountinfo hash", ns.Pid, ns.ID)
			}
			w.ID = ns.ID
		}
		if !reflect.DeepEqual(ns, w) {
			t.Errorf("namespace %d:\n got %+v\nwant %+v", i, ns, w)
		}
	}
	if got.LiveBinds != 3 || got.StaleBinds != 2 {
		t.Errorf("LiveBinds, StaleBinds = %d, %d; want 3 (pod-a, pod-c, pid 700), 2 (pod-b, pod-c)", got.LiveBinds, got.StaleBinds)
	}
	if got.Processes != 10 || got.Skipped != 2 {
		t.Errorf("Processes, Skipped = %d, %d; want 10, 2 (pids 500 and 600 vanished)", got.Processes, got.Skipped)
	}

	// The same tree against the dead connection: now the host mount is the
	// one that is not ours, and binds of the live device are stale.
	got, err = Census(procRoot, "/var/lib/lxcfs", stale)
	if err != nil {
		t.Fatalf("Census(stale): %v", err)
	}
	if got.LiveBinds != 2 || got.StaleBinds != 5 {
		t.Errorf("against 0:48: LiveBinds, StaleBinds = %d, %d; want 2 (pod-b, pod-c), 5 (all but pod-b)", got.LiveBinds, got.StaleBinds)
	}
}

func TestCensusBadInput(t *testing.T) {
	t.Parallel()
	if _, err := Census("", "/var/lib/lxcfs", Device{}); err == nil {
		t.Error("Census with empty proc root: no error")
	}
	if _, err := Census("testdata/census/proc", "var/lib/lxcfs", Device{}); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("Census with relative mount point: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "proc")
	if _, err := Census(missing, "/var/lib/lxcfs", Device{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Census on missing proc root: %v; want an error naming it", err)
	}
	bad := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "7", "mountinfo"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Census(bad, "/var/lib/lxcfs", Device{}); err == nil || !strings.Contains(err.Error(), filepath.Join(bad, "7", "mountinfo")) {
		t.Errorf("Census on unparsable mountinfo: %v; want an error naming the file", err)
	}
}

func TestDevice(t *testing.T) {
	t.Parallel()
	if s := (Device{Major: 0, Minor: 52}).String(); s != "0:52" {
		t.Errorf("String = %q, want 0:52", s)
	}
	dir := t.TempDir()
	d, err := DeviceOf(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if uint64(unix.Mkdev(d.Major, d.Minor)) != st.Dev {
		t.Errorf("DeviceOf(%s) = %v, want st_dev %#x", dir, d, st.Dev)
	}
	if _, err := DeviceOf(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("DeviceOf(missing) error = %v; want one naming the path", err)
	}
}

func TestLiveRoot(t *testing.T) {
	for in, want := range map[string]string{
		"/proc/meminfo":           "/proc/meminfo",
		"/proc/meminfo//deleted":  "/proc/meminfo",
		"/proc/meminfo (deleted)": "/proc/meminfo",
		"/":                       "/",
		"/sys/devices/system/cpu": "/sys/devices/system/cpu",
	} {
		if got := liveRoot(in); got != want {
			t.Errorf("liveRoot(%q) = %q, want %q", in, got, want)
		}
	}
}
