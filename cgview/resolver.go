// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package cgview

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

// Mode is the host's cgroup layout.
type Mode int

// Cgroup layouts.
const (
	ModeUnknown Mode = iota
	ModeV1           // v1 controllers only
	ModeHybrid       // v1 controllers plus a (usually controller-less) cgroup2 at <root>/unified
	ModeV2           // cgroup2 only, at <root>
)

func (m Mode) String() string {
	switch m {
	case ModeV1:
		return "v1"
	case ModeHybrid:
		return "hybrid"
	case ModeV2:
		return "v2"
	}
	return "unknown"
}

// Options locate the host's /proc and cgroup filesystems.
type Options struct {
	ProcRoot   string // "/proc" in production
	CgroupRoot string // "/sys/fs/cgroup" in production
	// Mode overrides detection (fixtures, or the VM tests).
	Mode Mode
	// Revalidate is how long a cached resolution is trusted before its init's
	// start time is checked again. Zero means one second.
	Revalidate time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrNoContainer means the reader could not be mapped to a cgroup: it exited,
// or its cgroup is not where we look. Callers serve the host's file.
var ErrNoContainer = errors.New("cgview: reader's cgroup not resolvable")

// Container is what a reader resolves to: the init of its pid namespace and
// that init's cgroup paths.
type Container struct {
	// Key identifies the pid namespace (its nsfs inode), or is 0 for readers in
	// the host's pid namespace, which resolve to themselves.
	Key       uint64
	InitPid   int
	InitStart uint64 // clock ticks after boot
	// V1 maps a v1 controller ("memory", "cpu", ...) to the cgroup path.
	V1 map[string]string
	// V2 is the path in the cgroup2 hierarchy (v2 and hybrid).
	V2 string

	// Memo is scratch state whose lifetime is the container's (it survives
	// the init moving cgroups): the /proc/stat renderer keeps the counters it
	// last printed here so none goes backwards.
	Memo *Memo
}

// Memo is per-container state kept by renderers.
type Memo struct {
	mu   sync.Mutex
	vals map[string][]uint64
}

// Update calls fn with the values last stored under key (nil the first time)
// and stores what fn returns, atomically per container.
func (m *Memo) Update(key string, fn func(prev []uint64) []uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vals == nil {
		m.vals = map[string][]uint64{}
	}
	m.vals[key] = fn(m.vals[key])
}

type cacheEntry struct {
	c       *Container
	checked time.Time
	nsFd    int // pins the pid namespace; see Resolve
	pidFd   int // the init's pidfd, readable once it exits; -1 if none
}

// Resolver maps reader pids to containers and reads their cgroups.
type Resolver struct {
	opts      Options
	mode      Mode
	hostNS    uint64
	hostStart uint64

	mu      sync.Mutex
	cache   map[uint64]*cacheEntry
	pids    map[int]pidEntry     // recent readers; see pidTTL
	adopted map[uint64]SavedMemo // from a predecessor, until first resolved
}

// New returns a Resolver for the host described by opts.
func New(opts Options) (*Resolver, error) {
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	if opts.Revalidate == 0 {
		opts.Revalidate = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Resolver{opts: opts, mode: opts.Mode, cache: map[uint64]*cacheEntry{}, pids: map[int]pidEntry{}}
	if r.mode == ModeUnknown {
		r.mode = detectMode(opts.CgroupRoot)
	}
	if r.mode == ModeUnknown {
		return nil, fmt.Errorf("cgview: no cgroup filesystem found at %s", opts.CgroupRoot)
	}
	// The daemon runs in the host's pid namespace (hostPID in Kubernetes);
	// its own namespace is the one whose readers are "not in a container".
	// (Reading /proc/1/ns needs ptrace rights over init, which hardened hosts deny.)
	ns, err := r.nsOf("self")
	if err != nil {
		return nil, fmt.Errorf("cgview: own pid namespace: %w", err)
	}
	r.hostNS = ns
	if st, err := r.pidStat(1); err == nil {
		r.hostStart = st.StartTime
	}
	return r, nil
}

// Mode returns the detected cgroup layout.
func (r *Resolver) Mode() Mode { return r.mode }

func detectMode(root string) Mode {
	if filepath.Clean(root) == "/sys/fs/cgroup" {
		switch cgroups.Mode() {
		case cgroups.Legacy:
			return ModeV1
		case cgroups.Hybrid:
			return ModeHybrid
		case cgroups.Unified:
			return ModeV2
		}
		return ModeUnknown
	}
	// A fixture tree: recognise the layout by its files.
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return ModeV2
	}
	if _, err := os.Stat(filepath.Join(root, "memory")); err != nil {
		return ModeUnknown
	}
	if _, err := os.Stat(filepath.Join(root, "unified")); err == nil {
		return ModeHybrid
	}
	return ModeV1
}

// pidNS returns the inode of pid's pid namespace. Fixture trees store the
// link text in a regular file.
func (r *Resolver) pidNS(pid int) (uint64, error) {
	return r.nsOf(strconv.Itoa(pid))
}

func (r *Resolver) nsOf(pid string) (uint64, error) {
	p := r.opts.ProcRoot + "/" + pid + "/ns/pid"
	link, err := os.Readlink(p)
	if err != nil {
		b, rerr := os.ReadFile(p)
		if rerr != nil {
			return 0, err
		}
		link = string(bytes.TrimSpace(b))
	}
	// "pid:[4026531836]"
	s, ok := strings.CutPrefix(link, "pid:[")
	s, ok2 := strings.CutSuffix(s, "]")
	if !ok || !ok2 {
		return 0, fmt.Errorf("pid namespace link %q of pid %s: unexpected form", link, pid)
	}
	return strconv.ParseUint(s, 10, 64)
}

func (r *Resolver) pidStat(pid int) (procfs.PidStat, error) {
	b, err := procfs.ReadFile(r.opts.ProcRoot + "/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procfs.PidStat{}, err
	}
	return procfs.ParsePidStat(b)
}

// Resolve maps a reader's pid (in the pid namespace of ProcRoot) to its
// container. It returns an error wrapping [ErrNoContainer] when that's not
// possible; callers then serve the host's view.
//
// Containers are cached by pid namespace inode. The cache holds an open
// descriptor of each namespace, so the namespace — and with it its inode
// number — can't be freed and reused by a new container while cached: a
// cache hit is always the reader's own namespace. Each entry re-reads its
// init's cgroup at most once per Options.Revalidate, to follow moves.
func (r *Resolver) Resolve(pid int) (*Container, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("%w: pid %d", ErrNoContainer, pid)
	}
	now := r.opts.Now()
	r.mu.Lock()
	if pe, ok := r.pids[pid]; ok && now.Before(pe.expires) {
		r.mu.Unlock()
		return pe.c, nil
	}
	r.mu.Unlock()
	c, err := r.resolve(pid, now)
	if err == nil && c.Key != 0 {
		r.mu.Lock()
		r.pids[pid] = pidEntry{c: c, expires: now.Add(pidTTL)}
		r.mu.Unlock()
	}
	return c, err
}

