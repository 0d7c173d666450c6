// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/k8s-lxcfs once per test binary and returns its path.
// K8S_LXCFS_BIN overrides it with a prebuilt binary.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("K8S_LXCFS_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "k8s-lxcfs-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "k8s-lxcfs")
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildPath, "./cmd/k8s-lxcfs")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the k8s-lxcfs module")
	}
	return filepath.Dir(mod), nil
}

// Daemon is a `k8s-lxcfs serve` process started by a test.
type Daemon struct {
	Cmd        *exec.Cmd
	MountPoint string
	log        *syncBuffer
	done       chan struct{}
	waitErr    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartDaemon runs `k8s-lxcfs serve args... mountPoint` and waits until the
// mount answers. The daemon is stopped with SIGTERM at cleanup, and its log is
// printed if the test failed.
func StartDaemon(t testing.TB, mountPoint string, args ...string) *Daemon {
	t.Helper()
	return StartDaemonWith(t, DaemonOptions{}, mountPoint, args...)
}

// DaemonOptions vary how StartDaemonWith starts a daemon.
type DaemonOptions struct {
	Binary string   // default: Binary(t)
	Env    []string // added to the test's environment
	// Prefix runs the daemon through a command, e.g. nsenter into a mount
	// namespace.
	Prefix []string
	// NoWait returns once started, without waiting for the mount to answer
	// (a successor taking over a live mount, say).
	NoWait bool
}

// StartDaemonWith is StartDaemon with options.
func StartDaemonWith(t testing.TB, o DaemonOptions, mountPoint string, args ...string) *Daemon {
	t.Helper()
	bin := o.Binary
	if bin == "" {
		bin = Binary(t)
	}
	d := &Daemon{MountPoint: mountPoint, log: &syncBuffer{}, done: make(chan struct{})}
	argv := []string{"serve"}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "handover-socket") }) {
		// Never the node's default socket: tests must not hand over to, or
		// take over from, anything but their own daemons.
		argv = append(argv, "-handover-socket="+mountPoint+".sock")
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), "http-address") }) {
		// Nor the node's metrics port: many test daemons run at once.
		argv = append(argv, "-http-address=")
	}
	argv = append(append([]string{bin}, append(argv, args...)...), mountPoint)
	argv = append(append([]string{}, o.Prefix...), argv...)
	d.Cmd = exec.Command(argv[0], argv[1:]...)
	d.Cmd.Env = append(os.Environ(), o.Env...)
	d.Cmd.Stdout, d.Cmd.Stderr = d.log, d.log
	d.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	reaped, err := proc.StartLocked(d.Cmd)
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	go func() { <-reaped.Done(); d.waitErr = reaped.Err(); close(d.done) }()
	t.Cleanup(func() {
		d.Stop(t)
		if t.Failed() {
			t.Logf("daemon log (%s):\n%s", mountPoint, d.Log())
		}
	})
	if o.NoWait {
		return d
	}
	if err := WaitLive(mountPoint, 10*time.Second, d.done); err != nil {
		t.Fatalf("daemon on %s: %v\n%s", mountPoint, err, d.Log())
	}
	return d
}

// WaitLog waits until the daemon's log contains s, or timeout passes or the
// daemon exits.
func (d *Daemon) WaitLog(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(d.Log(), s) {
			return nil
		}
		select {
		case <-d.done:
			if strings.Contains(d.Log(), s) {
				return nil
			}
			return fmt.Errorf("daemon exited (%v) before logging %q", d.waitErr, s)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("daemon did not log %q within %s", s, timeout)
}

// ExitErr is the daemon's exit status once Done is closed.
func (d *Daemon) ExitErr() error { return d.waitErr }

// Log returns what the daemon printed so far.
func (d *Daemon) Log() string { return d.log.String() }

// Done is closed when the daemon process has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Stop sends SIGTERM and waits for exit (SIGKILL after 10s). It reports the
// exit status; a daemon already gone is not an error.
func (d *Daemon) Stop(t testing.TB) error {
	t.Helper()
	select {
	case <-d.done:
		return d.waitErr
	default:
	}
	_ = d.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		_ = d.Cmd.Process.Kill()
		<-d.done
		t.Errorf("daemon on %s ignored SIGTERM for 10s", d.MountPoint)
	}
	return d.waitErr
}

// Kill sends SIGKILL and waits for the process to be gone.
func (d *Daemon) Kill() {
	_ = d.Cmd.Process.Kill()
	<-d.done
}

// WaitLive polls until a fuse.lxcfs mount sits at mountPoint and its
// proc/meminfo reads, or timeout passes or abort closes.
func WaitLive(mountPoint string, timeout time.Duration, abort <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-abort:
			return errors.New("daemon exited before mounting")
		default:
		}
		last = probe(mountPoint)
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not live after %s: %w", timeout, last)
}

func probe(mountPoint string) error {
	ms, err := mountinfo.GetMounts(at(mountPoint))
	if err != nil {
		return err
	}
	if len(ms) == 0 || ms[len(ms)-1].FSType != "fuse.lxcfs" {
		return errors.New("no fuse.lxcfs mount")
	}
	_, err = os.ReadFile(filepath.Join(mountPoint, "proc/meminfo"))
	return err
}

// at keeps every mount at mountPoint (mountinfo.SingleEntryFilter stops at
// the first, and mounts stack: the daemon's FUSE mount sits on a shared bind
// of the directory).
func at(mountPoint string) mountinfo.FilterFunc {
	return func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != mountPoint, false }
}

// MountsAt returns the mounts exactly at mountPoint, bottom first.
func MountsAt(t testing.TB, mountPoint string) []*mountinfo.Info {
	t.Helper()
	ms, err := mountinfo.GetMounts(at(mountPoint))
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// MountDir makes a fresh directory for a test mount and, at cleanup, lazily
// unmounts whatever is left on it.
func MountDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lxcfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 8 {
			if unix.Unmount(dir, unix.MNT_DETACH) != nil {
				break
			}
		}
	})
	return dir
}

// Eventually polls cond every 20ms until it returns nil or timeout passes,
// and returns cond's last error.
func Eventually(ctx context.Context, timeout time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
