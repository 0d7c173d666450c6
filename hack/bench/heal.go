// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
)

// msgHealed is what the daemon's healer logs after a scan that found broken
// mounts (heal.Healer.Scan).
const msgHealed = "Healed containers' lxcfs mounts"

// fsTypeLXCFS is the type of k8s-lxcfs mounts in mount tables.
const fsTypeLXCFS = "fuse.lxcfs"

// healConfig is the -heal part of the command line.
type healConfig struct {
	on        bool
	countsArg string
	counts    []int
	rounds    int
	cgroups   int
	interval  time.Duration
	timeout   time.Duration
	idle      time.Duration
	keep      bool
}

func addHealFlags(fs *flag.FlagSet, c *healConfig) {
	fs.BoolVar(&c.on, "heal", false, "Instead of the matrix, SIGKILL the daemon and start it again -heal-rounds times under each of -heal-counts containers; reports how fast its healer repairs every container's binds in place.")
	fs.StringVar(&c.countsArg, "heal-counts", "10,100", "-heal: comma-separated container counts, increasing; the containers of one count stay for the next.")
	fs.IntVar(&c.rounds, "heal-rounds", 5, "-heal: kill-and-restart rounds per container count.")
	fs.IntVar(&c.cgroups, "heal-cgroups", 4, "-heal: cgroups the containers are spread over (256 MiB, 384 MiB, ... memory limits).")
	fs.DurationVar(&c.interval, "heal-interval", 10*time.Second, "-heal: the daemons' -heal-interval (their default is 10s); a repair that fails waits for the next scan.")
	fs.DurationVar(&c.timeout, "heal-timeout", time.Minute, "-heal: how long a round waits for every container to be healed before it records the rest as unhealed.")
	fs.DurationVar(&c.idle, "heal-idle", 0, "-heal: after the rounds of each count, also measure the daemon's CPU over this long with nothing broken: the cost of its periodic scans (0: skip).")
	fs.BoolVar(&c.keep, "heal-keep", false, "-heal: keep the scratch directory (every daemon's log) for analysis; nothing stays mounted there.")
}

// validate parses -heal-counts and checks the -heal flags.
func (c *healConfig) validate(upgrade bool) []error {
	var errs []error
	if upgrade {
		errs = append(errs, errors.New("-heal and -upgrade are separate modes; pick one"))
	}
	counts, err := parseInts("-heal-counts", c.countsArg)
	if err != nil {
		errs = append(errs, err)
	}
	for i := 1; i < len(counts); i++ {
		if counts[i] <= counts[i-1] {
			errs = append(errs, fmt.Errorf("-heal-counts %q must increase", c.countsArg))
			break
		}
	}
	c.counts = counts
	if c.rounds < 1 || c.cgroups < 1 {
		errs = append(errs, errors.New("-heal-rounds and -heal-cgroups must be at least 1"))
	}
	if c.interval < time.Second || c.timeout < time.Second || c.idle < 0 {
		errs = append(errs, errors.New("-heal-interval and -heal-timeout must be at least 1s, -heal-idle not negative"))
	}
	return errs
}

// dist summarises durations: nearest-rank quantiles over every value.
type dist struct {
	N   int           `json:"n"`
	Min time.Duration `json:"min"`
	P50 time.Duration `json:"p50"`
	P90 time.Duration `json:"p90"`
	Max time.Duration `json:"max"`
}

func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		rank := int(p*float64(len(s)) + 0.999999)
		return s[min(max(rank, 1), len(s))-1]
	}
	return dist{N: len(s), Min: s[0], P50: q(0.5), P90: q(0.9), Max: s[len(s)-1]}
}

// healScan is one "Healed containers' lxcfs mounts" line of a daemon's log.
type healScan struct {
	At       time.Duration `json:"at"` // since the daemon's start
	Broken   int           `json:"broken"`
	Repaired int           `json:"repaired"`
	Failed   int           `json:"failed"`
	Deferred int           `json:"deferred"`
}

