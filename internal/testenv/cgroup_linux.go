// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package testenv

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Mode is the cgroup layout of a machine.
type Mode int

const (
	// ModeUnknown means no cgroup filesystem was recognised at the root.
	ModeUnknown Mode = iota
	// ModeV1 is the legacy layout: a tmpfs at /sys/fs/cgroup holding one v1
	// hierarchy per controller (or group of controllers), and no cgroup2.
	ModeV1
	// ModeHybrid is ModeV1 plus a cgroup2 mount at /sys/fs/cgroup/unified,
	// which usually has no controllers (systemd's "hybrid" setup).
	ModeHybrid
	// ModeV2 is the unified layout: cgroup2 mounted at /sys/fs/cgroup.
	ModeV2
)

// String returns "unknown", "v1", "hybrid" or "v2".
func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeV2:
		return "v2"
	default:
		return "unknown"
	}
}

// CgroupMode reports the cgroup layout of this machine from the filesystem
// magic numbers of /sys/fs/cgroup, /sys/fs/cgroup/unified and the directories
// under /sys/fs/cgroup. It reads no mount table and uses no cgroup library, so
// tests can cross-check code that does.
func CgroupMode() Mode {
	return cgroupModeAt("/sys/fs/cgroup")
}

// cgroupModeAt is CgroupMode for a cgroup root other than /sys/fs/cgroup.
func cgroupModeAt(root string) Mode {
	switch fsMagic(root) {
	case unix.CGROUP2_SUPER_MAGIC:
		return ModeV2
	case 0:
		return ModeUnknown
	}
	if !hasV1Hierarchy(root) {
		return ModeUnknown
	}
	if fsMagic(filepath.Join(root, "unified")) == unix.CGROUP2_SUPER_MAGIC {
		return ModeHybrid
	}
	return ModeV1
}

// hasV1Hierarchy reports whether some directory directly under root is a
// cgroup v1 filesystem.
func hasV1Hierarchy(root string) bool {
	ents, err := os.ReadDir(root)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.IsDir() && fsMagic(filepath.Join(root, e.Name())) == unix.CGROUP_SUPER_MAGIC {
			return true
		}
	}
	return false
}

// fsMagic returns the statfs f_type of path, or 0 if it cannot be read.
func fsMagic(path string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0
	}
	return int64(st.Type) //nolint:unconvert // Type is int64 on amd64 but int32/uint32 elsewhere
}
