// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// v1Controllers are the cgroup v1 controllers a sandbox cgroup is created in,
// when mounted. Devices, freezer and name=systemd are left alone.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "cpuset", "blkio", "pids"}

// v2Controllers are enabled in cgroup.subtree_control on the way down to a
// sandbox cgroup, when the parent offers them.
var v2Controllers = []string{"cpu", "cpuset", "memory", "io", "pids"}

// unifiedRoot is where a cgroup v2-only machine mounts the unified tree.
const unifiedRoot = "/sys/fs/cgroup"

// ErrNoCgroups is returned when neither a cgroup2 tree at /sys/fs/cgroup nor
// a cgroup v1 memory hierarchy is mounted.
var ErrNoCgroups = errors.New("sandbox: no usable cgroup hierarchy (need cgroup2 at /sys/fs/cgroup or a v1 memory hierarchy)")

// cgroupFS is the little of the filesystem the cgroup code touches. The real
// one is [hostFS]; tests use an in-memory fake that behaves like cgroupfs
// (mkdir creates the control files, writes never create files).
type cgroupFS interface {
	Mkdir(path string) error
	Rmdir(path string) error
	SubDirs(path string) ([]string, error)
	ReadFile(path string) (string, error)
	WriteFile(path, data string) error
	Exists(path string) bool
}

// tree is the set of cgroup hierarchies a sandbox cgroup spans.
type tree struct {
	v2 bool
	// roots maps each controller in use to the root of its hierarchy. On v2
	// every controller maps to the unified root.
	roots map[string]string
	fs    cgroupFS
}

// discoverTree finds the cgroup hierarchies mounted in this mount namespace.
func discoverTree() (*tree, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return treeFromMounts(mounts, hostFS{})
}

// treeFromMounts picks the hierarchies from a mount table: the cgroup2 tree if
// it is mounted at /sys/fs/cgroup (v2-only machine), otherwise one v1 mount per
// controller, preferring mounts under /sys/fs/cgroup. A cgroup2 mount at
// /sys/fs/cgroup/unified (hybrid) is ignored: its controllers are all bound to
// v1 hierarchies.
func treeFromMounts(mounts []*mountinfo.Info, cfs cgroupFS) (*tree, error) {
	for _, m := range mounts {
		if m.FSType == "cgroup2" && m.Mountpoint == unifiedRoot {
			roots := make(map[string]string, len(v2Controllers))
			for _, c := range v2Controllers {
				roots[c] = unifiedRoot
			}
			return &tree{v2: true, roots: roots, fs: cfs}, nil
		}
	}
	roots := map[string]string{}
	for _, m := range mounts {
		if m.FSType != "cgroup" {
			continue
		}
		preferred := strings.HasPrefix(m.Mountpoint, unifiedRoot+"/")
		for _, opt := range strings.Split(m.VFSOptions, ",") {
			if !slices.Contains(v1Controllers, opt) {
				continue
			}
			if cur, ok := roots[opt]; !ok || (preferred && !strings.HasPrefix(cur, unifiedRoot+"/")) {
				roots[opt] = m.Mountpoint
			}
		}
	}
	if _, ok := roots["memory"]; !ok {
		return nil, ErrNoCgroups
	}
	return &tree{roots: roots, fs: cfs}, nil
}

// dir returns the directory of the cgroup rel (relative to the hierarchy
// root, "" for the root) for controller, or "" if controller is not in use.
// On v2 every controller, known or not, has the same directory.
func (t *tree) dir(controller, rel string) string {
	root, ok := t.roots[controller]
	if !ok && t.v2 {
		root, ok = t.roots["memory"], true
	}
	if !ok {
		return ""
	}
	return filepath.Join(root, rel)
}

// dirs returns the distinct directories of the cgroup rel, one per mounted
// hierarchy (co-mounted controllers such as cpu,cpuacct share one), sorted.
func (t *tree) dirs(rel string) []string {
	var ds []string
	for _, root := range t.roots {
		d := filepath.Join(root, rel)
		if !slices.Contains(ds, d) {
			ds = append(ds, d)
		}
	}
	slices.Sort(ds)
	return ds
}

// hasController reports whether the cpuset hierarchy (v1) or controller
// (v2) is in use.
func (t *tree) hasController(c string) bool {
	_, ok := t.roots[c]
	return ok
}

// hostFS is the real cgroup filesystem.
type hostFS struct{}

func (hostFS) Mkdir(path string) error {
	if err := unix.Mkdir(path, 0o755); err != nil {
		return &fs.PathError{Op: "mkdir", Path: path, Err: err}
	}
	return nil
}

func (hostFS) Rmdir(path string) error {
	if err := unix.Rmdir(path); err != nil {
		return &fs.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

func (hostFS) SubDirs(path string) ([]string, error) {
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, e := range ents {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs, nil
}

func (hostFS) ReadFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// WriteFile writes data with a single write(2), which is what cgroupfs
// expects; it never creates the file.
func (hostFS) WriteFile(path, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		_ = f.Close() // the write error is the one worth reporting
		return err
	}
	return f.Close()
}

func (hostFS) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
