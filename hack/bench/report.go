// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Targets of the verdict: k8s-lxcfs (the cached instance) against lxcfs.
const (
	wantOpsRatio = 5.0  // at least 5x the reads per second
	wantP99Ratio = 5.0  // at most 1/5 of the p99 latency
	wantRSSMiB   = 40.0 // daemon RSS after any cell
)

// report is everything one run measured; -json writes it.
type report struct {
	Started time.Time      `json:"started"`
	Host    host           `json:"host"`
	Config  map[string]any `json:"config"`
	Sanity  []sanityResult `json:"sanity,omitempty"`
	Cells   []cellResult   `json:"cells,omitempty"`
	Ratios  []ratio        `json:"ratios,omitempty"`
	Verdict *verdict       `json:"verdict,omitempty"`
	Scale   []cellResult   `json:"scale,omitempty"`
	Idle    []idleResult   `json:"idle,omitempty"`
	Created []creation     `json:"created,omitempty"`
}

type host struct {
	Kernel      string   `json:"kernel"`
	CPUs        int      `json:"cpus"`
	Loadavg     string   `json:"loadavgAtStart"`
	LoadavgEnd  string   `json:"loadavgAtEnd"`
	OtherMounts []string `json:"otherLxcfsMounts,omitempty"`
	LXCFS       string   `json:"lxcfsVersion"`
	Ours        string   `json:"k8sLxcfsVersion"`
}

// ratio compares a k8s-lxcfs row with the lxcfs row of the same cell.
type ratio struct {
	Target   string `json:"target"`
	File     string `json:"file"`
	Readers  int    `json:"readers"`
	OpsRatio finite `json:"opsRatio"` // target / lxcfs
	P99Ratio finite `json:"p99Ratio"` // lxcfs / ours: how many times lower ours is
}

// finite is a float64 that encodes as null when it is not finite (a ratio
// over a zero), which encoding/json refuses otherwise.
type finite float64

func (f finite) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

type verdict struct {
	Pass     bool     `json:"pass"`
	Failures []string `json:"failures,omitempty"`
}

type idleResult struct {
	Containers int     `json:"containers"`
	Target     string  `json:"target"`
	Seconds    float64 `json:"seconds"`
	CPUTicks   uint64  `json:"cpuTicks"`
	CorePct    float64 `json:"percentOfOneCore"`
	RSSMiB     float64 `json:"rssMiB"`
}

type creation struct {
	Containers int     `json:"containers"`
	Seconds    float64 `json:"seconds"`
}

func hostInfo() host {
	var h host
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	h.CPUs = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		h.Loadavg = strings.TrimSpace(string(b))
	}
	if mounts, err := readMountinfo(); err == nil {
		for _, m := range mounts {
			if strings.HasPrefix(m.fstype, "fuse.lxcfs") || m.fstype == "fuse" && strings.Contains(m.point, "lxcfs") {
				h.OtherMounts = append(h.OtherMounts, m.point)
			}
		}
	}
	return h
}

func reportConfig(cfg config, bin string) map[string]any {
	return map[string]any{
		"bin": bin, "lxcfs": cfg.lxcfs, "duration": cfg.duration.String(), "rounds": cfg.rounds, "readers": cfg.readers,
		"files": cfg.files, "cacheTTL": cfg.cacheTTL.String(), "scale": cfg.scale, "loadavgCost": cfg.loadavgCost,
		"counts": cfg.counts, "scaleReaders": cfg.scaleReader, "idle": cfg.idle.String(),
		"limits": fmt.Sprintf("memory %d MiB, cpu quota %d/%d us", benchLimits.MemoryBytes>>20, benchLimits.CPUQuotaUS, benchLimits.CPUPeriodUS),
	}
}

// versionOf runs argv and returns its first output line, or "?".
func versionOf(argv ...string) string {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "?"
	}
	return strings.Trim(firstLine(string(bytes.TrimSpace(out))), `"`)
}

