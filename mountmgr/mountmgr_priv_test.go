// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package mountmgr_test

import (
	"strings"
	"testing"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
)

// TestPrivProbeAndClean walks a real mount through its states: live while
// the daemon serves, stale after kill -9 (every access ENOTCONN, although
// the kernel's attribute cache would still answer a stat), absent after
// CleanStale detaches it, with no FUSE mount left behind.
func TestPrivProbeAndClean(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	d := testenv.StartDaemon(t, mp)
	if st, err := mountmgr.Probe(mp); err != nil || st != mountmgr.Live {
		t.Fatalf("Probe while served = %v, %v; want live", st, err)
	}
	d.Kill()
	if st, err := mountmgr.Probe(mp); err != nil || st != mountmgr.Stale {
		t.Fatalf("Probe after kill -9 = %v, %v; want stale", st, err)
	}
	if n, err := mountmgr.CleanStale(mp); err != nil || n != 1 {
		t.Fatalf("CleanStale = %d, %v; want 1 mount detached", n, err)
	}
	if st, err := mountmgr.Probe(mp); err != nil || st != mountmgr.Absent {
		t.Errorf("Probe after cleaning = %v, %v; want absent", st, err)
	}
	// The daemon made the mount point a shared bind of itself
	// (mountmgr.MakeShared) before mounting; that bind stays.
	for _, m := range testenv.MountsAt(t, mp) {
		if strings.HasPrefix(m.FSType, "fuse") {
			t.Errorf("%s mount left at %s", m.FSType, mp)
		}
	}
	if n, err := mountmgr.CleanStale(mp); err != nil || n != 0 {
		t.Errorf("CleanStale again = %d, %v; want 0 (idempotent)", n, err)
	}
}
