// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ParentName is the cgroup, directly under the root of every hierarchy, that
// holds all sandbox cgroups. Its name alone marks leftovers of a crashed run.
const ParentName = "k8s-lxcfs-sandbox"

// ErrNoSwapAccounting is returned for a positive [Limits.SwapBytes] when the
// kernel does not account swap (no memory.memsw.* on v1, no memory.swap.max
// on v2; e.g. booted with swapaccount=0).
var ErrNoSwapAccounting = errors.New("sandbox: kernel does not account swap")

// removeTimeout bounds how long Remove waits for the kernel to let go of a
// cgroup whose last process has just exited (rmdir returns EBUSY meanwhile).
const removeTimeout = 3 * time.Second

// parentMu serialises creating the parent and its children with removing the
// parent, within this process. Across processes NewCgroup retries instead.
var parentMu sync.Mutex

// Cgroup is a real cgroup created for a test or demo, in every v1 hierarchy
// it needs (memory, cpu, cpuacct, cpuset, blkio, pids; whichever are mounted)
// or in the v2 tree. Its methods are safe for concurrent use.
type Cgroup struct {
	tree     *tree
	rel      string // relative to each hierarchy root, no leading slash
	topLevel bool   // directly under ParentName; Remove tries the parent too
}

// NewCgroup creates the cgroup ParentName/name in every hierarchy and applies
// lim. name must be a single path element and must not exist yet (a leftover
// from a crashed run is an error wrapping [fs.ErrExist]).
//
// On cgroup v1 it copies cpuset.cpus and cpuset.mems from the parent, because
// a new v1 cpuset cgroup starts with empty ones and refuses processes. On v2
// it enables the cpu, cpuset, memory, io and pids controllers (those offered)
// in the root's and the parent's cgroup.subtree_control.
func NewCgroup(name string, lim Limits) (*Cgroup, error) {
	t, err := discoverTree()
	if err != nil {
		return nil, err
	}
	return newCgroup(t, name, lim)
}

func newCgroup(t *tree, name string, lim Limits) (*Cgroup, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := lim.validate(); err != nil {
		return nil, err
	}
	c := &Cgroup{tree: t, rel: path.Join(ParentName, name), topLevel: true}
	parentMu.Lock()
	defer parentMu.Unlock()
	// Another process may remove the empty parent between ensureParent and
	// our mkdir (ENOENT); a few rounds settle that.
	var err error
	for range 3 {
		if err = t.ensureParent(); err != nil {
			return nil, err
		}
		if err = t.create(ParentName, c.rel, lim); !errors.Is(err, errParentGone) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", c.rel, err)
	}
	return c, nil
}

// NewChild creates the cgroup name below c and applies lim. The kernel
// enforces the minimum of the limits up the tree; the files of the child show
// only its own values.
//
// On cgroup v2 a cgroup with children cannot hold processes (the "no internal
// processes" rule), so c must have none; AddProc on c fails afterwards.
func (c *Cgroup) NewChild(name string, lim Limits) (*Cgroup, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	if err := lim.validate(); err != nil {
		return nil, err
	}
	child := &Cgroup{tree: c.tree, rel: path.Join(c.rel, name)}
	if err := c.tree.create(c.rel, child.rel, lim); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", child.rel, err)
	}
	return child, nil
}

// AddProc moves pid into the cgroup, in every hierarchy.
func (c *Cgroup) AddProc(pid int) error {
	for _, f := range c.procsFiles() {
		if err := c.tree.fs.WriteFile(f, strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, c.rel, err)
		}
	}
	return nil
}

