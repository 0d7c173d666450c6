// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package stress

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
)

// Log lines the daemons print on each side of a handover (the "msg" of
// their JSON logs).
const (
	MsgHandedOver = "Handed over FUSE connection"
	MsgAdopted    = "Adopted FUSE connection"
)

// maxSocketPath is the limit of sun_path (108 bytes, NUL included).
const maxSocketPath = 107

// UpgradeConfig configures [RunUpgrade].
type UpgradeConfig struct {
	// Bins are two k8s-lxcfs binaries, best with different versions:
	// Bins[0] serves first, and the successors alternate Bins[1], Bins[0],
	// Bins[1], ...
	Bins [2]string
	// Handovers is how many successors take over in a row. 0 runs the
	// readers against one daemon without a handover socket (a baseline).
	Handovers int
	// Readers is the number of containers, one reader each. Reader 0 also
	// holds /proc/meminfo open from before the first handover and preads it
	// after each one.
	Readers int
	// Cgroups is how many cgroups the containers are spread over
	// (round-robin). Cgroup i has a memory limit of 256 MiB + i*128 MiB.
	Cgroups int
	// Dir is an existing, empty scratch directory: mount point, socket,
	// FIFOs, daemon logs and read records go there. The caller removes it.
	Dir string
	// Socket is the handover socket; default Dir/handover.sock. It must be
	// shorter than 108 bytes.
	Socket string
	// ReaderArgv runs [ReaderMain] inside a container (the containers share
	// the host's root filesystem); the reader flags are appended.
	ReaderArgv []string
	// DaemonArgs are extra serve flags for every daemon.
	DaemonArgs []string
	// Warmup is how long the readers read before the first handover
	// (default 500ms); with Handovers 0 it is the whole measurement.
	Warmup time.Duration
	// Pause is the time between a successor seen serving and the next
	// handover, and after the last one (default 200ms).
	Pause time.Duration
	// StepTimeout bounds the wait for a predecessor to exit and for its
	// successor to be seen serving (default 10s). Past it the run fails.
	StepTimeout time.Duration
	// ReadGap is a pause between a reader's reads (default 0: tight loops).
	ReadGap time.Duration
	// ReaderCpuset pins the readers' cgroups to these CPUs ("" runs them
	// anywhere). "0" on a 2-CPU machine leaves the daemons a CPU of their
	// own, as a node that reserves CPUs for system daemons does.
	ReaderCpuset string
	// CgroupPrefix names the cgroups: PREFIX-PID-i below the sandbox parent
	// (default "stress").
	CgroupPrefix string
	// Logf, if set, gets progress lines.
	Logf func(format string, args ...any)
}

// HandoverResult is one handover.
type HandoverResult struct {
	N              int    `json:"n"`
	Version        string `json:"version"`
	PredecessorPid int    `json:"predecessorPid"`
	SuccessorPid   int    `json:"successorPid"`
	// PredecessorExit runs from the successor's start to the predecessor's
	// exit; PredecessorErr is its exit status ("" for 0).
	PredecessorExit time.Duration `json:"predecessorExit"`
	PredecessorErr  string        `json:"predecessorErr,omitempty"`
	// SuccessorLive runs from the successor's start until `status` showed
	// it serving: the handover window.
	SuccessorLive time.Duration `json:"successorLive"`
	// Stall is the longest read overlapping the window, of Reads reads.
	Stall time.Duration `json:"stall"`
	Reads int           `json:"reads"`
	// Mounts are the mounts at the mount point after the handover, and
	// Device the top one's device.
	Mounts int    `json:"mounts"`
	Device string `json:"device"`
	// Held is the held-file check after the handover: "ok KB" or what went
	// wrong.
	Held string `json:"held"`
	// LoggedHandedOver and LoggedAdopted tell whether the two daemons logged
	// [MsgHandedOver] and [MsgAdopted]. Paused is the "paused" the
	// predecessor logged with it: from stopping its reads to releasing the
	// connection, as the daemon measures it (0 if not logged).
	Paused time.Duration `json:"paused"`
	// HandedOverAt and AdoptedAt are when the predecessor logged
	// [MsgHandedOver] and the successor [MsgAdopted], since the
	// successor's start (from the logs' wall-clock times).
	HandedOverAt     time.Duration `json:"handedOverAt"`
	AdoptedAt        time.Duration `json:"adoptedAt"`
	LoggedHandedOver bool          `json:"loggedHandedOver"`
	LoggedAdopted    bool          `json:"loggedAdopted"`
	Status           Status        `json:"status"`

	window Window
}

