// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"

	"golang.org/x/sys/unix"
)

// MakeShared makes sure that what is later mounted on dir, the FUSE
// filesystem, propagates (mount_namespaces(7)): to pods whose HostToContainer
// volumes are slaves of it, and back from a daemon pod's Bidirectional volume.
//
// dir must be absolute; it is created (mode 0755) if missing.
//   - If dir is a mount point, that mount is made shared.
//   - If it is not and the mount containing it is shared (a systemd host's
//     /), nothing is done: a mount at dir propagates to that mount's peers and
//     slaves, which include copies made before we mounted; a bind of our own
//     would take dir out of that group and orphan them.
//   - Otherwise dir is bind-mounted onto itself (MS_BIND|MS_REC, so mounts
//     below dir stay visible), made private, then shared: a peer group of its
//     own. The detour through private matters where a bind joins its parent's
//     group: a mount on dir would propagate back into the parent mount, where
//     the kernel tucks a hidden second copy under the bind.
//
// Calling it again changes nothing. It acts on the calling thread's mount
// namespace (the joined one inside [mountns.Do]). Call it before mounting
// the filesystem on dir and after [CleanStale].
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
		// Under a shared parent (a systemd host's /), a mount at dir already
		// propagates to the parent's peers and slaves: pods that bound dir
		// or a parent with HostToContainer before we mounted. A bind of our
		// own would take dir out of that group and orphan their copies.
		parent, err := containingMount(real)
		if err != nil {
			return err
		}
		if parent != nil && isShared(parent.Optional) {
			return nil
		}
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

// containingMount returns the topmost mount whose mount point contains
// path, not counting mounts at path itself, in the calling thread's
// namespace, or nil.
func containingMount(path string) (*mountinfo.Info, error) {
	ms, err := threadMounts(nil)
	if err != nil {
		return nil, err
	}
	var best *mountinfo.Info
	for _, m := range ms {
		if m.Mountpoint == path || m.Mountpoint != "/" && !strings.HasPrefix(path, m.Mountpoint+"/") {
			continue
		}
		// Later entries of the same or a longer mount point are on top.
		if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
			best = m
		}
	}
	return best, nil
}

// isShared reports whether a mountinfo optional-fields string says shared.
func isShared(optional string) bool {
	for _, f := range strings.Fields(optional) {
		if strings.HasPrefix(f, "shared:") {
			return true
		}
	}
	return false
}
