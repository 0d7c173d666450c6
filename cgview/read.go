// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package cgview

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

// Unlimited marks an absent limit.
const Unlimited = procfs.Unlimited

// ErrNoController means the container's cgroup lacks the controller or file a
// view needs (the controller isn't mounted or enabled there).
var ErrNoController = errors.New("cgview: controller not available")

// dir returns the directory of c's cgroup for a controller, and the cgroup
// path inside that hierarchy. An empty controller means the cgroup2 hierarchy.
func (r *Resolver) dir(c *Container, controller string) (base, cg string, err error) {
	switch {
	case r.mode == ModeV2:
		base, cg = r.opts.CgroupRoot, c.V2
	case controller == "":
		if r.mode != ModeHybrid {
			return "", "", fmt.Errorf("%w: no cgroup2 hierarchy", ErrNoController)
		}
		base, cg = filepath.Join(r.opts.CgroupRoot, "unified"), c.V2
	default:
		p, ok := c.V1[controller]
		if !ok {
			return "", "", fmt.Errorf("%w: %s", ErrNoController, controller)
		}
		base, cg = filepath.Join(r.opts.CgroupRoot, controller), p
	}
	if cg == "" {
		return "", "", fmt.Errorf("%w: empty cgroup path for %q", ErrNoController, controller)
	}
	for _, part := range strings.Split(cg, "/") {
		if part == ".." {
			// A path relative to another cgroup namespace ("/../../pod"):
			// the reader's cgroup is not below our root, so it can't be read.
			return "", "", fmt.Errorf("%w: cgroup path %q is outside our cgroup namespace", ErrNoContainer, cg)
		}
	}
	return base, path.Clean("/" + cg), nil
}

// file reads one file of c's cgroup. A missing file means the controller
// isn't there (not mounted, or not enabled for this cgroup on v2):
// ErrNoController, still wrapping the ENOENT.
func (r *Resolver) file(c *Container, controller, name string) ([]byte, error) {
	base, cg, err := r.dir(c, controller)
	if err != nil {
		return nil, err
	}
	b, err := procfs.ReadFile(base + cg + "/" + name)
	if err != nil && procfs.IsNotExist(err) {
		return nil, fmt.Errorf("%w: %w", ErrNoController, err)
	}
	return b, err
}

// walkUp calls fn for the file name in c's cgroup and each ancestor below the
// hierarchy's root, innermost first, skipping levels where the file is missing.
func (r *Resolver) walkUp(c *Container, controller, name string, fn func([]byte) error) error {
	base, cg, err := r.dir(c, controller)
	if err != nil {
		return err
	}
	found := false
	for cg != "/" {
		b, err := procfs.ReadFile(base + cg + "/" + name)
		switch {
		case err == nil:
			found = true
			if err := fn(b); err != nil {
				return fmt.Errorf("%s%s/%s: %w", base, cg, name, err)
			}
		case !procfs.IsNotExist(err):
			return err
		}
		cg = path.Dir(cg)
	}
	if !found {
		return fmt.Errorf("%w: %s not found under %s", ErrNoController, name, base)
	}
	return nil
}

// Memory is a container's memory view, in bytes.
type Memory struct {
	Limit uint64 // Unlimited if none up the tree
	Usage uint64 // charged memory, page cache included
	// SwapLimit is the swap the container may use (Unlimited if none);
	// SwapKnown is false where the kernel doesn't account swap per cgroup.
	SwapLimit, SwapUsage uint64
	SwapKnown            bool
	Stat                 MemStat
}

// MemStat holds memory.stat counters normalized across v1 and v2, in bytes.
type MemStat struct {
	File, Anon, Shmem, Mapped, Dirty, Writeback           uint64
	ActiveAnon, InactiveAnon, ActiveFile, InactiveFile    uint64
	Unevictable, Slab, SlabReclaimable, SlabUnreclaimable uint64
	KernelStack, PageTables, AnonHuge                     uint64
}

