// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
)

// target is one thing the readers read: a FUSE server's files bound over
// /proc in a container, or the container's own kernel /proc.
type target struct {
	name string
	d    *daemon            // nil for the kernel's /proc
	ctr  *sandbox.Container // bound to d's mount, or binding nothing
}

// cellResult is one row of the table.
type cellResult struct {
	Containers int     `json:"containers,omitempty"` // live tracked containers (scale mode)
	Target     string  `json:"target"`
	File       string  `json:"file"`
	Readers    int     `json:"readers"`
	Rounds     int     `json:"rounds"`
	Ops        uint64  `json:"ops"`
	Errors     uint64  `json:"errors"`
	FirstError string  `json:"firstError,omitempty"`
	ElapsedS   float64 `json:"elapsedSeconds"` // mean over readers
	OpsPerSec  float64 `json:"opsPerSecond"`
	P50US      float64 `json:"p50Micros"`
	P99US      float64 `json:"p99Micros"`
	MaxUS      float64 `json:"maxMicros"`
	// Daemon figures; absent for the kernel's /proc.
	DaemonCPUTicks     *uint64  `json:"daemonCpuTicks,omitempty"`
	DaemonCPUUSPerRead *float64 `json:"daemonCpuMicrosPerRead,omitempty"`
	DaemonRSSMiB       *float64 `json:"daemonRssMiB,omitempty"`

	hist *hist // merged latencies of all readers and rounds
}

// setDerived computes the quantiles and the daemon CPU per read.
func (c *cellResult) setDerived() {
	c.P50US = c.hist.quantile(0.50) / 1e3
	c.P99US = c.hist.quantile(0.99) / 1e3
	c.MaxUS = c.hist.quantile(1) / 1e3
	c.DaemonCPUUSPerRead = nil
	if c.DaemonCPUTicks != nil && c.Ops > 0 {
		per := float64(*c.DaemonCPUTicks) * (1e6 / clockTicks) / float64(c.Ops)
		c.DaemonCPUUSPerRead = &per
	}
}

// absorb adds another round of the same cell: counts and latencies add up,
// ops/s and elapsed time are averaged over rounds, RSS is the maximum.
func (c *cellResult) absorb(o cellResult) {
	n := float64(c.Rounds)
	c.OpsPerSec = (c.OpsPerSec*n + o.OpsPerSec*float64(o.Rounds)) / (n + float64(o.Rounds))
	c.ElapsedS = (c.ElapsedS*n + o.ElapsedS*float64(o.Rounds)) / (n + float64(o.Rounds))
	c.Rounds += o.Rounds
	c.Ops += o.Ops
	c.Errors += o.Errors
	if c.FirstError == "" {
		c.FirstError = o.FirstError
	}
	c.hist.merge(o.hist)
	if c.DaemonCPUTicks != nil && o.DaemonCPUTicks != nil {
		ticks := *c.DaemonCPUTicks + *o.DaemonCPUTicks
		c.DaemonCPUTicks = &ticks
	}
	if c.DaemonRSSMiB != nil && o.DaemonRSSMiB != nil {
		rss := max(*c.DaemonRSSMiB, *o.DaemonRSSMiB)
		c.DaemonRSSMiB = &rss
	}
	c.setDerived()
}

// runner runs cells: N readers in one container, released together.
type runner struct {
	exe string // this binary; containers share our root, so the path works there
	tmp string

	mu  sync.Mutex
	seq int
}

// procPath maps a -files entry to its path relative to / and the lxcfs root:
// "meminfo" is proc/meminfo; anything with a slash is taken as is.
func procPath(file string) string {
	if strings.Contains(file, "/") {
		return filepath.Clean(file)
	}
	return "proc/" + file
}

