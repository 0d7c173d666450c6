// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package mountmgr_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
)

// TestPrivCleanRuntimeDirsMountPoints checks that a directory with something
// mounted on it is reported and left alone, while its siblings go.
func TestPrivCleanRuntimeDirsMountPoints(t *testing.T) {
	testenv.RequirePrivileged(t)
	root := filepath.Join(tempDir(t), "lxcfs")
	meminfo, cpuinfo := filepath.Join(root, "proc", "meminfo"), filepath.Join(root, "proc", "cpuinfo")
	for _, d := range []string{meminfo, cpuinfo} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", meminfo, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	unmountAtCleanup(t, meminfo)
	removed, err := mountmgr.CleanRuntimeDirs(root, []string{"proc/meminfo", "proc/cpuinfo"})
	if err == nil || !strings.Contains(err.Error(), meminfo+": is a mount point") {
		t.Errorf("CleanRuntimeDirs error = %v; want %s reported as a mount point", err, meminfo)
	}
	if !slices.Equal(removed, []string{cpuinfo}) {
		t.Errorf("removed %q, want only %s", removed, cpuinfo)
	}
	if ms := mountsOf(t, os.Getpid(), meminfo); top(ms) != "tmpfs" {
		t.Errorf("mounts at %s = %s; want the tmpfs kept", meminfo, describe(ms))
	}
}

// TestPrivCleanRuntimeDirsFUSE walks the daemon's restart path: with the
// filesystem live, and dead, CleanRuntimeDirs refuses; after CleanStale it
// removes the directories a runtime created meanwhile.
func TestPrivCleanRuntimeDirsFUSE(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	d := testenv.StartDaemon(t, mp)
	files := []string{"proc/meminfo", "proc/cpuinfo"}
	if removed, err := mountmgr.CleanRuntimeDirs(mp, files); !errors.Is(err, mountmgr.ErrMounted) || removed != nil {
		t.Errorf("CleanRuntimeDirs on a live mount = %q, %v; want nothing removed and ErrMounted", removed, err)
	}
	d.Kill()
	if removed, err := mountmgr.CleanRuntimeDirs(mp, files); !errors.Is(err, mountmgr.ErrMounted) || removed != nil {
		t.Errorf("CleanRuntimeDirs on a dead mount = %q, %v; want nothing removed and ErrMounted", removed, err)
	}
	if _, err := mountmgr.CleanStale(mp); err != nil {
		t.Fatal(err)
	}
	// What a runtime leaves for a pod started during the outage.
	leftover := filepath.Join(mp, "proc", "meminfo")
	if err := os.MkdirAll(leftover, 0o755); err != nil {
		t.Fatal(err)
	}
	removed, err := mountmgr.CleanRuntimeDirs(mp, files)
	if err != nil || !slices.Equal(removed, []string{leftover, filepath.Dir(leftover)}) {
		t.Errorf("CleanRuntimeDirs after CleanStale = %q, %v; want %s and its parent removed", removed, err, leftover)
	}
}
