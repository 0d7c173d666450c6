// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package mountmgr inspects and cleans the mount point k8s-lxcfs serves:
// it tells a live filesystem from one whose server died ("Transport endpoint
// is not connected") and detaches dead ones before a new mount. It reads mount
// tables with moby/sys/mountinfo and never runs mount, umount or fusermount.
package mountmgr

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// State is what is mounted at a mount point.
type State int

// Mount point states.
const (
	Absent State = iota // no FUSE filesystem on top
	Live                // a FUSE filesystem that answers
	Stale               // a FUSE filesystem whose server is gone
)

func (s State) String() string {
	return [...]string{"absent", "live", "stale"}[s]
}

// IsStale reports whether err is what the kernel returns for a FUSE mount
// whose connection is gone.
func IsStale(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// Mounts returns the mounts exactly at mountPoint, bottom first.
func Mounts(mountPoint string) ([]*mountinfo.Info, error) {
	ms, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(mountPoint))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return ms, nil
}

// Probe says what is mounted at mountPoint.
//
// It asks with statfs(2), which FUSE always forwards to the server: a stat
// could be answered from the kernel's attribute cache for a while after the
// server died.
func Probe(mountPoint string) (State, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(mountPoint, &st); err != nil {
		if IsStale(err) {
			return Stale, nil
		}
		if errors.Is(err, os.ErrNotExist) {
			return Absent, nil
		}
		return Absent, fmt.Errorf("stat %s: %w", mountPoint, err)
	}
	ms, err := Mounts(mountPoint)
	if err != nil {
		return Absent, err
	}
	if len(ms) > 0 && strings.HasPrefix(ms[len(ms)-1].FSType, "fuse") {
		return Live, nil
	}
	return Absent, nil
}

// CleanStale lazily detaches dead FUSE mounts stacked at mountPoint until a
// live filesystem or the underlying directory shows, and returns how many it
// detached. Lazy (MNT_DETACH) because processes may still hold files of the
// dead mount; they keep getting ENOTCONN, new lookups see what's beneath.
func CleanStale(mountPoint string) (int, error) {
	n := 0
	for range 64 {
		var st unix.Statfs_t
		err := unix.Statfs(mountPoint, &st)
		if err == nil || !IsStale(err) {
			return n, nil
		}
		if err := unix.Unmount(mountPoint, unix.MNT_DETACH); err != nil {
			return n, fmt.Errorf("detach stale mount at %s: %w", mountPoint, err)
		}
		n++
	}
	return n, fmt.Errorf("detach stale mounts at %s: still stale after %d", mountPoint, n)
}