// UpgradeResult is everything a run measured. Soft findings (a bad exit
// status, a slow exit, a failed read, a stacked mount) are recorded here for
// the caller to judge; RunUpgrade returns an error only when the scenario
// could not go on (a daemon hung or died, a reader broke).
type UpgradeResult struct {
	MountPoint string    `json:"mountPoint"`
	Socket     string    `json:"socket"`
	Versions   [2]string `json:"versions"`
	Readers    int       `json:"readers"`
	LimitsMiB  []int64   `json:"limitsMiB"`

	Handovers []HandoverResult `json:"handovers"`

	Reads        uint64 `json:"reads"`
	Failed       uint64 `json:"failed"`
	Wrong        uint64 `json:"wrong"`
	FirstFailure string `json:"firstFailure,omitempty"`
	FirstWrong   string `json:"firstWrong,omitempty"`
	// HeldChecks counts preads of the held file (one before the first
	// handover, one after each); HeldFailed those that failed or showed
	// the wrong MemTotal.
	HeldChecks       int    `json:"heldChecks"`
	HeldFailed       int    `json:"heldFailed"`
	FirstHeldFailure string `json:"firstHeldFailure,omitempty"`

	// Overall is every read's latency, During that of the reads
	// overlapping a handover window (successor start to successor
	// serving), Outside that of the others: the baseline of the same run.
	Overall Latency `json:"overall"`
	During  Latency `json:"during"`
	Outside Latency `json:"outside"`
	// Stall, Paused, PredecessorExit and SuccessorLive are distributions
	// over the handovers.
	Stall Latency `json:"stall"`
	// PauseStall is the longest read overlapping the pause itself (from the
	// predecessor stopping its reads to the successor serving, as the two
	// logged it): what the handover costs a reader, without the
	// successor's start-up and the predecessor's exit around it.
	PauseStall      Latency `json:"pauseStall"`
	Paused          Latency `json:"paused"`
	PredecessorExit Latency `json:"predecessorExit"`
	SuccessorLive   Latency `json:"successorLive"`

	// StatusFirst and StatusLast are the daemon after the first and after
	// the last handover; FDs and Goroutines are the minimum of three
	// samples 100ms apart (readers keep requests in flight).
	StatusFirst *Status `json:"statusFirst,omitempty"`
	StatusLast  *Status `json:"statusLast,omitempty"`

	// MountsMax is the most fuse.lxcfs mounts seen at the mount point after any
	// handover, MountsEnd the number after the last one; the device is the
	// first daemon's, and DeviceChanged whether a handover changed it.
	MountsMax     int    `json:"mountsMax"`
	MountsEnd     int    `json:"mountsEnd"`
	Device        string `json:"device"`
	DeviceChanged bool   `json:"deviceChanged"`

	// FinalStop is how the last daemon took SIGTERM at cleanup ("" for a
	// clean exit 0), MountsAfterStop the fuse.lxcfs mounts left at the
	// mount point after it, and LeftAfterStop every mount left there
	// ("TYPE from SOURCE ROOT"), which cleanup then detaches.
	FinalStop       string   `json:"finalStop,omitempty"`
	MountsAfterStop int      `json:"mountsAfterStop"`
	LeftAfterStop   []string `json:"leftAfterStop,omitempty"`

	// Slowest are the longest reads of the run, longest first.
	Slowest []SlowRead `json:"slowest"`

	Elapsed time.Duration `json:"elapsed"`
}

// SlowRead is one of the longest reads: which reader, when (since the first
// daemon started), how long, and which handover window it overlapped (0:
// none).
type SlowRead struct {
	Reader   int           `json:"reader"`
	At       time.Duration `json:"at"`
	Dur      time.Duration `json:"dur"`
	Status   uint32        `json:"status"`
	Handover int           `json:"handover"`
	// InWindow is when the read started, since that handover's successor
	// started.
	InWindow time.Duration `json:"inWindow,omitempty"`
}

// String formats a SlowRead for logs.
func (s SlowRead) String() string {
	where := "outside handovers"
	if s.Handover > 0 {
		where = fmt.Sprintf("during handover %d, started %s after the successor", s.Handover, s.InWindow.Round(time.Millisecond))
	}
	return fmt.Sprintf("reader %d at +%s took %s (%s)", s.Reader, s.At.Round(time.Millisecond), s.Dur.Round(10*time.Microsecond), where)
}

// nSlowest is how many of the longest reads a result keeps.
const nSlowest = 5

