// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/go-logr/logr"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
)

// newTestFS serves the fixture host in testdata/host: three CPUs, a
// container cgroup "ctr" with 256 MiB, cpuset 1-2 and a 0.5 CPU quota, and a
// reader pid 42 in it (in the host pid namespace, so it resolves to itself).
func newTestFS(t *testing.T) *FS {
	t.Helper()
	root := "testdata/host"
	r, err := cgview.New(cgview.Options{ProcRoot: root + "/proc", CgroupRoot: root + "/cgroup"})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{ProcRoot: root + "/proc", SysRoot: root + "/sys", Resolver: r, CFS: true, Swap: true, Log: logr.Discard()})
}

const reader = 42

func header(node uint64, pid uint32) fuse.InHeader {
	return fuse.InHeader{NodeId: node, Caller: fuse.Caller{Pid: pid}}
}

func lookup(t *testing.T, f *FS, dir uint64, name string, pid uint32) (fuse.EntryOut, fuse.Status) {
	t.Helper()
	var out fuse.EntryOut
	h := header(dir, pid)
	return out, f.Lookup(nil, &h, name, &out)
}

func lookupPath(t *testing.T, f *FS, p string, pid uint32) uint64 {
	t.Helper()
	id := uint64(1)
	for _, name := range strings.Split(p, "/") {
		out, st := lookup(t, f, id, name, pid)
		if !st.Ok() {
			t.Fatalf("lookup %s (at %s): %v", p, name, st)
		}
		id = out.NodeId
	}
	return id
}

func readAll(t *testing.T, f *FS, p string, pid uint32) string {
	t.Helper()
	id := lookupPath(t, f, p, pid)
	var oo fuse.OpenOut
	in := fuse.OpenIn{InHeader: header(id, pid)}
	if st := f.Open(nil, &in, &oo); !st.Ok() {
		t.Fatalf("open %s: %v", p, st)
	}
	if oo.OpenFlags&fuse.FOPEN_DIRECT_IO == 0 {
		t.Errorf("open %s: no FOPEN_DIRECT_IO; the page cache would mix readers' views", p)
	}
	defer f.Release(nil, &fuse.ReleaseIn{Fh: oo.Fh})
	var b []byte
	for {
		ri := fuse.ReadIn{Fh: oo.Fh, Offset: uint64(len(b)), Size: 7}
		res, st := f.Read(nil, &ri, make([]byte, 7))
		if !st.Ok() {
			t.Fatalf("read %s: %v", p, st)
		}
		chunk, _ := res.Bytes(make([]byte, 7))
		if len(chunk) == 0 {
			return string(b)
		}
		b = append(b, chunk...)
	}
}

func TestNodeIDsAreAFunctionOfThePath(t *testing.T) {
	t.Parallel()
	// A successor process must serve the node IDs the kernel got from its
	// predecessor, so IDs depend on nothing but the path — not on lookup
	// order, not on the process.
	a, b := newTestFS(t), newTestFS(t)
	paths := []string{"proc/stat", "proc/meminfo", "sys/devices/system/cpu/cpu0/topology/core_id", "proc"}
	idsA := map[string]uint64{}
	for _, p := range paths {
		idsA[p] = lookupPath(t, a, p, reader)
	}
	for i := len(paths) - 1; i >= 0; i-- { // the other filesystem, the other order
		p := paths[i]
		if got := lookupPath(t, b, p, reader); got != idsA[p] || got != nodeID(p) {
			t.Errorf("%s: IDs %d and %d in two filesystems, nodeID %d", p, idsA[p], got, nodeID(p))
		}
	}
	if nodeID("") != 1 {
		t.Errorf("root must be FUSE_ROOT_ID")
	}
}

func TestNodeIDsStableAcrossVersions(t *testing.T) {
	t.Parallel()
	// These values are a compatibility contract with already-running
	// daemons: changing the hash breaks hot upgrades of every node.
	for p, want := range map[string]uint64{
		"proc":         0x85729b0e3537bc61,
		"proc/meminfo": 0x49865b5a0139bf53,
	} {
		if got := nodeID(p); got != want {
			t.Errorf("nodeID(%q) = %#x, want %#x", p, got, want)
		}
	}
}

func TestNodeIDsUnique(t *testing.T) {
	t.Parallel()
	seen := map[uint64]string{}
	var paths []string
	for _, f := range procFiles {
		paths = append(paths, "proc/"+f)
	}
	for i := 0; i < 8192; i++ {
		for _, sub := range []string{"", "/topology", "/topology/core_id", "/cache/index0/size", "/cpufreq"} {
			paths = append(paths, cpuDir+"/cpu"+strconv.Itoa(i)+sub)
		}
	}
	for _, p := range paths {
		id := nodeID(p)
		if other, dup := seen[id]; dup {
			t.Fatalf("nodeID collision: %q and %q", p, other)
		}
		if id <= 1 {
			t.Fatalf("nodeID(%q) = %d collides with reserved IDs", p, id)
		}
		seen[id] = p
	}
}

