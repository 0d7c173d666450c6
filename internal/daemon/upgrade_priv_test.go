// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package daemon_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
	"github.com/k8s-lxcfs/k8s-lxcfs/upgrade"
)

// devOf returns the device (major:minor) of what is mounted at mp.
func devOf(t *testing.T, mp string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(mp, &st); err != nil {
		t.Fatalf("stat %s: %v", mp, err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
}

// readMeminfo reads proc/meminfo below mp and fails the test on error.
func readMeminfo(t *testing.T, mp string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(mp, "proc/meminfo"))
	if err != nil || !strings.HasPrefix(string(b), "MemTotal:") {
		t.Fatalf("read %s/proc/meminfo: %q, %v", mp, firstLine(string(b)), err)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestPrivHandoverKill kills one side with SIGKILL at each step of a
// handover and checks that what is left serves, or that the next serve
// recovers: the mount live, or the stale one cleaned and mounted anew.
func TestPrivHandoverKill(t *testing.T) {
	testenv.RequirePrivileged(t)
	cases := []struct {
		name string
		step string // where the paused side waits
		kill string // "predecessor" or "successor"
		// wantSameConn: the surviving daemon serves the original connection,
		// so a file opened before keeps reading.
		wantSameConn bool
		// wantRestart: nobody serves afterwards; a third serve recovers.
		wantRestart bool
	}{
		{name: "predecessor after quiescing", step: "stopped", kill: "predecessor"},
		{name: "successor before adopting", step: "received", kill: "successor", wantSameConn: true},
		{name: "predecessor before release", step: "adopted", kill: "predecessor", wantSameConn: true},
		{name: "successor before release", step: "adopted", kill: "successor", wantRestart: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := testenv.MountDir(t)
			pauseEnv := []string{upgrade.PauseEnv + "=" + tc.step + "=3s"}
			var predOpts, succOpts testenv.DaemonOptions
			if tc.step == "received" {
				succOpts.Env = pauseEnv
			} else {
				predOpts.Env = pauseEnv
			}
			pred := testenv.StartDaemonWith(t, predOpts, mp)
			dev := devOf(t, mp)
			held, err := os.Open(filepath.Join(mp, "proc/uptime"))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()

			succOpts.NoWait = true
			succ := testenv.StartDaemonWith(t, succOpts, mp)
			paused := pred
			if tc.step == "received" {
				paused = succ
			}
			if err := paused.WaitLog("test pause at handover step "+tc.step, 10*time.Second); err != nil {
				t.Fatalf("%v\npredecessor:\n%s\nsuccessor:\n%s", err, pred.Log(), succ.Log())
			}
			victim, survivor := pred, succ
			if tc.kill == "successor" {
				victim, survivor = succ, pred
			}
			victim.Kill()

			if tc.wantRestart {
				// The survivor exits (it released the connection) and nobody
				// serves: the mount is stale until the next serve.
				select {
				case <-survivor.Done():
				case <-time.After(10 * time.Second):
					t.Fatalf("survivor still running after the other side died past release:\n%s", survivor.Log())
				}
				if _, err := os.ReadFile(filepath.Join(mp, "proc/meminfo")); !errors.Is(err, unix.ENOTCONN) {
					t.Fatalf("read with no server: %v, want ENOTCONN", err)
				}
				next := testenv.StartDaemon(t, mp)
				if !strings.Contains(next.Log(), "Detached stale FUSE mounts") {
					t.Errorf("recovering serve did not detach the stale mount:\n%s", next.Log())
				}
				readMeminfo(t, mp)
				if n := fuseMounts(t, mp); n != 1 {
					t.Errorf("%d FUSE mounts at %s, want 1", n, mp)
				}
				return
			}

			// The survivor serves, now or once it gave up on the other side.
			err = testenv.Eventually(t.Context(), 15*time.Second, func() error {
				b, err := os.ReadFile(filepath.Join(mp, "proc/meminfo"))
				if err != nil {
					return err
				}
				if !strings.HasPrefix(string(b), "MemTotal:") {
					return fmt.Errorf("unexpected content %q", firstLine(string(b)))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("nobody serves after the %s died: %v\npredecessor:\n%s\nsuccessor:\n%s", tc.kill, err, pred.Log(), succ.Log())
			}
			select {
			case <-survivor.Done():
				t.Fatalf("survivor exited (%v):\n%s", survivor.ExitErr(), survivor.Log())
			default:
			}
			if n := fuseMounts(t, mp); n != 1 {
				t.Errorf("%d FUSE mounts at %s, want 1", n, mp)
			}
			buf := make([]byte, 256)
			_, rerr := held.ReadAt(buf, 0)
			if tc.wantSameConn {
				if got := devOf(t, mp); got != dev {
					t.Errorf("device %s after the kill, want the original %s", got, dev)
				}
				if rerr != nil && !errors.Is(rerr, io.EOF) {
					t.Errorf("file opened before the handover: %v", rerr)
				}
			} else if !strings.Contains(survivor.Log(), "Detached stale FUSE mounts") {
				t.Errorf("successor did not clean the dead predecessor's mount:\n%s", survivor.Log())
			}
			// And the survivor still hands over.
			next := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true}, mp)
			if err := next.WaitLog("Adopted FUSE connection", 10*time.Second); err != nil {
				t.Fatalf("handover after recovery: %v\nsurvivor:\n%s\nnext:\n%s", err, survivor.Log(), next.Log())
			}
			select {
			case <-survivor.Done():
				if err := survivor.ExitErr(); err != nil {
					t.Errorf("survivor exited with %v after handing over", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("survivor still running 5s after handing over")
			}
			readMeminfo(t, mp)
		})
	}
}

// TestPrivHandoverRefusals: a successor that cannot take over exits with a
// clear error before anything stops, and the predecessor serves on.
func TestPrivHandoverRefusals(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	pred := testenv.StartDaemon(t, mp)
	other := testenv.MountDir(t)
	// Same socket, another mount point.
	bad := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true}, other, "-handover-socket="+mp+".sock")
	select {
	case <-bad.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("successor for another mount point did not give up")
	}
	var ee *exec.ExitError
	if err := bad.ExitErr(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit status %v, want 1", err)
	}
	if !strings.Contains(bad.Log(), "serves "+mp+", not "+other) {
		t.Errorf("error does not say why:\n%s", bad.Log())
	}
	readMeminfo(t, mp)
	if strings.Contains(pred.Log(), "Resumed serving") {
		t.Errorf("predecessor stopped serving for a refused successor:\n%s", pred.Log())
	}
}

// startNS starts argv (util-linux unshare/nsenter: test tooling only) as a
// long-lived process holding a namespace, and returns its pid.
func startNS(t *testing.T, argv ...string) int {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", argv, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The command prints "ready" once its namespace is set up.
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("%q: %q, %v", argv, line, err)
	}
	return cmd.Process.Pid
}

// mountTypeIn returns the type of the topmost mount at mp in pid's mount
// namespace, "" if none.
func mountTypeIn(t *testing.T, pid int, mp string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	typ := ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 10 || f[4] != mp {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				typ = f[i+1]
			}
		}
	}
	return typ
}

