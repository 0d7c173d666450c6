// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package mountns_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr/mountns"
)

// startNamespace starts `unshare --mount --propagation private sleep 600`
// and returns its pid once sleep runs, in a mount namespace of its own. The
// process is killed at cleanup, and by Pdeathsig if the test dies.
func startNamespace(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r, err := proc.StartLocked(cmd)
	if err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // ours, by pid; it may have died already
		<-r.Done()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if string(comm) == "sleep\n" {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v (pid %d) never ran sleep", cmd.Args, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPrivDo joins a mount namespace of another process, mounts there, and
// checks what the package promises about the thread and the results.
func TestPrivDo(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	pid := startNamespace(t)
	nsPath := fmt.Sprintf("/proc/%d/ns/mnt", pid)
	if same, err := mountns.Same(nsPath); err != nil || same {
		t.Fatalf("Same(%s) = %v, %v before joining; want false", nsPath, same, err)
	}

	var dirFd int
	err := mountns.Do(nsPath, func() error {
		if same, err := mountns.Same(nsPath); err != nil || !same {
			return fmt.Errorf("Same(%s) inside Do = %v, %v; want true", nsPath, same, err)
		}
		if same, err := mountns.Same("/proc/self/ns/mnt"); err != nil || same {
			return fmt.Errorf("Same(/proc/self/ns/mnt) inside Do = %v, %v; want false: the thread-group leader stayed", same, err)
		}
		if wd, err := unix.Getwd(); err != nil || wd != "/" {
			return fmt.Errorf("working directory inside Do = %q, %v; want the namespace root", wd, err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			return fmt.Errorf("mount tmpfs on %s: %w", dir, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("inside\n"), 0o644); err != nil {
			return err
		}
		ms, err := readOwnMounts(dir)
		if err != nil {
			return err
		}
		if len(ms) != 1 || ms[0].FSType != "tmpfs" {
			return fmt.Errorf("OpenMountinfo inside Do lists %+v at %s; want the tmpfs just mounted", ms, dir)
		}
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		dirFd = fd
		return err
	})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(dirFd) })

	// Not in our namespace...
	if ms, err := readOwnMounts(dir); err != nil || len(ms) != 0 {
		t.Errorf("our mount table lists %+v, %v at %s; want nothing", ms, err, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "marker")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker visible in our namespace: %v", err)
	}
	// ...but in the joined one...
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := mountinfo.GetMountsFromReader(f, at(dir))
	_ = f.Close()
	if err != nil || len(ms) != 1 || ms[0].FSType != "tmpfs" {
		t.Errorf("/proc/%d/mountinfo lists %+v, %v at %s; want the tmpfs", pid, ms, err, dir)
	}
	// ...and the descriptor opened inside still points there.
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(dirFd, &sfs); err != nil || sfs.Type != unix.TMPFS_MAGIC {
		t.Errorf("fstatfs of a descriptor opened inside Do: type %#x, %v; want tmpfs", sfs.Type, err)
	}
	mfd, err := unix.Openat(dirFd, "marker", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("openat marker through a descriptor opened inside Do: %v", err)
	}
	_ = unix.Close(mfd)

	// The thread that joined is gone: no thread of ours is left in that
	// namespace (the runtime ends a thread whose locked goroutine returns).
	if err := eventually(func() error { return threadsIn(nsPath) }); err != nil {
		t.Error(err)
	}
}

// TestPrivDoPanicAndGoexit checks that a panic in fn reaches the caller and
// that runtime.Goexit in fn does not hang Do.
func TestPrivDoPanicAndGoexit(t *testing.T) {
	testenv.RequirePrivileged(t)
	nsPath := "/proc/self/ns/mnt" // joining our own namespace is enough here
	err := mountns.Do(nsPath, func() error { runtime.Goexit(); return nil })
	if err == nil || !strings.Contains(err.Error(), "Goexit") {
		t.Errorf("Do(fn calling Goexit) = %v; want an error saying so", err)
	}
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the panic of fn", p)
			}
		}()
		_ = mountns.Do(nsPath, func() error { panic("boom") })
		t.Error("Do returned although fn panicked")
	}()
	sentinel := errors.New("from fn")
	if err := mountns.Do(nsPath, func() error { return sentinel }); err != sentinel {
		t.Errorf("Do = %v; want fn's error unwrapped", err)
	}
}

