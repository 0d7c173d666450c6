// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/loadavg"
)

// Options configure the filesystem.
type Options struct {
	ProcRoot string // host /proc
	SysRoot  string // host /sys
	Resolver *cgview.Resolver
	// Loadavg samples per-container load; nil serves the host's loadavg.
	Loadavg *loadavg.Sampler
	// CFS cuts the visible CPUs to ceil(quota/period).
	CFS bool
	// Swap shows the container's swap; false reports none (--disable-swap).
	Swap bool
	// CacheTTL is how long a container's rendered file is reused for its
	// next opens; 0 renders every open.
	CacheTTL time.Duration
	// EntryTimeout is how long the kernel may cache names and attributes of
	// paths that are the same for every reader.
	EntryTimeout time.Duration
	// Metrics, if set, is called once per file at New for the observer of
	// that file (its path relative to the mount point, as in [Files], or
	// [OtherFiles] for the host's files passed through). Observers run on
	// every open, so they must be cheap and safe for concurrent use.
	Metrics func(file string) FileMetrics
	Log     logr.Logger
}

// FileMetrics observes one file (the daemon backs it with Prometheus).
type FileMetrics interface {
	// Opened counts an open that was served, with the time it took to
	// render the file's snapshot.
	Opened(render time.Duration)
	// HostFallback counts an open answered with the host's file because
	// the reader's container could not be resolved or rendered.
	HostFallback()
}

// OtherFiles is the file name under which [Options.Metrics] observes the
// host's files passed through below sys/devices/system/cpu (cpuN/...),
// which are too many to observe one by one.
const OtherFiles = "sys/devices/system/cpu/other"

// Counters are the filesystem's running totals.
type Counters struct {
	Opens, HostFallbacks, Errors atomic.Uint64
}

// FS implements fuse.RawFileSystem.
type FS struct {
	fuse.RawFileSystem // ENOSYS for everything we don't implement

	opts        Options
	hasPressure bool
	dirs        map[string][]string
	start       time.Time
	log         logr.Logger

	mu    sync.RWMutex
	paths map[uint64]string // node ID → path, for IDs the kernel holds

	hmu     sync.Mutex
	handles map[uint64]*handle
	nextFh  uint64

	cache renderCache

	// metrics maps node IDs of Files (and metricsOther) to their observers;
	// built by New and read-only after, so the hot path takes no lock.
	metrics      map[uint64]FileMetrics
	metricsOther FileMetrics

	Counters Counters
}

type handle struct {
	data []byte   // a file's snapshot
	ents []dirent // a directory's snapshot
}

// New returns the filesystem.
func New(opts Options) *FS {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	f := &FS{
		RawFileSystem: fuse.NewDefaultRawFileSystem(),
		opts:          opts,
		start:         time.Now(),
		log:           opts.Log,
		paths:         map[uint64]string{},
		handles:       map[uint64]*handle{},
	}
	if _, err := os.Stat(opts.ProcRoot + "/pressure/cpu"); err == nil {
		f.hasPressure = true
	}
	f.cache.ttl = opts.CacheTTL
	if opts.Metrics != nil {
		f.metrics = map[uint64]FileMetrics{}
		for _, p := range Files() {
			f.metrics[nodeID(p)] = opts.Metrics(p)
		}
		f.metricsOther = opts.Metrics(OtherFiles)
	}
	f.dirs = f.staticDirs()
	for d, kids := range f.dirs {
		f.paths[nodeID(d)] = d
		for _, k := range kids {
			p := joinPath(d, k)
			f.paths[nodeID(p)] = p
		}
	}
	return f
}

func (f *FS) String() string { return "lxcfs" }

func (f *FS) pathOf(id uint64) (string, bool) {
	f.mu.RLock()
	p, ok := f.paths[id]
	f.mu.RUnlock()
	return p, ok
}

func (f *FS) remember(p string) uint64 {
	id := nodeID(p)
	f.mu.RLock()
	old, ok := f.paths[id]
	f.mu.RUnlock()
	if ok {
		if old != p {
			// Two paths hashing alike in a tree of a few hundred names: report
			// it loudly rather than serve the wrong file.
			f.log.Error(nil, "Node ID collision", "file", p, "other", old)
		}
		return id
	}
	f.mu.Lock()
	f.paths[id] = p
	f.mu.Unlock()
	return id
}