// healRound is one SIGKILL and restart.
type healRound struct {
	N         int    `json:"n"`
	KilledPid int    `json:"killedPid"`
	Pid       int    `json:"pid"`
	ReadAfter string `json:"readAfterKill"` // container 0's read between kill and restart
	// Live runs from the new daemon's start until proc/meminfo read
	// through a new mount at the mount point; AllHealed until the last
	// container had every bind on that mount's device.
	Live      time.Duration `json:"live"`
	AllHealed time.Duration `json:"allHealed"`
	// Healed is each container's time, by container index; -1 if it was
	// not healed within -heal-timeout (listed in Unhealed).
	Healed   []time.Duration `json:"healed"`
	Unhealed []int           `json:"unhealed,omitempty"`
	// Reads counts the containers whose read of /proc/meminfo at the end
	// of the round showed their limit; Wrong says what the others showed.
	Reads     int      `json:"reads"`
	Wrong     []string `json:"wrong,omitempty"`
	Restarted []int    `json:"restarted,omitempty"`
	// ROLost lists read-only containers with a bind that came back
	// writable; MountPointStale counts containers whose copy of the mount
	// point itself (private propagation) still names the dead connection.
	ROLost          []int      `json:"roLost,omitempty"`
	MountPointStale int        `json:"mountPointStale"`
	HostMounts      int        `json:"hostMounts"` // fuse.lxcfs mounts at the mount point
	Scans           []healScan `json:"scans"`
	// Rereads counts the mountinfo reads the measurement took (one per
	// mount event in a container not yet healed).
	Rereads int `json:"rereads"`
	// DaemonCPU is the new daemon's CPU time (user+system, 10 ms ticks)
	// from its start until every container was seen healed.
	DaemonCPU time.Duration `json:"daemonCPU"`
}

// healCount is everything measured with one number of containers.
type healCount struct {
	Containers   int         `json:"containers"`
	Binds        int         `json:"bindsPerContainer"`
	Rounds       []healRound `json:"rounds"`
	Live         dist        `json:"live"`
	AllHealed    dist        `json:"allHealed"`
	PerContainer dist        `json:"perContainer"`
	// IdleCPU is the daemon's CPU time over Idle with nothing broken
	// (-heal-idle).
	Idle    time.Duration `json:"idle,omitempty"`
	IdleCPU time.Duration `json:"idleCPU,omitempty"`
}

// healReport is what -json writes in -heal mode.
type healReport struct {
	Started   time.Time      `json:"started"`
	Host      host           `json:"host"`
	Config    map[string]any `json:"config"`
	LimitsMiB []int64        `json:"limitsMiB"`
	Counts    []healCount    `json:"counts"`
	Verdict   *verdict       `json:"verdict"`
}

// healCtr is one container and what it looked like when it started.
type healCtr struct {
	i         int
	c         *sandbox.Container
	pid       int
	startTime string // field 22 of /proc/PID/stat: a restarted init has another
	wantKB    uint64
	slave, ro bool
	binds     int // fuse.lxcfs mounts other than at the mount point
}

// healRun is the state of a -heal run.
type healRun struct {
	cfg     config
	bin     string
	dir     string
	mnt     string
	sock    string
	log     io.Writer
	cgroups []*sandbox.Cgroup
	wantKB  []uint64

	mu      sync.Mutex // guards ctrs and cur (cleanup may run while starting)
	ctrs    []*healCtr
	cur     *daemon
	started time.Time // cur's start
	gen     int
}

