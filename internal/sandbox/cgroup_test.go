// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package sandbox

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeFS is an in-memory cgroupfs: mkdir creates the control files a real
// cgroup gets (from newFiles), writes never create files, rmdir refuses
// (EBUSY) while child cgroups exist, and cgroup.subtree_control accumulates
// "+ctrl" writes. Every write is logged as "path=value".
type fakeFS struct {
	mu       sync.Mutex
	dirs     map[string]bool
	files    map[string]string
	writes   []string
	newFiles func(f *fakeFS, dir string) map[string]string // called with mu held
}

func (f *fakeFS) Mkdir(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dirs[path] || f.files[path] != "" {
		return &fs.PathError{Op: "mkdir", Path: path, Err: unix.EEXIST}
	}
	if !f.dirs[filepath.Dir(path)] {
		return &fs.PathError{Op: "mkdir", Path: path, Err: unix.ENOENT}
	}
	f.dirs[path] = true
	for name, content := range f.newFiles(f, path) {
		f.files[filepath.Join(path, name)] = content
	}
	return nil
}

func (f *fakeFS) Rmdir(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirs[path] {
		return &fs.PathError{Op: "rmdir", Path: path, Err: unix.ENOENT}
	}
	for d := range f.dirs {
		if filepath.Dir(d) == path {
			return &fs.PathError{Op: "rmdir", Path: path, Err: unix.EBUSY}
		}
	}
	delete(f.dirs, path)
	for name := range f.files {
		if filepath.Dir(name) == path {
			delete(f.files, name)
		}
	}
	return nil
}

func (f *fakeFS) SubDirs(path string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dirs[path] {
		return nil, &fs.PathError{Op: "open", Path: path, Err: unix.ENOENT}
	}
	var subs []string
	for d := range f.dirs {
		if filepath.Dir(d) == path {
			subs = append(subs, filepath.Base(d))
		}
	}
	slices.Sort(subs)
	return subs, nil
}

func (f *fakeFS) ReadFile(path string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.files[path]
	if !ok {
		return "", &fs.PathError{Op: "open", Path: path, Err: unix.ENOENT}
	}
	return s, nil
}

func (f *fakeFS) WriteFile(path, data string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, ok := f.files[path]
	if !ok {
		return &fs.PathError{Op: "open", Path: path, Err: unix.ENOENT}
	}
	f.writes = append(f.writes, path+"="+data)
	if filepath.Base(path) == "cgroup.subtree_control" {
		f.files[path] = strings.TrimSpace(cur + " " + strings.TrimPrefix(data, "+"))
		return nil
	}
	f.files[path] = data
	return nil
}

func (f *fakeFS) Exists(path string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.files[path]
	return ok || f.dirs[path]
}

// writesUnder returns the logged writes below dir, with dir trimmed.
func (f *fakeFS) writesUnder(dir string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ws []string
	for _, w := range f.writes {
		if rest, ok := strings.CutPrefix(w, dir+"/"); ok {
			ws = append(ws, rest)
		}
	}
	return ws
}

func (f *fakeFS) hasDirsUnder(dir string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ds []string
	for d := range f.dirs {
		if strings.HasPrefix(d, dir+"/") {
			ds = append(ds, d)
		}
	}
	slices.Sort(ds)
	return ds
}

// newFakeV1 returns a hybrid-like v1 tree below a fake /cg with cpu and
// cpuacct co-mounted, as systemd does. swap says whether memsw files exist.
func newFakeV1(swap bool) (*tree, *fakeFS) {
	f := &fakeFS{dirs: map[string]bool{}, files: map[string]string{}}
	f.newFiles = func(_ *fakeFS, dir string) map[string]string {
		files := map[string]string{"cgroup.procs": ""}
		switch {
		case strings.HasPrefix(dir, "/cg/memory"):
			files["memory.limit_in_bytes"] = "9223372036854771712"
			if swap {
				files["memory.memsw.limit_in_bytes"] = "9223372036854771712"
			}
		case strings.HasPrefix(dir, "/cg/cpu,cpuacct"):
			files["cpu.cfs_period_us"] = "100000"
			files["cpu.cfs_quota_us"] = "-1"
		case strings.HasPrefix(dir, "/cg/cpuset"):
			files["cpuset.cpus"] = "" // empty, as in the kernel without clone_children
			files["cpuset.mems"] = ""
		}
		return files
	}
	roots := map[string]string{
		"memory": "/cg/memory", "cpu": "/cg/cpu,cpuacct", "cpuacct": "/cg/cpu,cpuacct",
		"cpuset": "/cg/cpuset", "pids": "/cg/pids",
	}
	f.dirs["/cg"] = true
	for _, r := range roots {
		f.dirs[r] = true
		f.files[r+"/cgroup.procs"] = "1\n"
	}
	f.files["/cg/cpuset/cpuset.cpus"] = "0-3\n"
	f.files["/cg/cpuset/cpuset.mems"] = "0\n"
	return &tree{roots: roots, fs: f}, f
}

