// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package render

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

// StatInput is what /proc/stat needs besides the host's file.
type StatInput struct {
	CPU     cgview.CPU
	Allowed []int // online CPUs in the cpuset: where usage may come from
	Visible []int // CPUs shown (Allowed, cut by the quota)
	// Uptime is the container's uptime in ticks (since its init started).
	Uptime uint64
	// InitStart is the init's start in ticks after boot, for btime.
	InitStart uint64
	// Tasks, Running and Blocked describe the container's tasks now.
	Tasks, Running, Blocked uint64
}

// perCPU returns user and system ticks per visible CPU. v1 usage is per host
// CPU: each allowed CPU's usage goes to the visible CPU at the same position
// modulo the visible count, so a quota that hides CPUs keeps their time. v2
// has totals only, spread evenly.
func perCPU(in StatInput) (user, sys []uint64) {
	n := len(in.Visible)
	user, sys = make([]uint64, n), make([]uint64, n)
	if n == 0 {
		return user, sys
	}
	if in.CPU.PerCPU == nil {
		u, s := in.CPU.User/nsPerTick, in.CPU.System/nsPerTick
		for i := range n {
			user[i], sys[i] = u/uint64(n), s/uint64(n)
		}
		user[0] += u % uint64(n)
		sys[0] += s % uint64(n)
		return user, sys
	}
	pos := make(map[int]int, len(in.Allowed))
	for i, c := range in.Allowed {
		pos[c] = i
	}
	for host, u := range in.CPU.PerCPU {
		i, ok := pos[host]
		if !ok {
			i = host // usage from before a cpuset change
		}
		user[i%n] += u.User / nsPerTick
		sys[i%n] += u.System / nsPerTick
	}
	return user, sys
}

// Stat renders /proc/stat. prev holds the counters printed last time for this
// container — user, system and idle of the aggregate line, then of each
// visible CPU — and the returned slice replaces it. No printed counter is ever
// lower than before, so tools computing rates from two samples never see
// negative time: not when usage bursts above the quota for a moment, and not
// when the cpuset or quota changes the number of CPUs shown (the aggregate
// and the CPUs present before and after keep their floors).
func Stat(host *procfs.Stat, in StatInput, prev []uint64) (out []byte, next []uint64) {
	user, sys := perCPU(in)
	n := len(in.Visible)
	floor := func(i int) uint64 { // the last printed value at memo index i
		if i < len(prev) {
			return prev[i]
		}
		return 0
	}
	next = make([]uint64, 3+3*n)
	lines := make([]procfs.CPUTimes, n)
	var sum [3]uint64
	for i := range n {
		busy := user[i] + sys[i]
		idle := uint64(0)
		if in.Uptime > busy {
			idle = in.Uptime - busy
		}
		vals := [3]uint64{user[i], sys[i], idle}
		for k := range vals {
			vals[k] = max(vals[k], floor(3+3*i+k))
			next[3+3*i+k] = vals[k]
			sum[k] += vals[k]
		}
		lines[i] = procfs.CPUTimes{User: vals[0], System: vals[1], Idle: vals[2]}
	}
	for k := range sum {
		sum[k] = max(sum[k], floor(k))
		next[k] = sum[k]
	}
	total := procfs.CPUTimes{User: sum[0], System: sum[1], Idle: sum[2]}
	out = make([]byte, 0, 256+96*n+len(host.Other)*32)
	out = appendCPULine(out, "cpu ", &total)
	for i := range lines {
		out = appendCPULine(out, "cpu"+strconv.Itoa(i), &lines[i])
	}
	for _, l := range host.Other {
		key, _, _ := bytes.Cut(l, []byte{' '})
		switch string(key) {
		case "btime":
			out = fmt.Appendf(out, "btime %d\n", host.BootTime+in.InitStart/UserHZ)
		case "processes":
			out = fmt.Appendf(out, "processes %d\n", in.Tasks)
		case "procs_running":
			out = fmt.Appendf(out, "procs_running %d\n", in.Running)
		case "procs_blocked":
			out = fmt.Appendf(out, "procs_blocked %d\n", in.Blocked)
		default:
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out, next
}

func appendCPULine(out []byte, name string, t *procfs.CPUTimes) []byte {
	out = append(out, name...)
	for _, f := range t.Fields() {
		out = fmt.Appendf(out, " %d", *f)
	}
	return append(out, '\n')
}

// Uptime renders /proc/uptime: the container's uptime and idle time in
// hundredths of seconds. idle is capacity (uptime × CPUs) minus the container's
// CPU time, never above capacity; prevIdle keeps it from going backwards.
func Uptime(upTicks uint64, ncpu int, usageNS uint64, prevIdle uint64) (out []byte, idle uint64) {
	capacity := upTicks * uint64(max(ncpu, 1))
	busy := usageNS / nsPerTick
	if capacity > busy {
		idle = capacity - busy
	}
	if prevIdle > idle && prevIdle <= capacity {
		idle = prevIdle
	}
	return fmt.Appendf(nil, "%d.%02d %d.%02d\n", upTicks/100, upTicks%100, idle/100, idle%100), idle
}

// Loadavg renders /proc/loadavg from fixed-point averages (FSHIFT 11, as the
// kernel keeps them), the running and total task counts and the last pid.
func Loadavg(avg [3]uint64, running, total uint64, lastPid int) []byte {
	out := make([]byte, 0, 48)
	for _, a := range avg {
		a += fixed1 / 200 // round to two decimals, as the kernel does
		out = fmt.Appendf(out, "%d.%02d ", a>>fshift, ((a&(fixed1-1))*100)>>fshift)
	}
	return fmt.Appendf(out, "%d/%d %d\n", running, total, lastPid)
}

const (
	fshift = 11
	fixed1 = 1 << fshift
)

// Diskstats renders /proc/diskstats with the container's own I/O: one line per
// host device the container did I/O on, in the host's order and column count.
// Counters the cgroup doesn't keep (merges, times, queue) are 0.
func Diskstats(host []procfs.DiskstatsLine, io []procfs.IOStat) []byte {
	by := make(map[[2]uint32]procfs.IOStat, len(io))
	for _, s := range io {
		by[[2]uint32{s.Major, s.Minor}] = s
	}
	var out []byte
	for _, d := range host {
		s, ok := by[[2]uint32{d.Major, d.Minor}]
		if !ok || s.ReadIOs+s.WriteIOs+s.DiscardIOs+s.ReadBytes+s.WriteBytes+s.DiscardBytes == 0 {
			continue
		}
		f := make([]uint64, len(d.Fields))
		set := func(i int, v uint64) {
			if i < len(f) {
				f[i] = v
			}
		}
		set(0, s.ReadIOs)
		set(2, s.ReadBytes/512)
		set(4, s.WriteIOs)
		set(6, s.WriteBytes/512)
		set(11, s.DiscardIOs)
		set(13, s.DiscardBytes/512)
		out = fmt.Appendf(out, "%4d %7d %s", d.Major, d.Minor, d.Name)
		for _, v := range f {
			out = fmt.Appendf(out, " %d", v)
		}
		out = append(out, '\n')
	}
	return out
}
