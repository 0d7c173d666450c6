// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package mountmgr_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr/mountns"
)

// TestPrivCensusRealProc runs the census over this machine's /proc. Other
// processes may hold anything, so it asserts only that the scan works and
// finds this process.
func TestPrivCensusRealProc(t *testing.T) {
	testenv.RequirePrivileged(t)
	res, err := mountmgr.Census("/proc", filepath.Join(tempDir(t), "none"), mountmgr.Device{Major: 0, Minor: 1})
	if err != nil {
		t.Fatalf("Census(/proc): %v", err)
	}
	t.Logf("/proc: %d processes, %d skipped, %d namespaces with %s mounts", res.Processes, res.Skipped, len(res.Namespaces), mountmgr.FSType)
	if res.Processes < 1 {
		t.Errorf("Census(/proc) saw %d processes; want at least this one", res.Processes)
	}
}

// TestPrivCensusLiveAndStale serves a real filesystem in the test's
// namespace, binds one of its files in a "pod" namespace, and checks how the
// census sees the pod while that connection lives and after a second daemon
// replaced it.
func TestPrivCensusLiveAndStale(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	d := testenv.StartDaemon(t, mp, "-heal=false")
	live, err := mountmgr.DeviceOf(mp)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(tempDir(t), "meminfo")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Cloned after the mount, so it holds a copy of it, plus its own bind.
	pod := startNS(t, false, "unshare", "--mount", "--propagation", "slave", "sleep", "600")
	err = mountns.Do(pod.NSPath, func() error {
		return unix.Mount(filepath.Join(mp, "proc", "meminfo"), target, "", unix.MS_BIND, "")
	})
	if err != nil {
		t.Fatalf("bind meminfo in the pod: %v", err)
	}
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &self); err != nil {
		t.Fatal(err)
	}
	selfID := fmt.Sprintf("mnt:[%d]", self.Ino)

	find := func(res mountmgr.CensusResult) (ours, podNS *mountmgr.Namespace) {
		for i, ns := range res.Namespaces {
			switch {
			case ns.ID == selfID:
				ours = &res.Namespaces[i]
			case ns.Pid == pod.Pid:
				podNS = &res.Namespaces[i]
			}
		}
		if ours == nil || podNS == nil {
			t.Fatalf("census lacks the test's namespace %s or the pod's (pid %d): %+v", selfID, pod.Pid, res.Namespaces)
		}
		return ours, podNS
	}

	res, err := mountmgr.Census("/proc", mp, live)
	if err != nil {
		t.Fatal(err)
	}
	ours, podNS := find(res)
	if ours.Live || ours.Stale || len(ours.Mounts) != 1 || !ours.Mounts[0].Own {
		t.Errorf("test namespace: %+v; want only the own mount", *ours)
	}
	if !podNS.Live || podNS.Stale || podNS.NSPath != pod.NSPath {
		t.Errorf("pod namespace: %+v; want live binds, none stale, entered by %s", *podNS, pod.NSPath)
	}
	if !hasBind(podNS, target, "/proc/meminfo", live) {
		t.Errorf("pod namespace: %+v; want the bind of /proc/meminfo at %s of %v", podNS.Mounts, target, live)
	}
	if res.LiveBinds < 1 {
		t.Errorf("LiveBinds = %d; want at least the pod", res.LiveBinds)
	}

	// The daemon dies; the dead mount is detached here (not in the pod,
	// whose copies are private to it); a new daemon serves a new connection.
	d.Kill()
	if _, err := mountmgr.CleanStale(mp); err != nil {
		t.Fatal(err)
	}
	testenv.StartDaemon(t, mp, "-heal=false") // the stale bind must stay for the census to see
	next, err := mountmgr.DeviceOf(mp)
	if err != nil {
		t.Fatal(err)
	}
	if next == live {
		t.Fatalf("new connection has the old device %v", live)
	}
	res, err = mountmgr.Census("/proc", mp, next)
	if err != nil {
		t.Fatal(err)
	}
	ours, podNS = find(res)
	if ours.Live || ours.Stale {
		t.Errorf("test namespace after the restart: %+v; want only the new own mount", *ours)
	}
	if podNS.Live || !podNS.Stale || !hasBind(podNS, target, "/proc/meminfo", live) {
		t.Errorf("pod namespace after the restart: %+v; want the old bind, stale", *podNS)
	}
	if res.StaleBinds < 1 {
		t.Errorf("StaleBinds = %d; want at least the pod", res.StaleBinds)
	}
}

func hasBind(ns *mountmgr.Namespace, mountPoint, root string, dev mountmgr.Device) bool {
	for _, m := range ns.Mounts {
		if m.MountPoint == mountPoint && m.Root == root && m.Device == dev && !m.Own {
			return true
		}
	}
	return false
}