// newFakeV2 returns a unified tree at a fake /cg whose root offers
// offered; like the kernel, a child offers what its parent enabled.
func newFakeV2(offered string) (*tree, *fakeFS) {
	f := &fakeFS{dirs: map[string]bool{"/cg": true}, files: map[string]string{
		"/cg/cgroup.controllers":     offered,
		"/cg/cgroup.subtree_control": "",
		"/cg/cgroup.procs":           "1\n",
	}}
	f.newFiles = func(f *fakeFS, dir string) map[string]string {
		files := map[string]string{
			"cgroup.controllers":     f.files[filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")],
			"cgroup.subtree_control": "",
			"cgroup.procs":           "",
		}
		for _, c := range strings.Fields(files["cgroup.controllers"]) {
			switch c {
			case "memory":
				files["memory.max"] = "max"
				files["memory.swap.max"] = "max"
			case "cpu":
				files["cpu.max"] = "max 100000"
			case "cpuset":
				files["cpuset.cpus"] = ""
			}
		}
		return files
	}
	roots := map[string]string{}
	for _, c := range v2Controllers {
		roots[c] = "/cg"
	}
	return &tree{v2: true, roots: roots, fs: f}, f
}

func TestNewCgroupV1(t *testing.T) {
	t.Parallel()
	tr, f := newFakeV1(true)
	c, err := newCgroup(tr, "a", Limits{MemoryBytes: 256 << 20, SwapBytes: 1 << 20, CPUQuotaUS: 50000, Cpuset: "1"})
	if err != nil {
		t.Fatalf("newCgroup() = %v", err)
	}
	if got, want := f.writesUnder("/cg/cpuset"), []string{
		"k8s-lxcfs-sandbox/cpuset.mems=0", "k8s-lxcfs-sandbox/cpuset.cpus=0-3", // the parent, from the root
		"k8s-lxcfs-sandbox/a/cpuset.mems=0", "k8s-lxcfs-sandbox/a/cpuset.cpus=0-3", // the child, from the parent
		"k8s-lxcfs-sandbox/a/cpuset.cpus=1", // then its limit
	}; !slices.Equal(got, want) {
		t.Errorf("cpuset writes = %q, want %q", got, want)
	}
	if got, want := f.writesUnder("/cg/memory"), []string{
		"k8s-lxcfs-sandbox/a/memory.limit_in_bytes=268435456",
		"k8s-lxcfs-sandbox/a/memory.memsw.limit_in_bytes=269484032",
	}; !slices.Equal(got, want) {
		t.Errorf("memory writes = %q, want %q", got, want)
	}
	if got, want := f.writesUnder("/cg/cpu,cpuacct"), []string{
		"k8s-lxcfs-sandbox/a/cpu.cfs_period_us=100000",
		"k8s-lxcfs-sandbox/a/cpu.cfs_quota_us=50000",
	}; !slices.Equal(got, want) {
		t.Errorf("cpu writes = %q, want %q", got, want)
	}
	if got, want := c.Path("cpuacct"), "/cg/cpu,cpuacct/k8s-lxcfs-sandbox/a"; got != want {
		t.Errorf("Path(cpuacct) = %q, want %q", got, want)
	}
	if got := c.Path("blkio"); got != "" {
		t.Errorf("Path(blkio) = %q for an unmounted controller, want \"\"", got)
	}
	if got, want := c.RelPath(), "/k8s-lxcfs-sandbox/a"; got != want {
		t.Errorf("RelPath() = %q, want %q", got, want)
	}

	if err := c.AddProc(42); err != nil {
		t.Fatalf("AddProc() = %v", err)
	}
	// One write per hierarchy: cpu,cpuacct is one directory.
	var procWrites []string
	for _, w := range f.writes {
		if strings.Contains(w, "cgroup.procs") {
			procWrites = append(procWrites, w)
		}
	}
	if want := []string{
		"/cg/cpu,cpuacct/k8s-lxcfs-sandbox/a/cgroup.procs=42", "/cg/cpuset/k8s-lxcfs-sandbox/a/cgroup.procs=42",
		"/cg/memory/k8s-lxcfs-sandbox/a/cgroup.procs=42", "/cg/pids/k8s-lxcfs-sandbox/a/cgroup.procs=42",
	}; !slices.Equal(procWrites, want) {
		t.Errorf("AddProc writes = %q, want %q", procWrites, want)
	}
	if pids, err := c.Procs(); err != nil || !slices.Equal(pids, []int{42}) {
		t.Errorf("Procs() = %v, %v; want [42]", pids, err)
	}
}

func TestNewCgroupV2(t *testing.T) {
	t.Parallel()
	tr, f := newFakeV2("cpuset cpu io memory hugetlb pids rdma misc")
	c, err := newCgroup(tr, "a", Limits{MemoryBytes: 128 << 20, SwapBytes: -1, CPUQuotaUS: 20000, CPUPeriodUS: 50000, Cpuset: "0"})
	if err != nil {
		t.Fatalf("newCgroup() = %v", err)
	}
	want := []string{
		// Root enables what we need, in our order, and nothing else.
		"cgroup.subtree_control=+cpu", "cgroup.subtree_control=+cpuset", "cgroup.subtree_control=+memory",
		"cgroup.subtree_control=+io", "cgroup.subtree_control=+pids",
		// Then the parent does, for its children.
		"k8s-lxcfs-sandbox/cgroup.subtree_control=+cpu", "k8s-lxcfs-sandbox/cgroup.subtree_control=+cpuset",
		"k8s-lxcfs-sandbox/cgroup.subtree_control=+memory", "k8s-lxcfs-sandbox/cgroup.subtree_control=+io",
		"k8s-lxcfs-sandbox/cgroup.subtree_control=+pids",
		"k8s-lxcfs-sandbox/a/cpuset.cpus=0",
		"k8s-lxcfs-sandbox/a/memory.max=134217728",
		"k8s-lxcfs-sandbox/a/memory.swap.max=max",
		"k8s-lxcfs-sandbox/a/cpu.max=20000 50000",
	}
	if got := f.writesUnder("/cg"); !slices.Equal(got, want) {
		t.Errorf("writes =\n%q\nwant\n%q", got, want)
	}
	for _, ctrl := range []string{"memory", "cpu", "blkio", ""} {
		if got := c.Path(ctrl); got != "/cg/k8s-lxcfs-sandbox/a" {
			t.Errorf("Path(%q) = %q, want the one v2 directory", ctrl, got)
		}
	}

	// A second sandbox cgroup finds everything enabled already.
	before := len(f.writesUnder("/cg"))
	if _, err := newCgroup(tr, "b", Limits{}); err != nil {
		t.Fatalf("newCgroup(b) = %v", err)
	}
	if got := f.writesUnder("/cg")[before:]; len(got) != 0 {
		t.Errorf("second cgroup wrote %q, want nothing", got)
	}

	// NewChild enables controllers in a for its children.
	child, err := c.NewChild("inner", Limits{MemoryBytes: 64 << 20})
	if err != nil {
		t.Fatalf("NewChild() = %v", err)
	}
	if got, want := child.Path("memory"), "/cg/k8s-lxcfs-sandbox/a/inner"; got != want {
		t.Errorf("child Path = %q, want %q", got, want)
	}
	if got, _ := f.ReadFile("/cg/k8s-lxcfs-sandbox/a/cgroup.subtree_control"); got != "cpu cpuset memory io pids" {
		t.Errorf("a/cgroup.subtree_control = %q after NewChild", got)
	}
	if got, _ := f.ReadFile("/cg/k8s-lxcfs-sandbox/a/inner/memory.max"); got != "67108864" {
		t.Errorf("inner memory.max = %q, want 67108864", got)
	}
}

func TestNewCgroupV2OnlyOfferedControllers(t *testing.T) {
	t.Parallel()
	tr, f := newFakeV2("memory pids")
	if _, err := newCgroup(tr, "a", Limits{MemoryBytes: 1 << 30}); err != nil {
		t.Fatalf("newCgroup() = %v", err)
	}
	if got, _ := f.ReadFile("/cg/cgroup.subtree_control"); got != "memory pids" {
		t.Errorf("root subtree_control = %q, want only the offered \"memory pids\"", got)
	}
	// A cpu limit needs cpu.max, which a cgroup without the cpu controller lacks.
	_, err := newCgroup(tr, "b", Limits{CPUQuotaUS: 1000})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "cpu.max") {
		t.Errorf("newCgroup() with cpu quota = %v, want a missing cpu.max", err)
	}
	if got := f.hasDirsUnder("/cg/k8s-lxcfs-sandbox/b"); got != nil || f.dirs["/cg/k8s-lxcfs-sandbox/b"] {
		t.Errorf("failed cgroup left %v behind", got)
	}
}

