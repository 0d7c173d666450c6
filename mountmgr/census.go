// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// FSType is the type the kernel reports for our filesystem in mount tables.
const FSType = "fuse.lxcfs"

// Device identifies a mounted filesystem by its device number, which the
// kernel gives each FUSE connection anew: a bind of the filesystem made while
// an earlier daemon served it carries the earlier connection's device.
type Device struct {
	Major, Minor uint32
}

// DeviceOf returns the device of the filesystem path lies on; for a mount
// point, the mounted filesystem's. On a FUSE mount the stat goes to the
// server (or its attribute cache), so a dead one fails with ENOTCONN.
func DeviceOf(path string) (Device, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Device{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return Device{Major: unix.Major(st.Dev), Minor: unix.Minor(st.Dev)}, nil
}

// String formats d as mountinfo does, "major:minor".
func (d Device) String() string {
	return strconv.FormatUint(uint64(d.Major), 10) + ":" + strconv.FormatUint(uint64(d.Minor), 10)
}

// CensusResult is what [Census] found: every mount namespace holding a
// mount of our filesystem, and how many of them hold binds of the live
// filesystem and of dead ones.
type CensusResult struct {
	// Namespaces are the mount namespaces with at least one FSType mount,
	// ordered by Pid.
	Namespaces []Namespace
	// LiveBinds counts namespaces with Live set: consumers of the serving
	// filesystem.
	LiveBinds int
	// StaleBinds counts namespaces with Stale set: binds left from a
	// connection that is gone, to be repaired.
	StaleBinds int
	// OrphanBinds counts namespaces with Orphan set (see
	// CensusWithOrphans).
	OrphanBinds int
	// Processes counts the processes whose namespace was determined.
	Processes int
	// Skipped counts the processes that vanished during the scan or whose
	// proc files could not be read (no ptrace access).
	Skipped int
}

// Namespace is one mount namespace and its mounts of our filesystem.
type Namespace struct {
	// ID identifies the namespace: "mnt:[inode]" as the namespace file's
	// link reads, or "mountinfo:<hash>" when no process's namespace file in
	// it could be stat'ed (see [Census]).
	ID string
	// Pid is a process in the namespace: the lowest pid whose namespace file
	// could be stat'ed, or else the lowest pid.
	Pid int
	// NSPath is <procRoot>/<Pid>/ns/mnt, the path to enter the namespace with
	// [mountns.Do], or "" when no namespace file could be stat'ed.
	NSPath string
	// Pids counts the processes found in the namespace.
	Pids int
	// Mounts are its FSType mounts, in mount table order.
	Mounts []FuseMount
	// Live is set when a mount other than the filesystem's own carries the
	// live device.
	Live bool
	// Stale is set when a mount carries another device.
	Stale bool
	// Orphan is set when a mount binds what lies beneath the mount point.
	Orphan bool
}

// FuseMount is one FSType entry of a mount table.
type FuseMount struct {
	// MountPoint is where it is mounted, relative to Pid's root directory
	// (for a container, inside its root filesystem).
	MountPoint string
	// Root is the path inside the filesystem that is mounted: "/" for the
	// whole filesystem, "/proc/meminfo" for a bind of one file.
	Root string
	// Device is the filesystem's device, see [Device].
	Device Device
	// Options are the per-mount options, such as "rw,nosuid,nodev,relatime".
	Options string
	// Own is set for the filesystem's own mount: the live device, with root
	// "/", at the mount point [Census] was given.
	Own bool
	// Orphan is set for a bind of the directory beneath the mount point
	// (see CensusWithOrphans); Root is then relative to the mount point.
	Orphan bool
}

// Census scans the mount table of every process under procRoot (normally
// /proc, the host's when the daemon runs with hostPID) for mounts of type
// [FSType], groups them by mount namespace, and classifies them against
// live, the device of the filesystem being served (see [DeviceOf]), mounted
// at mountPoint. It is meant for a status report and for a healer that
// re-binds stale mounts through [Namespace.NSPath].
//
// A namespace whose only such mounts are the filesystem's own (the serving
// and host namespaces) is listed but counted in neither LiveBinds nor
// StaleBinds.
//
// A namespace is identified by device and inode of <procRoot>/<pid>/ns/mnt,
// and its mountinfo is read once, through its lowest pid. Stat'ing that file
// needs ptrace access to the process, which root can lack (a pid 1 holding
// capabilities we do not). For those processes it falls back to a SHA-256 of
// the mountinfo content: mount ids are unique system-wide, so two namespaces
// never list the same table, and a process is merged into the stat'ed
// namespace whose table hashes the same. Processes of one namespace with
// different root directories, or whose table changed between reads, can
// still come out as separate entries.
//
// Processes that exit during the scan or whose files cannot be read are
// counted in Skipped. Other read errors, and mountinfo that does not parse,
// fail the census with an error naming the file. Threads are not scanned:
// a thread in another namespace than its process, such as a [mountns.Do]
// thread, is not seen.
func Census(procRoot, mountPoint string, live Device) (CensusResult, error) {
	return CensusWithOrphans(procRoot, mountPoint, live, nil)
}

// Underlying is the directory beneath the mount point, as the filesystem
// that holds it names it: a container runtime that found no filesystem
// mounted there bound these directories (or files) instead.
type Underlying struct {
	Device Device
	Root   string // the mount point's path inside that filesystem
}

// UnderlyingOf finds what lies beneath mountPoint in the calling thread's
// mount namespace: the topmost mount containing it, other than mounts at
// mountPoint itself.
func UnderlyingOf(mountPoint string) (Underlying, error) {
	best, err := containingMount(mountPoint)
	if err != nil {
		return Underlying{}, err
	}
	if best == nil {
		return Underlying{}, fmt.Errorf("mountmgr: no mount contains %s", mountPoint)
	}
	rel := strings.TrimPrefix(mountPoint, best.Mountpoint)
	return Underlying{Device: Device{Major: uint32(best.Major), Minor: uint32(best.Minor)},
		Root: filepath.Join(best.Root, rel)}, nil
}

// CensusWithOrphans is Census that also reports, when under is not nil,
// binds of paths below the mount point on the filesystem beneath it:
// containers created while nothing was mounted, which got a runtime-made
// directory instead of our file. Their FuseMount has Orphan set and Root
// relative to the mount point ("/proc/meminfo"), and their namespace counts
// in OrphanBinds.
func CensusWithOrphans(procRoot, mountPoint string, live Device, under *Underlying) (CensusResult, error) {
	var res CensusResult
	if procRoot == "" {
		return res, errors.New("mountmgr: census: empty proc root")
	}
	if !filepath.IsAbs(mountPoint) {
		return res, fmt.Errorf("mountmgr: census: mount point %q is not an absolute path", mountPoint)
	}
	mountPoint = filepath.Clean(mountPoint)
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return res, fmt.Errorf("census: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)

	type nsKey struct{ dev, ino uint64 }
	byKey := map[nsKey]*census{}   // namespaces identified by their file
	byHash := map[string]*census{} // every namespace, by mountinfo hash
	var unnamed []*census          // namespaces only a hash identifies, in pid order
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		var st unix.Stat_t
		statErr := unix.Stat(filepath.Join(dir, "ns", "mnt"), &st)
		if statErr == nil {
			if c, ok := byKey[nsKey{st.Dev, st.Ino}]; ok {
				c.pids++
				res.Processes++
				continue
			}
		} else if !skippable(statErr) {
			return res, fmt.Errorf("census: stat %s: %w", filepath.Join(dir, "ns", "mnt"), statErr)
		}
		mountinfoPath := filepath.Join(dir, "mountinfo")
		data, err := os.ReadFile(mountinfoPath)
		if err != nil {
			if skippable(err) {
				res.Skipped++
				continue
			}
			return res, fmt.Errorf("census: %w", err)
		}
		sum := sha256.Sum256(data)
		hash := hex.EncodeToString(sum[:])
		res.Processes++
		if statErr == nil {
			c, err := newCensus(pid, data, mountPoint, live, under)
			if err != nil {
				return res, fmt.Errorf("census: parse %s: %w", mountinfoPath, err)
			}
			c.ns.ID = fmt.Sprintf("mnt:[%d]", st.Ino)
			c.ns.NSPath = filepath.Join(dir, "ns", "mnt")
			byKey[nsKey{st.Dev, st.Ino}] = c
			if prev, ok := byHash[hash]; ok && prev.ns.NSPath == "" {
				// Processes seen earlier without their namespace file.
				c.pids += prev.pids
				prev.pids = 0
			}
			byHash[hash] = c
			continue
		}
		if c, ok := byHash[hash]; ok {
			c.pids++
			continue
		}
		c, err := newCensus(pid, data, mountPoint, live, under)
		if err != nil {
			return res, fmt.Errorf("census: parse %s: %w", mountinfoPath, err)
		}
		c.ns.ID = "mountinfo:" + hash[:16]
		byHash[hash] = c
		unnamed = append(unnamed, c)
	}

	for _, c := range byKey {
		res.add(c)
	}
	for _, c := range unnamed {
		if c.pids > 0 { // not merged into a namespace found by its file
			res.add(c)
		}
	}
	slices.SortFunc(res.Namespaces, func(a, b Namespace) int { return a.Pid - b.Pid })
	return res, nil
}

// census is a namespace being counted.
type census struct {
	ns   Namespace
	pids int
}

// newCensus parses the mountinfo data of pid's namespace.
func newCensus(pid int, data []byte, mountPoint string, live Device, under *Underlying) (*census, error) {
	filter := mountinfo.FSTypeFilter(FSType)
	if under != nil {
		filter = func(m *mountinfo.Info) (skip, stop bool) {
			if m.FSType == FSType {
				return false, false
			}
			orphan := uint32(m.Major) == under.Device.Major && uint32(m.Minor) == under.Device.Minor &&
				strings.HasPrefix(m.Root, under.Root+"/")
			return !orphan, false
		}
	}
	ms, err := mountinfo.GetMountsFromReader(bytes.NewReader(data), filter)
	if err != nil {
		return nil, err
	}
	c := &census{ns: Namespace{Pid: pid}, pids: 1}
	for _, m := range ms {
		if m.FSType != FSType {
			c.ns.Orphan = true
			c.ns.Mounts = append(c.ns.Mounts, FuseMount{MountPoint: m.Mountpoint, Root: strings.TrimPrefix(m.Root, under.Root),
				Device: Device{Major: uint32(m.Major), Minor: uint32(m.Minor)}, Options: m.Options, Orphan: true})
			continue
		}
		fm := FuseMount{
			MountPoint: m.Mountpoint,
			Root:       liveRoot(m.Root),
			Device:     Device{Major: uint32(m.Major), Minor: uint32(m.Minor)},
			Options:    m.Options,
		}
		fm.Own = fm.Device == live && fm.Root == "/" && fm.MountPoint == mountPoint
		switch {
		case fm.Own:
		case fm.Device == live:
			c.ns.Live = true
		default:
			c.ns.Stale = true
		}
		c.ns.Mounts = append(c.ns.Mounts, fm)
	}
	return c, nil
}

// add records c in res if it holds any of our mounts.
func (res *CensusResult) add(c *census) {
	if len(c.ns.Mounts) == 0 {
		return
	}
	c.ns.Pids = c.pids
	res.Namespaces = append(res.Namespaces, c.ns)
	if c.ns.Live {
		res.LiveBinds++
	}
	if c.ns.Stale {
		res.StaleBinds++
	}
	if c.ns.Orphan {
		res.OrphanBinds++
	}
}

// skippable reports whether err, from a file under /proc/<pid>, means the
// process is gone (ENOENT, ESRCH; EINVAL for a zombie's mountinfo) or may
// not be inspected (EACCES, EPERM).
func skippable(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.EINVAL) ||
		errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}

// liveRoot strips the marks mountinfo adds to the root of a bind whose
// dentry is gone: some kernels invalidate a dead FUSE connection's dentries,
// and show the binds of them as "/proc/meminfo//deleted". The path in a live
// mount is the same file.
func liveRoot(root string) string {
	root = strings.TrimSuffix(root, "//deleted")
	return strings.TrimSuffix(root, " (deleted)")
}