// visibleFor returns pid's CPU view, read on first use and then reused for
// the rest of the request.
func (f *FS) visibleFor(pid uint32) func() cpuView {
	var once sync.Once
	var v cpuView
	return func() cpuView {
		once.Do(func() { v = f.cpuViewOf(int(pid)) })
		return v
	}
}

func (f *FS) timeout(e entry) (sec uint64, nsec uint32) {
	if e.dynamic {
		return 0, 0
	}
	t := f.opts.EntryTimeout
	return uint64(t / time.Second), uint32(t % time.Second)
}

func (f *FS) fillAttr(id uint64, e entry, a *fuse.Attr) fuse.Status {
	a.Ino = id
	a.Nlink = 1
	a.Blksize = 4096
	t := uint64(f.start.Unix())
	a.Atime, a.Mtime, a.Ctime = t, t, t
	switch e.kind {
	case kindDir:
		a.Mode = syscall.S_IFDIR | 0o555
		a.Nlink = 2
	case kindFile:
		a.Mode = syscall.S_IFREG | 0o444
	case kindHost, kindHostDir, kindLink:
		var st syscall.Stat_t
		if err := syscall.Lstat(e.host, &st); err != nil {
			return fuse.ToStatus(err)
		}
		a.Mode = st.Mode &^ 0o222 // read-only tree
		a.Size = uint64(st.Size)
		a.Nlink = uint32(st.Nlink)
	default:
		return fuse.ENOENT
	}
	return fuse.OK
}

// Lookup implements fuse.RawFileSystem.
func (f *FS) Lookup(_ <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	dir, ok := f.pathOf(h.NodeId)
	if !ok {
		return fuse.ENOENT
	}
	p := joinPath(dir, name)
	e := f.lookupPath(p, f.visibleFor(h.Pid))
	if e.kind == kindNone {
		return fuse.ENOENT
	}
	id := f.remember(p)
	if st := f.fillAttr(id, e, &out.Attr); !st.Ok() {
		return st
	}
	out.NodeId, out.Generation = id, 1
	out.EntryValid, out.EntryValidNsec = f.timeout(e)
	out.AttrValid, out.AttrValidNsec = f.timeout(e)
	return fuse.OK
}

// Forget implements fuse.RawFileSystem. Node IDs are derived from paths, so
// there is nothing to release.
func (f *FS) Forget(uint64, uint64) {}

// GetAttr implements fuse.RawFileSystem.
func (f *FS) GetAttr(_ <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	p, ok := f.pathOf(in.NodeId)
	if !ok {
		return fuse.ENOENT
	}
	e := f.lookupPath(p, f.visibleFor(in.Pid))
	if st := f.fillAttr(in.NodeId, e, &out.Attr); !st.Ok() {
		return st
	}
	out.AttrValid, out.AttrValidNsec = f.timeout(e)
	return fuse.OK
}

// Access implements fuse.RawFileSystem: everything is readable, nothing writable.
func (f *FS) Access(_ <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	if in.Mask&2 != 0 { // W_OK
		return fuse.Status(syscall.EROFS)
	}
	return fuse.OK
}

// Readlink implements fuse.RawFileSystem for passed-through sysfs links.
func (f *FS) Readlink(_ <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	p, ok := f.pathOf(h.NodeId)
	if !ok {
		return nil, fuse.ENOENT
	}
	e := f.lookupPath(p, f.visibleFor(h.Pid))
	if e.kind != kindLink {
		return nil, fuse.EINVAL
	}
	t, err := os.Readlink(e.host)
	if err != nil {
		return nil, fuse.ToStatus(err)
	}
	return []byte(t), fuse.OK
}

func (f *FS) addHandle(h *handle) uint64 {
	f.hmu.Lock()
	f.nextFh++
	fh := f.nextFh
	f.handles[fh] = h
	f.hmu.Unlock()
	return fh
}

func (f *FS) getHandle(fh uint64) *handle {
	f.hmu.Lock()
	h := f.handles[fh]
	f.hmu.Unlock()
	return h
}

func (f *FS) dropHandle(fh uint64) {
	f.hmu.Lock()
	delete(f.handles, fh)
	f.hmu.Unlock()
}