func TestNewCgroupErrors(t *testing.T) {
	t.Parallel()
	t.Run("swap without accounting rolls back", func(t *testing.T) {
		t.Parallel()
		tr, f := newFakeV1(false)
		_, err := newCgroup(tr, "a", Limits{MemoryBytes: 1 << 30, SwapBytes: 1 << 20})
		if !errors.Is(err, ErrNoSwapAccounting) {
			t.Fatalf("newCgroup() = %v, want ErrNoSwapAccounting", err)
		}
		for _, root := range tr.roots {
			if f.dirs[root+"/k8s-lxcfs-sandbox/a"] {
				t.Errorf("%s/k8s-lxcfs-sandbox/a left behind", root)
			}
		}
	})
	t.Run("existing cgroup is not reused or removed", func(t *testing.T) {
		t.Parallel()
		tr, f := newFakeV1(true)
		if _, err := newCgroup(tr, "a", Limits{}); err != nil {
			t.Fatal(err)
		}
		_, err := newCgroup(tr, "a", Limits{})
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second newCgroup() = %v, want fs.ErrExist", err)
		}
		if !f.dirs["/cg/memory/k8s-lxcfs-sandbox/a"] {
			t.Error("failed newCgroup removed the existing cgroup")
		}
	})
	for _, name := range []string{"", ".", "..", "a/b", "a\nb"} {
		t.Run("name "+strings.ReplaceAll(name, "\n", `\n`), func(t *testing.T) {
			t.Parallel()
			tr, _ := newFakeV1(true)
			if _, err := newCgroup(tr, name, Limits{}); err == nil || !strings.Contains(err.Error(), "invalid cgroup name") {
				t.Errorf("newCgroup(%q) = %v, want invalid name", name, err)
			}
		})
	}
	t.Run("invalid limits", func(t *testing.T) {
		t.Parallel()
		tr, f := newFakeV1(true)
		if _, err := newCgroup(tr, "a", Limits{MemoryBytes: -1}); err == nil {
			t.Fatal("newCgroup() with negative memory succeeded")
		}
		if len(f.writes) != 0 || f.dirs["/cg/memory/k8s-lxcfs-sandbox"] {
			t.Errorf("invalid limits touched the tree: %q", f.writes)
		}
	})
	t.Run("v1 root cpuset empty", func(t *testing.T) {
		t.Parallel()
		tr, f := newFakeV1(true)
		f.files["/cg/cpuset/cpuset.mems"] = "\n"
		_, err := newCgroup(tr, "a", Limits{})
		if err == nil || !strings.Contains(err.Error(), "cpuset.mems is empty") {
			t.Errorf("newCgroup() = %v, want an empty cpuset.mems error", err)
		}
	})
}

