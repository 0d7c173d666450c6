// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package mountns runs code inside another mount namespace, such as the
// host's (/proc/1/ns/mnt) or a pod's.
//
// setns(2) refuses to move a thread into a mount namespace while it shares
// its filesystem attributes (root, cwd, umask) with other threads, and every
// Go thread does (moby #5926 saw EINVAL). [Do] therefore runs its function on
// a dedicated OS thread that first unshares them (unshare(CLONE_FS)), then
// joins the namespace, and is never unlocked: the Go runtime ends a thread
// whose locked goroutine returns, so no other goroutine ever runs on it. The
// main thread is the exception (the runtime parks it forever instead, and
// /proc/<pid> describes it), so Do never moves it.
//
// Code that reads "the current mount table" must read the calling thread's,
// not the process's: /proc/self/mountinfo describes the thread-group
// leader, which stays in the original namespace. [OpenMountinfo] opens the
// right table, also inside a namespace whose /proc belongs to another pid
// namespace (a pod's), where /proc/thread-self does not resolve.
package mountns

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// errGoexit reports that fn ended its goroutine (runtime.Goexit, as
// testing.T.FailNow does) instead of returning.
var errGoexit = errors.New("mountns: function called runtime.Goexit instead of returning")

// threads maps the thread id of every thread [Do] has moved into a namespace
// to an O_PATH descriptor of its /proc/thread-self directory, opened before
// the move. Through it the thread reaches its own proc files even when the
// joined namespace's /proc belongs to a pid namespace the thread is not
// visible in. Entries are removed before the thread ends.
var threads sync.Map // int → int

// Do runs fn in the mount namespace nsPath names (a namespace file such as
// /proc/1/ns/mnt, or a bind mount of one) and returns fn's error. If nsPath is
// "", fn runs directly on the calling goroutine.
//
// Otherwise fn runs on a new goroutine locked to an OS thread, never the
// main one, that called unshare(CLONE_FS) and then setns(CLONE_NEWNS). The
// thread is never unlocked, so the runtime discards it when fn returns. Joining a mount namespace sets
// the thread's root and working directory to that namespace's root: inside fn,
// absolute and relative paths both resolve there.
//
// fn must do its filesystem work itself: goroutines it starts run on other
// threads, in the caller's namespace. File descriptors fn opens stay valid
// after Do returns and keep referring to the files they were opened on in
// the joined namespace, so fn can hand out an open directory for later
// *at(2) calls. A panic in fn is re-raised on the caller's goroutine.
//
// nsPath is resolved where the caller is: inside another Do, /proc is the
// joined namespace's. Joining needs CAP_SYS_ADMIN and CAP_SYS_CHROOT, and
// ptrace access to the process whose namespace file is opened. Errors name
// nsPath.
func Do(nsPath string, fn func() error) error {
	if fn == nil {
		return errors.New("mountns: nil function")
	}
	if nsPath == "" {
		return fn()
	}
	resc := make(chan result, 1)
	go runIn(nsPath, fn, resc)
	res := <-resc
	if res.panicked {
		panic(res.value)
	}
	return res.err
}

// result is what the namespaced goroutine hands back to Do.
type result struct {
	err      error
	panicked bool
	value    any // the panic value when panicked
}

// runIn is the body of Do's dedicated goroutine.
func runIn(nsPath string, fn func() error, resc chan<- result) {
	runtime.LockOSThread() // never unlocked once tainted: its namespace and fs_struct are fn's
	if unix.Gettid() == unix.Getpid() {
		// The main thread (the thread-group leader) is the one the runtime
		// does not end when its locked goroutine returns: it parks it
		// forever instead, still in the joined namespace. /proc/<pid>/ns/mnt,
		// /proc/<pid>/mountinfo, /proc/self/root and /proc/self/cwd describe
		// the leader, so the whole process would seem to have moved. Keep the
		// main thread, untouched, until a goroutine on another thread, which
		// cannot be scheduled here while we hold it, has done the work.
		done := make(chan struct{})
		go func() {
			defer close(done)
			runIn(nsPath, fn, resc)
		}()
		<-done
		runtime.UnlockOSThread() // untainted: nothing was changed on it
		return
	}
	var res result
	returned := false
	defer func() {
		if !returned {
			if p := recover(); p != nil {
				res = result{panicked: true, value: p}
			} else {
				res = result{err: errGoexit}
			}
		}
		resc <- res
	}()
	res.err = enterAndRun(nsPath, fn)
	returned = true
}