// pidTTL is how long a reader pid's resolution is reused without looking
// at the pid again. A pid is only reused after pid_max more forks, which no
// machine does in this time, so a hit is always the same process.
const pidTTL = 100 * time.Millisecond

type pidEntry struct {
	c       *Container
	expires time.Time
}

func (r *Resolver) resolve(pid int, now time.Time) (*Container, error) {
	ns, err := r.pidNS(pid)
	if err != nil {
		return nil, fmt.Errorf("%w: pid %d: %w", ErrNoContainer, pid, err)
	}
	if ns == r.hostNS {
		// Readers in the host's pid namespace get their own cgroup; their
		// namespace's init is the host's, so uptime is the host's.
		return r.load(0, pid, r.hostStart, nil)
	}
	r.mu.Lock()
	e := r.cache[ns]
	if e != nil && now.Sub(e.checked) < r.opts.Revalidate {
		r.mu.Unlock()
		return e.c, nil
	}
	r.mu.Unlock()
	if e != nil {
		// Follow the init into another cgroup, if it moved.
		c, err := r.load(ns, e.c.InitPid, e.c.InitStart, e.c.Memo)
		if err == nil {
			r.mu.Lock()
			if sameCgroups(c, e.c) {
				c = e.c
			} else {
				e.c = c
			}
			e.checked = now
			r.mu.Unlock()
			return c, nil
		}
		r.drop(ns, e)
	}
	initPid, err := r.findInit(pid, ns)
	if err != nil {
		return nil, fmt.Errorf("%w: pid %d: %w", ErrNoContainer, pid, err)
	}
	st, err := r.pidStat(initPid)
	if err != nil {
		return nil, fmt.Errorf("%w: init %d of pid %d: %w", ErrNoContainer, initPid, pid, err)
	}
	nsFd, err := unix.Open(r.opts.ProcRoot+"/"+strconv.Itoa(initPid)+"/ns/pid", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: pin pid namespace of init %d: %w", ErrNoContainer, initPid, err)
	}
	c, err := r.load(ns, initPid, st.StartTime, r.takeAdopted(ns, initPid, st.StartTime))
	if err == nil {
		// The init may have exited between the lookup and the open; then the
		// descriptor pins a different namespace (or none).
		if got, err2 := r.pidNS(initPid); err2 != nil || got != ns {
			err = fmt.Errorf("%w: init %d of pid %d exited during resolution", ErrNoContainer, initPid, pid)
		}
	}
	if err != nil {
		unix.Close(nsFd) //nolint:errcheck // read-only namespace descriptor
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.cache[ns]; old != nil {
		unix.Close(nsFd) //nolint:errcheck // a concurrent resolution won
		return old.c, nil
	}
	r.cache[ns] = &cacheEntry{c: c, checked: now, nsFd: nsFd, pidFd: r.pidfd(c)}
	return c, nil
}

// SavedMemo is a container's Memo as handed to a successor process. The
// init's pid and start time make sure it is given back to the same
// container, not to a new one that reuses the namespace inode.
type SavedMemo struct {
	Key       uint64              `json:"key"`
	InitPid   int                 `json:"initPid"`
	InitStart uint64              `json:"initStart"`
	Vals      map[string][]uint64 `json:"vals"`
}

// ExportMemos returns the memos of every cached container.
func (r *Resolver) ExportMemos() []SavedMemo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SavedMemo, 0, len(r.cache))
	for ns, e := range r.cache {
		m := e.c.Memo
		m.mu.Lock()
		vals := make(map[string][]uint64, len(m.vals))
		for k, v := range m.vals {
			vals[k] = append([]uint64(nil), v...)
		}
		m.mu.Unlock()
		out = append(out, SavedMemo{Key: ns, InitPid: e.c.InitPid, InitStart: e.c.InitStart, Vals: vals})
	}
	return out
}

