// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/stress"
)

// defaultUpgradeReaders is -readers in -upgrade mode unless given.
const defaultUpgradeReaders = 8

// wantMaxStall is the -upgrade target: no read overlapping a handover may
// take longer.
const wantMaxStall = 50 * time.Millisecond

// upgradeConfig is the -upgrade part of the command line.
type upgradeConfig struct {
	on          bool
	bin2        string
	handovers   int
	cgroups     int
	warmup      time.Duration
	pause       time.Duration
	readGap     time.Duration
	stepTimeout time.Duration
	readerCpus  string
	keep        bool
	socket      string
}

func addUpgradeFlags(fs *flag.FlagSet, c *upgradeConfig) {
	fs.BoolVar(&c.on, "upgrade", false, "Instead of the matrix, hand the live FUSE connection over -handovers times, alternating -bin2 and -bin, while -readers containers read /proc/meminfo; reports failed reads, stalls and predecessor exit times.")
	fs.StringVar(&c.bin2, "bin2", "bin/k8s-lxcfs-next", "-upgrade: the second k8s-lxcfs binary, best with a different version (make bench-upgrade builds one suffixed -next).")
	fs.IntVar(&c.handovers, "handovers", 50, "-upgrade: handovers in a row; 0 measures the readers against one daemon without a handover socket (a baseline).")
	fs.IntVar(&c.cgroups, "cgroups", 4, "-upgrade: cgroups the reader containers are spread over (256 MiB, 384 MiB, ... memory limits).")
	fs.DurationVar(&c.warmup, "warmup", 500*time.Millisecond, "-upgrade: how long the readers read before the first handover (the whole run with -handovers 0).")
	fs.DurationVar(&c.pause, "pause", 200*time.Millisecond, "-upgrade: pause between a successor seen serving and the next handover.")
	fs.StringVar(&c.readerCpus, "reader-cpus", "", "-upgrade: pin the readers' cgroups to these CPUs, e.g. 0 to leave the daemons the other CPU as a node with reserved system CPUs does (\"\": anywhere, all CPUs saturated).")
	fs.DurationVar(&c.readGap, "read-gap", 0, "-upgrade: pause between a reader's reads (0: tight loops, the hardest case).")
	fs.StringVar(&c.socket, "socket", "", "-upgrade: the handover socket (default: in the scratch directory); must be shorter than 108 bytes.")
	fs.BoolVar(&c.keep, "keep", false, "-upgrade: keep the scratch directory (daemon logs, per-read records reader-NN.rec) for analysis; nothing stays mounted there.")
	fs.DurationVar(&c.stepTimeout, "step-timeout", 10*time.Second, "-upgrade: how long a predecessor may take to exit, and its successor to serve, before the run is aborted.")
}

// validate checks the -upgrade flags; readers is the parsed -readers list.
func (c upgradeConfig) validate(readers []int) []error {
	var errs []error
	if len(readers) != 1 {
		errs = append(errs, fmt.Errorf("-upgrade takes one -readers count, got %v", readers))
	}
	if c.handovers < 0 {
		errs = append(errs, fmt.Errorf("-handovers %d is negative", c.handovers))
	}
	if len(readers) == 1 && (c.cgroups < 1 || c.cgroups > readers[0]) {
		errs = append(errs, fmt.Errorf("-cgroups %d: want 1 to -readers (%d)", c.cgroups, readers[0]))
	}
	if c.warmup < 100*time.Millisecond || c.pause < 0 || c.readGap < 0 || c.stepTimeout < time.Second {
		errs = append(errs, errors.New("-warmup must be at least 100ms, -pause and -read-gap not negative, -step-timeout at least 1s"))
	}
	return errs
}

// upgradeReport is what -json writes in -upgrade mode.
type upgradeReport struct {
	Started time.Time             `json:"started"`
	Host    host                  `json:"host"`
	Config  map[string]any        `json:"config"`
	Result  *stress.UpgradeResult `json:"result"`
	Verdict *verdict              `json:"verdict"`
}