func printHeader(w io.Writer, rep *report) {
	rep.Host.Ours = versionOf(rep.Config["bin"].(string), "version")
	rep.Host.LXCFS = versionOf(rep.Config["lxcfs"].(string), "--version")
	fmt.Fprintf(w, "k8s-lxcfs benchmark, %s\n", rep.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "host: kernel %s, %d CPUs, loadavg at start %s\n", rep.Host.Kernel, rep.Host.CPUs, rep.Host.Loadavg)
	fmt.Fprintf(w, "k8s-lxcfs %s (%s), lxcfs %s (%s -f --enable-cfs -l)\n",
		rep.Host.Ours, rep.Config["bin"], rep.Host.LXCFS, rep.Config["lxcfs"])
	fmt.Fprintf(w, "readers: open+read(64 KiB)-to-EOF+close loop, in a cgroup with %s, own pid+mount namespaces\n", rep.Config["limits"])
	fmt.Fprintf(w, "cells: %s each, %d round(s), targets interleaved\n", rep.Config["duration"], rep.Config["rounds"])
	if len(rep.Host.OtherMounts) > 0 {
		fmt.Fprintf(w, "note: other lxcfs-type mounts exist (%s); their servers may compete for CPU\n", strings.Join(rep.Host.OtherMounts, ", "))
	}
}

func printSanity(w io.Writer, rows []sanityResult) {
	fmt.Fprintln(w, "what each target serves in the benchmark cgroup (one read through the same reader):")
	for _, s := range rows {
		fmt.Fprintf(w, "  %-16s %-8s %6d B  %s\n", s.Target, s.File, s.Bytes, s.Summary)
	}
	fmt.Fprintln(w)
}

// Rounding used in the table; ratios are computed from the rounded values
// so that they can be checked against the printed numbers.
func roundOps(v float64) float64 { return math.Round(v) }
func roundUS(v float64) float64  { return math.Round(v*10) / 10 }

func printTable(w io.Writer, cells []cellResult, withContainers bool) {
	head := fmt.Sprintf("%-16s %-8s %7s %10s %9s %9s %12s %8s %7s", "target", "file", "readers", "ops/s", "p50 µs", "p99 µs", "CPU µs/read", "RSS MiB", "errors")
	if withContainers {
		head = fmt.Sprintf("%10s ", "containers") + head
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, strings.Repeat("-", len([]rune(head))))
	prev := ""
	for _, c := range cells {
		group := fmt.Sprintf("%d/%s/%d", c.Containers, c.File, c.Readers)
		if prev != "" && group != prev {
			fmt.Fprintln(w)
		}
		prev = group
		cpu, rss := "-", "-"
		if c.DaemonCPUUSPerRead != nil {
			cpu = fmt.Sprintf("%.1f", *c.DaemonCPUUSPerRead)
		}
		if c.DaemonRSSMiB != nil {
			rss = fmt.Sprintf("%.1f", *c.DaemonRSSMiB)
		}
		line := fmt.Sprintf("%-16s %-8s %7d %10.0f %9.1f %9.1f %12s %8s %7d",
			c.Target, c.File, c.Readers, roundOps(c.OpsPerSec), roundUS(c.P50US), roundUS(c.P99US), cpu, rss, c.Errors)
		if withContainers {
			line = fmt.Sprintf("%10d ", c.Containers) + line
		}
		fmt.Fprintln(w, line)
	}
	for _, c := range cells {
		if c.Errors > 0 {
			fmt.Fprintf(w, "errors: %s %s readers=%d: %d failed reads, first: %s\n", c.Target, c.File, c.Readers, c.Errors, c.FirstError)
		}
	}
}

// find returns the cell of target for file and readers.
func find(cells []cellResult, target, file string, readers int) *cellResult {
	for i := range cells {
		if c := &cells[i]; c.Target == target && c.File == file && c.Readers == readers {
			return c
		}
	}
	return nil
}

