// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MakeShared makes dir a shared mount (mount_namespaces(7)) with a peer
// group of its own, so that what is later mounted on it, the FUSE
// filesystem, propagates to the copies of dir and only to them: the peers
// (a daemon pod's Bidirectional volume made from dir) and slaves (pods'
// HostToContainer volumes) that the mount at dir has.
//
// dir must be absolute. It creates dir (mode 0755) if missing. If dir is not
// a mount point of its own, it bind-mounts dir onto itself (MS_BIND|MS_REC,
// so mounts already below dir stay visible through the bind instead of being
// covered), makes that bind private and then shared. The detour through
// private matters: a bind of a directory on a shared mount joins the peer
// group of that very mount, so a later mount on dir would propagate back into
// the parent mount, where the kernel tucks the copy under our bind (a hidden
// second FUSE mount at dir that outlives the visible one), and into every
// namespace that shares the parent. If dir is already a mount point, only
// MS_SHARED is set, which keeps a peer group it already belongs to. Neither
// step is recursive: only the mount at dir has to be shared for mounts on it
// to propagate, the kernel makes a mount attached under a shared mount shared
// itself, and mounts others placed below dir keep their propagation. Calling
// it again changes nothing.
//
// It acts on the topmost mount at dir, in the calling thread's namespace (the
// joined one inside [mountns.Do]). Call it before mounting the filesystem on
// dir and after [CleanStale]: a dead FUSE mount on dir fails every access
// with ENOTCONN, and a live one would be the mount made shared.
func MakeShared(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("mountmgr: make %q shared: not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	// The mount table lists resolved absolute paths.
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", dir, err)
	}
	ms, err := Mounts(real)
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		if err := unix.Mount(real, real, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on itself: %w", real, err)
		}
		// Leave the parent's peer group, if the bind joined it.
		if err := unix.Mount("", real, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make %s private: %w", real, err)
		}
	}
	if err := unix.Mount("", real, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", real, err)
	}
	return nil
}