// Memory reads c's memory limit, usage and statistics.
func (r *Resolver) Memory(c *Container) (Memory, error) {
	if r.mode == ModeV2 {
		return r.memoryV2(c)
	}
	return r.memoryV1(c)
}

func (r *Resolver) memoryV1(c *Container) (Memory, error) {
	m := Memory{Limit: Unlimited, SwapLimit: Unlimited}
	b, err := r.file(c, "memory", "memory.stat")
	if err != nil {
		return m, err
	}
	memswLimit := uint64(Unlimited)
	var swap uint64
	err = procfs.ParseFlatKeyed(b, func(k string, v uint64) {
		s := &m.Stat
		switch k {
		case "hierarchical_memory_limit":
			m.Limit = v
		case "hierarchical_memsw_limit":
			memswLimit = v
		case "total_cache":
			s.File = v
		case "total_rss":
			s.Anon = v
		case "total_shmem":
			s.Shmem = v
		case "total_mapped_file":
			s.Mapped = v
		case "total_dirty":
			s.Dirty = v
		case "total_writeback":
			s.Writeback = v
		case "total_active_anon":
			s.ActiveAnon = v
		case "total_inactive_anon":
			s.InactiveAnon = v
		case "total_active_file":
			s.ActiveFile = v
		case "total_inactive_file":
			s.InactiveFile = v
		case "total_unevictable":
			s.Unevictable = v
		case "total_rss_huge":
			s.AnonHuge = v
		case "total_swap":
			swap = v
		}
	})
	if err != nil {
		return m, fmt.Errorf("memory.stat: %w", err)
	}
	if b, err = r.file(c, "memory", "memory.usage_in_bytes"); err != nil {
		return m, err
	}
	if m.Usage, err = procfs.ParseLimit(b); err != nil {
		return m, fmt.Errorf("memory.usage_in_bytes: %w", err)
	}
	// memsw files exist only with swap accounting (swapaccount=1).
	if b, err := r.file(c, "memory", "memory.memsw.usage_in_bytes"); err == nil {
		if memsw, err := procfs.ParseLimit(b); err == nil {
			m.SwapKnown = true
			m.SwapUsage = sub(memsw, m.Usage)
			if swap > m.SwapUsage {
				m.SwapUsage = swap
			}
			if memswLimit < v1Unlimited && m.Limit < v1Unlimited {
				m.SwapLimit = sub(memswLimit, m.Limit)
			}
		}
	}
	if m.Limit >= v1Unlimited {
		m.Limit = Unlimited
	}
	return m, nil
}

// v1Unlimited: v1 prints PAGE_COUNTER_MAX pages in bytes (9223372036854771712
// with 4 KiB pages) for "no limit"; anything from 2^62 up is treated as none.
const v1Unlimited = 1 << 62

