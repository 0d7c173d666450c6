// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
)

// restartTimeout bounds one restart through the API.
const restartTimeout = 15 * time.Second

// Restarter restarts a pod through the Kubernetes API when its mounts can't
// be repaired in place ([Kube] implements it).
type Restarter interface {
	PodByUID(ctx context.Context, uid string) (*Pod, error)
	Restart(ctx context.Context, p *Pod, reason string) error
}

// Options configure a Healer.
type Options struct {
	ProcRoot   string // the host's /proc (default /proc)
	MountPoint string // where the live filesystem is mounted
	// InHost runs fn in the mount namespace where MountPoint is live; nil
	// runs it directly.
	InHost func(fn func() error) error
	// Interval between scans (default 10s). A scan reads every process's
	// mountinfo once per mount namespace.
	Interval time.Duration
	// MaxPerScan bounds the namespaces repaired per scan (default 1000);
	// the rest wait for the next scan.
	MaxPerScan int
	// Restarter, if set, restarts pods whose mounts can't be repaired, or
	// whose policy asks for a restart. Nil: log and count only.
	Restarter Restarter
	// OnScan, if set, is called after every completed scan with its
	// outcome (the daemon records metrics and Events from it).
	OnScan func(Result)
	Log    logr.Logger
	Now    func() time.Time
}

// Counters are what a Healer did, for status and metrics.
type Counters struct {
	Scans, Repaired, Failed, Restarted, Skipped atomic.Uint64
	// ScanErrors counts scans that could not look at the mount tables.
	ScanErrors atomic.Uint64
	// BrokenMounts is how many broken binds the last completed scan saw,
	// repaired or not.
	BrokenMounts atomic.Int64
}

// Healer finds containers whose lxcfs mounts belong to a dead connection
// (or to the directory beneath the mount point) and repairs them in place.
type Healer struct {
	o        Options
	Counters Counters

	// repair replaces a namespace's broken mounts (repairNamespace; tests
	// fake it).
	repair func(ns mountmgr.Namespace, live mountmgr.Device) (int, error)

	mu      sync.Mutex
	backoff map[string]retry // by namespace ID
}

type retry struct {
	fails int
	next  time.Time
}