// run is the state of one RunUpgrade.
type run struct {
	cfg  UpgradeConfig
	res  *UpgradeResult
	logf func(format string, args ...any)

	mnt, sock string
	// wall0 and mono0 are one moment on the wall clock (the daemons' log
	// times) and on CLOCK_MONOTONIC.
	wall0   time.Time
	mono0   int64
	daemons []*daemon // every daemon started, in order
	cur     *daemon   // the one serving

	containers []*sandbox.Container
	cgroups    []*sandbox.Cgroup

	poke, ack  *os.File
	ackR       *bufio.Reader
	heldBroken bool
}

func (c *UpgradeConfig) setDefaults() {
	if c.Warmup == 0 {
		c.Warmup = 500 * time.Millisecond
	}
	if c.Pause == 0 {
		c.Pause = 200 * time.Millisecond
	}
	if c.StepTimeout == 0 {
		c.StepTimeout = 10 * time.Second
	}
	if c.CgroupPrefix == "" {
		c.CgroupPrefix = "stress"
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(c.Dir, "handover.sock")
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

func (c *UpgradeConfig) validate() error {
	var errs []error
	if c.Handovers < 0 || c.Readers < 1 || c.Cgroups < 1 || c.Cgroups > c.Readers {
		errs = append(errs, fmt.Errorf("want Handovers >= 0, Readers >= 1 and 1 <= Cgroups <= Readers; got %d, %d, %d", c.Handovers, c.Readers, c.Cgroups))
	}
	if !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("scratch dir %q must be an absolute path", c.Dir))
	}
	if len(c.Socket) > maxSocketPath {
		errs = append(errs, fmt.Errorf("handover socket %s is %d bytes, over the %d of sun_path", c.Socket, len(c.Socket), maxSocketPath))
	}
	if len(c.ReaderArgv) == 0 {
		errs = append(errs, errors.New("ReaderArgv is empty"))
	}
	for _, b := range c.Bins {
		if err := unix.Access(b, unix.X_OK); err != nil {
			errs = append(errs, fmt.Errorf("binary %q: %w", b, err))
		}
	}
	return errors.Join(errs...)
}

// RunUpgrade runs the live-upgrade scenario: the first daemon serves a fresh
// mount point, Readers containers read /proc/meminfo through it, and
// Handovers successors take the connection over one after another. It always
// cleans up what it created before returning, and returns what it measured
// even with an error.
func RunUpgrade(ctx context.Context, cfg UpgradeConfig) (res *UpgradeResult, err error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, logf: cfg.Logf, mnt: filepath.Join(cfg.Dir, "mnt"), sock: cfg.Socket, wall0: time.Now(), mono0: monoNow()}
	r.res = &UpgradeResult{MountPoint: r.mnt, Socket: r.sock, Readers: cfg.Readers}
	began := time.Now()
	defer func() {
		err = errors.Join(err, r.cleanup())
		r.res.Elapsed = time.Since(began)
	}()
	return r.res, r.run(ctx)
}

