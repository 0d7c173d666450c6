// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package loadavg keeps per-container load averages the way the kernel keeps
// the host's: every interval it counts the container's runnable (R) and
// uninterruptible (D) tasks and folds the count into 1, 5 and 15 minute
// exponential averages in FSHIFT-11 fixed point.
//
// Only containers that read /proc/loadavg or /proc/stat are sampled, and each
// sample reads at most MaxTasks task states, so the cost is bounded by what
// readers ask for. Containers whose cgroup resolution is dropped by cgview stop
// being sampled.
package loadavg

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

// MaxTasks bounds the tasks counted per container per sample.
const MaxTasks = 4096

const (
	fshift = 11
	fixed1 = 1 << fshift
)

// Sample is one container's state.
type Sample struct {
	Avg                     [3]uint64 // fixed point, FSHIFT 11
	Running, Blocked, Total uint64
	LastPid                 int
}

type entry struct {
	c    *cgview.Container
	s    Sample
	seen time.Time
	fds  taskFiles // guarded by its own mutex
}

// Sampler samples registered containers in the background.
type Sampler struct {
	r        *cgview.Resolver
	procRoot string
	interval time.Duration
	exp      [3]uint64
	log      logr.Logger

	mu      sync.Mutex
	entries map[uint64]*entry // by pid namespace (cgview.Container.Key)
}

// MinInterval is the shortest sampling interval. Below about 220ms the
// 15-minute decay factor rounds to 1.0 in FSHIFT-11 fixed point, and the
// average would never move.
const MinInterval = time.Second

// New returns a Sampler that samples every interval (the kernel uses 5s),
// at least MinInterval.
func New(r *cgview.Resolver, procRoot string, interval time.Duration, log logr.Logger) *Sampler {
	interval = max(interval, MinInterval)
	s := &Sampler{r: r, procRoot: procRoot, interval: interval, log: log, entries: map[uint64]*entry{}}
	for i, minutes := range []float64{1, 5, 15} {
		s.exp[i] = uint64(math.Round(fixed1 / math.Exp(interval.Seconds()/(60*minutes))))
	}
	return s
}

// Get returns c's latest sample, counting its tasks now if c is new, and
// registers c for background sampling. c must be a container (Key != 0).
func (s *Sampler) Get(c *cgview.Container) Sample {
	s.mu.Lock()
	e, ok := s.entries[c.Key]
	if ok {
		e.c = c // the latest resolution: the init may have moved cgroups
		e.seen = time.Now()
		out := e.s
		s.mu.Unlock()
		return out
	}
	s.mu.Unlock()
	e = &entry{c: c, seen: time.Now()}
	running, blocked, total, last := s.count(c, &e.fds)
	// Averages start at zero, as the kernel's do at boot.
	e.s = Sample{Running: running, Blocked: blocked, Total: total, LastPid: last}
	s.mu.Lock()
	if old, ok := s.entries[c.Key]; ok {
		e.fds.close()
		e = old
	} else {
		s.entries[c.Key] = e
	}
	out := e.s
	s.mu.Unlock()
	return out
}

// Run samples until ctx is done.
func (s *Sampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			s.SampleAll()
		}
	}
}

// SampleAll takes one sample of every registered container and forgets those
// nobody asked about for 10 minutes or whose cgroup is gone.
func (s *Sampler) SampleAll() {
	s.mu.Lock()
	list := make([]*entry, 0, len(s.entries))
	for _, e := range s.entries {
		list = append(list, e)
	}
	s.mu.Unlock()
	now := time.Now()
	for _, e := range list {
		s.mu.Lock()
		c := e.c
		s.mu.Unlock()
		running, blocked, total, last := s.count(c, &e.fds)
		s.mu.Lock()
		if total == 0 || now.Sub(e.seen) > 10*time.Minute {
			delete(s.entries, c.Key)
			e.fds.close()
			s.mu.Unlock()
			continue
		}
		active := (running + blocked) * fixed1
		for i := range e.s.Avg {
			e.s.Avg[i] = calcLoad(e.s.Avg[i], s.exp[i], active)
		}
		e.s.Running, e.s.Blocked, e.s.Total, e.s.LastPid = running, blocked, total, last
		s.mu.Unlock()
	}
}

