// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package render turns host /proc text plus a container's cgroup view into the
// text that container should see. Every function is pure: no I/O, no clock, no
// go-fuse; state that must persist between reads (counters that may never go
// backwards) is passed in and returned.
package render

import (
	"fmt"
	"math"
	"strconv"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/procfs"
)

// UserHZ is the unit of /proc/stat and /proc/PID/stat times. It is 100 on
// every Linux architecture (USER_HZ), whatever the kernel's HZ.
const UserHZ = 100

// nsPerTick converts cgroup nanoseconds to USER_HZ ticks.
const nsPerTick = 1e9 / UserHZ

// VisibleCPUs returns the host CPU ids a container sees, in order: the online
// CPUs in its cpuset, cut to ceil(quota) when cfs is on. It never returns an
// empty list while online is non-empty.
func VisibleCPUs(online []int, cpu cgview.CPU, cfs bool) []int {
	vis := online
	if cpu.Cpuset != nil {
		in := make(map[int]bool, len(cpu.Cpuset))
		for _, c := range cpu.Cpuset {
			in[c] = true
		}
		vis = make([]int, 0, len(cpu.Cpuset))
		for _, c := range online {
			if in[c] {
				vis = append(vis, c)
			}
		}
		if len(vis) == 0 {
			vis = online // a cpuset naming only offline CPUs: show something sane
		}
	}
	if cfs && cpu.Quota > 0 {
		n := int(math.Ceil(cpu.Quota - 1e-9))
		if n < 1 {
			n = 1
		}
		if n < len(vis) {
			vis = vis[:n]
		}
	}
	return vis
}

// CPUList renders /sys/devices/system/cpu/{online,possible,present} for n CPUs.
func CPUList(n int) []byte {
	if n <= 1 {
		return []byte("0\n")
	}
	return []byte("0-" + strconv.Itoa(n-1) + "\n")
}

// Meminfo renders /proc/meminfo for a container with memory view m. Lines the
// container has no own value for are the host's. With swap false, swap is
// reported as absent (lxcfs's --disable-swap).
func Meminfo(host *procfs.Meminfo, m cgview.Memory, swap bool) []byte {
	hostTotal, _ := host.Get("MemTotal")
	total := hostTotal
	if m.Limit/1024 < total {
		total = m.Limit / 1024
	}
	used := min(m.Usage/1024, total)
	free := total - used
	s := m.Stat
	kb := func(b uint64) uint64 { return b / 1024 }
	avail := min(free+kb(s.ActiveFile+s.InactiveFile+s.SlabReclaimable), total)
	swapTotal, swapFree := Swap(host, m, swap)

	v := map[string]uint64{
		"MemTotal":       total,
		"MemFree":        free,
		"MemAvailable":   avail,
		"Buffers":        0,
		"Cached":         kb(s.File),
		"SwapCached":     0,
		"Active":         kb(s.ActiveAnon + s.ActiveFile),
		"Inactive":       kb(s.InactiveAnon + s.InactiveFile),
		"Active(anon)":   kb(s.ActiveAnon),
		"Inactive(anon)": kb(s.InactiveAnon),
		"Active(file)":   kb(s.ActiveFile),
		"Inactive(file)": kb(s.InactiveFile),
		"Unevictable":    kb(s.Unevictable),
		"SwapTotal":      swapTotal,
		"SwapFree":       swapFree,
		"Dirty":          kb(s.Dirty),
		"Writeback":      kb(s.Writeback),
		"AnonPages":      kb(s.Anon),
		"Mapped":         kb(s.Mapped),
		"Shmem":          kb(s.Shmem),
		"Slab":           kb(s.Slab),
		"SReclaimable":   kb(s.SlabReclaimable),
		"KReclaimable":   kb(s.SlabReclaimable), // the cgroup keeps no other reclaimable kernel memory
		"SUnreclaim":     kb(s.SlabUnreclaimable),
		"AnonHugePages":  kb(s.AnonHuge),
	}
	if s.KernelStack > 0 {
		v["KernelStack"] = kb(s.KernelStack)
	}
	if s.PageTables > 0 {
		v["PageTables"] = kb(s.PageTables)
	}
	out := make([]byte, 0, 2048)
	for _, l := range host.Lines {
		val, ok := v[l.Key]
		if !ok || !l.KB {
			out = append(out, l.Raw...)
			out = append(out, '\n')
			continue
		}
		out = fmt.Appendf(out, "%-16s%8d kB\n", l.Key+":", val)
	}
	return out
}

// Swap returns SwapTotal and SwapFree in kB for the container: its swap
// limit capped by the host's swap, or the host's swap when it has no limit.
func Swap(host *procfs.Meminfo, m cgview.Memory, swap bool) (total, free uint64) {
	hostSwap, _ := host.Get("SwapTotal")
	if !swap || hostSwap == 0 {
		return 0, 0
	}
	if !m.SwapKnown {
		hostFree, _ := host.Get("SwapFree")
		return hostSwap, hostFree
	}
	total = hostSwap
	if m.SwapLimit/1024 < total {
		total = m.SwapLimit / 1024
	}
	used := min(m.SwapUsage/1024, total)
	return total, total - used
}

// Swaps renders /proc/swaps: the header, and one virtual device holding the
// container's swap when it has any.
func Swaps(host *procfs.Meminfo, m cgview.Memory, swap bool) []byte {
	out := []byte("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	total, free := Swap(host, m, swap)
	if total == 0 {
		return out
	}
	return fmt.Appendf(out, "none%s\tvirtual\t\t%d\t\t%d\t\t0\n", "\t\t\t\t", total, total-free)
}

// CPUInfo renders /proc/cpuinfo with the stanzas of the visible host CPUs,
// renumbered from 0, and "siblings"/"cpu cores" set to the visible count.
// Stanzas without a processor line (machine-wide headers) are kept.
func CPUInfo(blocks []procfs.CPUInfoBlock, visible []int) []byte {
	pos := make(map[int]int, len(visible))
	for i, c := range visible {
		pos[c] = i
	}
	n := strconv.Itoa(len(visible))
	out := make([]byte, 0, 1500*len(visible))
	for _, b := range blocks {
		idx, ok := pos[b.CPU]
		if b.CPU >= 0 && !ok {
			continue
		}
		for _, l := range b.Lines {
			key, _, hasColon := cutKey(l)
			switch {
			case hasColon && key == "processor" && b.CPU >= 0:
				out = fmt.Appendf(out, "processor\t: %d\n", idx)
			case hasColon && (key == "siblings" || key == "cpu cores"):
				out = append(out, l[:colonIndex(l)+1]...)
				out = append(out, ' ')
				out = append(out, n...)
				out = append(out, '\n')
			default:
				out = append(out, l...)
				out = append(out, '\n')
			}
		}
		out = append(out, '\n')
	}
	return out
}

func colonIndex(l []byte) int {
	for i, c := range l {
		if c == ':' {
			return i
		}
	}
	return -1
}

// cutKey returns the trimmed key before ':' of a cpuinfo line.
func cutKey(l []byte) (key string, rest []byte, ok bool) {
	i := colonIndex(l)
	if i < 0 {
		return "", nil, false
	}
	j := i
	for j > 0 && (l[j-1] == ' ' || l[j-1] == '\t') {
		j--
	}
	return string(l[:j]), l[i+1:], true
}
