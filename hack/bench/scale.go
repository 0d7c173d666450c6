// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
)

// fleetLimits are the limits of each idle fleet container: small, as for a
// node full of pods.
var fleetLimits = sandbox.Limits{MemoryBytes: 64 << 20, CPUQuotaUS: 50000}

// fleet is the crowd of idle containers of -scale and -loadavg-cost. Each
// lives in a cgroup of its own below one parent, and has read proc/loadavg
// once through every daemon's mount (visible at the same path inside: the
// containers share our root), so every daemon tracks it and samples its load.
type fleet struct {
	parent  *sandbox.Cgroup
	regArgv []string
	workers int
	log     io.Writer

	mu      sync.Mutex
	members []*sandbox.Container
	next    int
}

func (f *fleet) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.members)
}

// grow adds containers until n live, with f.workers creating in parallel.
// It stops at the first error.
func (f *fleet) grow(ctx context.Context, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	need := n - f.size()
	if need <= 0 {
		return nil
	}
	jobs := make(chan int)
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	for range min(f.workers, need) {
		wg.Go(func() {
			for i := range jobs {
				if err := f.addOne(ctx, i); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		})
	}
	start := time.Now()
	lastReport := start
feed:
	for range need {
		f.mu.Lock()
		i := f.next
		f.next++
		f.mu.Unlock()
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
		if time.Since(lastReport) > 5*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(f.log, "bench: %d/%d containers after %.0fs\n", f.size(), n, time.Since(start).Seconds())
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// addOne creates fleet container i and registers it with the daemons.
func (f *fleet) addOne(ctx context.Context, i int) error {
	cg, err := f.parent.NewChild(fmt.Sprintf("c%04d", i), fleetLimits)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ctr, err := sandbox.StartContainer(sctx, sandbox.ContainerOptions{Cgroup: cg})
	if err != nil {
		return errors.Join(err, cg.Remove())
	}
	f.mu.Lock()
	f.members = append(f.members, ctr) // from here on stop() owns it
	f.mu.Unlock()
	if _, _, err := ctr.Exec(sctx, f.regArgv...); err != nil {
		return fmt.Errorf("register fleet container %d: %w", i, err)
	}
	return nil
}

// stop stops every container in parallel, then removes the cgroups.
func (f *fleet) stop() error {
	f.mu.Lock()
	members := f.members
	f.members = nil
	f.mu.Unlock()
	jobs := make(chan *sandbox.Container)
	errc := make(chan error, len(members))
	var wg sync.WaitGroup
	for range max(1, min(f.workers*2, len(members))) {
		wg.Go(func() {
			for c := range jobs {
				if err := c.Stop(); err != nil {
					errc <- err
				}
			}
		})
	}
	for _, c := range members {
		jobs <- c
	}
	close(jobs)
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, f.parent.Remove())...)
}

// measureIdle watches every daemon's CPU time over the same idle window.
func measureIdle(ctx context.Context, ds daemons, d time.Duration, containers int) ([]idleResult, error) {
	list := ds.virtual()
	t0 := make([]uint64, len(list))
	for i, dm := range list {
		var err error
		if t0[i], err = dm.cpuTicks(); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(d):
	}
	secs := time.Since(start).Seconds()
	var out []idleResult
	for i, dm := range list {
		t1, err := dm.cpuTicks()
		if err != nil {
			return nil, err
		}
		rss, err := dm.rssBytes()
		if err != nil {
			return nil, err
		}
		ticks := t1 - t0[i]
		out = append(out, idleResult{
			Containers: containers, Target: dm.name, Seconds: secs, CPUTicks: ticks,
			CorePct: float64(ticks) / clockTicks / secs * 100, RSSMiB: float64(rss) / (1 << 20),
		})
	}
	return out, nil
}

// runScale runs -scale and/or -loadavg-cost: for each count of live,
// registered fleet containers, meminfo reads from one reader container per
// daemon, and the daemons' idle CPU.
func runScale(ctx context.Context, cl *cleanups, r *runner, ds daemons, cfg config, rep *report, w, log io.Writer) error {
	var targets []*target
	if cfg.scale {
		all, err := newReaderTargets(ctx, cl, ds, []string{"meminfo"})
		if err != nil {
			return err
		}
		for _, t := range all {
			if t.d != nil {
				targets = append(targets, t)
			}
		}
	}
	parent, err := sandbox.NewCgroup(fmt.Sprintf("bench-%d-fleet", os.Getpid()), sandbox.Limits{})
	if err != nil {
		return err
	}
	f := &fleet{parent: parent, workers: cfg.workers, log: log, regArgv: []string{"cat"}}
	for _, d := range ds.virtual() {
		f.regArgv = append(f.regArgv, d.mnt+"/proc/loadavg")
	}
	cl.add(f.stop) // removes parent too

	for _, n := range cfg.counts {
		start := time.Now()
		if err := f.grow(ctx, n); err != nil {
			return fmt.Errorf("grow fleet to %d containers: %w", n, err)
		}
		secs := time.Since(start).Seconds()
		rep.Created = append(rep.Created, creation{Containers: n, Seconds: secs})
		fmt.Fprintf(w, "%d fleet containers live, each registered with all three daemons (grown in %.1fs, %d workers)\n", n, secs, cfg.workers)
		for _, t := range targets {
			res, err := r.runCell(ctx, t, "meminfo", cfg.scaleReader, cfg.duration)
			if err != nil {
				return err
			}
			res.Containers = n
			rep.Scale = append(rep.Scale, res)
		}
		if cfg.loadavgCost {
			idle, err := measureIdle(ctx, ds, cfg.idle, n)
			if err != nil {
				return err
			}
			rep.Idle = append(rep.Idle, idle...)
		}
	}
	fmt.Fprintln(w)
	if cfg.scale {
		printScale(w, rep.Scale, cfg.counts)
	}
	if cfg.loadavgCost {
		printIdle(w, rep.Idle)
	}
	return nil
}

func printScale(w io.Writer, cells []cellResult, counts []int) {
	fmt.Fprintln(w, "meminfo reads with many live containers (readers in the 256 MiB / 1.5 CPU cgroup):")
	printTable(w, cells, true)
	fmt.Fprintln(w)
	lo, hi := counts[0], counts[len(counts)-1]
	for _, name := range []string{nameOurs, nameOurs0, nameLXCFS} {
		var a, b *cellResult
		for i := range cells {
			switch c := &cells[i]; {
			case c.Target == name && c.Containers == lo:
				a = c
			case c.Target == name && c.Containers == hi:
				b = c
			}
		}
		if a == nil || b == nil {
			continue
		}
		line := fmt.Sprintf("%-16s %d vs %d containers: ops/s ×%.2f, p99 ×%.2f", name, hi, lo,
			float64(safeDiv(roundOps(b.OpsPerSec), roundOps(a.OpsPerSec))), float64(safeDiv(roundUS(b.P99US), roundUS(a.P99US))))
		if a.DaemonCPUUSPerRead != nil && b.DaemonCPUUSPerRead != nil {
			line += fmt.Sprintf(", daemon CPU/read %.1f → %.1f µs", *a.DaemonCPUUSPerRead, *b.DaemonCPUUSPerRead)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
}

func printIdle(w io.Writer, rows []idleResult) {
	fmt.Fprintln(w, "idle daemons (no readers), loadavg sampled every 5s:")
	head := fmt.Sprintf("%10s %-16s %8s %10s %14s %8s", "containers", "target", "seconds", "CPU ticks", "% of one core", "RSS MiB")
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, strings.Repeat("-", len([]rune(head))))
	for _, r := range rows {
		fmt.Fprintf(w, "%10d %-16s %8.1f %10d %14.2f %8.1f\n", r.Containers, r.Target, r.Seconds, r.CPUTicks, r.CorePct, r.RSSMiB)
	}
}