// runUpgrade is the -upgrade mode.
func runUpgrade(ctx context.Context, cfg config, stdout, stderr io.Writer) (code int, err error) {
	u := cfg.upgrade
	var bins [2]string
	var errs []error
	for i, b := range []string{cfg.bin, u.bin2} {
		abs, err := filepath.Abs(b)
		if err != nil {
			return 2, fmt.Errorf("resolve %s: %w", b, err)
		}
		bins[i] = abs
		if err := unix.Access(abs, unix.X_OK); err != nil {
			errs = append(errs, fmt.Errorf("k8s-lxcfs binary %s: %w; make bench-upgrade builds bin/k8s-lxcfs and bin/k8s-lxcfs-next", b, err))
		}
	}
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("must run as root (FUSE mounts, cgroups, namespaces)"))
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		errs = append(errs, fmt.Errorf("/dev/fuse unusable: %w", err))
	}
	for _, tool := range []string{"nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s (util-linux) needed by the sandbox: %w", tool, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 2, err
	}
	exe, err := os.Executable()
	if err != nil {
		return 2, fmt.Errorf("find our own binary for the readers: %w", err)
	}
	tmp, err := os.MkdirTemp("", "k8s-lxcfs-bench-")
	if err != nil {
		return 1, fmt.Errorf("create temp dir: %w", err)
	}
	defer func() {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "bench: interrupted; cleaned up")
		}
		if u.keep {
			fmt.Fprintf(stderr, "bench: kept %s\n", tmp)
			return
		}
		// RunUpgrade has unmounted; removeTemp refuses if it did not.
		if rerr := removeTemp(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", rerr))
		}
	}()

	rep := &upgradeReport{Started: time.Now().UTC(), Host: hostInfo(), Config: map[string]any{
		"bin": bins[0], "bin2": bins[1], "handovers": u.handovers, "readers": cfg.readers[0], "cgroups": u.cgroups,
		"warmup": u.warmup.String(), "pause": u.pause.String(), "readGap": u.readGap.String(), "readerCpus": u.readerCpus, "cacheTTL": cfg.cacheTTL.String(),
	}}
	fmt.Fprintf(stdout, "k8s-lxcfs upgrade benchmark, %s\n", rep.Started.Format(time.RFC3339))
	fmt.Fprintf(stdout, "host: kernel %s, %d CPUs, loadavg at start %s\n", rep.Host.Kernel, rep.Host.CPUs, rep.Host.Loadavg)
	if len(rep.Host.OtherMounts) > 0 {
		fmt.Fprintf(stdout, "note: other lxcfs-type mounts exist (%s); their servers may compete for CPU\n", strings.Join(rep.Host.OtherMounts, ", "))
	}

	res, runErr := stress.RunUpgrade(ctx, stress.UpgradeConfig{
		Bins:         bins,
		Handovers:    u.handovers,
		Readers:      cfg.readers[0],
		Cgroups:      u.cgroups,
		Dir:          tmp,
		Socket:       u.socket,
		ReaderArgv:   []string{exe, stress.ReaderCmd},
		DaemonArgs:   []string{"-cache-ttl=" + cfg.cacheTTL.String()},
		Warmup:       u.warmup,
		Pause:        u.pause,
		StepTimeout:  u.stepTimeout,
		ReadGap:      u.readGap,
		ReaderCpuset: u.readerCpus,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(stderr, "bench: "+format+"\n", args...)
		},
		CgroupPrefix: "bench-upgrade",
	})
	rep.Result = res
	if res != nil {
		rep.Verdict = judgeUpgrade(res, u.handovers)
		if res.Reads > 0 || len(res.Handovers) > 0 {
			printUpgrade(stdout, res, u.handovers, rep.Verdict)
		}
	}
	if cfg.jsonPath != "" && res != nil {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.jsonPath, append(b, '\n'), 0o644)
		}
		if err != nil {
			return 1, errors.Join(runErr, fmt.Errorf("write results to %s: %w", cfg.jsonPath, err))
		}
		fmt.Fprintf(stdout, "\nJSON results written to %s\n", cfg.jsonPath)
	}
	if runErr != nil {
		return 1, runErr
	}
	if cfg.strict && !rep.Verdict.Pass {
		return 3, nil
	}
	return 0, nil
}

