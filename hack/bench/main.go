// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Command bench is the engine of `make bench`: it serves the same files with
// k8s-lxcfs (cached and uncached) and with Debian's lxcfs side by side,
// reads them from reader processes inside a limited cgroup and their own pid
// and mount namespaces (internal/sandbox), reads the kernel's /proc the same
// way as the lower bound, and prints throughput, latency and daemon cost.
//
// The readers are this binary again, run as the hidden subcommand `reader`
// inside the containers, which share our root filesystem. Every target gets
// the same reader code, cgroup and duration; the cells of the targets are
// interleaved so that drift on the host hits all of them alike.
//
// It needs root, /dev/fuse and cgroups, and builds nothing: the Makefile
// builds bin/k8s-lxcfs first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/stress"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == readerCmd {
		os.Exit(readerMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == floorCmd {
		os.Exit(floorMain(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == stress.ReaderCmd {
		os.Exit(stress.ReaderMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	// Signals stay caught for the whole run, cleanup included: a second ^C
	// must not leave cgroups and mounts behind. SIGKILL still works; then the
	// daemons (SIGTERM) and containers (SIGKILL) die by PR_SET_PDEATHSIG.
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	run := run
	if cfg.upgrade.on {
		run = runUpgrade
	}
	if cfg.heal.on {
		run = runHeal
	}
	code, err := run(ctx, cfg, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// config is the command line.
type config struct {
	bin, lxcfs  string
	duration    time.Duration
	rounds      int
	readers     []int
	files       []string
	jsonPath    string
	cacheTTL    time.Duration
	scale       bool
	loadavgCost bool
	counts      []int
	scaleReader int
	idle        time.Duration
	workers     int
	strict      bool
	upgrade     upgradeConfig
	heal        healConfig
}

const usage = `Usage: bench [flags]

Benchmarks k8s-lxcfs against lxcfs and the kernel's /proc, read from reader
processes in a 256 MiB / 1.5 CPU cgroup with their own pid and mount
namespaces. Needs root; run ` + "`make bench`" + ` (builds bin/k8s-lxcfs first).

Modes: the default is the matrix (targets x -files x -readers). -scale and
-loadavg-cost replace it with the many-containers experiments. -upgrade
replaces it with live handovers between -bin and -bin2 under -readers
readers (default 8; see README.md). -heal replaces it with SIGKILLs and
restarts of the daemon under -heal-counts containers, timing the repair of
their binds (see README.md).

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.bin, "bin", "bin/k8s-lxcfs", "k8s-lxcfs binary to benchmark (built by the Makefile, not by us).")
	fs.StringVar(&cfg.lxcfs, "lxcfs", "/usr/bin/lxcfs", "lxcfs binary to compare against (Debian: apt-get install -y lxcfs).")
	fs.DurationVar(&cfg.duration, "duration", 3*time.Second, "How long each cell (target x file x readers) reads.")
	fs.IntVar(&cfg.rounds, "rounds", 1, "Run the whole interleaved matrix this many times and merge each cell's rounds; more rounds spread bursts of outside load evenly over the targets.")
	readers := fs.String("readers", "1,8", "Comma-separated reader process counts; all readers of a cell start together.")
	files := fs.String("files", "meminfo,stat,cpuinfo", "Comma-separated files below proc/ to read (a name with a slash is a path below the mount root).")
	fs.StringVar(&cfg.jsonPath, "json", "", "Also write all results as JSON to this file.")
	fs.DurationVar(&cfg.cacheTTL, "cache-ttl", 100*time.Millisecond, "-cache-ttl of the main k8s-lxcfs instance (a second one always runs with 0).")
	fs.BoolVar(&cfg.scale, "scale", false, "Instead of the matrix, measure meminfo reads with few vs many live containers that k8s-lxcfs tracks (see -counts).")
	fs.BoolVar(&cfg.loadavgCost, "loadavg-cost", false, "Instead of the matrix, measure the daemons' idle CPU with the -counts containers registered for loadavg.")
	counts := fs.String("counts", "10,1000", "Comma-separated numbers of live tracked containers for -scale and -loadavg-cost, in increasing order.")
	fs.IntVar(&cfg.scaleReader, "scale-readers", 1, "Reader processes per -scale cell.")
	fs.DurationVar(&cfg.idle, "idle", 20*time.Second, "How long -loadavg-cost watches the idle daemons (the loadavg sampler runs every 5s).")
	fs.IntVar(&cfg.workers, "workers", 2*runtime.NumCPU()+2, "Containers created or stopped in parallel for -scale, -loadavg-cost and -heal.")
	fs.BoolVar(&cfg.strict, "strict", false, "Exit 3 when the verdict fails (the default exits 0 whenever the benchmark itself ran).")
	addUpgradeFlags(fs, &cfg.upgrade)
	addHealFlags(fs, &cfg.heal)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	readersSet := false
	fs.Visit(func(f *flag.Flag) { readersSet = readersSet || f.Name == "readers" })
	if cfg.upgrade.on && !readersSet {
		*readers = strconv.Itoa(defaultUpgradeReaders)
	}
	if fs.NArg() != 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var errs []error
	var err error
	if cfg.readers, err = parseInts("-readers", *readers); err != nil {
		errs = append(errs, err)
	}
	if cfg.counts, err = parseInts("-counts", *counts); err != nil {
		errs = append(errs, err)
	}
	for i := 1; i < len(cfg.counts); i++ {
		if cfg.counts[i] <= cfg.counts[i-1] {
			errs = append(errs, fmt.Errorf("-counts %q must increase", *counts))
			break
		}
	}
	for f := range strings.SplitSeq(*files, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p := procPath(f); !filepath.IsLocal(p) {
			errs = append(errs, fmt.Errorf("-files entry %q is not a path below the mount root", f))
			continue
		}
		cfg.files = append(cfg.files, f)
	}
	if len(cfg.files) == 0 {
		errs = append(errs, errors.New("-files is empty"))
	}
	if cfg.duration < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("-duration %s is below 100ms", cfg.duration))
	}
	if cfg.idle < time.Second {
		errs = append(errs, fmt.Errorf("-idle %s is below 1s", cfg.idle))
	}
	if cfg.workers < 1 || cfg.scaleReader < 1 || cfg.rounds < 1 {
		errs = append(errs, errors.New("-workers, -scale-readers and -rounds must be at least 1"))
	}
	if cfg.upgrade.on {
		errs = append(errs, cfg.upgrade.validate(cfg.readers)...)
	}
	if cfg.heal.on {
		errs = append(errs, cfg.heal.validate(cfg.upgrade.on)...)
	}
	return cfg, errors.Join(errs...)
}

func parseInts(name, s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%s %q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// preflight reports everything missing at once.
func preflight(cfg config) error {
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("must run as root (FUSE mounts, cgroups, namespaces)"))
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		errs = append(errs, fmt.Errorf("/dev/fuse unusable: %w", err))
	}
	if err := unix.Access(cfg.bin, unix.X_OK); err != nil {
		errs = append(errs, fmt.Errorf("k8s-lxcfs binary %s: %w; build it first: go build -o bin/k8s-lxcfs ./cmd/k8s-lxcfs (make bench does)", cfg.bin, err))
	}
	if err := unix.Access(cfg.lxcfs, unix.X_OK); err != nil {
		errs = append(errs, fmt.Errorf("lxcfs binary %s: %w; install it: apt-get install -y lxcfs (make bench does), or pass -lxcfs", cfg.lxcfs, err))
	}
	for _, tool := range []string{"nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s (util-linux) needed by the sandbox: %w", tool, err))
		}
	}
	return errors.Join(errs...)
}

// daemons are the three FUSE servers every mode runs.
type daemons struct {
	ours, ours0, lxcfs, floor *daemon
}

func (ds daemons) all() []*daemon { return []*daemon{ds.ours, ds.ours0, ds.lxcfs, ds.floor} }

// virtual are the daemons that virtualize by cgroup (not the floor, which
// serves fixed bytes); the many-containers modes measure these.
func (ds daemons) virtual() []*daemon { return []*daemon{ds.ours, ds.ours0, ds.lxcfs} }

// Target names, in table order.
const (
	nameOurs  = "k8s-lxcfs"
	nameOurs0 = "k8s-lxcfs ttl=0"
	nameLXCFS = "lxcfs"
	nameHost  = "host /proc"
	nameFloor = "FUSE floor"
)

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (code int, err error) {
	if err := preflight(cfg); err != nil {
		return 2, err
	}
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return 2, fmt.Errorf("resolve %s: %w", cfg.bin, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return 2, fmt.Errorf("find our own binary for the readers: %w", err)
	}
	tmp, err := os.MkdirTemp("", "k8s-lxcfs-bench-")
	if err != nil {
		return 1, fmt.Errorf("create temp dir: %w", err)
	}
	cl := &cleanups{w: stderr}
	defer func() {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "bench: interrupted; cleaning up")
		}
		if cerr := cl.run(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		}
	}()
	cl.add(func() error { return removeTemp(tmp) })

	rep := &report{Started: time.Now().UTC(), Host: hostInfo(), Config: reportConfig(cfg, bin)}
	printHeader(stdout, rep)

	ds, err := startDaemons(ctx, cl, bin, exe, cfg, tmp)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "daemons: %s pid %d, %s pid %d, %s pid %d, %s pid %d (mounts below %s)\n\n",
		ds.ours.name, ds.ours.pid(), ds.ours0.name, ds.ours0.pid(), ds.lxcfs.name, ds.lxcfs.pid(), ds.floor.name, ds.floor.pid(), tmp)
	r := &runner{exe: exe, tmp: tmp}

	if cfg.scale || cfg.loadavgCost {
		err = runScale(ctx, cl, r, ds, cfg, rep, stdout, stderr)
	} else {
		err = runMatrix(ctx, cl, r, ds, cfg, rep, stdout, stderr)
	}
	if err != nil {
		return 1, err
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		rep.Host.LoadavgEnd = strings.TrimSpace(string(b))
		fmt.Fprintf(stdout, "\nhost loadavg at end %s (at start %s)\n", rep.Host.LoadavgEnd, rep.Host.Loadavg)
	}
	if cfg.jsonPath != "" {
		if err := rep.write(cfg.jsonPath); err != nil {
			return 1, err
		}
		fmt.Fprintf(stdout, "\nJSON results written to %s\n", cfg.jsonPath)
	}
	if cfg.strict && rep.Verdict != nil && !rep.Verdict.Pass {
		return 3, nil
	}
	return 0, nil
}

// startDaemons starts our daemon twice (cfg.cacheTTL and uncached) and
// lxcfs, each on its own mount point below tmp, and waits until all serve.
func startDaemons(ctx context.Context, cl *cleanups, bin, exe string, cfg config, tmp string) (daemons, error) {
	var ds daemons
	specs := []struct {
		dst        **daemon
		name, dir  string
		signalExit int
		argv       func(mnt string) []string
	}{
		{&ds.ours, nameOurs, "ours", 0, func(mnt string) []string {
			return []string{bin, "serve", "-handover-socket=" + mnt + ".sock", "-cache-ttl=" + cfg.cacheTTL.String(), mnt}
		}},
		{&ds.ours0, nameOurs0, "ours-ttl0", 0, func(mnt string) []string {
			return []string{bin, "serve", "-handover-socket=" + mnt + ".sock", "-cache-ttl=0", mnt}
		}},
		{&ds.lxcfs, nameLXCFS, "lxcfs", 1, func(mnt string) []string {
			return []string{cfg.lxcfs, "-f", "--enable-cfs", "-l", "-p", filepath.Join(tmp, "lxcfs.pid"), mnt}
		}},
		{&ds.floor, nameFloor, "floor", 0, func(mnt string) []string { return []string{exe, floorCmd, mnt} }},
	}
	for _, s := range specs {
		mnt := filepath.Join(tmp, s.dir)
		d, err := startDaemon(s.name, mnt, filepath.Join(tmp, s.dir+".log"), s.argv(mnt))
		if err != nil {
			return ds, err
		}
		d.signalExit = s.signalExit
		cl.add(func() error {
			err := d.stop()
			for _, n := range d.notes {
				fmt.Fprintln(cl.w, "bench: note:", n)
			}
			return err
		})
		*s.dst = d
	}
	for _, d := range ds.all() {
		if err := d.waitLive(ctx, 20*time.Second); err != nil {
			return ds, err
		}
	}
	return ds, nil
}

// removeTemp removes our temp dir, unless something is still mounted below
// it: a recursive removal must never walk into a live filesystem.
func removeTemp(tmp string) error {
	mounts, err := readMountinfo()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if m.point == tmp || strings.HasPrefix(m.point, tmp+"/") {
			return fmt.Errorf("keep %s: %s is still mounted at %s", tmp, m.fstype, m.point)
		}
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove %s: %w", tmp, err)
	}
	return nil
}

// cleanups run in reverse order of registration, every one of them, even
// after failures.
type cleanups struct {
	w   io.Writer
	fns []func() error
}

func (c *cleanups) add(fn func() error) { c.fns = append(c.fns, fn) }

func (c *cleanups) run() error {
	var errs []error
	for i := len(c.fns) - 1; i >= 0; i-- {
		if err := c.fns[i](); err != nil {
			errs = append(errs, err)
		}
	}
	c.fns = nil
	return errors.Join(errs...)
}

// benchLimits are the limits of the cgroup the readers run in.
var benchLimits = sandbox.Limits{MemoryBytes: 256 << 20, CPUQuotaUS: 150000, CPUPeriodUS: 100000}

// newReaderTargets creates the benchmark cgroup and one container per target
// in it: the three daemons' files bound over /proc, and one binding nothing.
func newReaderTargets(ctx context.Context, cl *cleanups, ds daemons, files []string) ([]*target, error) {
	cg, err := sandbox.NewCgroup(fmt.Sprintf("bench-%d", os.Getpid()), benchLimits)
	if err != nil {
		return nil, err
	}
	cl.add(cg.Remove)
	rels := make([]string, len(files))
	for i, f := range files {
		rels[i] = procPath(f)
	}
	targets := []*target{{name: nameOurs, d: ds.ours}, {name: nameOurs0, d: ds.ours0}, {name: nameLXCFS, d: ds.lxcfs}, {name: nameFloor, d: ds.floor}, {name: nameHost}}
	for _, t := range targets {
		o := sandbox.ContainerOptions{Cgroup: cg, Files: []string{}, ReadOnly: true}
		if t.d != nil {
			o.LXCFSRoot, o.Files = t.d.mnt, rels
		}
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		ctr, err := sandbox.StartContainer(sctx, o)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("start reader container for %s: %w", t.name, err)
		}
		cl.add(ctr.Stop)
		t.ctr = ctr
	}
	return targets, nil
}

// runMatrix is the default mode: every target x file x reader count.
func runMatrix(ctx context.Context, cl *cleanups, r *runner, ds daemons, cfg config, rep *report, w, log io.Writer) error {
	targets, err := newReaderTargets(ctx, cl, ds, cfg.files)
	if err != nil {
		return err
	}
	for _, f := range cfg.files {
		for _, t := range targets {
			s, err := r.sanity(ctx, t, f)
			if err != nil {
				return err
			}
			rep.Sanity = append(rep.Sanity, s)
		}
	}
	printSanity(w, rep.Sanity)
	index := map[string]int{}
	for round := range cfg.rounds {
		if cfg.rounds > 1 {
			fmt.Fprintf(log, "bench: round %d of %d\n", round+1, cfg.rounds)
		}
		for _, f := range cfg.files {
			for _, n := range cfg.readers {
				for _, t := range targets {
					res, err := r.runCell(ctx, t, f, n, cfg.duration)
					if err != nil {
						return err
					}
					key := fmt.Sprintf("%s|%s|%d", t.name, f, n)
					if i, ok := index[key]; ok {
						rep.Cells[i].absorb(res)
						continue
					}
					index[key] = len(rep.Cells)
					rep.Cells = append(rep.Cells, res)
				}
			}
		}
	}
	printTable(w, rep.Cells, false)
	rep.Ratios, rep.Verdict = compare(rep.Cells, cfg.files, cfg.readers)
	printVerdict(w, rep)
	return nil
}