func (r *Resolver) memoryV2(c *Container) (Memory, error) {
	m := Memory{Limit: Unlimited, SwapLimit: Unlimited}
	err := r.walkUp(c, "", "memory.max", func(b []byte) error {
		v, err := procfs.ParseLimit(b)
		m.Limit = min(m.Limit, v)
		return err
	})
	if err != nil {
		return m, err
	}
	b, err := r.file(c, "", "memory.current")
	if err != nil {
		return m, err
	}
	if m.Usage, err = procfs.ParseLimit(b); err != nil {
		return m, fmt.Errorf("memory.current: %w", err)
	}
	if b, err = r.file(c, "", "memory.stat"); err != nil {
		return m, err
	}
	err = procfs.ParseFlatKeyed(b, func(k string, v uint64) {
		s := &m.Stat
		switch k {
		case "file":
			s.File = v
		case "anon":
			s.Anon = v
		case "shmem":
			s.Shmem = v
		case "file_mapped":
			s.Mapped = v
		case "file_dirty":
			s.Dirty = v
		case "file_writeback":
			s.Writeback = v
		case "active_anon":
			s.ActiveAnon = v
		case "inactive_anon":
			s.InactiveAnon = v
		case "active_file":
			s.ActiveFile = v
		case "inactive_file":
			s.InactiveFile = v
		case "unevictable":
			s.Unevictable = v
		case "slab":
			s.Slab = v
		case "slab_reclaimable":
			s.SlabReclaimable = v
		case "slab_unreclaimable":
			s.SlabUnreclaimable = v
		case "kernel_stack":
			s.KernelStack = v
		case "pagetables":
			s.PageTables = v
		case "anon_thp":
			s.AnonHuge = v
		}
	})
	if err != nil {
		return m, fmt.Errorf("memory.stat: %w", err)
	}
	if b, err := r.file(c, "", "memory.swap.current"); err == nil {
		if v, err := procfs.ParseLimit(b); err == nil {
			m.SwapKnown, m.SwapUsage = true, v
			_ = r.walkUp(c, "", "memory.swap.max", func(b []byte) error {
				if v, err := procfs.ParseLimit(b); err == nil { // malformed levels are skipped
					m.SwapLimit = min(m.SwapLimit, v)
				}
				return nil
			})
		}
	}
	return m, nil
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// CPU is a container's CPU view.
type CPU struct {
	// Cpuset lists the host CPUs the container may run on; nil if unknown.
	Cpuset []int
	// Quota is the CFS bandwidth limit in CPUs (the minimum up the tree), 0 if none.
	Quota float64
	// PerCPU holds usage per host CPU in ns (v1 cpuacct); nil on v2.
	PerCPU map[int]procfs.CPUUsage
	// User and System are total usage in ns.
	User, System uint64
}

// CPU reads c's cpuset, CFS quota and usage.
func (r *Resolver) CPU(c *Container) (CPU, error) {
	var out CPU
	cpusetCtl, cpusetFile, quotaCtl := "cpuset", "cpuset.effective_cpus", "cpu"
	if r.mode == ModeV2 {
		cpusetCtl, cpusetFile, quotaCtl = "", "cpuset.cpus.effective", ""
	}
	if b, err := r.file(c, cpusetCtl, cpusetFile); err == nil {
		if cpus, err := procfs.ParseCPUList(string(b)); err == nil && len(cpus) > 0 {
			out.Cpuset = cpus
		}
	}
	quota := math.Inf(1)
	if r.mode == ModeV2 {
		// A level whose cpu.max doesn't parse is skipped, not the walk:
		// its ancestors' limits still hold.
		_ = r.walkUp(c, quotaCtl, "cpu.max", func(b []byte) error {
			if q, p, err := procfs.ParseCPUMax(b); err == nil && q != Unlimited {
				quota = math.Min(quota, float64(q)/float64(p))
			}
			return nil
		})
	} else {
		quota = r.v1Quota(c)
	}
	if !math.IsInf(quota, 1) && quota > 0 {
		out.Quota = quota
	}
	if r.mode == ModeV2 {
		b, err := r.file(c, "", "cpu.stat")
		if err != nil {
			return out, err
		}
		err = procfs.ParseFlatKeyed(b, func(k string, v uint64) {
			switch k {
			case "user_usec":
				out.User = v * 1000
			case "system_usec":
				out.System = v * 1000
			}
		})
		if err != nil {
			return out, fmt.Errorf("cpu.stat: %w", err)
		}
		return out, nil
	}
	b, err := r.file(c, "cpuacct", "cpuacct.usage_all")
	if err != nil {
		return out, err
	}
	if out.PerCPU, err = procfs.ParseCpuacctUsageAll(b); err != nil {
		return out, err
	}
	for _, u := range out.PerCPU {
		out.User += u.User
		out.System += u.System
	}
	return out, nil
}

// v1Quota returns the smallest quota/period ratio from c's cpu cgroup up to
// the root, +Inf if none is set.
func (r *Resolver) v1Quota(c *Container) float64 {
	q := math.Inf(1)
	base, cg, err := r.dir(c, "cpu")
	if err != nil {
		return q
	}
	for ; cg != "/"; cg = path.Dir(cg) {
		qb, err1 := procfs.ReadFile(base + cg + "/cpu.cfs_quota_us")
		pb, err2 := procfs.ReadFile(base + cg + "/cpu.cfs_period_us")
		if err1 != nil || err2 != nil {
			continue
		}
		quota, err1 := procfs.ParseInt(qb)
		period, err2 := procfs.ParseInt(pb)
		if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
			continue
		}
		q = math.Min(q, float64(quota)/float64(period))
	}
	return q
}