// mainProbe is what TestMain saw when it called Do from the main thread.
var mainProbe struct {
	err          error // setting up or running the probe failed
	callerOnMain bool  // Do was called on the main thread
	fnOnMain     bool  // fn ran on the main thread
	before       uint64
	after        uint64 // inode of /proc/self/ns/mnt before and after
	nsPath       string
}

// TestMain calls Do from the main goroutine before anything else runs. At
// that point the main goroutine still sits on the main thread, and a
// goroutine it starts and then waits for runs there too, which is the case
// TestPrivDoKeepsMainThread needs; inside a test it is down to chance.
func TestMain(m *testing.M) {
	if os.Getenv(testenv.PrivilegedEnv) == "1" && os.Geteuid() == 0 {
		mainProbe.err = probeMainThread()
	}
	os.Exit(m.Run())
}

func probeMainThread() error {
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // the main thread never ends early
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill() // ours, by pid
		_ = cmd.Wait()
	}()
	if err := eventually(func() error {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); string(comm) != "sleep\n" {
			return fmt.Errorf("%v never ran sleep", cmd.Args)
		}
		return nil
	}); err != nil {
		return err
	}
	mainProbe.nsPath = fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid)
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &st); err != nil {
		return err
	}
	mainProbe.before = st.Ino
	mainProbe.callerOnMain = unix.Gettid() == unix.Getpid()
	err := mountns.Do(mainProbe.nsPath, func() error {
		mainProbe.fnOnMain = unix.Gettid() == unix.Getpid()
		return nil
	})
	if err != nil {
		return err
	}
	if err := unix.Stat("/proc/self/ns/mnt", &st); err != nil {
		return err
	}
	mainProbe.after = st.Ino
	return nil
}

// TestPrivDoKeepsMainThread checks that Do never moves the main thread:
// the runtime parks a main thread whose locked goroutine returns instead of
// ending it, and /proc/<pid>/ns/mnt and /proc/<pid>/mountinfo describe the
// main thread, so the whole process would look moved for good.
func TestPrivDoKeepsMainThread(t *testing.T) {
	testenv.RequirePrivileged(t)
	if mainProbe.err != nil {
		t.Fatalf("probe from TestMain: %v", mainProbe.err)
	}
	if !mainProbe.callerOnMain {
		t.Log("TestMain was not on the main thread when it called Do; the case is untested this time")
	}
	if mainProbe.fnOnMain {
		t.Error("fn ran on the main thread")
	}
	if mainProbe.after != mainProbe.before {
		t.Errorf("/proc/self/ns/mnt is %d after Do, was %d: the main thread joined %s and stayed", mainProbe.after, mainProbe.before, mainProbe.nsPath)
	}
}

// readOwnMounts lists the mounts at dir in the calling thread's namespace.
func readOwnMounts(dir string) ([]*mountinfo.Info, error) {
	f, err := mountns.OpenMountinfo()
	if err != nil {
		return nil, err
	}
	defer f.Close() //nolint:errcheck // read-only
	return mountinfo.GetMountsFromReader(f, at(dir))
}

// threadsIn returns an error naming the threads of this process that are in
// the mount namespace nsPath.
func threadsIn(nsPath string) error {
	var want unix.Stat_t
	if err := unix.Stat(nsPath, &want); err != nil {
		return err
	}
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var in []int
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(filepath.Join("/proc/self/task", e.Name(), "ns", "mnt"), &st) == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			tid, _ := strconv.Atoi(e.Name())
			in = append(in, tid)
		}
	}
	if len(in) > 0 {
		return fmt.Errorf("threads %v still in %s after Do returned", in, nsPath)
	}
	return nil
}

func eventually(cond func() error) error {
	var err error
	for range 100 {
		if err = cond(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// at keeps every mount at dir; mountinfo.SingleEntryFilter stops at the
// first of stacked mounts.
func at(dir string) mountinfo.FilterFunc {
	return func(m *mountinfo.Info) (skip, stop bool) { return m.Mountpoint != dir, false }
}
