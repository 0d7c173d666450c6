// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/fs/render"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

// render returns the text of the generated file p for the reader pid. It
// never fails: when the reader's view can't be built, the host's file is the
// answer, and that is counted and logged.
// fm, if not nil, observes p.
func (f *FS) render(p string, pid int, vis func() cpuView, fm FileMetrics) []byte {
	c, err := f.opts.Resolver.Resolve(pid)
	var b []byte
	if err == nil {
		now := time.Now()
		if b, ok := f.cache.get(c, p, now); ok {
			return b
		}
		if b, err = f.renderFor(p, c, vis); err == nil {
			if c.Key != 0 { // host-namespace readers resolve to a fresh object each time
				f.cache.put(c, p, b, now)
			}
			return b
		}
	}
	f.Counters.HostFallbacks.Add(1)
	if fm != nil {
		fm.HostFallback()
	}
	if !errors.Is(err, cgview.ErrNoContainer) {
		f.Counters.Errors.Add(1)
	}
	f.log.V(4).Info("Served host file", "file", p, "pid", pid, "err", err.Error())
	host, herr := procfs.ReadFile(f.hostPath(p))
	if herr != nil {
		f.log.V(2).Info("Could not read host file", "file", p, "err", herr.Error())
		return nil
	}
	return host
}

func (f *FS) hostPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "sys/"); ok {
		return f.opts.SysRoot + "/" + rest
	}
	return f.opts.ProcRoot + "/" + strings.TrimPrefix(p, "proc/")
}

func (f *FS) readHost(name string) ([]byte, error) {
	return procfs.ReadFile(f.opts.ProcRoot + "/" + name)
}

func (f *FS) onlineCPUs() ([]int, error) {
	b, err := procfs.ReadFile(f.opts.SysRoot + "/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return procfs.ParseCPUList(string(b))
}

// cpuView is what one request learned about CPUs, read once and shared by
// the lookup, cpuinfo, stat and uptime code of that request.
type cpuView struct {
	online    []int // the host's online CPUs ([0] if onlineErr)
	onlineErr error
	cpu       cgview.CPU // the container's cpuset, quota and usage, if cpuErr is nil
	cpuErr    error
	visible   []int // the host ids of the CPUs the container sees
}

// cpuViewOf reads the CPU view of pid's container. Without a container
// (or its cpu controller), the visible CPUs are the host's online ones.
func (f *FS) cpuViewOf(pid int) cpuView {
	var v cpuView
	online, err := f.onlineCPUs()
	if err != nil || len(online) == 0 {
		online, v.onlineErr = []int{0}, err
	}
	v.online, v.visible = online, online
	c, err := f.opts.Resolver.Resolve(pid)
	if err != nil {
		v.cpuErr = err
		return v
	}
	if v.cpu, v.cpuErr = f.opts.Resolver.CPU(c); v.cpuErr == nil {
		v.visible = render.VisibleCPUs(online, v.cpu, f.opts.CFS)
	}
	return v
}

func (f *FS) renderFor(p string, c *cgview.Container, vis func() cpuView) ([]byte, error) {
	r := f.opts.Resolver
	if rest, ok := strings.CutPrefix(p, cpuDir+"/"); ok {
		if rest == "offline" {
			return []byte("\n"), nil
		}
		return render.CPUList(len(vis().visible)), nil
	}
	switch p {
	case "proc/meminfo", "proc/swaps":
		hb, err := f.readHost("meminfo")
		if err != nil {
			return nil, err
		}
		host, err := procfs.ParseMeminfo(hb)
		if err != nil {
			return nil, err
		}
		m, err := r.Memory(c)
		if err != nil {
			return nil, err
		}
		if p == "proc/swaps" {
			return render.Swaps(host, m, f.opts.Swap), nil
		}
		return render.Meminfo(host, m, f.opts.Swap), nil
	case "proc/cpuinfo":
		hb, err := f.readHost("cpuinfo")
		if err != nil {
			return nil, err
		}
		return render.CPUInfo(procfs.ParseCPUInfo(hb), vis().visible), nil
	case "proc/stat":
		return f.stat(c, vis())
	case "proc/uptime":
		return f.uptime(c, vis())
	case "proc/loadavg":
		if f.opts.Loadavg == nil || c.Key == 0 {
			// Off, or a reader in the host's pid namespace: the host's load.
			return nil, fmt.Errorf("%w: no per-container load average", cgview.ErrNoContainer)
		}
		s := f.opts.Loadavg.Get(c)
		return render.Loadavg(s.Avg, s.Running, s.Total, s.LastPid), nil
	case "proc/diskstats":
		hb, err := f.readHost("diskstats")
		if err != nil {
			return nil, err
		}
		host, err := procfs.ParseDiskstats(hb)
		if err != nil {
			return nil, err
		}
		io, err := r.IO(c)
		if err != nil {
			return nil, err
		}
		return render.Diskstats(host, io), nil
	case "proc/slabinfo":
		return r.SlabInfo(c)
	case "proc/pressure/cpu", "proc/pressure/memory", "proc/pressure/io":
		return r.Pressure(c, strings.TrimPrefix(p, "proc/pressure/"))
	}
	return nil, fmt.Errorf("no renderer for %s", p)
}

// upTicks returns the container's uptime in USER_HZ ticks.
func (f *FS) upTicks(c *cgview.Container) (uint64, error) {
	b, err := f.readHost("uptime")
	if err != nil {
		return 0, err
	}
	up, _, err := procfs.ParseUptime(b)
	if err != nil {
		return 0, err
	}
	// /proc/uptime is in hundredths, the same unit as USER_HZ ticks.
	if up < c.InitStart {
		return 0, nil
	}
	return up - c.InitStart, nil
}

func (f *FS) stat(c *cgview.Container, v cpuView) ([]byte, error) {
	hb, err := f.readHost("stat")
	if err != nil {
		return nil, err
	}
	host, err := procfs.ParseStat(hb)
	if err != nil {
		return nil, err
	}
	if v.cpuErr != nil {
		return nil, v.cpuErr
	}
	if v.onlineErr != nil {
		return nil, v.onlineErr
	}
	up, err := f.upTicks(c)
	if err != nil {
		return nil, err
	}
	in := render.StatInput{
		CPU:       v.cpu,
		Allowed:   render.VisibleCPUs(v.online, v.cpu, false),
		Visible:   v.visible,
		Uptime:    up,
		InitStart: c.InitStart,
	}
	if f.opts.Loadavg != nil && c.Key != 0 {
		s := f.opts.Loadavg.Get(c)
		in.Tasks, in.Running, in.Blocked = s.Total, s.Running, s.Blocked
	} else {
		in.Tasks, in.Running, in.Blocked = host.Processes, host.ProcsRunning, host.ProcsBlocked
	}
	var out []byte
	c.Memo.Update("stat", func(prev []uint64) []uint64 {
		var next []uint64
		out, next = render.Stat(host, in, prev)
		return next
	})
	return out, nil
}

func (f *FS) uptime(c *cgview.Container, v cpuView) ([]byte, error) {
	up, err := f.upTicks(c)
	if err != nil {
		return nil, err
	}
	var usage uint64
	if v.cpuErr == nil {
		usage = v.cpu.User + v.cpu.System
	}
	var out []byte
	c.Memo.Update("uptime", func(prev []uint64) []uint64 {
		var p, idle uint64
		if len(prev) == 1 {
			p = prev[0]
		}
		out, idle = render.Uptime(up, len(v.visible), usage, p)
		return []uint64{idle}
	})
	return out, nil
}