// enterAndRun moves the calling (locked) thread into the mount namespace at
// nsPath and runs fn there.
func enterAndRun(nsPath string, fn func() error) error {
	nsFd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open mount namespace %s: %w", nsPath, err)
	}
	defer unix.Close(nsFd) //nolint:errcheck // read-only namespace handle; nothing to flush
	// NS_GET_NSTYPE (Linux 4.11) tells a namespace file from any other file and
	// its type, for a clearer message than setns's EINVAL.
	typ, err := unix.IoctlRetInt(nsFd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file: %w", nsPath, err)
	}
	if typ != unix.CLONE_NEWNS {
		return fmt.Errorf("%s is not a mount namespace (namespace type %#x)", nsPath, typ)
	}
	selfFd, err := unix.Open("/proc/thread-self", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /proc/thread-self: %w", err)
	}
	defer unix.Close(selfFd) //nolint:errcheck // O_PATH handle; nothing to flush
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare filesystem attributes before joining %s: %w", nsPath, err)
	}
	if err := unix.Setns(nsFd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("join mount namespace %s: %w", nsPath, err)
	}
	tid := unix.Gettid()
	threads.Store(tid, selfFd)
	defer threads.Delete(tid) // before selfFd closes and before the thread ends
	return fn()
}

// openThreadFile opens name, a path below the calling thread's
// /proc/thread-self directory, with flags. Inside [Do] it goes through the
// directory opened before joining the namespace. The caller must have locked
// its OS thread.
func openThreadFile(name string, flags int) (int, string, error) {
	if dirFd, ok := threads.Load(unix.Gettid()); ok {
		path := fmt.Sprintf("/proc/%d/task/%d/%s", os.Getpid(), unix.Gettid(), name) // for messages only
		fd, err := unix.Openat(dirFd.(int), name, flags|unix.O_CLOEXEC, 0)
		return fd, path, err
	}
	path := "/proc/thread-self/" + name
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	return fd, path, err
}

// OpenMountinfo opens the mountinfo file (proc(5)) of the calling thread's
// mount namespace: inside [Do] the joined namespace, elsewhere the process's.
// Mount points in it are relative to the thread's root. The file keeps
// describing that namespace after the thread moves on; the caller closes it.
//
// Inside [Do] it works even when the joined namespace mounts a /proc of a
// pid namespace the thread is not visible in (a pod without hostPID), where
// /proc/thread-self/mountinfo, and with it moby/sys/mountinfo.GetMounts,
// fail with ENOENT.
func OpenMountinfo() (*os.File, error) {
	runtime.LockOSThread() // nests inside Do's lock; elsewhere every thread shares the process's namespace
	defer runtime.UnlockOSThread()
	fd, path, err := openThreadFile("mountinfo", unix.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// Same reports whether nsPath names the calling thread's own mount
// namespace (the joined one inside [Do]), so a caller can skip [Do]. It
// compares device and inode numbers of the two namespace files. nsPath is
// resolved in the calling thread's namespace.
func Same(nsPath string) (bool, error) {
	if nsPath == "" {
		return false, errors.New("mountns: empty namespace path")
	}
	var want unix.Stat_t
	if err := unix.Stat(nsPath, &want); err != nil {
		return false, fmt.Errorf("stat mount namespace %s: %w", nsPath, err)
	}
	own, err := threadNamespace()
	if err != nil {
		return false, err
	}
	return want.Dev == own.Dev && want.Ino == own.Ino, nil
}

// threadNamespace stats the calling thread's mount namespace file.
func threadNamespace() (unix.Stat_t, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var st unix.Stat_t
	fd, path, err := openThreadFile("ns/mnt", unix.O_RDONLY)
	if err != nil {
		return st, fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd) //nolint:errcheck // read-only namespace handle
	if err := unix.Fstat(fd, &st); err != nil {
		return st, fmt.Errorf("stat %s: %w", path, err)
	}
	return st, nil
}