// judgeUpgrade holds a run against the target: no failed or wrong read, the
// held file keeps working, every predecessor exits 0, one mount throughout,
// and no read overlapping a handover longer than wantMaxStall.
func judgeUpgrade(res *stress.UpgradeResult, handovers int) *verdict {
	v := &verdict{Pass: true}
	failf := func(format string, args ...any) {
		v.Pass = false
		v.Failures = append(v.Failures, fmt.Sprintf(format, args...))
	}
	if len(res.Handovers) != handovers {
		failf("%d of %d handovers ran", len(res.Handovers), handovers)
	}
	if res.Failed > 0 {
		failf("%d failed reads, first: %s", res.Failed, res.FirstFailure)
	}
	if res.Wrong > 0 {
		failf("%d reads with a wrong MemTotal, first: %s", res.Wrong, res.FirstWrong)
	}
	if res.HeldFailed > 0 {
		failf("%d of %d preads of the held file failed, first: %s", res.HeldFailed, res.HeldChecks, res.FirstHeldFailure)
	}
	bad := 0
	for _, h := range res.Handovers {
		if h.PredecessorErr != "" {
			bad++
		}
	}
	if bad > 0 {
		failf("%d predecessors exited with a non-zero status", bad)
	}
	if handovers > 0 && (res.MountsMax != 1 || res.DeviceChanged) {
		failf("mounts at the mount point: up to %d, device changed: %v", res.MountsMax, res.DeviceChanged)
	}
	if res.During.Max > wantMaxStall {
		failf("max stall %s > %s", fmtMS(res.During.Max), fmtMS(wantMaxStall))
	}
	return v
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// printUpgrade prints the -upgrade table and verdict.
func printUpgrade(w io.Writer, res *stress.UpgradeResult, handovers int, v *verdict) {
	fmt.Fprintf(w, "daemons: %q and %q alternating, mount %s, socket %s\n", res.Versions[0], res.Versions[1], res.MountPoint, res.Socket)
	fmt.Fprintf(w, "readers: %d containers (own pid+mount ns) in cgroups of %v MiB, open+read-to-EOF+close of /proc/meminfo in a loop, MemTotal checked on every read\n\n",
		res.Readers, res.LimitsMiB)
	lat := func(l stress.Latency) string {
		return fmt.Sprintf("%10s %10s %10s", fmtMS(l.P50), fmtMS(l.P99), fmtMS(l.Max))
	}
	head := fmt.Sprintf("%-34s %10s %10s %10s", "", "p50", "p99", "max")
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, strings.Repeat("-", len(head)))
	fmt.Fprintf(w, "%-34s %s  (%d reads)\n", "read latency, overall", lat(res.Overall), res.Overall.N)
	fmt.Fprintf(w, "%-34s %s  (%d reads)\n", "read latency, during handovers", lat(res.During), res.During.N)
	fmt.Fprintf(w, "%-34s %s  (%d reads)\n", "read latency, outside handovers", lat(res.Outside), res.Outside.N)
	fmt.Fprintf(w, "%-34s %s\n", "stall per handover (longest read)", lat(res.Stall))
	fmt.Fprintf(w, "%-34s %s\n", "longest read across the pause", lat(res.PauseStall))
	fmt.Fprintf(w, "%-34s %s\n", "pause logged by predecessor", lat(res.Paused))
	fmt.Fprintf(w, "%-34s %s\n", "predecessor exit after successor", lat(res.PredecessorExit))
	fmt.Fprintf(w, "%-34s %s\n", "successor serving (status)", lat(res.SuccessorLive))
	for _, sr := range res.Slowest {
		fmt.Fprintf(w, "  slow read: %s\n", sr)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "handovers %d of %d, reads %d, failed %d, wrong %d, held-file preads %d (failed %d)\n",
		len(res.Handovers), handovers, res.Reads, res.Failed, res.Wrong, res.HeldChecks, res.HeldFailed)
	if res.StatusFirst != nil && res.StatusLast != nil {
		fmt.Fprintf(w, "daemon after handover 1: fds %d, goroutines %d, handles %d, containers %d; after handover %d: fds %d, goroutines %d, handles %d, containers %d\n",
			res.StatusFirst.FDs, res.StatusFirst.Goroutines, res.StatusFirst.Handles, res.StatusFirst.Containers, len(res.Handovers),
			res.StatusLast.FDs, res.StatusLast.Goroutines, res.StatusLast.Handles, res.StatusLast.Containers)
	}
	fmt.Fprintf(w, "fuse.lxcfs mounts: up to %d during the run, %d at the end, device %s (changed: %v); %d after the final SIGTERM\n",
		res.MountsMax, res.MountsEnd, res.Device, res.DeviceChanged, res.MountsAfterStop)
	if len(res.LeftAfterStop) > 0 {
		fmt.Fprintf(w, "left at the mount point after the final SIGTERM (detached by the benchmark): %s\n", strings.Join(res.LeftAfterStop, "; "))
	}
	if res.FinalStop != "" {
		fmt.Fprintf(w, "last daemon on SIGTERM: %s\n", res.FinalStop)
	}
	if os.Getenv("BENCH_UPGRADE_TIMELINE") != "" {
		for _, h := range res.Handovers {
			fmt.Fprintf(w, "handover %2d: pause [%s, %s] adopted %s predecessor exit %s serving %s; stall %s over %d reads\n", h.N,
				fmtMS(h.HandedOverAt-h.Paused), fmtMS(h.HandedOverAt), fmtMS(h.AdoptedAt), fmtMS(h.PredecessorExit), fmtMS(h.SuccessorLive), fmtMS(h.Stall), h.Reads)
		}
	}
	for _, h := range res.Handovers {
		if h.PredecessorErr != "" || !strings.HasPrefix(h.Held, "ok ") || h.Mounts != 1 || !h.LoggedHandedOver || !h.LoggedAdopted {
			fmt.Fprintf(w, "handover %d: pid %d → %d, predecessor exit %q after %s, held file %q, mounts %d, logged handed over/adopted %v/%v\n",
				h.N, h.PredecessorPid, h.SuccessorPid, h.PredecessorErr, fmtMS(h.PredecessorExit), h.Held, h.Mounts, h.LoggedHandedOver, h.LoggedAdopted)
		}
	}
	fmt.Fprintf(w, "\ntarget: max stall ≤ %s with no failed or wrong read\n", fmtMS(wantMaxStall))
	if v.Pass {
		fmt.Fprintf(w, "verdict: PASS (max stall %s)\n", fmtMS(res.During.Max))
		return
	}
	fmt.Fprintf(w, "verdict: FAIL (%d):\n", len(v.Failures))
	for _, f := range v.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}