// runHeal is the -heal mode.
func runHeal(ctx context.Context, cfg config, stdout, stderr io.Writer) (code int, err error) {
	hc := cfg.heal
	var errs []error
	if os.Geteuid() != 0 {
		errs = append(errs, errors.New("must run as root (FUSE mounts, cgroups, namespaces)"))
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		errs = append(errs, fmt.Errorf("/dev/fuse unusable: %w", err))
	}
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return 2, fmt.Errorf("resolve %s: %w", cfg.bin, err)
	}
	if err := unix.Access(bin, unix.X_OK); err != nil {
		errs = append(errs, fmt.Errorf("k8s-lxcfs binary %s: %w; make bench-heal builds it", cfg.bin, err))
	}
	for _, tool := range []string{"nsenter", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s (util-linux) needed by the sandbox: %w", tool, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return 2, err
	}
	tmp, err := os.MkdirTemp("", "k8s-lxcfs-bench-heal-")
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
	cl.add(func() error {
		if hc.keep {
			fmt.Fprintf(stderr, "bench: kept %s\n", tmp)
			return nil
		}
		return removeTemp(tmp)
	})

	h := &healRun{cfg: cfg, bin: bin, dir: tmp, mnt: filepath.Join(tmp, "mnt"), sock: filepath.Join(tmp, "mnt.sock"), log: stderr}
	cl.add(h.stopDaemon)
	rep := &healReport{Started: time.Now().UTC(), Host: hostInfo(), Config: map[string]any{
		"bin": bin, "counts": hc.counts, "rounds": hc.rounds, "cgroups": hc.cgroups, "healInterval": hc.interval.String(),
		"timeout": hc.timeout.String(), "workers": cfg.workers,
	}}
	rep.Host.Ours = versionOf(bin, "version")
	fmt.Fprintf(stdout, "k8s-lxcfs heal benchmark, %s\n", rep.Started.Format(time.RFC3339))
	fmt.Fprintf(stdout, "host: kernel %s, %d CPUs, loadavg at start %s; k8s-lxcfs %s\n", rep.Host.Kernel, rep.Host.CPUs, rep.Host.Loadavg, rep.Host.Ours)
	if len(rep.Host.OtherMounts) > 0 {
		fmt.Fprintf(stdout, "note: other lxcfs-type mounts exist (%s); their servers may compete for CPU\n", strings.Join(rep.Host.OtherMounts, ", "))
	}

	if err := os.Mkdir(h.mnt, 0o755); err != nil {
		return 1, fmt.Errorf("create mount point: %w", err)
	}
	if _, err := h.start(); err != nil {
		return 1, err
	}
	if _, _, err := h.waitLive(ctx, "", 20*time.Second); err != nil {
		return 1, err
	}
	hostKB, err := hostMemTotal()
	if err != nil {
		return 1, err
	}
	for i := range hc.cgroups {
		lim := int64(256+128*i) << 20
		cg, err := sandbox.NewCgroup(fmt.Sprintf("bench-heal-%d-%d", os.Getpid(), i), sandbox.Limits{MemoryBytes: lim})
		if err != nil {
			return 1, err
		}
		cl.add(cg.Remove)
		h.cgroups = append(h.cgroups, cg)
		h.wantKB = append(h.wantKB, min(uint64(lim)>>10, hostKB))
		rep.LimitsMiB = append(rep.LimitsMiB, lim>>20)
	}
	cl.add(h.stopContainers)
	fmt.Fprintf(stdout, "daemon: %s serve -handover-socket=%s -heal-interval=%s %s\n", bin, h.sock, hc.interval, h.mnt)
	fmt.Fprintf(stdout, "containers: own pid+mount ns, default file set bound from the mount point, over %d cgroups of %v MiB; even ones private, odd ones slave propagation; pairs 2,3 6,7 ... read-only\n",
		len(h.cgroups), rep.LimitsMiB)
	fmt.Fprintf(stdout, "each round: SIGKILL the daemon, start it again; (a) start → a new mount serves proc/meminfo, (b) start → the last container has every fuse.lxcfs bind on the new device (its mountinfo re-read on each mount event, epoll POLLPRI); then one read of /proc/meminfo per container\n")

	for _, n := range hc.counts {
		res, err := h.runCount(ctx, n, stdout)
		if res != nil {
			rep.Counts = append(rep.Counts, *res)
		}
		if err != nil {
			return 1, err
		}
	}
	rep.Verdict = judgeHeal(rep.Counts)
	printHealVerdict(stdout, rep.Verdict)
	if cfg.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.jsonPath, append(b, '\n'), 0o644)
		}
		if err != nil {
			return 1, fmt.Errorf("write results to %s: %w", cfg.jsonPath, err)
		}
		fmt.Fprintf(stdout, "\nJSON results written to %s\n", cfg.jsonPath)
	}
	if cfg.strict && !rep.Verdict.Pass {
		return 3, nil
	}
	return 0, nil
}

// start starts the next daemon on the mount point and makes it the current
// one. Like [startDaemon], but it neither creates the mount point (a dead
// mount sits there after a SIGKILL: stat fails with ENOTCONN) nor waits.
func (h *healRun) start() (*daemon, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	logPath := filepath.Join(h.dir, fmt.Sprintf("daemon-%02d.log", h.gen))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log %s: %w", logPath, err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own copy
	d := &daemon{name: fmt.Sprintf("k8s-lxcfs #%d", h.gen), mnt: h.mnt, log: logPath}
	d.cmd = exec.Command(h.bin, "serve", "-handover-socket="+h.sock, "-heal-interval="+h.cfg.heal.interval.String(), h.mnt)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // ^C reaches us only; we stop the daemon in order
		Pdeathsig: unix.SIGTERM,
	}
	h.started = time.Now()
	if d.reaped, err = proc.StartLocked(d.cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", d.name, err)
	}
	h.cur = d
	h.gen++
	return d, nil
}

// kill SIGKILLs the current daemon and waits until it is reaped: its FUSE
// connection is aborted, and every mount of it answers ENOTCONN.
func (h *healRun) kill() (int, error) {
	h.mu.Lock()
	d := h.cur
	h.mu.Unlock()
	if err := d.check(); err != nil {
		return 0, err
	}
	if err := d.cmd.Process.Kill(); err != nil { // through the pidfd: never a recycled pid
		return 0, fmt.Errorf("kill %s (pid %d): %w", d.name, d.pid(), err)
	}
	<-d.reaped.Done()
	return d.pid(), nil
}

