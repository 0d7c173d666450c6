// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package proc starts helper processes for the test harnesses, the
// benchmark and the demo so that none outlives its parent.
package proc

import (
	"os/exec"
	"runtime"
)

// Reaped is a child process started by [StartLocked].
type Reaped struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result; set before done closes
}

// StartLocked starts cmd and reaps it in the background. The fork happens on
// an OS thread locked for the child's whole life: PR_SET_PDEATHSIG (which the
// sandbox and the test harnesses use so no child outlives a killed test)
// fires when the forking thread exits, not the process, and the Go runtime
// ends threads whose locked goroutine returns.
func StartLocked(cmd *exec.Cmd) (*Reaped, error) {
	r := &Reaped{Cmd: cmd, done: make(chan struct{})}
	startc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			startc <- err
			return
		}
		startc <- nil
		r.err = cmd.Wait()
		close(r.done)
	}()
	if err := <-startc; err != nil {
		return nil, err
	}
	return r, nil
}

// Done is closed once the child has exited and been reaped.
func (r *Reaped) Done() <-chan struct{} { return r.done }

// Err is the child's exit status (Wait's error); valid after Done.
func (r *Reaped) Err() error { return r.err }