func TestContainerView(t *testing.T) {
	t.Parallel()
	f := newTestFS(t)
	if got := readAll(t, f, "proc/meminfo", reader); !strings.HasPrefix(got, "MemTotal:         262144 kB\n") {
		t.Errorf("meminfo starts %q, want the 256 MiB limit", got[:40])
	}
	// cpuset 1-2 cut to one CPU by the 0.5 quota: host CPU 1, shown as cpu0.
	if got := readAll(t, f, "sys/devices/system/cpu/online", reader); got != "0\n" {
		t.Errorf("online = %q, want \"0\\n\"", got)
	}
	if got := readAll(t, f, "sys/devices/system/cpu/cpu0/topology/core_id", reader); got != "10\n" {
		t.Errorf("cpu0/topology/core_id = %q, want host cpu1's \"10\\n\"", got)
	}
	if _, st := lookup(t, f, lookupPath(t, f, cpuDir, reader), "cpu1", reader); st != fuse.ENOENT {
		t.Errorf("lookup cpu1 = %v, want ENOENT for a one-CPU container", st)
	}
	cpuinfo := readAll(t, f, "proc/cpuinfo", reader)
	if n := strings.Count(cpuinfo, "processor\t:"); n != 1 {
		t.Errorf("cpuinfo shows %d processors, want 1", n)
	}
	stat := readAll(t, f, "proc/stat", reader)
	if !strings.Contains(stat, "\ncpu0 ") || strings.Contains(stat, "\ncpu1 ") {
		t.Errorf("stat should have exactly cpu0:\n%s", stat)
	}
	// 3s of cpuacct time (host CPUs 1 and 2) folded into the one visible CPU.
	if !strings.HasPrefix(strings.SplitN(stat, "\n", 3)[1], "cpu0 300 0 100 ") {
		t.Errorf("cpu0 line %q, want user 300 system 100 ticks", strings.SplitN(stat, "\n", 3)[1])
	}
	if got := readAll(t, f, "proc/diskstats", reader); !strings.Contains(got, "vda 1 0 8 0 2 0 16 ") {
		t.Errorf("diskstats = %q, want the container's 1 read of 8 sectors and 2 writes of 16", got)
	}
}

func TestEntryTimeouts(t *testing.T) {
	t.Parallel()
	f := newTestFS(t)
	f.opts.EntryTimeout = 5e9
	out, _ := lookup(t, f, 1, "proc", reader)
	if out.EntryValid != 5 {
		t.Errorf("proc entry valid %ds, want 5: static names may be cached", out.EntryValid)
	}
	cpu := lookupPath(t, f, cpuDir, reader)
	out, _ = lookup(t, f, cpu, "cpu0", reader)
	if out.EntryValid != 0 || out.EntryValidNsec != 0 || out.AttrValid != 0 {
		t.Errorf("cpu0 entry cached (%d.%09ds): the cpu directory differs per reader", out.EntryValid, out.EntryValidNsec)
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	f := newTestFS(t)
	id := lookupPath(t, f, "proc/meminfo", reader)
	for _, flags := range []uint32{syscall.O_WRONLY, syscall.O_RDWR, syscall.O_RDONLY | syscall.O_TRUNC} {
		in := fuse.OpenIn{InHeader: header(id, reader), Flags: flags}
		if st := f.Open(nil, &in, &fuse.OpenOut{}); st != fuse.EACCES {
			t.Errorf("open flags %#o = %v, want EACCES", flags, st)
		}
	}
	if st := f.SetAttr(nil, &fuse.SetAttrIn{}, &fuse.AttrOut{}); st != fuse.EACCES {
		t.Errorf("setattr = %v, want EACCES", st)
	}
	if f.Handles() != 0 {
		t.Errorf("%d handles left open", f.Handles())
	}
}

func TestReadDirOnceEach(t *testing.T) {
	t.Parallel()
	f := newTestFS(t)
	id := lookupPath(t, f, "proc", reader)
	var oo fuse.OpenOut
	if st := f.OpenDir(nil, &fuse.OpenIn{InHeader: header(id, reader)}, &oo); !st.Ok() {
		t.Fatal(st)
	}
	defer f.ReleaseDir(&fuse.ReleaseIn{Fh: oo.Fh})
	h := f.getHandle(oo.Fh)
	// Read back in tiny buffers (one entry each) using the offsets given.
	var names []string
	for off := uint64(0); off < uint64(len(h.ents))+2; off++ {
		l := fuse.NewDirEntryList(make([]byte, 48), off)
		if st := f.ReadDir(nil, &fuse.ReadIn{Fh: oo.Fh, Offset: off}, l); !st.Ok() {
			t.Fatal(st)
		}
		if l.Offset == off {
			break
		}
		names = append(names, h.ents[off].name)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
	}
	for _, want := range append([]string{".", "..", "pressure"}, procFiles...) {
		if !seen[want] {
			t.Errorf("listing %v lacks %s", names, want)
		}
	}
}

func TestHostFallback(t *testing.T) {
	t.Parallel()
	f := newTestFS(t)
	// pid 1 is the host's init with no cgroup file in the fixture: host view.
	got := readAll(t, f, "proc/loadavg", 1)
	if got != "0.50 0.40 0.30 2/300 4242\n" {
		t.Errorf("loadavg for an unresolvable reader = %q, want the host's", got)
	}
	if f.Counters.HostFallbacks.Load() == 0 {
		t.Errorf("host fallback not counted")
	}
}