// stopDaemon stops the current daemon (SIGTERM) and detaches whatever is
// left at the mount point: a dead FUSE mount, the daemon's bind of the
// mount point onto itself.
func (h *healRun) stopDaemon() error {
	h.mu.Lock()
	d := h.cur
	h.mu.Unlock()
	var errs []error
	if d != nil {
		if err := d.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for range 8 {
		fstype, err := mountFSType(h.mnt)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if fstype == "" {
			break
		}
		if err := unix.Unmount(h.mnt, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", h.mnt, err))
			break
		}
	}
	return errors.Join(errs...)
}

// stopContainers stops every container, workers at a time.
func (h *healRun) stopContainers() error {
	h.mu.Lock()
	ctrs := h.ctrs
	h.ctrs = nil
	h.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	parallel(len(ctrs), 2*h.cfg.workers, func(i int) {
		if err := ctrs[i].c.Stop(); err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	})
	return errors.Join(errs...)
}

// parallel runs fn(0..n-1) with at most workers at once.
func parallel(n, workers int, fn func(i int)) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Go(func() {
			for i := range jobs {
				fn(i)
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}

// waitLive polls (1 ms) until proc/meminfo reads through a fuse.lxcfs
// mount at the mount point whose device is not dead. It returns the time
// since the current daemon's start and the live device.
func (h *healRun) waitLive(ctx context.Context, dead string, timeout time.Duration) (time.Duration, string, error) {
	h.mu.Lock()
	d, t0 := h.cur, h.started
	h.mu.Unlock()
	probe := filepath.Join(h.mnt, "proc/meminfo")
	deadline := t0.Add(timeout)
	var last error
	for {
		b, err := os.ReadFile(probe)
		if err == nil && bytes.Contains(b, []byte("MemTotal:")) {
			at := time.Since(t0)
			dev, err := h.hostDevice()
			if err == nil && dev != dead {
				return at, dev, nil
			}
			last = fmt.Errorf("read works, device %q (dead %q): %v", dev, dead, err)
		} else {
			last = fmt.Errorf("read %s: %v", probe, err)
		}
		if err := d.check(); err != nil {
			return 0, "", err
		}
		if time.Now().After(deadline) {
			return 0, "", fmt.Errorf("%s: %s not live %s after its start (last: %v)%s", d.name, h.mnt, timeout, last, d.logTail())
		}
		if err := sleepCtx(ctx, time.Millisecond); err != nil {
			return 0, "", err
		}
	}
}

// hostDevice returns major:minor of the top fuse.lxcfs mount at the mount
// point in our namespace, and how many there are.
func (h *healRun) hostDevice() (string, error) {
	ms, err := lxcfsMounts("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	dev := ""
	for _, m := range ms {
		if m.point == h.mnt {
			dev = m.dev
		}
	}
	if dev == "" {
		return "", fmt.Errorf("no %s mount at %s", fsTypeLXCFS, h.mnt)
	}
	return dev, nil
}

// lxcMount is one fuse.lxcfs line of a mountinfo file.
type lxcMount struct {
	dev, point, opts string
}

// lxcfsMounts reads the fuse.lxcfs mounts of a mountinfo file.
func lxcfsMounts(path string) ([]lxcMount, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return parseLXCFSMounts(b), nil
}

// parseLXCFSMounts parses the fuse.lxcfs lines of mountinfo: field 3 is
// major:minor, 5 the mount point, 6 the per-mount options.
func parseLXCFSMounts(b []byte) []lxcMount {
	var out []lxcMount
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, fsTypeLXCFS+" ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 6 {
			continue
		}
		out = append(out, lxcMount{dev: f[2], point: unescapeMount(f[4]), opts: f[5]})
	}
	return out
}

// binds splits a container's fuse.lxcfs mounts into its binds and its copy
// of the mount point itself (cloned with the host's table).
func (h *healRun) binds(ms []lxcMount) (binds, own []lxcMount) {
	for _, m := range ms {
		if m.point == h.mnt || strings.HasPrefix(m.point, h.mnt+"/") {
			own = append(own, m)
			continue
		}
		binds = append(binds, m)
	}
	return binds, own
}

// grow starts containers until there are n, workers at a time, and checks
// that each new one reads its own MemTotal through its binds.
func (h *healRun) grow(ctx context.Context, n int) error {
	h.mu.Lock()
	have := len(h.ctrs)
	h.mu.Unlock()
	if n <= have {
		return nil
	}
	dev, err := h.hostDevice()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	began := time.Now()
	parallel(n-have, h.cfg.workers, func(j int) {
		if ctx.Err() != nil {
			return
		}
		i := have + j
		x := &healCtr{i: i, slave: i%2 == 1, ro: (i/2)%2 == 1, wantKB: h.wantKB[i%len(h.wantKB)]}
		o := sandbox.ContainerOptions{Cgroup: h.cgroups[i%len(h.cgroups)], LXCFSRoot: h.mnt, ReadOnly: x.ro}
		if x.slave {
			o.Propagation = "slave"
		}
		sctx, scancel := context.WithTimeout(ctx, time.Minute)
		c, err := sandbox.StartContainer(sctx, o)
		scancel()
		if err != nil {
			fail(fmt.Errorf("start container %d: %w", i, err))
			return
		}
		x.c, x.pid = c, c.Pid()
		h.mu.Lock()
		h.ctrs = append(h.ctrs, x) // from here on stopContainers owns it
		h.mu.Unlock()
		if x.startTime, err = procStartTime(x.pid); err != nil {
			fail(err)
			return
		}
		ms, err := lxcfsMounts(fmt.Sprintf("/proc/%d/mountinfo", x.pid))
		if err != nil {
			fail(err)
			return
		}
		binds, _ := h.binds(ms)
		for _, m := range binds {
			if m.dev != dev {
				fail(fmt.Errorf("container %d: bind at %s on device %s, not the live %s", i, m.point, m.dev, dev))
				return
			}
		}
		x.binds = len(binds)
		if got, err := h.readMemTotal(ctx, x); err != nil {
			fail(err)
		} else if got != x.wantKB {
			fail(fmt.Errorf("container %d: MemTotal %d kB before any kill, want %d", i, got, x.wantKB))
		}
	})
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	slices.SortFunc(h.ctrs, func(a, b *healCtr) int { return a.i - b.i })
	h.mu.Unlock()
	fmt.Fprintf(h.log, "bench: %d containers started (%d new in %.1fs), each read its own MemTotal\n", n, n-have, time.Since(began).Seconds())
	return nil
}

// readMemTotal reads /proc/meminfo in x's pid and mount namespaces with
// nsenter(1) and cat(1): the daemon resolves the reader to the init of its
// pid namespace, so joining the cgroup is not needed (one exec fewer than
// Container.Exec).
func (h *healRun) readMemTotal(ctx context.Context, x *healCtr) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(x.pid), "--pid", "--mount", "--", "cat", "/proc/meminfo").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("container %d: read /proc/meminfo: %w: %s", x.i, err, strings.TrimSpace(string(out)))
	}
	m := memTotalRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("container %d: no MemTotal in /proc/meminfo %q", x.i, out)
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