// nsRead reads path in pid's mount namespace.
func nsRead(t *testing.T, pid int, path string) (string, error) {
	t.Helper()
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-m", "cat", path).CombinedOutput()
	return string(out), err
}

// TestPrivHostMountNS runs serve in one mount namespace and mounts into
// another that stands in for the host's (shared propagation, like a
// systemd host): a "pod" namespace made from the host's before the mount,
// with slave propagation (HostToContainer), sees the mount; the test's own
// namespace does not. A handover between two daemons in our namespace keeps
// the pod's view, and SIGTERM unmounts in the host namespace.
func TestPrivHostMountNS(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	host := startNS(t, "unshare", "--mount", "--propagation", "shared", "sh", "-c", "echo ready; exec sleep 600")
	pod := startNS(t, "nsenter", "-t", strconv.Itoa(host), "-m", "unshare", "--mount", "--propagation", "slave",
		"sh", "-c", "echo ready; exec sleep 600")
	hostNS := fmt.Sprintf("/proc/%d/ns/mnt", host)

	d := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true}, mp, "-host-mount-ns="+hostNS)
	if err := d.WaitLog("Mounted FUSE filesystem", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	if typ := mountTypeIn(t, host, mp); typ != "fuse.lxcfs" {
		t.Fatalf("host namespace: top mount at %s is %q, want fuse.lxcfs\n%s", mp, typ, d.Log())
	}
	if typ := mountTypeIn(t, os.Getpid(), mp); typ == "fuse.lxcfs" {
		t.Errorf("the daemon's own namespace got the mount too")
	}
	if typ := mountTypeIn(t, pod, mp); typ != "fuse.lxcfs" {
		t.Fatalf("pod namespace (slave of the host's): top mount at %s is %q, want fuse.lxcfs", mp, typ)
	}
	if out, err := nsRead(t, pod, mp+"/proc/meminfo"); err != nil || !strings.HasPrefix(out, "MemTotal:") {
		t.Fatalf("read in the pod namespace: %q, %v", firstLine(out), err)
	}

	// status looks in the host namespace too.
	out, err := exec.Command(testenv.Binary(t), "status", "-o", "json", "-host-mount-ns="+hostNS,
		"-handover-socket="+mp+".sock", mp).Output()
	var st struct {
		State string `json:"state"`
		Pid   int    `json:"pid"`
	}
	if jerr := json.Unmarshal(out, &st); err != nil || jerr != nil || st.State != "live" || st.Pid != d.Cmd.Process.Pid {
		t.Errorf("status: %s (%v, %v), want live, pid %d", out, err, jerr, d.Cmd.Process.Pid)
	}

	// A handover while mounted in the host namespace.
	next := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true}, mp, "-host-mount-ns="+hostNS)
	if err := next.WaitLog("Adopted FUSE connection", 10*time.Second); err != nil {
		t.Fatalf("%v\npredecessor:\n%s\nsuccessor:\n%s", err, d.Log(), next.Log())
	}
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("predecessor did not exit after handing over")
	}
	if out, err := nsRead(t, pod, mp+"/proc/meminfo"); err != nil || !strings.HasPrefix(out, "MemTotal:") {
		t.Fatalf("read in the pod namespace after the handover: %q, %v", firstLine(out), err)
	}
	if err := next.Stop(t); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	if typ := mountTypeIn(t, host, mp); typ == "fuse.lxcfs" {
		t.Errorf("host namespace still has the FUSE mount after SIGTERM")
	}
	if typ := mountTypeIn(t, pod, mp); typ == "fuse.lxcfs" {
		t.Errorf("pod namespace still has the FUSE mount after SIGTERM (unmount did not propagate)")
	}
}

