// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package mountmgr_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
)

// nsProc is a `sleep 600` started in a namespace set up by util-linux tools
// (tests may use them; the product may not).
type nsProc struct {
	Pid    int    // the sleep process
	NSPath string // /proc/<Pid>/ns/mnt
}

// startNS runs args, a command line that ends up executing sleep, and
// returns once sleep runs. With fork set, args fork sleep as a child (unshare
// --fork) and the child is returned. Everything is killed at cleanup, by pid,
// and by Pdeathsig if the test dies.
func startNS(t *testing.T, fork bool, args ...string) nsProc {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	r, err := proc.StartLocked(cmd)
	if err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // ours, by pid; --kill-child takes a forked sleep along
		<-r.Done()
	})
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for {
		select {
		case <-r.Done():
			t.Fatalf("%v exited: %v\n%s", args, r.Err(), stderr.String())
		default:
		}
		if fork {
			children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
			if f := strings.Fields(string(children)); len(f) > 0 {
				pid, _ = strconv.Atoi(f[0])
			}
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); string(comm) == "sleep\n" {
			return nsProc{Pid: pid, NSPath: fmt.Sprintf("/proc/%d/ns/mnt", pid)}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v (pid %d) never ran sleep\n%s", args, pid, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mountsOf lists the mounts exactly at dir in pid's mount namespace, read
// from outside it.
func mountsOf(t *testing.T, pid int, dir string) []*mountinfo.Info {
	t.Helper()
	return mountsOfFilter(t, pid, at(dir))
}

func mountsOfFilter(t *testing.T, pid int, filter mountinfo.FilterFunc) []*mountinfo.Info {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() //nolint:errcheck // read-only
	ms, err := mountinfo.GetMountsFromReader(f, filter)
	if err != nil {
		t.Fatalf("parse %s: %v", f.Name(), err)
	}
	return ms
}

// allMounts lists every mount in pid's mount namespace.
func allMounts(t *testing.T, pid int) []*mountinfo.Info {
	t.Helper()
	return mountsOfFilter(t, pid, nil)
}

// top returns the FSType of the topmost mount in ms, or "" if none.
func top(ms []*mountinfo.Info) string {
	if len(ms) == 0 {
		return ""
	}
	return ms[len(ms)-1].FSType
}

// optional returns the tag:value optional field with the given tag.
func optional(m *mountinfo.Info, tag string) string {
	for _, f := range strings.Fields(m.Optional) {
		if strings.HasPrefix(f, tag+":") {
			return f
		}
	}
	return ""
}

// at keeps every mount at dir; mountinfo.SingleEntryFilter stops at the
// first of stacked mounts.
func at(dir string) mountinfo.FilterFunc {
	return func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != dir, false }
}

// describe formats mounts for messages: id, parent, device, type and
// optional fields of each.
func describe(ms []*mountinfo.Info) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "[%d<-%d %d:%d %s %q] ", m.ID, m.Parent, m.Major, m.Minor, m.FSType, m.Optional)
	}
	return strings.TrimSpace(b.String())
}