// calcLoad is the kernel's fixed-point exponential decay step.
func calcLoad(load, exp, active uint64) uint64 {
	n := load*exp + active*(fixed1-exp)
	if active >= load {
		n += fixed1 - 1
	}
	return n / fixed1
}

// count reads the state of c's tasks: R and D counts, total, and the pid of
// the newest task as the container numbers it.
//
// It runs every interval for every sampled container, so it keeps its files
// open between samples (fds): the cgroup's thread list and each task's stat
// are re-read with one pread(2) each instead of open, read and close. A task's
// open stat file stays bound to that task, so pid reuse can't mislead it; it
// fails with ESRCH once the task is gone. Cgroups with child cgroups (nested
// containers) are walked by path instead.
func (s *Sampler) count(c *cgview.Container, fds *taskFiles) (running, blocked, total uint64, lastPid int) {
	fds.mu.Lock()
	defer fds.mu.Unlock()
	tids, err := fds.list(s, c)
	if err != nil {
		s.log.V(4).Info("Could not list tasks of container", "pid", c.InitPid, "err", err.Error())
		return 0, 0, 0, 0
	}
	maxTid := 0
	seen := make(map[int]bool, len(tids))
	for _, tid := range tids {
		seen[tid] = true
		st, err := fds.stat(s.procRoot, tid)
		if err != nil {
			continue // exited since the listing
		}
		total++
		switch st.State {
		case 'R':
			running++
		case 'D':
			blocked++
		}
		maxTid = max(maxTid, tid)
	}
	fds.forgetExcept(seen)
	if maxTid > 0 {
		if maxTid == fds.lastTid {
			return running, blocked, total, fds.lastPid
		}
		// As the container numbers it: the NSpid entry at the depth of the
		// container's own namespace (its init's innermost), not the task's
		// innermost, which differs for tasks in nested namespaces.
		lastPid = maxTid
		if fds.depth < 0 {
			if ids, err := s.nspid(c.InitPid); err == nil {
				fds.depth = len(ids) - 1
			}
		}
		if ids, err := s.nspid(maxTid); err == nil && fds.depth >= 0 && fds.depth < len(ids) {
			lastPid = ids[fds.depth]
		}
		fds.lastTid, fds.lastPid = maxTid, lastPid
	}
	return running, blocked, total, lastPid
}

// maxKeptStatFiles bounds the task stat files kept open per container.
const maxKeptStatFiles = 64

// taskFiles are the files a container's sampling keeps open.
type taskFiles struct {
	mu       sync.Mutex
	c        *cgview.Container // what list and dir were opened for
	list_    int               // the cgroup's thread list, or -1
	listPath string
	dir      int         // O_PATH descriptor of the cgroup directory, or -1
	stats    map[int]int // tid → its /proc/TID/stat
	depth    int         // NSpid index of the container's namespace; -1 unknown
	lastTid  int
	lastPid  int
	opened   bool
}

func (f *taskFiles) open(s *Sampler, c *cgview.Container) error {
	f.close()
	f.c, f.depth, f.lastTid, f.opened = c, -1, 0, true
	dir, name, err := s.r.TasksFile(c)
	if err != nil {
		return err
	}
	if f.dir, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		f.dir = -1
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	f.listPath = dir + "/" + name
	if f.list_, err = unix.Open(f.listPath, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		f.list_ = -1
		return fmt.Errorf("open %s/%s: %w", dir, name, err)
	}
	return nil
}

// list returns the container's tids.
func (f *taskFiles) list(s *Sampler, c *cgview.Container) ([]int, error) {
	if !f.opened || f.c != c {
		if err := f.open(s, c); err != nil {
			return nil, err
		}
	}
	// kernfs counts a directory's subdirectories in its link count: more
	// than 2 means child cgroups, whose tasks are the container's too.
	var st unix.Stat_t
	err := unix.Fstat(f.dir, &st)
	if err != nil || st.Nlink > 2 {
		return s.r.Tasks(c, MaxTasks)
	}
	var b []byte
	if s.r.Mode() == cgview.ModeV2 {
		b, err = preadAll(f.list_)
	} else {
		// cgroup v1 caches a task list per cgroup and hands it to re-reads
		// of an open tasks file for a while (cgroup_pidlist_find): reopen.
		b, err = procfs.ReadFile(f.listPath)
	}
	if err != nil {
		return nil, err
	}
	ids, err := procfs.ParseUints(b)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, min(len(ids), MaxTasks))
	for _, id := range ids[:min(len(ids), MaxTasks)] {
		out = append(out, int(id))
	}
	return out, nil
}