// Open implements fuse.RawFileSystem: it renders the file for the caller.
func (f *FS) Open(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if in.Flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return fuse.EACCES
	}
	p, ok := f.pathOf(in.NodeId)
	if !ok {
		return fuse.ENOENT
	}
	f.Counters.Opens.Add(1)
	var start time.Time
	if f.metrics != nil {
		start = time.Now()
	}
	vis := f.visibleFor(in.Pid)
	e := f.lookupPath(p, vis)
	var data []byte
	var fm FileMetrics
	switch e.kind {
	case kindFile:
		fm = f.metrics[in.NodeId] // nil without metrics
		data = f.render(p, int(in.Pid), vis, fm)
	case kindHost:
		b, err := os.ReadFile(e.host)
		if err != nil {
			return fuse.ToStatus(err)
		}
		data, fm = b, f.metricsOther
	case kindDir, kindHostDir:
		return fuse.EISDIR
	default:
		return fuse.ENOENT
	}
	out.Fh = f.addHandle(&handle{data: data})
	out.OpenFlags = fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH
	if fm != nil {
		fm.Opened(time.Since(start))
	}
	return fuse.OK
}

// Read implements fuse.RawFileSystem: a slice of the open's snapshot.
func (f *FS) Read(_ <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	h := f.getHandle(in.Fh)
	if h == nil || h.ents != nil {
		return nil, fuse.EBADF
	}
	if in.Offset >= uint64(len(h.data)) {
		return fuse.ReadResultData(nil), fuse.OK
	}
	end := min(in.Offset+uint64(in.Size), uint64(len(h.data)))
	return fuse.ReadResultData(h.data[in.Offset:end]), fuse.OK
}

// Release implements fuse.RawFileSystem.
func (f *FS) Release(_ <-chan struct{}, in *fuse.ReleaseIn) { f.dropHandle(in.Fh) }

// Flush implements fuse.RawFileSystem (sent only by kernels that ignore FOPEN_NOFLUSH).
func (f *FS) Flush(<-chan struct{}, *fuse.FlushIn) fuse.Status { return fuse.OK }

// OpenDir implements fuse.RawFileSystem: it snapshots the listing for the caller.
func (f *FS) OpenDir(_ <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	p, ok := f.pathOf(in.NodeId)
	if !ok {
		return fuse.ENOENT
	}
	vis := f.visibleFor(in.Pid)
	e := f.lookupPath(p, vis)
	if e.kind != kindDir && e.kind != kindHostDir {
		return fuse.ENOTDIR
	}
	ents := append([]dirent{{name: ".", mode: syscall.S_IFDIR, id: in.NodeId}, {name: "..", mode: syscall.S_IFDIR, id: 1}}, f.listDir(p, vis)...)
	for _, d := range ents[2:] {
		f.remember(joinPath(p, d.name))
	}
	out.Fh = f.addHandle(&handle{ents: ents})
	if e.dynamic {
		out.OpenFlags = fuse.FOPEN_DIRECT_IO
	}
	return fuse.OK
}

// ReadDir implements fuse.RawFileSystem. Offsets index the open's snapshot,
// so each entry is listed exactly once however the kernel splits the reads.
func (f *FS) ReadDir(_ <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	h := f.getHandle(in.Fh)
	if h == nil || h.ents == nil {
		return fuse.EBADF
	}
	for i := in.Offset; i < uint64(len(h.ents)); i++ {
		d := h.ents[i]
		if !out.AddDirEntry(fuse.DirEntry{Name: d.name, Mode: d.mode, Ino: d.id, Off: i + 1}) {
			break
		}
	}
	return fuse.OK
}

// ReleaseDir implements fuse.RawFileSystem.
func (f *FS) ReleaseDir(in *fuse.ReleaseIn) { f.dropHandle(in.Fh) }

// StatFs implements fuse.RawFileSystem.
func (f *FS) StatFs(_ <-chan struct{}, _ *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	out.Bsize, out.Frsize, out.NameLen = 4096, 4096, 255
	return fuse.OK
}

// SetAttr implements fuse.RawFileSystem: the tree is read-only.
func (f *FS) SetAttr(<-chan struct{}, *fuse.SetAttrIn, *fuse.AttrOut) fuse.Status {
	return fuse.EACCES
}

// Handles returns the number of open handles.
func (f *FS) Handles() int {
	f.hmu.Lock()
	defer f.hmu.Unlock()
	return len(f.handles)
}