func TestRemove(t *testing.T) {
	t.Parallel()
	for _, v2 := range []bool{false, true} {
		name := map[bool]string{false: "v1", true: "v2"}[v2]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tr, f := newFakeV1(true)
			if v2 {
				tr, f = newFakeV2("cpu cpuset memory io pids")
			}
			a, err := newCgroup(tr, "a", Limits{MemoryBytes: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			b, err := newCgroup(tr, "b", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			inner, err := a.NewChild("inner", Limits{MemoryBytes: 1 << 29})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := inner.NewChild("deeper", Limits{}); err != nil {
				t.Fatal(err)
			}
			// a and everything below it go; the parent stays for b.
			if err := a.Remove(); err != nil {
				t.Fatalf("a.Remove() = %v", err)
			}
			var wantLeft []string
			for _, d := range tr.dirs(ParentName) {
				wantLeft = append(wantLeft, d+"/b")
			}
			var left []string
			for _, d := range tr.dirs(ParentName) {
				left = append(left, f.hasDirsUnder(d)...)
			}
			slices.Sort(left)
			if !slices.Equal(left, wantLeft) {
				t.Errorf("after a.Remove() left %q, want %q", left, wantLeft)
			}
			if err := a.Remove(); err != nil {
				t.Errorf("second a.Remove() = %v, want nil", err)
			}
			// The last one out removes the parent.
			if err := b.Remove(); err != nil {
				t.Fatalf("b.Remove() = %v", err)
			}
			for _, d := range tr.dirs(ParentName) {
				if f.dirs[d] {
					t.Errorf("%s left behind after the last Remove", d)
				}
			}
		})
	}
}