// procStartTime returns field 22 of /proc/PID/stat, the start time: a pid
// reused by another process has another.
func procStartTime(pid int) (string, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return "", fmt.Errorf("parse %s: %q", p, b)
	}
	return f[19], nil
}

// runCount grows the containers to n and runs the rounds.
func (h *healRun) runCount(ctx context.Context, n int, w io.Writer) (*healCount, error) {
	if err := h.grow(ctx, n); err != nil {
		return nil, err
	}
	h.mu.Lock()
	ctrs := slices.Clone(h.ctrs)
	h.mu.Unlock()
	res := &healCount{Containers: n, Binds: ctrs[0].binds}
	for _, x := range ctrs {
		res.Binds = min(res.Binds, x.binds)
	}
	for r := range h.cfg.heal.rounds {
		rd, err := h.round(ctx, r+1, ctrs)
		if err != nil {
			// An unfinished round measured nothing; show the finished ones.
			if len(res.Rounds) > 0 {
				res.summarize()
				printHealCount(w, res)
			}
			return res, err
		}
		res.Rounds = append(res.Rounds, *rd)
		fmt.Fprintf(h.log, "bench: %d containers, round %d: live after %s, all healed after %s\n", n, r+1, fmtDur(rd.Live), fmtDur(rd.AllHealed))
	}
	res.summarize()
	if h.cfg.heal.idle > 0 {
		if err := h.measureIdle(ctx, res); err != nil {
			printHealCount(w, res)
			return res, err
		}
	}
	printHealCount(w, res)
	return res, nil
}

// summarize computes the distributions over the rounds.
func (res *healCount) summarize() {
	var live, all, per []time.Duration
	for _, rd := range res.Rounds {
		live = append(live, rd.Live)
		if len(rd.Unhealed) == 0 {
			all = append(all, rd.AllHealed)
		}
		for _, d := range rd.Healed {
			if d >= 0 {
				per = append(per, d)
			}
		}
	}
	res.Live, res.AllHealed, res.PerContainer = distOf(live), distOf(all), distOf(per)
}

