// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// ErrMounted is returned by [CleanRuntimeDirs] when a FUSE filesystem, live
// or dead, is mounted at the mount point it was asked to clean under.
var ErrMounted = errors.New("mountmgr: FUSE filesystem mounted")

// CleanRuntimeDirs removes the empty directories a container runtime left
// under mountPoint while the filesystem was not mounted, and returns the
// paths it removed.
//
// Pods bind single files of the filesystem, such as
// <mountPoint>/proc/meminfo. When one starts while the daemon is down, the
// runtime creates the missing bind source as a directory (docker -v does),
// and a bind of a directory onto a file fails with "not a directory". Such
// directories outlive the outage beneath the filesystem and fail binds
// whenever it is not mounted. So, before mounting, for each path in files
// (relative to mountPoint, like "proc/meminfo" or
// "sys/devices/system/cpu/online") that is an empty directory, it removes it
// with rmdir(2), then removes its parents while they are empty, up to but
// excluding mountPoint.
//
// It only ever calls rmdir(2): files, symlinks and non-empty directories are
// never removed. Paths that do not exist or are not directories are skipped
// silently. A path that is a mount point in the calling thread's namespace,
// a non-empty directory or a path through a symlink is left alone and
// reported; it keeps going, and returns the reports joined with the paths it
// did remove. Returned paths are absolute, below mountPoint with its
// symlinks resolved.
//
// The caller guarantees nothing is mounted at mountPoint. It checks anyway:
// when the calling thread's mount table shows a FUSE mount there it removes
// nothing and returns an error wrapping [ErrMounted]; run [CleanStale] first
// for a dead one. A missing mountPoint has nothing to clean.
func CleanRuntimeDirs(mountPoint string, files []string) ([]string, error) {
	if !filepath.IsAbs(mountPoint) {
		return nil, fmt.Errorf("mountmgr: clean runtime directories: mount point %q is not an absolute path", mountPoint)
	}
	var bad []error
	for _, f := range files {
		if c := filepath.Clean(f); !filepath.IsLocal(f) || c == "." {
			bad = append(bad, fmt.Errorf("mountmgr: clean runtime directories under %s: %q is not a path below it", mountPoint, f))
		}
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	table, err := threadMounts(nil)
	if err != nil {
		return nil, err
	}
	mountPoints := make(map[string]bool, len(table))
	for _, m := range table {
		mountPoints[m.Mountpoint] = true
	}
	// Look before resolving: resolving stats the mount point, which a hung
	// FUSE server would never answer.
	if err := refuseFUSE(table, filepath.Clean(mountPoint)); err != nil {
		return nil, err
	}
	root, err := filepath.EvalSymlinks(mountPoint)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil { // a dead FUSE mount: ENOTCONN, which IsStale recognizes
		return nil, fmt.Errorf("clean runtime directories: resolve %s: %w", mountPoint, err)
	}
	if err := refuseFUSE(table, root); err != nil {
		return nil, err
	}

	var removed []string
	var errs []error
	for _, f := range files {
		p, err := emptyDirCandidate(root, filepath.Clean(f))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p == "" {
			continue
		}
		if mountPoints[p] {
			errs = append(errs, fmt.Errorf("leave %s: is a mount point", p))
			continue
		}
		if err := unix.Rmdir(p); err != nil {
			if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("leave %s: directory not empty", p))
			} else if !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			}
			continue
		}
		removed = append(removed, p)
		// p = root/local, so walking up reaches root.
		for dir := filepath.Dir(p); dir != root; dir = filepath.Dir(dir) {
			if mountPoints[dir] {
				break
			}
			if err := unix.Rmdir(dir); err != nil {
				if !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
				}
				break
			}
			removed = append(removed, dir)
		}
	}
	return removed, errors.Join(errs...)
}

// refuseFUSE returns an error wrapping [ErrMounted] if table has a FUSE
// mount at mountPoint.
func refuseFUSE(table []*mountinfo.Info, mountPoint string) error {
	for _, m := range table {
		if m.Mountpoint == mountPoint && strings.HasPrefix(m.FSType, "fuse") {
			return fmt.Errorf("clean runtime directories under %s: %s is mounted there: %w", mountPoint, m.FSType, ErrMounted)
		}
	}
	return nil
}

// emptyDirCandidate returns root/rel if it is a directory reached without
// following symlinks, "" if it is missing or not a directory, and an error
// for a symlink on the way or a failed lstat.
func emptyDirCandidate(root, rel string) (string, error) {
	p := root
	parts := strings.Split(rel, string(filepath.Separator))
	for _, part := range parts {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, iofs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("leave %s: %w", filepath.Join(root, rel), err)
		}
		if fi.Mode()&iofs.ModeSymlink != 0 {
			return "", fmt.Errorf("leave %s: %s is a symlink", filepath.Join(root, rel), p)
		}
		if !fi.IsDir() {
			return "", nil // a file (a valid bind source), or one on the way
		}
	}
	return p, nil
}