func (f *taskFiles) stat(procRoot string, tid int) (procfs.PidStat, error) {
	fd, ok := f.stats[tid]
	if !ok {
		p := procRoot + "/" + strconv.Itoa(tid) + "/stat"
		if len(f.stats) >= maxKeptStatFiles {
			b, err := procfs.ReadFile(p)
			if err != nil {
				return procfs.PidStat{}, err
			}
			return procfs.ParsePidStat(b)
		}
		var err error
		if fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return procfs.PidStat{}, err
		}
		if f.stats == nil {
			f.stats = map[int]int{}
		}
		f.stats[tid] = fd
	}
	b, err := preadAll(fd)
	if err != nil {
		unix.Close(fd) //nolint:errcheck // the task is gone
		delete(f.stats, tid)
		return procfs.PidStat{}, err
	}
	return procfs.ParsePidStat(b)
}

// forgetExcept closes the stat files of tasks no longer listed.
func (f *taskFiles) forgetExcept(live map[int]bool) {
	for tid, fd := range f.stats {
		if !live[tid] {
			unix.Close(fd) //nolint:errcheck // read-only
			delete(f.stats, tid)
		}
	}
}

func (f *taskFiles) close() {
	if !f.opened {
		return
	}
	for _, fd := range []int{f.list_, f.dir} {
		if fd >= 0 {
			unix.Close(fd) //nolint:errcheck // read-only
		}
	}
	for tid, fd := range f.stats {
		unix.Close(fd) //nolint:errcheck // read-only
		delete(f.stats, tid)
	}
	f.list_, f.dir, f.opened = -1, -1, false
}

// preadAll re-reads a kernel text file from its start through an open fd.
func preadAll(fd int) ([]byte, error) {
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= procfs.MaxFileSize {
				return nil, fmt.Errorf("pread: larger than %d bytes", procfs.MaxFileSize)
			}
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := unix.Pread(fd, buf[len(buf):cap(buf)], int64(len(buf)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func (s *Sampler) nspid(pid int) ([]int, error) {
	b, err := procfs.ReadFile(s.procRoot + "/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	return procfs.ParseNSpid(b)
}

// Len returns how many containers are sampled.
func (s *Sampler) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Saved is one container's load average as handed to a successor process.
type Saved struct {
	Key       uint64 `json:"key"`
	InitPid   int    `json:"initPid"`
	InitStart uint64 `json:"initStart"`
	Sample    Sample `json:"sample"`
}

// Export returns every registered container's latest sample.
func (s *Sampler) Export() []Saved {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Saved, 0, len(s.entries))
	for k, e := range s.entries {
		out = append(out, Saved{Key: k, InitPid: e.c.InitPid, InitStart: e.c.InitStart, Sample: e.s})
	}
	return out
}

// Import registers a predecessor's containers with their averages, so
// containers' load averages carry on across a handover instead of restarting
// from zero. Each is resolved again by its init's pid; those whose init is
// gone or is another process by now are dropped. It returns how many were
// kept.
func (s *Sampler) Import(saved []Saved) int {
	now := time.Now()
	n := 0
	for _, sv := range saved {
		if sv.InitPid <= 0 || sv.Key == 0 {
			continue
		}
		c, err := s.r.Resolve(sv.InitPid)
		if err != nil || c.Key != sv.Key || c.InitPid != sv.InitPid || c.InitStart != sv.InitStart {
			continue
		}
		s.mu.Lock()
		if _, ok := s.entries[c.Key]; !ok {
			s.entries[c.Key] = &entry{c: c, s: sv.Sample, seen: now}
			n++
		}
		s.mu.Unlock()
	}
	return n
}
