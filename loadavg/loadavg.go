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
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"

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
	running, blocked, total, last := s.count(c)
	e = &entry{c: c, seen: time.Now()}
	// Averages start at zero, as the kernel's do at boot.
	e.s = Sample{Running: running, Blocked: blocked, Total: total, LastPid: last}
	s.mu.Lock()
	if old, ok := s.entries[c.Key]; ok {
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
		running, blocked, total, last := s.count(c)
		s.mu.Lock()
		if total == 0 || now.Sub(e.seen) > 10*time.Minute {
			delete(s.entries, c.Key)
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
// the newest task as its own namespace numbers it.
func (s *Sampler) count(c *cgview.Container) (running, blocked, total uint64, lastPid int) {
	tids, err := s.r.Tasks(c, MaxTasks)
	if err != nil {
		s.log.V(4).Info("Could not list tasks of container", "pid", c.InitPid, "err", err)
		return 0, 0, 0, 0
	}
	maxTid := 0
	for _, tid := range tids {
		b, err := procfs.ReadFile(s.procRoot + "/" + strconv.Itoa(tid) + "/stat")
		if err != nil {
			continue // exited since the listing
		}
		st, err := procfs.ParsePidStat(b)
		if err != nil {
			continue
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
	if maxTid > 0 {
		// As the container numbers it: the NSpid entry at the depth of the
		// container's own namespace (its init's innermost), not the task's
		// innermost, which differs for tasks in nested namespaces.
		lastPid = maxTid
		depth := -1
		if ids, err := s.nspid(c.InitPid); err == nil {
			depth = len(ids) - 1
		}
		if ids, err := s.nspid(maxTid); err == nil && depth >= 0 && depth < len(ids) {
			lastPid = ids[depth]
		}
	}
	return running, blocked, total, lastPid
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
