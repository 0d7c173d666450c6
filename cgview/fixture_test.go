// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package cgview_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// Names shared by the fixture trees under testdata/ (see testdata/README.md).
const (
	hostNS   = 4026531836 // pid namespace of proc/self and of host processes
	ctrNS    = 4026532398 // pid namespace of the pod's container
	podUID   = "6b1f1d5e-3c2a-4f5e-9d8a-0e1b2c3d4e5f"
	podUID_  = "6b1f1d5e_3c2a_4f5e_9d8a_0e1b2c3d4e5f" // systemd slice spelling
	ctrID    = "7d3c5b2a9e8f1d6c4b0a3e2f5d8c7b6a1e0f9d2c3b4a5e6f7d8c9b0a1e2f3d4c"
	initPid  = 4242 // pid 1 of the container: NSpid 4242 1
	shPid    = 4250 // child of init: NSpid 4250 7
	dPid     = 4260 // child of init in D state
	readPid  = 4300 // the reader, grandchild of init: NSpid 4300 23
	execPid  = 4400 // entered with setns (kubectl exec): parent is the shim
	shimPid  = 3900 // containerd-shim, host namespace
	hostPid  = 812  // a shell in the host's pid namespace
	nestPid  = 4500 // v2-systemd-burstable: init of a nested namespace, NSpid 4500 40 1
	orphPid  = 4600 // v2-systemd-burstable: namespace without an init
	cgnsPid  = 4700 // v2-systemd-burstable: cgroup path relative to another cgroup namespace
	v2Start  = 35123456
	v1Start  = 259000000
	hyStart  = 30000
	hostInit = 8 // start time of the host's pid 1 in the v2 fixtures

	v2Burstable  = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUID_ + ".slice/cri-containerd-" + ctrID + ".scope"
	v2Guaranteed = "/kubepods.slice/kubepods-pod" + podUID_ + ".slice/cri-containerd-" + ctrID + ".scope"
	v2BestEffort = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podUID_ + ".slice/cri-containerd-" + ctrID + ".scope"
	v1Burstable  = "/kubepods/burstable/pod" + podUID + "/" + ctrID
	v1Guaranteed = "/kubepods/pod" + podUID + "/" + ctrID
)

// stdTasks are the tasks in the container cgroup of every fixture.
var stdTasks = []int{initPid, shPid, dPid, readPid, execPid}

// fixture returns the root of testdata/<name>.
func fixture(name string) string { return filepath.Join("testdata", name) }

// newResolver builds a Resolver over the fixture tree at root.
func newResolver(t *testing.T, root string, mod ...func(*cgview.Options)) *cgview.Resolver {
	t.Helper()
	opts := cgview.Options{ProcRoot: filepath.Join(root, "proc"), CgroupRoot: filepath.Join(root, "sys", "fs", "cgroup")}
	for _, m := range mod {
		m(&opts)
	}
	r, err := cgview.New(opts)
	if err != nil {
		t.Fatalf("cgview.New(%+v) = %v", opts, err)
	}
	return r
}

// resolve resolves pid and fails the test on error.
func resolve(t *testing.T, r *cgview.Resolver, pid int) *cgview.Container {
	t.Helper()
	c, err := r.Resolve(pid)
	if err != nil {
		t.Fatalf("Resolve(%d) = %v", pid, err)
	}
	return c
}

// copyFixture copies testdata/<name> into a fresh temporary directory, for
// tests that change files (an init restarting, a cgroup appearing).
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	return testenv.CopyTree(t, fixture(name))
}

// writeFile replaces a file of a copied fixture.
func writeFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pidStatLine is a /proc/PID/stat line with the given start time.
func pidStatLine(pid int, comm string, state byte, ppid int, start uint64) string {
	p := strconv.Itoa(ppid)
	return strconv.Itoa(pid) + " (" + comm + ") " + string(state) + " " + p + " " + p + " " + p +
		" 0 -1 4194560 1834 0 3 0 12 5 0 0 20 0 1 0 " + strconv.FormatUint(start, 10) +
		" 4378624 210 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
}

// fakeClock is an injectable Options.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
