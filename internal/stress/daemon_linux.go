// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package stress

import (
	"bytes"
	"context"
	"encoding/json"
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

// daemon is one `k8s-lxcfs serve` process of a run: the first one, or the
// successor started for a handover.
type daemon struct {
	gen          int // 0 for the first daemon, n for the successor of handover n
	bin, version string
	log          string // its stdout and stderr
	cmd          *exec.Cmd
	startNS      int64

	exited chan struct{} // closed once the process is reaped and exitNS set
	exitNS int64
	reaped *proc.Reaped
}

// startServe starts `bin serve -handover-socket=sock extra... mnt` (without
// the socket flag when sock is ""). The daemon gets SIGTERM if the forking
// thread dies with us (PR_SET_PDEATHSIG), which unmounts.
func startServe(gen int, bin, version, sock, mnt, logPath string, extra []string) (*daemon, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create daemon log: %w", err)
	}
	defer logf.Close() //nolint:errcheck // the child holds its own copy
	args := []string{"serve"}
	if sock != "" {
		args = append(args, "-handover-socket="+sock)
	}
	args = append(append(args, extra...), mnt)
	d := &daemon{gen: gen, bin: bin, version: version, log: logPath, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true, // terminal signals reach the orchestrator only; it stops daemons in order
		Pdeathsig: unix.SIGTERM,
	}
	d.startNS = monoNow()
	d.reaped, err = proc.StartLocked(d.cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s %q: %w", bin, args, err)
	}
	go func() {
		<-d.reaped.Done()
		d.exitNS = monoNow()
		close(d.exited)
	}()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// gone reports whether the process has exited.
func (d *daemon) gone() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// exitErr is the exit status (nil for 0); valid once gone.
func (d *daemon) exitErr() error { return d.reaped.Err() }

// stop sends SIGTERM and waits (SIGKILL after timeout). It returns the exit
// status; a daemon that has exited already reports how it exited.
func (d *daemon) stop(timeout time.Duration) error {
	if !d.gone() {
		// Signal through the pidfd os/exec keeps: it cannot hit a recycled pid.
		if err := d.cmd.Process.Signal(unix.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal daemon %d: %w", d.pid(), err)
		}
		select {
		case <-d.exited:
		case <-time.After(timeout):
			_ = d.cmd.Process.Kill() // ErrProcessDone if it just exited
			<-d.exited
			return fmt.Errorf("daemon %d ignored SIGTERM for %s; killed", d.pid(), timeout)
		}
	}
	if err := d.exitErr(); err != nil {
		return fmt.Errorf("daemon %d (%s) exited: %w", d.pid(), d.version, err)
	}
	return nil
}

func (d *daemon) logText() string {
	b, _ := os.ReadFile(d.log) // a missing log reads as empty
	return string(b)
}

// logTail returns the end of the daemon's log, for error messages.
func (d *daemon) logTail() string {
	s := d.logText()
	const maxLen = 3000
	if len(s) > maxLen {
		s = "..." + s[len(s)-maxLen:]
	}
	return fmt.Sprintf("\n--- daemon #%d pid %d (%s) log %s ---\n%s", d.gen, d.pid(), d.version, d.log, s)
}

// Status is what `k8s-lxcfs status -o json` reports about the daemon serving
// a mount point.
type Status struct {
	State      string `json:"state"` // live, stale or absent
	Pid        int    `json:"pid"`
	Version    string `json:"version"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	Handles    int    `json:"handles"`
	Containers int    `json:"containers"`
	// Raw is the whole JSON document as printed.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// queryStatus runs `bin status -handover-socket=sock -o json mnt`.
func queryStatus(ctx context.Context, bin, sock, mnt string) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "status", "-handover-socket="+sock, "-o", "json", mnt)
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	st, perr := parseStatus(out.Bytes())
	if perr != nil {
		return st, fmt.Errorf("status of %s: %w (exit: %v, stderr %q)", mnt, perr, runErr, strings.TrimSpace(errb.String()))
	}
	if runErr != nil && st.State == "live" {
		return st, fmt.Errorf("status of %s: state live but %w (stderr %q)", mnt, runErr, strings.TrimSpace(errb.String()))
	}
	return st, nil
}

// parseStatus decodes status JSON. The counts may come as numbers or as
// lists (e.g. the containers themselves); a list counts its elements.
func parseStatus(b []byte) (Status, error) {
	st := Status{Raw: json.RawMessage(bytes.TrimSpace(b))}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return st, fmt.Errorf("parse status JSON %q: %w", b, err)
	}
	var errs []error
	str := func(key string, dst *string) {
		if raw, ok := m[key]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				errs = append(errs, fmt.Errorf("status field %q: %w", key, err))
			}
		}
	}
	count := func(key string, dst *int) {
		raw, ok := m[key]
		if !ok {
			*dst = -1 // absent: not reported by this version
			return
		}
		var n json.Number
		if err := json.Unmarshal(raw, &n); err == nil {
			v, err := strconv.Atoi(n.String())
			if err != nil {
				errs = append(errs, fmt.Errorf("status field %q: %w", key, err))
			}
			*dst = v
			return
		}
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			errs = append(errs, fmt.Errorf("status field %q: want a number or a list, got %s", key, raw))
			return
		}
		*dst = len(list)
	}
	str("state", &st.State)
	str("version", &st.Version)
	count("pid", &st.Pid)
	count("goroutines", &st.Goroutines)
	count("fds", &st.FDs)
	count("handles", &st.Handles)
	count("containers", &st.Containers)
	if st.State == "" {
		errs = append(errs, fmt.Errorf("status JSON %s has no state", b))
	}
	return st, errors.Join(errs...)
}