func (r *run) run(ctx context.Context) error {
	cfg := r.cfg
	for i, b := range cfg.Bins {
		v, err := binVersion(ctx, b)
		if err != nil {
			return err
		}
		r.res.Versions[i] = v
	}
	if err := os.Mkdir(r.mnt, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	hostKB, err := hostMemTotalKB()
	if err != nil {
		return err
	}

	sock := r.sock
	if cfg.Handovers == 0 {
		sock = "" // baseline: a daemon as before the feature
	}
	first, err := r.startDaemon(0, sock)
	if err != nil {
		return err
	}
	if err := r.waitMounted(ctx, first); err != nil {
		return err
	}
	if cfg.Handovers > 0 {
		if _, err := r.waitServing(ctx, first); err != nil {
			return err
		}
	}
	ms, err := mountsAt(r.mnt)
	if err != nil {
		return err
	}
	r.res.Device = device(ms)
	r.logf("daemon #0 pid %d (%s) serves %s (device %s)", first.pid(), first.version, r.mnt, r.res.Device)

	wantKB := make([]uint64, cfg.Cgroups)
	for i := range cfg.Cgroups {
		lim := int64(256+128*i) << 20
		cg, err := sandbox.NewCgroup(fmt.Sprintf("%s-%d-%d", cfg.CgroupPrefix, os.Getpid(), i), sandbox.Limits{MemoryBytes: lim, Cpuset: cfg.ReaderCpuset})
		if err != nil {
			return err
		}
		r.cgroups = append(r.cgroups, cg)
		r.res.LimitsMiB = append(r.res.LimitsMiB, lim>>20)
		wantKB[i] = min(uint64(lim)>>10, hostKB)
	}
	for i := range cfg.Readers {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		// Files nil: every file of the default set, as a pod gets them.
		c, err := sandbox.StartContainer(sctx, sandbox.ContainerOptions{Cgroup: r.cgroups[i%cfg.Cgroups], LXCFSRoot: r.mnt, ReadOnly: true})
		cancel()
		if err != nil {
			return fmt.Errorf("start container %d: %w", i, err)
		}
		r.containers = append(r.containers, c)
	}
	r.logf("%d containers in %d cgroups (%v MiB) bind %s", cfg.Readers, cfg.Cgroups, r.res.LimitsMiB, r.mnt)

	rd, err := r.startReaders(ctx, wantKB)
	if err != nil {
		return err
	}
	loopErr := r.handovers(ctx, rd)
	if ms, err := mountsAt(r.mnt); err == nil {
		r.res.MountsEnd = len(ms)
		r.res.MountsMax = max(r.res.MountsMax, len(ms))
	}
	// Stop the readers gracefully even after a failure: their counts tell
	// what the failure did to reads.
	sums, recs, stopErr := rd.stop(r)
	r.tally(sums, recs)
	return errors.Join(loopErr, stopErr)
}

// startDaemon starts daemon gen with Bins[gen%2].
func (r *run) startDaemon(gen int, sock string) (*daemon, error) {
	i := gen % 2
	d, err := startServe(gen, r.cfg.Bins[i], r.res.Versions[i], sock, r.mnt,
		filepath.Join(r.cfg.Dir, fmt.Sprintf("daemon-%02d.log", gen)), r.cfg.DaemonArgs)
	if err != nil {
		return nil, err
	}
	r.daemons = append(r.daemons, d)
	return d, nil
}

// waitMounted waits until a fuse.lxcfs mount sits at the mount point and
// proc/meminfo reads through it. It makes d the serving daemon.
func (r *run) waitMounted(ctx context.Context, d *daemon) error {
	r.cur = d
	deadline := time.Now().Add(2 * r.cfg.StepTimeout)
	var last error
	for time.Now().Before(deadline) {
		if d.gone() {
			return fmt.Errorf("daemon #%d exited before serving (%v)%s", d.gen, d.exitErr(), d.logTail())
		}
		ms, err := mountsAt(r.mnt)
		switch {
		case err != nil:
			last = err
		case len(ms) == 0:
			last = errors.New("no fuse.lxcfs mount yet")
		default:
			b, err := os.ReadFile(filepath.Join(r.mnt, "proc/meminfo"))
			if err == nil && bytes.Contains(b, []byte("MemTotal:")) {
				return nil
			}
			last = fmt.Errorf("read proc/meminfo: %v", err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("daemon #%d: %s not live after %s: %v%s", d.gen, r.mnt, 2*r.cfg.StepTimeout, last, d.logTail())
}

// waitServing polls status until it names d, live, with d's version.
func (r *run) waitServing(ctx context.Context, d *daemon) (Status, error) {
	deadline := time.Now().Add(r.cfg.StepTimeout)
	var last Status
	var lastErr error
	for {
		if d.gone() {
			return last, fmt.Errorf("daemon #%d pid %d exited (%v) before status showed it serving%s", d.gen, d.pid(), d.exitErr(), d.logTail())
		}
		st, err := queryStatus(ctx, d.bin, r.sock, r.mnt)
		last, lastErr = st, err
		if err == nil && st.State == "live" && st.Pid == d.pid() && st.Version == d.version {
			return st, nil
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("daemon #%d pid %d (%s): status did not show it serving within %s; last status %s (err %v)%s",
				d.gen, d.pid(), d.version, r.cfg.StepTimeout, last.Raw, lastErr, d.logTail())
		}
		if err := sleepCtx(ctx, 25*time.Millisecond); err != nil {
			return last, err
		}
	}
}

// handovers runs the warmup, the handovers and the final pause.
func (r *run) handovers(ctx context.Context, rd *readers) error {
	if err := sleepCtx(ctx, r.cfg.Warmup); err != nil {
		return err
	}
	if err := rd.check(); err != nil {
		return err
	}
	if r.cfg.Handovers == 0 {
		return nil
	}
	r.heldCheck() // before the first handover: the file works at all
	for n := 1; n <= r.cfg.Handovers; n++ {
		h, err := r.handover(ctx, n)
		r.res.Handovers = append(r.res.Handovers, h)
		if err != nil {
			return err
		}
		r.logf("handover %d: pid %d → %d (%s), predecessor exited after %s, successor serving after %s, held file: %s",
			n, h.PredecessorPid, h.SuccessorPid, h.Version, h.PredecessorExit.Round(time.Millisecond), h.SuccessorLive.Round(time.Millisecond), h.Held)
		if n == 1 || n == r.cfg.Handovers {
			st, err := r.sampleStatus(ctx)
			if err != nil {
				return fmt.Errorf("after handover %d: %w", n, err)
			}
			if n == 1 {
				r.res.StatusFirst = &st
			}
			if n == r.cfg.Handovers {
				r.res.StatusLast = &st
			}
		}
		if err := rd.check(); err != nil {
			return fmt.Errorf("after handover %d: %w", n, err)
		}
		if err := sleepCtx(ctx, r.cfg.Pause); err != nil {
			return err
		}
	}
	return nil
}

// handover starts successor n and follows it until it serves.
func (r *run) handover(ctx context.Context, n int) (HandoverResult, error) {
	pred := r.cur
	h := HandoverResult{N: n, PredecessorPid: pred.pid()}
	succ, err := r.startDaemon(n, r.sock)
	if err != nil {
		return h, err
	}
	h.SuccessorPid, h.Version = succ.pid(), succ.version
	timer := time.NewTimer(r.cfg.StepTimeout)
	defer timer.Stop()
	select {
	case <-pred.exited:
	case <-succ.exited:
		return h, fmt.Errorf("handover %d: successor pid %d (%s) exited (%v) while predecessor pid %d still runs%s%s",
			n, succ.pid(), succ.version, succ.exitErr(), pred.pid(), succ.logTail(), pred.logTail())
	case <-timer.C:
		return h, fmt.Errorf("handover %d: predecessor pid %d still runs %s after successor pid %d started%s%s",
			n, pred.pid(), r.cfg.StepTimeout, succ.pid(), pred.logTail(), succ.logTail())
	case <-ctx.Done():
		return h, ctx.Err()
	}
	h.PredecessorExit = time.Duration(pred.exitNS - succ.startNS)
	if err := pred.exitErr(); err != nil {
		h.PredecessorErr = err.Error()
	}
	r.cur = succ
	// The window ends when the successor serves: after the predecessor
	// exits or the successor adopts, whichever is later (tally extends it
	// by the adoption time in the successor's log). Not when status
	// confirms it: that adds a process start, and our own polling.
	h.window = Window{StartNS: succ.startNS, EndNS: pred.exitNS}
	st, err := r.waitServing(ctx, succ)
	h.Status = st
	h.SuccessorLive = time.Duration(monoNow() - succ.startNS)
	if err != nil {
		return h, fmt.Errorf("handover %d: %w", n, err)
	}
	ms, err := mountsAt(r.mnt)
	if err != nil {
		return h, err
	}
	h.Mounts, h.Device = len(ms), device(ms)
	r.res.MountsMax = max(r.res.MountsMax, h.Mounts)
	if h.Device != r.res.Device {
		r.res.DeviceChanged = true
	}
	h.Held = r.heldCheck()
	return h, nil
}

// sampleStatus takes three status samples 100ms apart and keeps the lowest
// fd and goroutine counts: requests in flight come and go with the readers.
func (r *run) sampleStatus(ctx context.Context) (Status, error) {
	var best Status
	for i := range 3 {
		if i > 0 {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return best, err
			}
		}
		st, err := queryStatus(ctx, r.cur.bin, r.sock, r.mnt)
		if err != nil {
			return best, err
		}
		if i == 0 {
			best = st
			continue
		}
		best.FDs, best.Goroutines = min(best.FDs, st.FDs), min(best.Goroutines, st.Goroutines)
		best.Handles, best.Containers = st.Handles, st.Containers
	}
	return best, nil
}

// heldCheck asks reader 0 to pread its held file and returns its answer.
func (r *run) heldCheck() string {
	r.res.HeldChecks++
	ans := func() string {
		if r.heldBroken {
			return "fail: an earlier check got no answer"
		}
		if _, err := r.poke.Write([]byte{'p'}); err != nil {
			r.heldBroken = true
			return "fail: poke: " + err.Error()
		}
		if err := r.ack.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			r.heldBroken = true
			return "fail: " + err.Error()
		}
		line, err := r.ackR.ReadString('\n')
		if err != nil {
			r.heldBroken = true // answers would be out of step from here on
			return "fail: no answer within 5s (pread hangs?): " + err.Error()
		}
		return strings.TrimSuffix(line, "\n")
	}()
	if !strings.HasPrefix(ans, "ok ") {
		r.res.HeldFailed++
		if r.res.FirstHeldFailure == "" {
			r.res.FirstHeldFailure = fmt.Sprintf("check %d: %s", r.res.HeldChecks-1, ans)
		}
	}
	return ans
}

// tally fills the read figures of the result from the readers' summaries
// and their records (perReader[i] is reader i's).
func (r *run) tally(sums []ReaderSummary, perReader [][]Record) {
	var recs []Record
	for _, rs := range perReader {
		recs = append(recs, rs...)
	}
	for _, s := range sums {
		r.res.Reads += s.Reads
		r.res.Failed += s.Failed
		r.res.Wrong += s.Wrong
		if r.res.FirstFailure == "" {
			r.res.FirstFailure = s.FirstFailure
		}
		if r.res.FirstWrong == "" {
			r.res.FirstWrong = s.FirstWrong
		}
	}
	for i := range r.res.Handovers {
		h := &r.res.Handovers[i]
		if h.N >= len(r.daemons) {
			continue
		}
		succStart := r.daemons[h.N].startNS
		var l logLine
		h.LoggedHandedOver, l = loggedMsg(r.daemons[h.N-1].logText(), MsgHandedOver)
		h.Paused, _ = time.ParseDuration(l.Paused) // absent or odd: 0
		h.HandedOverAt = time.Duration(r.monoOf(l.Time) - succStart)
		h.LoggedAdopted, l = loggedMsg(r.daemons[h.N].logText(), MsgAdopted)
		h.AdoptedAt = time.Duration(r.monoOf(l.Time) - succStart)
		if h.LoggedAdopted && h.window.EndNS > 0 {
			h.window.EndNS = max(h.window.EndNS, succStart+int64(h.AdoptedAt))
		}
	}
	var windows []Window
	var hs []*HandoverResult
	for i := range r.res.Handovers {
		if h := &r.res.Handovers[i]; h.window.EndNS > 0 {
			windows = append(windows, h.window)
			hs = append(hs, h)
		}
	}
	st := attribute(recs, windows)
	r.res.Overall, r.res.During, r.res.Outside = st.overall, st.during, st.outside
	var stalls, exits, lives []time.Duration
	for i, h := range hs {
		h.Stall, h.Reads = st.stall[i], st.reads[i]
		stalls = append(stalls, h.Stall)
		exits = append(exits, h.PredecessorExit)
		lives = append(lives, h.SuccessorLive)
	}
	r.res.Stall, r.res.PredecessorExit, r.res.SuccessorLive = summarize(stalls), summarize(exits), summarize(lives)
	var pauses []Window
	for _, h := range hs {
		if !h.LoggedHandedOver || !h.LoggedAdopted || h.Paused <= 0 {
			continue
		}
		succStart := r.daemons[h.N].startNS
		end := succStart + int64(max(h.HandedOverAt, h.AdoptedAt))
		pauses = append(pauses, Window{StartNS: succStart + int64(h.HandedOverAt-h.Paused), EndNS: end})
	}
	r.res.PauseStall = summarize(attribute(recs, pauses).stall)
	r.res.Slowest = slowest(perReader, windows, hs, r.daemons[0].startNS)
	var paused []time.Duration
	for _, h := range r.res.Handovers {
		if h.LoggedHandedOver {
			paused = append(paused, h.Paused)
		}
	}
	r.res.Paused = summarize(paused)
}

// slowest returns the nSlowest longest reads, longest first.
func slowest(perReader [][]Record, windows []Window, hs []*HandoverResult, originNS int64) []SlowRead {
	var top []SlowRead
	for i, rs := range perReader {
		for _, rec := range rs {
			if len(top) == nSlowest && time.Duration(rec.DurNS) <= top[len(top)-1].Dur {
				continue
			}
			s := SlowRead{Reader: i, At: time.Duration(rec.StartNS - originNS), Dur: time.Duration(rec.DurNS), Status: rec.Status}
			for j, w := range windows {
				if rec.StartNS <= w.EndNS && rec.StartNS+rec.DurNS >= w.StartNS {
					s.Handover, s.InWindow = hs[j].N, time.Duration(rec.StartNS-w.StartNS)
					break
				}
			}
			top = append(top, s)
			slices.SortStableFunc(top, func(a, b SlowRead) int { return cmp.Compare(b.Dur, a.Dur) })
			if len(top) > nSlowest {
				top = top[:nSlowest]
			}
		}
	}
	return top
}

// logLine is what we read from the daemons' JSON log lines.
type logLine struct {
	Time   time.Time `json:"time"`
	Msg    string    `json:"msg"`
	Paused string    `json:"paused"`
}

// loggedMsg reports whether a JSON log has a line whose msg is msg, and
// returns the first such line.
func loggedMsg(log, msg string) (bool, logLine) {
	for line := range strings.SplitSeq(log, "\n") {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return true, l
		}
	}
	return false, logLine{}
}

// monoOf converts a wall-clock time into CLOCK_MONOTONIC nanoseconds.
func (r *run) monoOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return r.mono0 + int64(t.Sub(r.wall0))
}