// measureIdle samples the current daemon's CPU time over -heal-idle.
func (h *healRun) measureIdle(ctx context.Context, res *healCount) error {
	h.mu.Lock()
	d := h.cur
	h.mu.Unlock()
	t0, err := d.cpuTicks()
	if err != nil {
		return err
	}
	if err := sleepCtx(ctx, h.cfg.heal.idle); err != nil {
		return err
	}
	t1, err := d.cpuTicks()
	if err != nil {
		return err
	}
	res.Idle, res.IdleCPU = h.cfg.heal.idle, time.Duration(t1-t0)*time.Second/clockTicks
	return nil
}

// round kills the daemon, starts the next one and measures the repair.
func (h *healRun) round(ctx context.Context, n int, ctrs []*healCtr) (*healRound, error) {
	dead, err := h.hostDevice()
	if err != nil {
		return nil, err
	}
	rd := &healRound{N: n, Healed: make([]time.Duration, len(ctrs))}
	// Watch before the kill: every mount change from here on is seen.
	watch, err := newMountWatch(ctrs)
	if err != nil {
		return nil, err
	}
	defer watch.close()
	if rd.KilledPid, err = h.kill(); err != nil {
		return nil, err
	}
	// The kill broke the binds: a container reads ENOTCONN now.
	if _, err := h.readMemTotal(ctx, ctrs[0]); err != nil {
		rd.ReadAfter = strings.TrimSpace(err.Error()[strings.LastIndex(err.Error(), ":")+1:])
	} else {
		rd.ReadAfter = "read worked (not broken?)"
	}
	d, err := h.start()
	if err != nil {
		return nil, err
	}
	rd.Pid = d.pid()
	h.mu.Lock()
	t0 := h.started
	h.mu.Unlock()
	var live string
	if rd.Live, live, err = h.waitLive(ctx, dead, 20*time.Second); err != nil {
		return rd, err
	}

	if err := h.watchHeal(ctx, rd, d, t0, live, watch); err != nil {
		return rd, err
	}
	if t, err := cpuTicks(d.pid()); err == nil {
		rd.DaemonCPU = time.Duration(t) * time.Second / clockTicks
	}
	for _, t := range rd.Healed {
		rd.AllHealed = max(rd.AllHealed, t)
	}

	// Correctness and side effects, once the measurement is over.
	var mu sync.Mutex
	parallel(len(ctrs), h.cfg.workers, func(i int) {
		x := ctrs[i]
		got, err := h.readMemTotal(ctx, x)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			rd.Wrong = append(rd.Wrong, err.Error())
		case got != x.wantKB:
			rd.Wrong = append(rd.Wrong, fmt.Sprintf("container %d: MemTotal %d kB, want %d", x.i, got, x.wantKB))
		default:
			rd.Reads++
		}
	})
	if err := ctx.Err(); err != nil {
		return rd, err
	}
	slices.Sort(rd.Wrong)
	for _, x := range ctrs {
		if st, err := procStartTime(x.pid); err != nil || st != x.startTime {
			rd.Restarted = append(rd.Restarted, x.i)
		}
		ms, err := lxcfsMounts(fmt.Sprintf("/proc/%d/mountinfo", x.pid))
		if err != nil {
			continue // counted as restarted above
		}
		binds, own := h.binds(ms)
		if x.ro {
			for _, m := range binds {
				if !strings.HasPrefix(m.opts, "ro") {
					rd.ROLost = append(rd.ROLost, x.i)
					break
				}
			}
		}
		for _, m := range own {
			if m.dev != live {
				rd.MountPointStale++
				break
			}
		}
	}
	if ms, err := lxcfsMounts("/proc/self/mountinfo"); err == nil {
		for _, m := range ms {
			if m.point == h.mnt {
				rd.HostMounts++
			}
		}
	}
	rd.Scans = healScans(d.log, t0)
	return rd, nil
}

