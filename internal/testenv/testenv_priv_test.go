// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package testenv

import (
	"os"
	"testing"
)

// TestPrivRequirePrivileged proves that the gate lets a correctly set up
// privileged run through, and that what it promises holds afterwards.
func TestPrivRequirePrivileged(t *testing.T) {
	RequirePrivileged(t)
	if os.Geteuid() != 0 {
		t.Fatalf("RequirePrivileged passed with euid %d", os.Geteuid())
	}
	if err := openFUSE(); err != nil {
		t.Fatalf("RequirePrivileged passed but %v", err)
	}
}

// TestPrivCgroupMode requires a recognised cgroup layout on the machines that
// run privileged tests: every L1 test needs real cgroups.
func TestPrivCgroupMode(t *testing.T) {
	RequirePrivileged(t)
	if m := CgroupMode(); m == ModeUnknown {
		t.Fatal("CgroupMode() = unknown on a privileged test machine")
	} else {
		t.Logf("cgroup mode: %v", m)
	}
}