// ImportMemos keeps a predecessor's memos; each is given to its container
// when that is first resolved here, so counters carry on where they were.
func (r *Resolver) ImportMemos(ms []SavedMemo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.adopted == nil {
		r.adopted = map[uint64]SavedMemo{}
	}
	for _, m := range ms {
		r.adopted[m.Key] = m
	}
}

func (r *Resolver) takeAdopted(ns uint64, initPid int, start uint64) *Memo {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.adopted[ns]
	if !ok {
		return nil
	}
	delete(r.adopted, ns)
	if m.InitPid != initPid || m.InitStart != start {
		return nil
	}
	return &Memo{vals: m.Vals}
}

func sameCgroups(a, b *Container) bool {
	if a.V2 != b.V2 || len(a.V1) != len(b.V1) {
		return false
	}
	for k, v := range a.V1 {
		if b.V1[k] != v {
			return false
		}
	}
	return true
}

// drop removes e (if still cached under ns) and releases its namespace.
func (r *Resolver) drop(ns uint64, e *cacheEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache[ns] == e {
		delete(r.cache, ns)
		unix.Close(e.nsFd) //nolint:errcheck // read-only namespace descriptor
		if e.pidFd >= 0 {
			unix.Close(e.pidFd) //nolint:errcheck // pidfd
		}
	}
}

// alive reports whether c's init still runs in c's namespace.
func (r *Resolver) alive(c *Container) bool {
	st, err := r.pidStat(c.InitPid)
	if err != nil || st.StartTime != c.InitStart {
		return false
	}
	ns, err := r.pidNS(c.InitPid)
	return err == nil && ns == c.Key
}