// watchHeal waits until every container has all its binds on the live
// device, re-reading a container's mountinfo whenever its mount namespace
// changes, and records when each got there (since t0). Containers not
// healed within -heal-timeout are recorded as such.
func (h *healRun) watchHeal(ctx context.Context, rd *healRound, d *daemon, t0 time.Time, live string, w *mountWatch) error {
	healed := func(j int) (bool, error) {
		x := w.ctrs[j]
		rd.Rereads++
		ms, err := w.read(j)
		if err != nil {
			return false, fmt.Errorf("container %d (init %d): %w", x.i, x.pid, err)
		}
		binds, _ := h.binds(ms)
		ok := len(binds) == x.binds
		for _, m := range binds {
			ok = ok && m.dev == live
		}
		if ok {
			rd.Healed[x.i] = time.Since(t0)
		}
		return ok, nil
	}
	pending := map[int]bool{} // by position in w.ctrs
	for j := range w.ctrs {
		ok, err := healed(j)
		if err != nil {
			return err
		}
		if !ok {
			pending[j] = true
		}
	}
	deadline := t0.Add(h.cfg.heal.timeout)
	for len(pending) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.check(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			for j := range pending {
				rd.Healed[w.ctrs[j].i] = -1
				rd.Unhealed = append(rd.Unhealed, w.ctrs[j].i)
			}
			slices.Sort(rd.Unhealed)
			return nil
		}
		ready, err := w.wait(100 * time.Millisecond)
		if err != nil {
			return err
		}
		for _, j := range ready {
			if !pending[j] {
				continue
			}
			done, err := healed(j)
			if err != nil {
				return err
			}
			if done {
				delete(pending, j)
			}
		}
	}
	return nil
}

// mountWatch watches the containers' mount tables: /proc/PID/mountinfo
// signals POLLPRI after every mount or unmount in its namespace (proc(5)),
// so a container's table is re-read only when it changed, not polled.
type mountWatch struct {
	ctrs []*healCtr
	fds  []int // by position in ctrs
	ep   int
	buf  []byte
	evs  []unix.EpollEvent
}

func newMountWatch(ctrs []*healCtr) (*mountWatch, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	w := &mountWatch{ctrs: ctrs, ep: ep, buf: make([]byte, 64<<10), evs: make([]unix.EpollEvent, len(ctrs))}
	for j, x := range ctrs {
		p := fmt.Sprintf("/proc/%d/mountinfo", x.pid)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("open %s: %w", p, err)
		}
		w.fds = append(w.fds, fd)
		ev := unix.EpollEvent{Events: unix.EPOLLPRI, Fd: int32(j)} // the position, not a descriptor
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			w.close()
			return nil, fmt.Errorf("epoll_ctl %s: %w", p, err)
		}
	}
	return w, nil
}

// read re-reads the mountinfo of ctrs[j] from the start.
func (w *mountWatch) read(j int) ([]lxcMount, error) {
	n := 0
	for {
		if n == len(w.buf) {
			w.buf = append(w.buf, make([]byte, len(w.buf))...)
		}
		m, err := unix.Pread(w.fds[j], w.buf[n:], int64(n))
		if err != nil {
			return nil, fmt.Errorf("read mountinfo: %w", err)
		}
		if m == 0 {
			return parseLXCFSMounts(w.buf[:n]), nil
		}
		n += m
	}
}

// wait returns the positions of the containers whose mount table changed,
// waiting up to timeout for one.
func (w *mountWatch) wait(timeout time.Duration) ([]int, error) {
	n, err := unix.EpollWait(w.ep, w.evs, int(timeout/time.Millisecond))
	if errors.Is(err, unix.EINTR) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("epoll_wait: %w", err)
	}
	out := make([]int, n)
	for j := range n {
		out[j] = int(w.evs[j].Fd)
	}
	return out, nil
}

func (w *mountWatch) close() {
	for _, fd := range w.fds {
		unix.Close(fd) //nolint:errcheck // read-only
	}
	unix.Close(w.ep) //nolint:errcheck // nothing to flush
}

