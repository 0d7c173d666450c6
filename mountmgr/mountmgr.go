// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package mountmgr prepares, inspects and cleans the mount point k8s-lxcfs
// serves: it makes the mount point a shared mount so the filesystem propagates
// to pods, tells a live filesystem from one whose server died ("Transport
// endpoint is not connected") and detaches dead ones, removes what a down
// daemon leaves behind (legacy /etc/mtab lines, directories a container
// runtime created in place of missing bind sources), and counts which mount
// namespaces bind the filesystem ([Census]).
//
// Every function that looks at "the current mount table" reads the calling
// thread's ([mountns.OpenMountinfo]), so all of them work inside
// [mountns.Do]. It parses mount tables with moby/sys/mountinfo and never runs
// mount, umount or fusermount.
package mountmgr

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr/mountns"
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

// Mounts returns the mounts exactly at mountPoint, bottom first, from the
// calling thread's mount namespace (the joined one inside [mountns.Do]).
// mountPoint is compared as written, so it must be absolute, clean and free
// of symlinks, as the kernel reports mount points.
func Mounts(mountPoint string) ([]*mountinfo.Info, error) {
	// Not mountinfo.SingleEntryFilter: it stops at the first match, and
	// mounts stack.
	return threadMounts(func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != mountPoint, false })
}

// ThreadMounts returns the calling thread's whole mount table (the joined
// namespace's inside [mountns.Do]), in mount order.
func ThreadMounts() ([]*mountinfo.Info, error) { return threadMounts(nil) }

// threadMounts reads the calling thread's mount table through filter (nil
// keeps everything).
//
// It does not use mountinfo.GetMounts: that reads
// /proc/thread-self/mountinfo, which is right for the thread, but does not
// resolve inside [mountns.Do] when the joined namespace's /proc belongs to a
// pid namespace the thread is not in.
func threadMounts(filter mountinfo.FilterFunc) ([]*mountinfo.Info, error) {
	f, err := mountns.OpenMountinfo()
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	defer f.Close() //nolint:errcheck // read-only
	ms, err := mountinfo.GetMountsFromReader(f, filter)
	if err != nil {
		return nil, fmt.Errorf("read mount table %s: %w", f.Name(), err)
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