// safeDiv returns a/b, or +Inf (a > 0) / NaN (a == 0) when b is 0.
func safeDiv(a, b float64) finite {
	if b == 0 {
		if a == 0 {
			return finite(math.NaN())
		}
		return finite(math.Inf(1))
	}
	return finite(a / b)
}

// compare computes the ratio lines and the verdict from the rounded table
// values.
func compare(cells []cellResult, files []string, readers []int) ([]ratio, *verdict) {
	var ratios []ratio
	v := &verdict{Pass: true}
	failf := func(format string, args ...any) {
		v.Pass = false
		v.Failures = append(v.Failures, fmt.Sprintf(format, args...))
	}
	for _, f := range files {
		for _, n := range readers {
			lx := find(cells, nameLXCFS, f, n)
			for _, name := range []string{nameOurs, nameOurs0, nameFloor} {
				ours := find(cells, name, f, n)
				if lx == nil || ours == nil {
					continue
				}
				r := ratio{Target: name, File: f, Readers: n,
					OpsRatio: safeDiv(roundOps(ours.OpsPerSec), roundOps(lx.OpsPerSec)),
					P99Ratio: safeDiv(roundUS(lx.P99US), roundUS(ours.P99US))}
				ratios = append(ratios, r)
				if name != nameOurs {
					continue // the uncached instance is shown, not judged
				}
				if !(float64(r.OpsRatio) >= wantOpsRatio) {
					failf("%s readers=%d: ops/s ×%.2f < ×%.0f", f, n, r.OpsRatio, wantOpsRatio)
				}
				if !(float64(r.P99Ratio) >= wantP99Ratio) {
					failf("%s readers=%d: p99 ÷%.2f < ÷%.0f", f, n, r.P99Ratio, wantP99Ratio)
				}
				if ours.Errors > 0 {
					failf("%s readers=%d: %d failed reads", f, n, ours.Errors)
				}
			}
		}
	}
	maxRSS := 0.0
	for _, c := range cells {
		if c.Target == nameOurs && c.DaemonRSSMiB != nil {
			maxRSS = max(maxRSS, *c.DaemonRSSMiB)
		}
	}
	if maxRSS > wantRSSMiB {
		failf("%s RSS %.1f MiB > %.0f MiB", nameOurs, maxRSS, wantRSSMiB)
	}
	return ratios, v
}

func printVerdict(w io.Writer, rep *report) {
	fmt.Fprintln(w)
	for _, r := range rep.Ratios {
		fmt.Fprintf(w, "%-8s readers=%d  %s vs lxcfs: ops/s ×%.1f, p99 ÷%.1f\n", r.File, r.Readers, r.Target, r.OpsRatio, r.P99Ratio)
	}
	fmt.Fprintf(w, "(%s answers from fixed bytes with no work at all: its ratios are the most any /dev/fuse daemon reaches on this machine)\n", nameFloor)
	maxRSS := 0.0
	for _, c := range rep.Cells {
		if c.Target == nameOurs && c.DaemonRSSMiB != nil {
			maxRSS = max(maxRSS, *c.DaemonRSSMiB)
		}
	}
	fmt.Fprintf(w, "\ntargets (%s vs lxcfs, every file and reader count): ops/s ≥×%.0f, p99 ≤1/%.0f, RSS ≤%.0f MiB (max seen %.1f MiB)\n",
		nameOurs, wantOpsRatio, wantP99Ratio, wantRSSMiB, maxRSS)
	if rep.Verdict.Pass {
		fmt.Fprintln(w, "verdict: PASS")
		return
	}
	fmt.Fprintf(w, "verdict: FAIL (%d):\n", len(rep.Verdict.Failures))
	for _, f := range rep.Verdict.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}

func (rep *report) write(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results to %s: %w", path, err)
	}
	return nil
}