// healScans parses the scans the healer logged, with their times since t0
// (the daemon's start).
func healScans(logPath string, t0 time.Time) []healScan {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close() //nolint:errcheck // read-only
	var out []healScan
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Time     time.Time `json:"time"`
			Msg      string    `json:"msg"`
			Broken   int       `json:"broken"`
			Repaired int       `json:"repaired"`
			Failed   int       `json:"failed"`
			Deferred int       `json:"deferred"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != msgHealed {
			continue
		}
		out = append(out, healScan{At: l.Time.Sub(t0), Broken: l.Broken, Repaired: l.Repaired, Failed: l.Failed, Deferred: l.Deferred})
	}
	return out
}

// hostMemTotal reads MemTotal from the host's /proc/meminfo: a container
// limited above it sees the host's total.
func hostMemTotal() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host meminfo: %w", err)
	}
	m := memTotalRE.FindSubmatch(b)
	if m == nil {
		return 0, errors.New("no MemTotal in the host's /proc/meminfo")
	}
	return strconv.ParseUint(string(m[1]), 10, 64)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fmtDur prints milliseconds below 10 s, seconds above.
func fmtDur(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// printHealCount prints one container count's table and its rounds.
func printHealCount(w io.Writer, res *healCount) {
	fmt.Fprintf(w, "\n%d containers (%d fuse.lxcfs binds each), %d rounds\n", res.Containers, res.Binds, len(res.Rounds))
	head := fmt.Sprintf("%-44s %10s %10s %10s %10s", "", "min", "p50", "p90", "max")
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, strings.Repeat("-", len(head)))
	row := func(name string, d dist, unit string) {
		fmt.Fprintf(w, "%-44s %10s %10s %10s %10s  (%d %s)\n", name, fmtDur(d.Min), fmtDur(d.P50), fmtDur(d.P90), fmtDur(d.Max), d.N, unit)
	}
	row("(a) restart → mount live", res.Live, "rounds")
	row("(b) restart → last container healed", res.AllHealed, "rounds")
	row("    restart → each container healed", res.PerContainer, "container-rounds")
	if res.Idle > 0 {
		fmt.Fprintf(w, "idle: daemon CPU %s over %s with nothing broken (scans every -heal-interval)\n", fmtDur(res.IdleCPU), res.Idle)
	}
	for _, rd := range res.Rounds {
		var scans []string
		for _, s := range rd.Scans {
			scans = append(scans, fmt.Sprintf("@%s broken %d repaired %d failed %d deferred %d", fmtDur(s.At), s.Broken, s.Repaired, s.Failed, s.Deferred))
		}
		fmt.Fprintf(w, "round %d: pid %d → %d, read after kill: %s; live %s, all healed %s (daemon CPU %s, %d mountinfo reads); reads right %d/%d; healer: %s\n",
			rd.N, rd.KilledPid, rd.Pid, rd.ReadAfter, fmtDur(rd.Live), fmtDur(rd.AllHealed), fmtDur(rd.DaemonCPU), rd.Rereads, rd.Reads, len(rd.Healed), strings.Join(scans, "; "))
		if len(rd.Unhealed) > 0 {
			fmt.Fprintf(w, "  unhealed after the timeout: containers %v\n", rd.Unhealed)
		}
		for _, s := range rd.Wrong {
			fmt.Fprintf(w, "  wrong read: %s\n", s)
		}
		if len(rd.Restarted) > 0 || len(rd.ROLost) > 0 {
			fmt.Fprintf(w, "  restarted inits: %v; read-only containers with a writable bind: %v\n", rd.Restarted, rd.ROLost)
		}
		if rd.MountPointStale > 0 || rd.HostMounts != 1 {
			fmt.Fprintf(w, "  containers whose copy of the mount point names the dead connection: %d; fuse.lxcfs mounts at the mount point: %d\n", rd.MountPointStale, rd.HostMounts)
		}
	}
}

// judgeHeal passes a run in which every container was healed in every
// round, read its own limit afterwards, kept its init and its read-only
// binds, and one mount stayed at the mount point. It sets no time target.
func judgeHeal(counts []healCount) *verdict {
	v := &verdict{Pass: true}
	failf := func(format string, args ...any) {
		v.Pass = false
		v.Failures = append(v.Failures, fmt.Sprintf(format, args...))
	}
	for _, c := range counts {
		for _, rd := range c.Rounds {
			where := fmt.Sprintf("%d containers, round %d", c.Containers, rd.N)
			if len(rd.Unhealed) > 0 {
				failf("%s: %d containers not healed", where, len(rd.Unhealed))
			}
			if len(rd.Wrong) > 0 {
				failf("%s: %d wrong or failed reads, first: %s", where, len(rd.Wrong), rd.Wrong[0])
			}
			if len(rd.Restarted) > 0 {
				failf("%s: inits restarted or gone: %v", where, rd.Restarted)
			}
			if len(rd.ROLost) > 0 {
				failf("%s: read-only containers with a writable bind: %v", where, rd.ROLost)
			}
			if rd.HostMounts != 1 {
				failf("%s: %d fuse.lxcfs mounts at the mount point", where, rd.HostMounts)
			}
		}
	}
	return v
}

func printHealVerdict(w io.Writer, v *verdict) {
	fmt.Fprintln(w, "\nlxcfs 5.0.3 has no repair: after its daemon dies, containers' binds stay on the dead connection (ENOTCONN) until the containers are recreated.")
	if v.Pass {
		fmt.Fprintln(w, "verdict: PASS (every container healed in every round, read its own limit, kept its init and its read-only binds)")
		return
	}
	fmt.Fprintf(w, "verdict: FAIL (%d):\n", len(v.Failures))
	for _, f := range v.Failures {
		fmt.Fprintf(w, "  - %s\n", f)
	}
}