// IO reads c's per-device I/O counters.
func (r *Resolver) IO(c *Container) ([]procfs.IOStat, error) {
	if r.mode == ModeV2 {
		b, err := r.file(c, "", "io.stat")
		if err != nil {
			return nil, err
		}
		return procfs.ParseIOStatV2(b)
	}
	read := func(name string) ([]byte, error) {
		b, err := r.file(c, "blkio", name+"_recursive")
		if err != nil && procfs.IsNotExist(err) {
			b, err = r.file(c, "blkio", name)
		}
		return b, err
	}
	bb, err := read("blkio.throttle.io_service_bytes")
	if err != nil {
		return nil, err
	}
	ob, err := read("blkio.throttle.io_serviced")
	if err != nil {
		return nil, err
	}
	return procfs.ParseBlkioV1(bb, ob)
}

// Pressure returns c's PSI file for resource ("cpu", "memory" or "io"):
// cgroup2 keeps one per cgroup. It fails with ErrNoController on v1-only hosts.
func (r *Resolver) Pressure(c *Container, resource string) ([]byte, error) {
	return r.file(c, "", resource+".pressure")
}

// SlabInfo returns v1's per-cgroup memory.kmem.slabinfo where the kernel keeps it.
func (r *Resolver) SlabInfo(c *Container) ([]byte, error) {
	if r.mode == ModeV2 {
		return nil, fmt.Errorf("%w: no per-cgroup slabinfo on cgroup v2", ErrNoController)
	}
	b, err := r.file(c, "memory", "memory.kmem.slabinfo")
	if err == nil && len(b) == 0 {
		err = fmt.Errorf("%w: empty memory.kmem.slabinfo", ErrNoController)
	}
	return b, err
}

// TasksFile returns the directory of c's cgroup that lists its threads and
// the name of the listing file in it (cgroup.threads on v2, tasks on v1).
func (r *Resolver) TasksFile(c *Container) (dir, name string, err error) {
	ctl, name := "pids", "tasks"
	if r.mode == ModeV2 {
		ctl, name = "", "cgroup.threads"
	} else if _, ok := c.V1["pids"]; !ok {
		ctl = "cpuacct"
	}
	base, cg, err := r.dir(c, ctl)
	if err != nil {
		return "", "", err
	}
	return base + cg, name, nil
}

// Tasks returns the host tids in c's cgroup and its descendants, at most max.
func (r *Resolver) Tasks(c *Container, max int) ([]int, error) {
	dir, name, err := r.TasksFile(c)
	if err != nil {
		return nil, err
	}
	var out []int
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		b, err := procfs.ReadFile(dir + "/" + name)
		if err != nil {
			return err
		}
		ids, err := procfs.ParseUints(b)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", dir, name, err)
		}
		for _, id := range ids {
			if len(out) >= max {
				return nil
			}
			out = append(out, int(id))
		}
		if depth >= 8 {
			return nil
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil //nolint:nilerr // the cgroup went away mid-walk; what we have stands
		}
		for _, e := range ents {
			if e.IsDir() && len(out) < max {
				if err := walk(dir+"/"+e.Name(), depth+1); err != nil && !procfs.IsNotExist(err) {
					return err
				}
			}
		}
		return nil
	}
	return out, walk(dir, 0)
}