// New returns a Healer.
func New(o Options) *Healer {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.MaxPerScan <= 0 {
		o.MaxPerScan = 1000
	}
	if o.InHost == nil {
		o.InHost = func(fn func() error) error { return fn() }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Healer{o: o, backoff: map[string]retry{}}
	h.repair = func(ns mountmgr.Namespace, live mountmgr.Device) (int, error) {
		return repairNamespace(o.ProcRoot, o.MountPoint, live, ns, o.InHost)
	}
	return h
}

// Run scans at once, then every Interval, until ctx ends.
func (h *Healer) Run(ctx context.Context) error {
	t := time.NewTicker(h.o.Interval)
	defer t.Stop()
	for {
		if _, err := h.Scan(ctx); err != nil {
			h.Counters.ScanErrors.Add(1)
			h.o.Log.Error(err, "Could not scan for broken lxcfs mounts")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Result is one scan's outcome.
type Result struct {
	// Broken counts namespaces with broken binds; BrokenMounts the binds.
	Broken, BrokenMounts, Repaired, Failed, Restarted, Skipped int
}

// Scan finds and repairs broken mounts once.
func (h *Healer) Scan(ctx context.Context) (Result, error) {
	var res Result
	h.Counters.Scans.Add(1)
	var live mountmgr.Device
	var under mountmgr.Underlying
	err := h.o.InHost(func() (err error) {
		if live, err = mountmgr.DeviceOf(h.o.MountPoint); err != nil {
			return err
		}
		under, err = mountmgr.UnderlyingOf(h.o.MountPoint)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("heal: find the live filesystem: %w", err)
	}
	cen, err := mountmgr.CensusWithOrphans(h.o.ProcRoot, h.o.MountPoint, live, &under)
	if err != nil {
		return res, fmt.Errorf("heal: %w", err)
	}
	now := h.o.Now()
	h.forgetExcept(cen.Namespaces)
	done := 0
	for _, ns := range cen.Namespaces {
		if !ns.Stale && !ns.Orphan {
			continue
		}
		res.Broken++
		for _, m := range ns.Mounts {
			if !m.Own && (m.Orphan || m.Device != live) {
				res.BrokenMounts++
			}
		}
		if ctx.Err() != nil || done >= h.o.MaxPerScan || !h.due(ns.ID, now) {
			res.Skipped++
			continue
		}
		done++
		h.heal(ctx, ns, live, &res)
	}
	h.Counters.Skipped.Add(uint64(res.Skipped))
	h.Counters.BrokenMounts.Store(int64(res.BrokenMounts))
	if h.o.OnScan != nil {
		h.o.OnScan(res)
	}
	if res.Broken > 0 {
		h.o.Log.Info("Healed containers' lxcfs mounts", "broken", res.Broken, "repaired", res.Repaired,
			"failed", res.Failed, "restarted", res.Restarted, "deferred", res.Skipped)
	}
	return res, nil
}

// heal repairs one namespace, or restarts its pod as the policy says.
func (h *Healer) heal(ctx context.Context, ns mountmgr.Namespace, live mountmgr.Device, res *Result) {
	log := h.o.Log.WithValues("pid", ns.Pid, "namespace", ns.ID)
	pod := h.podOf(ctx, ns.Pid)
	if pod != nil {
		log = log.WithValues("pod", pod.Namespace+"/"+pod.Name)
		switch pod.Policy {
		case PolicyIgnore:
			log.V(2).Info("Left broken lxcfs mounts alone as the pod asks")
			h.fail(ns.ID)
			return
		case PolicyRestart:
			h.restart(ctx, log, ns, pod, "the pod's policy asks for a restart instead of a repair", res)
			return
		}
	}
	n, err := h.repair(ns, live)
	if n > 0 {
		res.Repaired += n
		h.Counters.Repaired.Add(uint64(n))
	}
	if err == nil {
		log.V(2).Info("Repaired lxcfs mounts in place", "mounts", n)
		h.ok(ns.ID)
		return
	}
	res.Failed++
	h.Counters.Failed.Add(1)
	log.Error(err, "Could not repair lxcfs mounts in place")
	h.fail(ns.ID)
	if pod != nil {
		h.restart(ctx, log, ns, pod, "in-place repair of its lxcfs mounts failed: "+err.Error(), res)
	}
}

func (h *Healer) restart(ctx context.Context, log logr.Logger, ns mountmgr.Namespace, pod *Pod, reason string, res *Result) {
	// Bounded: client-go retries a 429 that carries Retry-After (a budget
	// the disruption controller hasn't processed yet) for about 100s.
	rctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	if err := h.o.Restarter.Restart(rctx, pod, reason); err != nil {
		switch {
		case errors.Is(err, ErrRateLimited):
			// Another pod was restarted a moment ago; try at a later scan,
			// without the growing backoff of a failure.
			log.V(2).Info("Deferred restarting pod with broken lxcfs mounts", "reason", err.Error())
			return
		case errors.Is(err, ErrPodGone), errors.Is(err, ErrPodIgnored):
			log.V(2).Info("Did not restart pod with broken lxcfs mounts", "reason", err.Error())
		case errors.Is(err, ErrBlockedByPDB):
			log.Info("Pod with broken lxcfs mounts can't be evicted now: its PodDisruptionBudget refuses", "reason", err.Error())
		default:
			log.Error(err, "Could not restart pod with broken lxcfs mounts")
		}
		h.fail(ns.ID)
		return
	}
	res.Restarted++
	h.Counters.Restarted.Add(1)
	log.Info("Restarted pod with broken lxcfs mounts", "reason", reason)
}

// podOf maps a process to its pod through the pod UID in its cgroup path,
// when there is an API to ask.
func (h *Healer) podOf(ctx context.Context, pid int) *Pod {
	if h.o.Restarter == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(h.o.ProcRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil
	}
	uid, ok := PodUIDFromCgroup(b)
	if !ok {
		return nil
	}
	p, err := h.o.Restarter.PodByUID(ctx, uid)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			h.o.Log.V(2).Info("Could not find the pod of a process with broken lxcfs mounts", "pid", pid, "podUID", uid, "err", err.Error())
		}
		return nil
	}
	return p
}

// due reports whether a namespace that failed before may be tried again.
func (h *Healer) due(id string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.backoff[id]
	return !ok || !now.Before(r.next)
}

// fail backs a namespace off: 1 scan interval, doubling up to 5 minutes.
func (h *Healer) fail(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.backoff[id]
	r.fails++
	d := h.o.Interval << min(r.fails-1, 8)
	r.next = h.o.Now().Add(min(d, 5*time.Minute))
	h.backoff[id] = r
}

// forgetExcept drops the backoff of namespaces that are gone.
func (h *Healer) forgetExcept(nss []mountmgr.Namespace) {
	keep := make(map[string]bool, len(nss))
	for _, ns := range nss {
		keep[ns.ID] = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.backoff {
		if !keep[id] {
			delete(h.backoff, id)
		}
	}
}

func (h *Healer) ok(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.backoff, id)
}