// Prune forgets containers whose init exited: their namespace is gone and
// its inode number may be reused.
func (r *Resolver) Prune() {
	now := r.opts.Now()
	r.mu.Lock()
	for pid, pe := range r.pids {
		if now.After(pe.expires) {
			delete(r.pids, pid)
		}
	}
	var polled []*cacheEntry
	var pfds []unix.PollFd
	var others []*cacheEntry
	for _, e := range r.cache {
		if e.pidFd >= 0 {
			polled = append(polled, e)
			pfds = append(pfds, unix.PollFd{Fd: int32(e.pidFd), Events: unix.POLLIN})
		} else {
			others = append(others, e)
		}
	}
	r.mu.Unlock()
	// One poll(2) tells which of the inits exited (their pidfd turns
	// readable), however many containers are cached.
	if len(pfds) > 0 {
		if _, err := unix.Poll(pfds, 0); err == nil {
			for i, p := range pfds {
				if p.Revents != 0 {
					r.drop(polled[i].c.Key, polled[i])
				}
			}
		} else {
			others = append(others, polled...)
		}
	}
	for _, e := range others {
		if !r.alive(e.c) {
			r.drop(e.c.Key, e)
		}
	}
}

// pidfd opens a pidfd for c's init, so Prune learns of its exit without
// reading /proc. Only for the real /proc: fixture trees' pids are not
// processes. It returns -1 where pidfds aren't available (kernels before
// 5.3) or the init already exited.
func (r *Resolver) pidfd(c *Container) int {
	if r.opts.ProcRoot != "/proc" {
		return -1
	}
	fd, err := unix.PidfdOpen(c.InitPid, 0)
	if err != nil {
		return -1
	}
	// The pid might have been reused since the resolution: check it is
	// still the init we resolved (same start time) now that it's pinned.
	if !r.alive(c) {
		unix.Close(fd) //nolint:errcheck // pidfd
		return -1
	}
	return fd
}

// Run prunes dead containers every interval until ctx is done.
func (r *Resolver) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			r.Prune()
		}
	}
}

// Containers returns the cached containers (those read recently).
func (r *Resolver) Containers() []*Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Container, 0, len(r.cache))
	for _, e := range r.cache {
		out = append(out, e.c)
	}
	return out
}

// findInit returns the host pid of pid 1 of namespace ns, which pid is in.
// The init is usually the reader's outermost ancestor inside ns; processes
// that entered ns with setns (kubectl exec) have ancestors outside it, and
// then the namespace's members are searched.
func (r *Resolver) findInit(pid int, ns uint64) (int, error) {
	cur := pid
	for depth := 0; depth < 64; depth++ {
		if r.isNSInit(cur) {
			return cur, nil
		}
		st, err := r.pidStat(cur)
		if err != nil {
			return 0, err
		}
		if st.PPid <= 0 {
			break
		}
		pns, err := r.pidNS(st.PPid)
		if err != nil || pns != ns {
			break
		}
		cur = st.PPid
	}
	ents, err := os.ReadDir(r.opts.ProcRoot)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pns, err := r.pidNS(p); err == nil && pns == ns && r.isNSInit(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no init found for pid namespace %d", ns)
}

func (r *Resolver) isNSInit(pid int) bool {
	b, err := procfs.ReadFile(r.opts.ProcRoot + "/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	ids, err := procfs.ParseNSpid(b)
	return err == nil && len(ids) > 1 && ids[len(ids)-1] == 1
}

func (r *Resolver) load(ns uint64, pid int, start uint64, memo *Memo) (*Container, error) {
	f, err := os.Open(r.opts.ProcRoot + "/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("%w: cgroup of pid %d: %w", ErrNoContainer, pid, err)
	}
	defer f.Close() //nolint:errcheck // read-only
	v1, v2, err := cgroups.ParseCgroupFromReaderUnified(f)
	if err != nil {
		return nil, fmt.Errorf("%w: cgroup of pid %d: %w", ErrNoContainer, pid, err)
	}
	if memo == nil {
		memo = &Memo{}
	}
	c := &Container{Key: ns, InitPid: pid, InitStart: start, V1: v1, V2: v2, Memo: memo}
	if r.mode == ModeV2 && v2 == "" || r.mode != ModeV2 && len(v1) == 0 {
		return nil, fmt.Errorf("%w: pid %d has no %s cgroup", ErrNoContainer, pid, r.mode)
	}
	return c, nil
}