// cleanup removes everything the run created, in order: readers are gone
// already (or are killed with their containers), then containers, cgroups,
// daemons, leftover mounts and the FIFOs.
func (r *run) cleanup() error {
	var errs []error
	for _, c := range r.containers {
		if err := c.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, cg := range r.cgroups {
		if err := cg.Remove(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range slices.Backward(r.daemons) {
		if d.gone() {
			if d == r.cur {
				r.res.FinalStop = fmt.Sprintf("exited before cleanup (%v)%s", d.exitErr(), d.logTail())
			}
			continue
		}
		err := d.stop(10 * time.Second)
		if d == r.cur {
			if err != nil {
				r.res.FinalStop = err.Error() + d.logTail()
			}
			continue
		}
		errs = append(errs, fmt.Errorf("daemon #%d still ran at cleanup: %v", d.gen, err))
	}
	if ms, err := allMountsAt(r.mnt); err == nil {
		for _, m := range ms {
			if m.FSType == FSType {
				r.res.MountsAfterStop++
			}
			r.res.LeftAfterStop = append(r.res.LeftAfterStop, m.FSType+" from "+m.Source+" "+m.Root)
		}
	}
	for range 8 {
		if unix.Unmount(r.mnt, unix.MNT_DETACH) != nil {
			break
		}
	}
	for _, f := range []*os.File{r.poke, r.ack} {
		if f != nil {
			_ = f.Close() // fifo; nothing to flush
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	return nil
}

// readers are the reader processes of a run.
type readers struct {
	n                   int
	outc                chan readerOut
	outs                []readerOut
	ready, start, stopF *os.File
	cancel              context.CancelFunc
	startReleased       bool
}

type readerOut struct {
	i              int
	stdout, stderr string
	err            error
}

// startReaders runs one reader per container and releases them together.
func (r *run) startReaders(ctx context.Context, wantKB []uint64) (*readers, error) {
	dir := r.cfg.Dir
	fifo := func(name string) (*os.File, error) {
		p := filepath.Join(dir, name)
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return nil, fmt.Errorf("mkfifo %s: %w", p, err)
		}
		// O_RDWR on a FIFO does not block (Linux), and holding it keeps
		// the readers' ends from seeing EOF until we close it.
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", p, err)
		}
		return f, nil
	}
	rd := &readers{n: r.cfg.Readers, outc: make(chan readerOut, r.cfg.Readers)}
	var err error
	if rd.ready, err = fifo("ready"); err != nil {
		return nil, err
	}
	if rd.start, err = fifo("go"); err != nil {
		return nil, err
	}
	if rd.stopF, err = fifo("stop"); err != nil {
		return nil, err
	}
	if r.poke, err = fifo("poke"); err != nil {
		return nil, err
	}
	if r.ack, err = fifo("ack"); err != nil {
		return nil, err
	}
	r.ackR = bufio.NewReader(r.ack)

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx)) // stopped by us, gracefully first
	rd.cancel = cancel
	for i, c := range r.containers {
		rec := filepath.Join(dir, fmt.Sprintf("reader-%02d.rec", i))
		argv := append(slices.Clone(r.cfg.ReaderArgv),
			"-path", "/proc/meminfo", "-want-kb", strconv.FormatUint(wantKB[i%len(wantKB)], 10),
			"-ready", rd.ready.Name(), "-go", rd.start.Name(), "-stop", rd.stopF.Name(), "-out", rec)
		if r.cfg.ReadGap > 0 {
			argv = append(argv, "-gap", r.cfg.ReadGap.String())
		}
		if i == 0 && r.cfg.Handovers > 0 {
			argv = append(argv, "-poke", r.poke.Name(), "-ack", r.ack.Name())
		}
		go func() {
			so, se, err := c.Exec(rctx, argv...)
			rd.outc <- readerOut{i: i, stdout: so, stderr: se, err: err}
		}()
	}

	readyc := make(chan error, 1)
	if err := rd.ready.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		return rd, errors.Join(err, rd.abort())
	}
	go func() {
		_, err := io.ReadFull(rd.ready, make([]byte, rd.n))
		readyc <- err
	}()
	select {
	case err := <-readyc:
		if err != nil {
			return rd, errors.Join(fmt.Errorf("wait for %d readers to be ready: %w", rd.n, err), rd.abort())
		}
	case o := <-rd.outc:
		rd.outs = append(rd.outs, o)
		return rd, errors.Join(fmt.Errorf("reader %d exited before the start: %v (stdout %q)", o.i, o.err, o.stdout), rd.abort())
	case <-ctx.Done():
		return rd, errors.Join(ctx.Err(), rd.abort())
	}
	_ = rd.start.Close() // the start signal; a fifo has nothing to flush
	rd.startReleased = true
	r.logf("%d readers reading /proc/meminfo", rd.n)
	return rd, nil
}