// runCell runs `readers` reader processes in t's container for dur, all
// released at once by a FIFO barrier, and measures t's daemon meanwhile.
func (r *runner) runCell(ctx context.Context, t *target, file string, readers int, dur time.Duration) (cellResult, error) {
	res := cellResult{Target: t.name, File: file, Readers: readers, Rounds: 1, hist: &hist{}}
	fail := func(err error) (cellResult, error) {
		return res, fmt.Errorf("cell %s, %s, readers=%d: %w", t.name, file, readers, err)
	}
	if t.d != nil {
		if err := t.d.check(); err != nil {
			return fail(err)
		}
	}
	r.mu.Lock()
	r.seq++
	dir := filepath.Join(r.tmp, fmt.Sprintf("cell-%03d", r.seq))
	r.mu.Unlock()
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(fmt.Errorf("create %s: %w", dir, err))
	}
	defer os.RemoveAll(dir) //nolint:errcheck // two fifos in our temp dir, which goes too
	readyPath, goPath := filepath.Join(dir, "ready"), filepath.Join(dir, "go")
	for _, p := range []string{readyPath, goPath} {
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return fail(fmt.Errorf("mkfifo %s: %w", p, err))
		}
	}
	// O_RDWR on a FIFO does not block (Linux), and holding the writer side
	// of "go" open keeps the readers waiting until we close it.
	readyF, err := os.OpenFile(readyPath, os.O_RDWR, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", readyPath, err))
	}
	defer readyF.Close() //nolint:errcheck // fifo, no data to lose
	goF, err := os.OpenFile(goPath, os.O_RDWR, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", goPath, err))
	}
	released := false
	release := func() {
		if !released {
			released = true
			_ = goF.Close() // closing is the start signal; a fifo has nothing to flush
		}
	}
	defer release()

	type output struct {
		stdout, stderr string
		err            error
	}
	cctx, cancel := context.WithTimeout(ctx, dur+2*time.Minute)
	defer cancel()
	outc := make(chan output, readers)
	argv := []string{r.exe, readerCmd, "-path", "/" + procPath(file), "-duration", dur.String(), "-ready", readyPath, "-go", goPath}
	for range readers {
		go func() {
			so, se, err := t.ctr.Exec(cctx, argv...)
			outc <- output{so, se, err}
		}()
	}
	var outs []output
	collect := func() {
		for len(outs) < readers {
			outs = append(outs, <-outc)
		}
	}
	abort := func(err error) (cellResult, error) {
		cancel()
		release()
		collect()
		for _, o := range outs {
			if o.err != nil {
				err = errors.Join(err, o.err)
				break
			}
		}
		return fail(err)
	}

	readyc := make(chan error, 1)
	if err := readyF.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		return abort(fmt.Errorf("set deadline on %s: %w", readyPath, err))
	}
	go func() {
		_, err := io.ReadFull(readyF, make([]byte, readers))
		readyc <- err
	}()
	select {
	case err := <-readyc:
		if err != nil {
			return abort(fmt.Errorf("wait for %d readers to be ready: %w", readers, err))
		}
	case o := <-outc:
		outs = append(outs, o)
		return abort(fmt.Errorf("a reader exited before the start: %v (stdout %q)", o.err, o.stdout))
	case <-ctx.Done():
		return abort(ctx.Err())
	}

	var t0 uint64
	if t.d != nil {
		if t0, err = t.d.cpuTicks(); err != nil {
			return abort(err)
		}
	}
	release()
	collect()
	var t1, rss uint64
	if t.d != nil {
		t1, err = t.d.cpuTicks()
		if err == nil {
			rss, err = t.d.rssBytes()
		}
		if err != nil {
			return fail(err)
		}
	}

	var elapsed float64
	for _, o := range outs {
		if o.err != nil {
			return fail(o.err)
		}
		var rr readerResult
		if err := json.Unmarshal([]byte(o.stdout), &rr); err != nil {
			return fail(fmt.Errorf("parse reader output %q: %w", o.stdout, err))
		}
		h, err := histFromSparse(rr.Hist)
		if err != nil {
			return fail(err)
		}
		res.hist.merge(h)
		res.Ops += rr.Ops
		res.Errors += rr.Errors
		if res.FirstError == "" {
			res.FirstError = rr.FirstError
		}
		secs := float64(rr.ElapsedNS) / 1e9
		elapsed += secs
		if secs > 0 {
			res.OpsPerSec += float64(rr.Ops) / secs
		}
	}
	res.ElapsedS = elapsed / float64(readers)
	if t.d != nil {
		ticks := t1 - t0
		res.DaemonCPUTicks = &ticks
		mib := float64(rss) / (1 << 20)
		res.DaemonRSSMiB = &mib
		if err := t.d.check(); err != nil {
			return fail(err)
		}
	}
	res.setDerived()
	return res, nil
}

// sanityResult is what one target serves for one file in the benchmark
// cgroup: a check that the limits show (or, for the kernel, do not).
type sanityResult struct {
	Target  string `json:"target"`
	File    string `json:"file"`
	Bytes   int    `json:"bytes"`
	Summary string `json:"summary"`
}

// sanity reads file once in t's container, through the same reader.
func (r *runner) sanity(ctx context.Context, t *target, file string) (sanityResult, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	so, _, err := t.ctr.Exec(ctx, r.exe, readerCmd, "-path", "/"+procPath(file), "-count", "1", "-content")
	if err != nil {
		return sanityResult{}, fmt.Errorf("read %s once in %s's container: %w", file, t.name, err)
	}
	var rr readerResult
	if err := json.Unmarshal([]byte(so), &rr); err != nil {
		return sanityResult{}, fmt.Errorf("parse reader output %q: %w", so, err)
	}
	if rr.Errors > 0 {
		return sanityResult{}, fmt.Errorf("read %s once in %s's container: %s", file, t.name, rr.FirstError)
	}
	return sanityResult{Target: t.name, File: file, Bytes: rr.Bytes, Summary: summarize(file, rr.Content)}, nil
}

var (
	memTotalRE  = regexp.MustCompile(`(?m)^MemTotal:\s+(\d+) kB$`)
	statCPURE   = regexp.MustCompile(`(?m)^cpu\d+ `)
	processorRE = regexp.MustCompile(`(?m)^processor\s*:`)
)

// summarize picks what shows whether a file is virtualized.
func summarize(file, content string) string {
	switch filepath.Base(file) {
	case "meminfo":
		if m := memTotalRE.FindStringSubmatch(content); m != nil {
			kb, _ := strconv.ParseUint(m[1], 10, 64) // the regexp admits digits only
			return fmt.Sprintf("MemTotal %.1f MiB", float64(kb)/1024)
		}
	case "stat":
		return fmt.Sprintf("%d cpuN lines", len(statCPURE.FindAllString(content, -1)))
	case "cpuinfo":
		return fmt.Sprintf("%d processors", len(processorRE.FindAllString(content, -1)))
	}
	return strconv.Quote(firstLine(content))
}
