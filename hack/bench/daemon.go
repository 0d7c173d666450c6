// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// daemon is a FUSE server (k8s-lxcfs or lxcfs) we started in the
// foreground, mounted at mnt.
type daemon struct {
	name string // the target name in the table
	mnt  string
	log  string // file holding its stdout and stderr
	cmd  *exec.Cmd
	// signalExit is the exit status the daemon reports when stopped by a
	// signal, 0 for k8s-lxcfs. lxcfs 5.0.3 exits 1 after SIGTERM or SIGINT
	// even though it unmounted cleanly (libfuse 3 hands the signal back from
	// fuse_main as an error).
	signalExit int
	// notes collects what stop tolerated, for the report.
	notes []string

	reaped *proc.Reaped
}

// startDaemon starts argv (whose last argument is mnt) with its output in
// logPath. The daemon gets SIGTERM if we die (PR_SET_PDEATHSIG), which makes
// both servers unmount and exit.
func startDaemon(name, mnt, logPath string, argv []string) (*daemon, error) {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return nil, fmt.Errorf("create mount point %s: %w", mnt, err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create log %s: %w", logPath, err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own copy
	d := &daemon{name: name, mnt: mnt, log: logPath}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // ^C reaches us only; we stop the daemons in order
		Pdeathsig: unix.SIGTERM,
	}
	reaped, err := proc.StartLocked(d.cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s (%q): %w", name, argv, err)
	}
	d.reaped = reaped
	return d, nil
}

// pid returns the daemon's pid: both servers run in the foreground, so it is
// the serving process itself.
func (d *daemon) pid() int {
	return d.cmd.Process.Pid
}

// exited reports whether the daemon has exited, and how.
func (d *daemon) exited() (bool, error) {
	select {
	case <-d.reaped.Done():
		return true, d.reaped.Err()
	default:
		return false, nil
	}
}

// check returns an error, with the end of the log, if the daemon has exited.
func (d *daemon) check() error {
	if gone, err := d.exited(); gone {
		return fmt.Errorf("%s (pid %d) exited unexpectedly: %v%s", d.name, d.pid(), err, d.logTail())
	}
	return nil
}

// cpuTicks returns the daemon's utime+stime; see [cpuTicks].
func (d *daemon) cpuTicks() (uint64, error) {
	t, err := cpuTicks(d.pid())
	if err != nil {
		return 0, errors.Join(err, d.check())
	}
	return t, nil
}

// rssBytes returns the daemon's VmRSS; see [rssBytes].
func (d *daemon) rssBytes() (uint64, error) {
	b, err := rssBytes(d.pid())
	if err != nil {
		return 0, errors.Join(err, d.check())
	}
	return b, nil
}

// waitLive polls until the mount table lists d.mnt as a FUSE mount and
// proc/meminfo below it reads successfully, or timeout passes, or the daemon
// exits.
func (d *daemon) waitLive(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	probe := d.mnt + "/proc/meminfo"
	var last error
	for {
		fstype, err := mountFSType(d.mnt)
		switch {
		case err != nil:
			last = err
		case !strings.HasPrefix(fstype, "fuse"):
			last = fmt.Errorf("%s not mounted yet", d.mnt)
		default:
			b, err := os.ReadFile(probe)
			switch {
			case err != nil:
				last = err
			case !bytes.Contains(b, []byte("MemTotal:")):
				last = fmt.Errorf("read %s: no MemTotal in %q", probe, b)
			default:
				return nil
			}
		}
		select {
		case <-d.reaped.Done():
			return fmt.Errorf("%s exited before its mount at %s was live: %v%s", d.name, d.mnt, d.reaped.Err(), d.logTail())
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to serve %s: %w (last: %v)%s", d.name, probe, ctx.Err(), last, d.logTail())
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, waits up to 10 s (then SIGKILLs), and makes sure
// nothing stays mounted at d.mnt (lazy unmount as the last resort).
func (d *daemon) stop() error {
	var errs []error
	if done, _ := d.exited(); !done {
		if err := d.cmd.Process.Signal(unix.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("signal %s (pid %d): %w", d.name, d.pid(), err))
		}
		select {
		case <-d.reaped.Done():
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("%s (pid %d) ignored SIGTERM for 10s; killed", d.name, d.pid()))
			_ = d.cmd.Process.Kill() // ErrProcessDone if it just exited
			<-d.reaped.Done()
		}
		var ee *exec.ExitError
		switch {
		case d.reaped.Err() == nil:
		case d.signalExit != 0 && errors.As(d.reaped.Err(), &ee) && ee.ExitCode() == d.signalExit:
			d.notes = append(d.notes, fmt.Sprintf("%s exited %d after SIGTERM, its usual status for a signal stop", d.name, d.signalExit))
		default:
			errs = append(errs, fmt.Errorf("%s exited: %w%s", d.name, d.reaped.Err(), d.logTail()))
		}
	}
	for range 3 {
		fstype, err := mountFSType(d.mnt)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if fstype == "" {
			break
		}
		if err := unix.Unmount(d.mnt, unix.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s left by %s: %w", d.mnt, d.name, err))
			break
		}
	}
	return errors.Join(errs...)
}

// logTail returns the end of the daemon's log for error messages.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log)
	if err != nil || len(b) == 0 {
		return ""
	}
	const maxLen = 4096
	if len(b) > maxLen {
		b = b[len(b)-maxLen:]
	}
	return fmt.Sprintf("\n--- %s log (%s), last lines ---\n%s", d.name, d.log, b)
}

// cpuTicks returns utime+stime of the whole process (all threads, dead ones
// included) from /proc/PID/stat, in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	// comm may hold spaces and parentheses; the fields after the last ')'
	// start with field 3 (state), so utime (14) and stime (15) are [11], [12].
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse %s: no ')' in %q", p, b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse %s: %d fields after comm", p, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse utime/stime in %s: %w", p, err)
	}
	return ut + st, nil
}

// rssBytes returns VmRSS from /proc/PID/status.
func rssBytes(pid int) (uint64, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/status"
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close() //nolint:errcheck // read-only
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS %q in %s: %w", rest, p, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", p, err)
	}
	return 0, fmt.Errorf("no VmRSS in %s", p)
}

// mountFSType returns the filesystem type mounted at mnt in our mount
// namespace (the last mount on it, as the kernel resolves the path), or ""
// if nothing is mounted there.
func mountFSType(mnt string) (string, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return "", err
	}
	fstype := ""
	for _, m := range mounts {
		if m.point == mnt {
			fstype = m.fstype
		}
	}
	return fstype, nil
}

type mountEntry struct {
	point, fstype string
}

// readMountinfo parses /proc/self/mountinfo: field 5 is the mount point
// (octal-escaped), and the type follows the " - " separator.
func readMountinfo() ([]mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	var out []mountEntry
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		out = append(out, mountEntry{point: unescapeMount(f[4]), fstype: g[0]})
	}
	return out, nil
}

// unescapeMount undoes the kernel's \ooo escapes of space, tab, newline and
// backslash in mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