// check returns an error if a reader has exited early.
func (rd *readers) check() error {
	select {
	case o := <-rd.outc:
		rd.outs = append(rd.outs, o)
		return fmt.Errorf("reader %d exited early: %v (stdout %q, stderr %q)", o.i, o.err, o.stdout, o.stderr)
	default:
		return nil
	}
}

// abort kills the readers and collects them.
func (rd *readers) abort() error {
	rd.cancel()
	if !rd.startReleased {
		_ = rd.start.Close() // fifo
		rd.startReleased = true
	}
	for len(rd.outs) < rd.n {
		rd.outs = append(rd.outs, <-rd.outc)
	}
	return nil
}

// stop tells the readers to stop (poke FIFO first, so the held-file
// goroutine ends, then the stop FIFO), waits up to 30s for their summaries,
// and loads their records.
func (rd *readers) stop(r *run) ([]ReaderSummary, [][]Record, error) {
	if r.poke != nil {
		_ = r.poke.Close() // fifo; EOF for the held-file goroutine
		r.poke = nil
	}
	_ = rd.stopF.Close() // fifo; EOF stops the loops
	timeout := time.After(30 * time.Second)
	var errs []error
	for len(rd.outs) < rd.n {
		select {
		case o := <-rd.outc:
			rd.outs = append(rd.outs, o)
		case <-timeout:
			errs = append(errs, fmt.Errorf("%d of %d readers did not stop within 30s (stuck in a read?); killed", rd.n-len(rd.outs), rd.n))
			rd.cancel()
			for len(rd.outs) < rd.n {
				rd.outs = append(rd.outs, <-rd.outc)
			}
		}
	}
	rd.cancel()
	_ = rd.ready.Close() // fifo
	var sums []ReaderSummary
	recs := make([][]Record, rd.n)
	for _, o := range rd.outs {
		if o.err != nil {
			errs = append(errs, fmt.Errorf("reader %d: %w (stdout %q)", o.i, o.err, o.stdout))
			continue
		}
		var s ReaderSummary
		if err := json.Unmarshal([]byte(o.stdout), &s); err != nil {
			errs = append(errs, fmt.Errorf("reader %d: parse summary %q: %w", o.i, o.stdout, err))
			continue
		}
		sums = append(sums, s)
		rs, err := ReadRecords(s.Records)
		if err != nil {
			errs = append(errs, fmt.Errorf("reader %d: %w", o.i, err))
			continue
		}
		recs[o.i] = rs
	}
	return sums, recs, errors.Join(errs...)
}