// TestPrivBidirectional is the other deployment mode: the daemon runs in a
// pod's mount namespace whose mount point is a shared peer of the host's
// (a hostPath volume with mountPropagation: Bidirectional), mounts there,
// and the host namespace sees the mount.
func TestPrivBidirectional(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	// The host makes the directory a shared mount; the pod namespace is
	// copied from it after, so its copy is in the same peer group.
	host := startNS(t, "unshare", "--mount", "--propagation", "shared", "sh", "-c",
		"mount --bind "+mp+" "+mp+" && mount --make-shared "+mp+" && echo ready && exec sleep 600")
	pod := startNS(t, "nsenter", "-t", strconv.Itoa(host), "-m", "unshare", "--mount", "--propagation", "unchanged",
		"sh", "-c", "echo ready; exec sleep 600")

	d := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true,
		Prefix: []string{"nsenter", "-t", strconv.Itoa(pod), "-m"}}, mp)
	if err := d.WaitLog("Mounted FUSE filesystem", 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	if typ := mountTypeIn(t, pod, mp); typ != "fuse.lxcfs" {
		t.Fatalf("pod namespace: top mount at %s is %q, want fuse.lxcfs", mp, typ)
	}
	if typ := mountTypeIn(t, host, mp); typ != "fuse.lxcfs" {
		t.Fatalf("host namespace: top mount at %s is %q, want fuse.lxcfs (propagated from the pod)", mp, typ)
	}
	if out, err := nsRead(t, host, mp+"/proc/meminfo"); err != nil || !strings.HasPrefix(out, "MemTotal:") {
		t.Fatalf("read in the host namespace: %q, %v", firstLine(out), err)
	}
	if err := d.Stop(t); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	if typ := mountTypeIn(t, host, mp); typ == "fuse.lxcfs" {
		t.Errorf("host namespace still has the FUSE mount after SIGTERM")
	}
}

// TestPrivCleansRuntimeDirs: while no daemon served, a container runtime
// created missing bind sources as empty directories ("not a directory" for
// every later bind of the file). serve removes them before mounting, and
// leaves anything else alone.
func TestPrivCleansRuntimeDirs(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	for _, d := range []string{"proc/meminfo", "proc/cpuinfo", "sys/devices/system/cpu/online", "proc/keep/me"} {
		if err := os.MkdirAll(filepath.Join(mp, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := testenv.StartDaemon(t, mp)
	if !strings.Contains(d.Log(), "Removed directories a container runtime created") {
		t.Errorf("no report of the removed directories:\n%s", d.Log())
	}
	readMeminfo(t, mp)
	if err := d.Stop(t); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	for _, gone := range []string{"proc/meminfo", "proc/cpuinfo", "sys"} {
		if _, err := os.Lstat(filepath.Join(mp, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists under the mount point: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(mp, "proc/keep/me")); err != nil {
		t.Errorf("a directory that is not one of our files was removed: %v", err)
	}
}

// TestPrivIdleAfterHandover: with -exit-after-handover=false (the
// DaemonSet's setting) the predecessor stays up after handing over, so the
// kubelet has nothing to restart, and on SIGTERM exits 0 without
// unmounting: the successor keeps serving.
func TestPrivIdleAfterHandover(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	pred := testenv.StartDaemon(t, mp, "-exit-after-handover=false")
	succ := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true}, mp, "-exit-after-handover=false")
	if err := succ.WaitLog("Adopted FUSE connection", 10*time.Second); err != nil {
		t.Fatalf("%v\npredecessor:\n%s\nsuccessor:\n%s", err, pred.Log(), succ.Log())
	}
	if err := pred.WaitLog("idling until stopped", 5*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, pred.Log())
	}
	time.Sleep(500 * time.Millisecond)
	select {
	case <-pred.Done():
		t.Fatalf("predecessor exited after the handover (%v); in a pod the kubelet would restart it", pred.ExitErr())
	default:
	}
	readMeminfo(t, mp)
	if err := pred.Stop(t); err != nil {
		t.Errorf("predecessor on SIGTERM: %v, want exit 0", err)
	}
	readMeminfo(t, mp) // still served by the successor: nothing was unmounted
	if n := fuseMounts(t, mp); n != 1 {
		t.Errorf("%d FUSE mounts, want 1", n)
	}
}
