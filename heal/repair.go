// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr/mountns"
)

// attrsOf maps per-mount options ("ro,nosuid,nodev,noexec,relatime") to
// mount_setattr(2) attributes, so a repaired bind keeps the original's.
func attrsOf(options string) uint64 {
	var a uint64
	for _, o := range strings.Split(options, ",") {
		switch o {
		case "ro":
			a |= unix.MOUNT_ATTR_RDONLY
		case "nosuid":
			a |= unix.MOUNT_ATTR_NOSUID
		case "nodev":
			a |= unix.MOUNT_ATTR_NODEV
		case "noexec":
			a |= unix.MOUNT_ATTR_NOEXEC
		case "noatime":
			a |= unix.MOUNT_ATTR_NOATIME
		case "nodiratime":
			a |= unix.MOUNT_ATTR_NODIRATIME
		case "strictatime":
			a |= unix.MOUNT_ATTR_STRICTATIME
		}
	}
	return a
}

// cloneFile returns a detached bind mount of path (open_tree with
// OPEN_TREE_CLONE) with the attributes of options. It must run where path
// resolves into the live filesystem (the host's mount namespace).
func cloneFile(path, options string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := &unix.MountAttr{Attr_set: attrsOf(options)}
	if attr.Attr_set&(unix.MOUNT_ATTR_NOATIME|unix.MOUNT_ATTR_STRICTATIME) != 0 {
		attr.Attr_clr = unix.MOUNT_ATTR__ATIME
	}
	if attr.Attr_set != 0 {
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			unix.Close(fd) //nolint:errcheck // detached mount, never attached
			return -1, fmt.Errorf("mount_setattr %s (%s): %w", path, options, err)
		}
	}
	return fd, nil
}

// job is one place in a container to repair.
type job struct {
	m      mountmgr.FuseMount
	tree   int // detached fresh bind, or -1
	broken func(*mountinfo.Info) bool
	done   bool
	err    error
}

// rebindAll runs in the container's mount namespace, with rootFd its root
// directory. For each job it detaches what is mounted at the target as
// long as it is one of the broken mounts (stale FUSE, or a bind of the
// directory beneath the mount point), attaches the fresh bind in its place
// and reads through it. The mount table is read once.
func rebindAll(rootFd int, jobs []job, live mountmgr.Device) error {
	if err := unix.Fchdir(rootFd); err != nil {
		return fmt.Errorf("enter the container's root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot to the container's root: %w", err)
	}
	table, err := mountmgr.ThreadMounts()
	if err != nil {
		return err
	}
	stacks := map[string][]*mountinfo.Info{}
	for _, m := range table {
		stacks[m.Mountpoint] = append(stacks[m.Mountpoint], m)
	}
	for i := range jobs {
		jb := &jobs[i]
		if jb.tree < 0 {
			continue
		}
		target := jb.m.MountPoint
		stack := stacks[target]
		detach := 0
		for k := len(stack) - 1; k >= 0 && jb.broken(stack[k]); k-- {
			detach++
			if stack[k].FSType != mountmgr.FSType {
				break // an orphan bind: one, and below it is the container's own
			}
		}
		if detach == 0 {
			// Repaired meanwhile, or changed by the container: not ours.
			if n := len(stack); n > 0 && stack[n-1].FSType == mountmgr.FSType && devOf(stack[n-1]) == live {
				continue
			}
			jb.err = fmt.Errorf("%w at %s", errNothingBroken, target)
			continue
		}
		for range detach {
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				jb.err = fmt.Errorf("detach broken mount at %s: %w", target, err)
				break
			}
		}
		if jb.err != nil {
			continue
		}
		if err := unix.MoveMount(jb.tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			jb.err = fmt.Errorf("attach fresh bind at %s: %w", target, err)
			continue
		}
		if err := verify(target); err != nil {
			jb.err = err
			continue
		}
		jb.done = true
	}
	return nil
}

var errNothingBroken = errors.New("no broken mount left")

func devOf(m *mountinfo.Info) mountmgr.Device {
	return mountmgr.Device{Major: uint32(m.Major), Minor: uint32(m.Minor)}
}

// verify reads through target: a directory lists, a file reads.
func verify(target string) error {
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("verify %s: open: %w", target, err)
	}
	defer unix.Close(fd) //nolint:errcheck // read-only
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("verify %s: stat: %w", target, err)
	}
	buf := make([]byte, 4096)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		_, err = unix.Getdents(fd, buf)
	} else {
		_, err = unix.Read(fd, buf)
	}
	if err != nil {
		return fmt.Errorf("verify %s: read: %w", target, err)
	}
	return nil
}

// repairNamespace replaces every broken mount of ns with a fresh bind of
// the same path of the live filesystem at mountPoint. inHost runs in the
// mount namespace where mountPoint is live. Each namespace is entered once
// for all its mounts. It returns how many mounts it repaired, and the
// errors of the others.
func repairNamespace(procRoot, mountPoint string, live mountmgr.Device, ns mountmgr.Namespace, inHost func(func() error) error) (int, error) {
	if ns.NSPath == "" {
		return 0, fmt.Errorf("namespace %s: no namespace file to enter", ns.ID)
	}
	rootFd, err := unix.Open(filepath.Join(procRoot, strconv.Itoa(ns.Pid), "root"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open root of pid %d: %w", ns.Pid, err)
	}
	defer unix.Close(rootFd) //nolint:errcheck // O_PATH
	var jobs []job
	seen := map[string]bool{}
	for _, m := range ns.Mounts {
		if m.Own || !(m.Orphan || m.Device != live) || seen[m.MountPoint] {
			continue // stacked broken mounts at one place go in one repair
		}
		seen[m.MountPoint] = true
		// Broken is what the census saw: our filesystem on a dead
		// connection, or a bind of the directory beneath the mount point.
		// Nothing else at that place is touched.
		broken := func(top *mountinfo.Info) bool {
			if m.Orphan {
				return top.FSType != mountmgr.FSType && devOf(top) == m.Device
			}
			return top.FSType == mountmgr.FSType && devOf(top) != live
		}
		jobs = append(jobs, job{m: m, tree: -1, broken: broken})
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	defer func() {
		for _, jb := range jobs {
			if jb.tree >= 0 {
				unix.Close(jb.tree) //nolint:errcheck // attached by now, or abandoned
			}
		}
	}()
	// One entry into the host's namespace for every clone.
	_ = inHost(func() error {
		for i := range jobs {
			jobs[i].tree, jobs[i].err = cloneFile(filepath.Join(mountPoint, jobs[i].m.Root), jobs[i].m.Options)
		}
		return nil
	})
	if err := mountns.Do(ns.NSPath, func() error { return rebindAll(rootFd, jobs, live) }); err != nil {
		return 0, fmt.Errorf("pid %d: %w", ns.Pid, err)
	}
	n := 0
	var errs []error
	for _, jb := range jobs {
		switch {
		case jb.done:
			n++
		case errors.Is(jb.err, errNothingBroken):
		case jb.err != nil:
			errs = append(errs, fmt.Errorf("pid %d: %s: %w", ns.Pid, jb.m.MountPoint, jb.err))
		}
	}
	return n, errors.Join(errs...)
}