// binVersion runs `bin version`.
func binVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// hostMemTotalKB reads MemTotal from the host's /proc/meminfo: a container
// limited above it sees the host's total.
func hostMemTotalKB() (uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host meminfo: %w", err)
	}
	kb, ok := memTotalKB(b)
	if !ok {
		return 0, errors.New("no MemTotal in the host's /proc/meminfo")
	}
	return kb, nil
}

// FSType is the type of k8s-lxcfs mounts in the mount table.
const FSType = "fuse.lxcfs"

// mountsAt lists the fuse.lxcfs mounts exactly at mnt, bottom first. Other
// mounts there (the daemon may bind the mount point onto itself to make it a
// shared mount) are not counted.
func mountsAt(mnt string) ([]*mountinfo.Info, error) {
	all, err := allMountsAt(mnt)
	if err != nil {
		return nil, err
	}
	var ms []*mountinfo.Info
	for _, m := range all {
		if m.FSType == FSType {
			ms = append(ms, m)
		}
	}
	return ms, nil
}

// allMountsAt lists every mount exactly at mnt, bottom first.
func allMountsAt(mnt string) ([]*mountinfo.Info, error) {
	// Not mountinfo.SingleEntryFilter: it stops at the first of stacked
	// mounts, and stacking is what we look for.
	ms, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != mnt, false })
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	return ms, nil
}

// device returns "major:minor" of the top mount, or "" for none.
func device(ms []*mountinfo.Info) string {
	if len(ms) == 0 {
		return ""
	}
	top := ms[len(ms)-1]
	return fmt.Sprintf("%d:%d", top.Major, top.Minor)
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
