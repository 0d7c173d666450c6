// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package testenv

import (
	"testing"

	"github.com/containerd/cgroups/v3"
)

// TestCgroupModeMatchesContainerd cross-checks CgroupMode against the
// detection in containerd/cgroups, which cgview relies on. Reading statfs needs
// no privileges, so this runs in the unprivileged tier.
func TestCgroupModeMatchesContainerd(t *testing.T) {
	t.Parallel()
	got := CgroupMode()
	if got == ModeUnknown {
		t.Skip("no cgroup filesystem at /sys/fs/cgroup")
	}
	want := map[cgroups.CGMode]Mode{
		cgroups.Legacy:  ModeV1,
		cgroups.Hybrid:  ModeHybrid,
		cgroups.Unified: ModeV2,
	}[cgroups.Mode()]
	if got != want {
		t.Errorf("CgroupMode() = %v, containerd/cgroups says %v", got, want)
	}
	t.Logf("cgroup mode: %v", got)
}