// Procs returns the pids in the cgroup (v1: as the memory hierarchy lists
// them). Exited, unreaped processes are not listed.
func (c *Cgroup) Procs() ([]int, error) {
	f := filepath.Join(c.tree.dir("memory", c.rel), "cgroup.procs")
	s, err := c.tree.fs.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("list processes of cgroup %s: %w", c.rel, err)
	}
	var pids []int
	for _, field := range strings.Fields(s) {
		pid, err := strconv.Atoi(field)
		if err != nil {
			return nil, fmt.Errorf("list processes of cgroup %s: bad pid %q in %s", c.rel, field, f)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Path returns the absolute directory of the cgroup for controller ("memory",
// "cpu", "cpuacct", "cpuset", "blkio", "pids"), or "" if that v1 controller is
// not mounted. On cgroup v2 it returns the same directory for any controller.
func (c *Cgroup) Path(controller string) string {
	return c.tree.dir(controller, c.rel)
}

// RelPath returns the cgroup's path from the root of its hierarchies, e.g.
// "/k8s-lxcfs-sandbox/demo": what /proc/<pid>/cgroup shows for its members
// (when the hierarchies are mounted at their true root).
func (c *Cgroup) RelPath() string {
	return "/" + c.rel
}

// V2 reports whether the cgroup lives in the unified (v2) tree.
func (c *Cgroup) V2() bool {
	return c.tree.v2
}

// Remove removes the cgroup and every cgroup below it. rmdir fails with EBUSY
// while processes remain and for a moment after the last one has exited, so
// it retries for a few seconds. For a cgroup made by [NewCgroup] it then
// removes [ParentName] too, unless other sandbox cgroups still live there.
// Removing a removed cgroup is not an error.
func (c *Cgroup) Remove() error {
	var errs []error
	for _, d := range c.tree.dirs(c.rel) {
		if err := c.tree.removeTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	if c.topLevel {
		parentMu.Lock()
		defer parentMu.Unlock()
		for _, d := range c.tree.dirs(ParentName) {
			err := c.tree.fs.Rmdir(d)
			// Busy or not empty: another sandbox cgroup still lives there.
			if err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", c.rel, err)
	}
	return nil
}

// procsFiles returns the cgroup.procs file of the cgroup in every hierarchy.
func (c *Cgroup) procsFiles() []string {
	var files []string
	for _, d := range c.tree.dirs(c.rel) {
		files = append(files, filepath.Join(d, "cgroup.procs"))
	}
	return files
}

// validName accepts a single, ordinary path element.
func validName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00\n") {
		return fmt.Errorf("invalid cgroup name %q: want one path element", name)
	}
	return nil
}

// errParentGone marks a mkdir that failed because the parent cgroup vanished.
var errParentGone = errors.New("parent cgroup vanished")

// ensureParent creates ParentName in every hierarchy if missing, with its
// cpuset initialised (v1) and the controllers enabled on the way (v2).
func (t *tree) ensureParent() error {
	if t.v2 {
		if err := t.enableControllers(""); err != nil {
			return err
		}
	}
	for _, d := range t.dirs(ParentName) {
		if err := t.fs.Mkdir(d); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create sandbox parent: %w", err)
		}
	}
	return t.initCpuset("", ParentName)
}

// create makes the cgroup rel below parent and applies lim. On failure it
// removes what it created.
func (t *tree) create(parent, rel string, lim Limits) error {
	if t.v2 {
		if err := t.enableControllers(parent); err != nil {
			return err
		}
	}
	var made []string
	undo := func(err error) error {
		for _, d := range slices.Backward(made) {
			if rerr := t.removeTree(d); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return err
	}
	for _, d := range t.dirs(rel) {
		if err := t.fs.Mkdir(d); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w: %w", errParentGone, err)
			}
			return undo(err)
		}
		made = append(made, d)
	}
	if err := t.initCpuset(parent, rel); err != nil {
		return undo(err)
	}
	if err := t.apply(rel, lim); err != nil {
		return undo(err)
	}
	return nil
}

// initCpuset copies cpuset.mems and cpuset.cpus from parent to rel where they
// are empty. Only cgroup v1 needs it: a new v1 cpuset cgroup has no cpus and
// no mems (unless cgroup.clone_children is set), and adding a process to it
// fails with ENOSPC. v2 cpusets inherit.
func (t *tree) initCpuset(parent, rel string) error {
	if t.v2 || !t.hasController("cpuset") {
		return nil
	}
	for _, file := range []string{"cpuset.mems", "cpuset.cpus"} {
		dst := filepath.Join(t.dir("cpuset", rel), file)
		cur, err := t.fs.ReadFile(dst)
		if err != nil {
			return fmt.Errorf("read %s: %w", dst, err)
		}
		if strings.TrimSpace(cur) != "" {
			continue
		}
		src := filepath.Join(t.dir("cpuset", parent), file)
		val, err := t.fs.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		if val = strings.TrimSpace(val); val == "" {
			return fmt.Errorf("initialise %s: %s is empty", dst, src)
		}
		if err := t.writeFile(dst, val); err != nil {
			return err
		}
	}
	return nil
}

// enableControllers enables, in rel's cgroup.subtree_control, every wanted
// v2 controller that rel offers and has not enabled yet.
func (t *tree) enableControllers(rel string) error {
	dir := t.dir("memory", rel)
	offered, err := t.fs.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	ctl := filepath.Join(dir, "cgroup.subtree_control")
	enabled, err := t.fs.ReadFile(ctl)
	if err != nil {
		return fmt.Errorf("read %s: %w", ctl, err)
	}
	for _, c := range v2Controllers {
		if !slices.Contains(strings.Fields(offered), c) || slices.Contains(strings.Fields(enabled), c) {
			continue
		}
		if err := t.writeFile(ctl, "+"+c); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("%w (cgroup v2 allows no controllers below a non-root cgroup that holds processes)", err)
			}
			return err
		}
	}
	return nil
}

// apply writes lim into the cgroup rel.
func (t *tree) apply(rel string, lim Limits) error {
	var ws []write
	var err error
	if t.v2 {
		ws, err = lim.v2Writes(t.fs.Exists(filepath.Join(t.dir("memory", rel), "memory.swap.max")))
	} else {
		ws, err = lim.v1Writes(t.fs.Exists(filepath.Join(t.dir("memory", rel), "memory.memsw.limit_in_bytes")))
	}
	if err != nil {
		return fmt.Errorf("apply limits to %s: %w", rel, err)
	}
	for _, w := range ws {
		dir := t.dir(w.controller, rel)
		if dir == "" {
			return fmt.Errorf("apply limits to %s: cgroup v1 controller %s is not mounted", rel, w.controller)
		}
		if err := t.writeFile(filepath.Join(dir, w.file), w.value); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes a cgroup file, naming the file and the value on failure.
func (t *tree) writeFile(file, value string) error {
	if err := t.fs.WriteFile(file, value); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in our message already
		}
		return fmt.Errorf("write %q to %s: %w", value, file, err)
	}
	return nil
}

// removeTree removes dir and the cgroups below it, deepest first. A missing
// dir is fine.
func (t *tree) removeTree(dir string) error {
	subs, err := t.fs.SubDirs(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list cgroups below %s: %w", dir, err)
	}
	var errs []error
	for _, s := range subs {
		if err := t.removeTree(filepath.Join(dir, s)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(removeTimeout)
	for {
		err := t.fs.Rmdir(dir)
		switch {
		case err == nil || errors.Is(err, fs.ErrNotExist):
			return nil
		case !errors.Is(err, unix.EBUSY) || time.Now().After(deadline):
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 200*time.Millisecond)
	}
}
