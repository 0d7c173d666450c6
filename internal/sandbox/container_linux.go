// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
)

// ErrStopped is returned by [Container.Exec] once the container's init has
// exited.
var ErrStopped = errors.New("sandbox: container stopped")

// DefaultFiles returns the paths, relative to both the lxcfs root and /, that
// a container gets bound when [ContainerOptions.Files] is nil. Each is bound
// only if it exists in the lxcfs tree and on the host (PSI files, for one,
// exist only with CONFIG_PSI and are not served by lxcfs).
func DefaultFiles() []string {
	return []string{
		"proc/meminfo",
		"proc/cpuinfo",
		"proc/stat",
		"proc/uptime",
		"proc/loadavg",
		"proc/diskstats",
		"proc/swaps",
		"proc/slabinfo",
		"proc/pressure/cpu",
		"proc/pressure/memory",
		"proc/pressure/io",
		"sys/devices/system/cpu",
	}
}

// ContainerOptions configure [StartContainer].
type ContainerOptions struct {
	// Cgroup holds the container: its init and everything Exec runs. nil
	// leaves them in the caller's cgroups.
	Cgroup *Cgroup
	// LXCFSRoot is a mounted k8s-lxcfs (or lxcfs) tree, e.g. /var/lib/lxcfs,
	// with proc/... and sys/... below it. "" binds nothing: the container
	// sees the host's /proc files, which is the problem k8s-lxcfs fixes.
	LXCFSRoot string
	// Files are the paths to bind from LXCFSRoot over the same path below /,
	// e.g. "proc/meminfo". Each must exist on both sides; an empty, non-nil
	// list binds nothing. nil means [DefaultFiles], each bound only where it
	// exists; finding none of them is an error.
	Files []string
	// Propagation is the propagation of the container's mounts: "private"
	// (the default; nothing crosses in either direction) or "slave" (host
	// mounts and unmounts below shared host mounts reach the container, as
	// with Kubernetes' HostToContainer).
	Propagation string
	// ReadOnly remounts every bind read-only.
	ReadOnly bool
}

// bind is one bind mount done inside the container.
type bind struct {
	src, dst string
}

// Container is a "container": a long-lived init, pid 1 of a new pid
// namespace, in a new mount namespace with a fresh /proc and the lxcfs files
// bound over /proc/... and /sys/devices/system/cpu, inside a [Cgroup]. The
// init is /bin/sh waiting on a sleep, so it also reaps orphans.
//
// It is not isolated otherwise: same root filesystem, network, users, UTS
// and cgroup namespace as the host.
type Container struct {
	pid    int
	cgroup *Cgroup
	cmd    *exec.Cmd
	// stderr collects the init's stderr until it is ready (then it points
	// at /dev/null). Read it only after the init has been reaped.
	stderr bytes.Buffer

	reaped *proc.Reaped // the init, started on a locked thread and reaped

	stopOnce sync.Once
	stopErr  error
}

// initScript is the container's init. It waits for a line on stdin (sent once
// the parent has moved it into the cgroup, so nothing runs outside the
// limits), makes the cloned mounts private or slave before mounting anything
// (a new mount namespace starts with the host's shared peer groups: a mount
// here would otherwise appear on the host), mounts /proc for its own pid
// namespace, binds "$3 $4", "$5 $6" ..., reports "ready" on stdout and then
// waits forever. Waiting in sh, unlike exec'ing sleep, reaps orphans that
// Exec's nsenter leaves behind when it is killed.
const initScript = `set -eu
read -r _
case "$1" in
private) mount --make-rprivate / ;;
slave) mount --make-rslave / ;;
*) echo "unknown propagation $1" >&2; exit 2 ;;
esac
ro=$2
shift 2
mount -t proc -o nosuid,nodev,noexec proc /proc
while [ $# -ge 2 ]; do
	mount --bind "$1" "$2"
	if [ "$ro" = 1 ]; then mount -o remount,bind,ro "$2"; fi
	shift 2
done
echo ready
exec </dev/null >/dev/null 2>&1
while :; do
	sleep 2147483647 &
	wait || :
done
`

// StartContainer starts a container and returns once its binds are in place.
// ctx bounds the start only, not the container's life; call [Container.Stop].
//
// The init gets SIGKILL if the calling process dies (PR_SET_PDEATHSIG), and
// with it every process of its pid namespace.
func StartContainer(ctx context.Context, o ContainerOptions) (*Container, error) {
	prop := o.Propagation
	switch prop {
	case "":
		prop = "private"
	case "private", "slave":
	default:
		return nil, fmt.Errorf("start container: propagation %q: want private or slave", o.Propagation)
	}
	binds, err := planBinds(o.LXCFSRoot, o.Files, "/")
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	ro := "0"
	if o.ReadOnly {
		ro = "1"
	}
	args := []string{"-c", initScript, "k8s-lxcfs-sandbox-init", prop, ro}
	for _, b := range binds {
		args = append(args, b.src, b.dst)
	}

	gateR, gateW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start container: create pipe: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		_ = gateR.Close() // unused; close errors of pipes carry no data
		_ = gateW.Close()
		return nil, fmt.Errorf("start container: create pipe: %w", err)
	}
	c := &Container{cgroup: o.Cgroup}
	c.cmd = exec.Command("/bin/sh", args...)
	c.cmd.Dir = "/" // the cwd Exec's nsenter --wd takes over
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = gateR, readyW, &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS,
		Setpgid:    true, // keep terminal signals (^C) away from it
		Pdeathsig:  unix.SIGKILL,
	}
	c.reaped, err = proc.StartLocked(c.cmd)
	_ = gateR.Close() // the child holds its own copies now
	_ = readyW.Close()
	if err != nil {
		_ = gateW.Close()
		_ = readyR.Close()
		return nil, fmt.Errorf("start container: %w", err)
	}
	c.pid = c.cmd.Process.Pid

	fail := func(err error) (*Container, error) {
		_ = gateW.Close()
		_ = readyR.Close()
		_ = c.cmd.Process.Kill() // ErrProcessDone if it already failed on its own
		<-c.reaped.Done()
		return nil, fmt.Errorf("start container: %w%s", err, stderrNote(c.stderr.String()))
	}
	if o.Cgroup != nil {
		if err := o.Cgroup.AddProc(c.pid); err != nil {
			return fail(err)
		}
	}
	if _, err := gateW.WriteString("go\n"); err != nil {
		return fail(fmt.Errorf("release init %d: %w", c.pid, err))
	}
	_ = gateW.Close() // read-only from here on; nothing to flush

	readyc := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(readyR).ReadString('\n')
		switch {
		case line == "ready\n":
			readyc <- nil
		case err != nil:
			readyc <- fmt.Errorf("init %d exited before it was ready", c.pid)
		default:
			readyc <- fmt.Errorf("init %d: unexpected output %q", c.pid, line)
		}
	}()
	select {
	case err := <-readyc:
		if err != nil {
			return fail(err)
		}
	case <-ctx.Done():
		return fail(fmt.Errorf("wait for init %d: %w", c.pid, ctx.Err()))
	}
	_ = readyR.Close() // done with the readiness line
	return c, nil
}

// Pid returns the host pid of the container's init (pid 1 inside).
func (c *Container) Pid() int {
	return c.pid
}

// Cgroup returns the cgroup the container runs in, or nil.
func (c *Container) Cgroup() *Cgroup {
	return c.cgroup
}

// execScript joins the cgroup ($1 cgroup.procs files follow $1) and then runs
// the command after the target pid in the container's pid and mount
// namespaces. nsenter --pid forks (only children enter a pid namespace), and
// the child inherits the cgroup joined here. --root and --wd take the init's
// root and cwd, so paths resolve in the container's mount namespace.
const execScript = `set -eu
n=$1
shift
while [ "$n" -gt 0 ]; do
	echo $$ >"$1"
	shift
	n=$((n - 1))
done
pid=$1
shift
exec nsenter --target "$pid" --pid --mount --root --wd -- "$@"
`

// Exec runs argv in the container: in its pid and mount namespaces (so /proc
// is the container's, with the lxcfs binds) and in its cgroup. It returns
// stdout and stderr; err is non-nil if argv could not run or exited non-zero.
// ctx bounds it: when ctx is done, argv and the nsenter around it are killed
// (SIGKILL to their process group). stdin is /dev/null.
//
// Joining the cgroup: a wrapper /bin/sh writes its own pid into cgroup.procs
// of every hierarchy of the container's cgroup, then execs nsenter(1), which
// forks the process that enters the pid namespace and execs argv. So argv
// never runs outside the cgroup, and nsenter (outside the pid namespace)
// also counts in [Cgroup.Procs] while argv runs.
func (c *Container) Exec(ctx context.Context, argv ...string) (stdout, stderr string, err error) {
	if len(argv) == 0 {
		return "", "", errors.New("sandbox: exec needs a command")
	}
	select {
	case <-c.reaped.Done():
		return "", "", fmt.Errorf("exec %q in container %d: %w", argv, c.pid, ErrStopped)
	default:
	}
	var procs []string
	if c.cgroup != nil {
		procs = c.cgroup.procsFiles()
	}
	args := []string{"-c", execScript, "k8s-lxcfs-sandbox-exec", strconv.Itoa(len(procs))}
	args = append(args, procs...)
	args = append(args, strconv.Itoa(c.pid))
	args = append(args, argv...)

	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, "/bin/sh", args...)
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	// Own process group, so that cancelling kills nsenter's child too: it
	// runs in the container, beyond the reach of a plain kill of nsenter.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if err := unix.Kill(-cmd.Process.Pid, unix.SIGKILL); errors.Is(err, unix.ESRCH) {
			return os.ErrProcessDone
		} else if err != nil {
			return fmt.Errorf("kill process group %d: %w", cmd.Process.Pid, err)
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second // something in the container may hold our pipes
	err = cmd.Run()
	stdout, stderr = outBuf.String(), errBuf.String()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = fmt.Errorf("%w: %w", ctxErr, err)
		}
		return stdout, stderr, fmt.Errorf("exec %q in container %d: %w%s", argv, c.pid, err, stderrNote(stderr))
	}
	return stdout, stderr, nil
}

// Stop SIGKILLs the init and waits until it has been reaped. The kernel kills
// every other process of the pid namespace with it, and the mount namespace
// with its binds goes away with the last of them. It does not remove the
// cgroup. It returns an error if the init had exited before Stop (the
// container broke); later calls return the same result.
func (c *Container) Stop() error {
	c.stopOnce.Do(func() {
		select {
		case <-c.reaped.Done():
			c.stopErr = fmt.Errorf("stop container %d: init exited early: %v%s", c.pid, c.reaped.Err(), stderrNote(c.stderr.String()))
			return
		default:
		}
		// Kill signals through a pidfd: it cannot hit a recycled pid.
		if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			c.stopErr = fmt.Errorf("stop container %d: %w", c.pid, err)
			return
		}
		<-c.reaped.Done()
	})
	return c.stopErr
}

// stderrNote formats captured stderr for an error message.
func stderrNote(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	const maxLen = 1024
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return fmt.Sprintf(" (stderr: %q)", s)
}

// planBinds resolves the binds for lxcfsRoot and files, checking targets
// below hostRoot ("/" except in tests). See [ContainerOptions.Files].
func planBinds(lxcfsRoot string, files []string, hostRoot string) ([]bind, error) {
	if lxcfsRoot == "" {
		if len(files) > 0 {
			return nil, fmt.Errorf("files %q given without an lxcfs root", files)
		}
		return nil, nil
	}
	root, err := filepath.Abs(lxcfsRoot)
	if err != nil {
		return nil, fmt.Errorf("lxcfs root %s: %w", lxcfsRoot, err)
	}
	explicit := files != nil
	if !explicit {
		files = DefaultFiles()
	}
	var binds []bind
	var errs []error
	for _, rel := range files {
		if !filepath.IsLocal(rel) || filepath.Clean(rel) != rel {
			errs = append(errs, fmt.Errorf("file %q: want a clean path relative to the lxcfs root and /", rel))
			continue
		}
		src, dst := filepath.Join(root, rel), filepath.Join("/", rel)
		si, serr := os.Stat(src)
		di, derr := os.Stat(filepath.Join(hostRoot, rel))
		switch {
		case serr != nil || derr != nil:
			if explicit {
				errs = append(errs, fmt.Errorf("bind %s on %s: %w", src, dst, errors.Join(serr, derr)))
			}
		case si.IsDir() != di.IsDir():
			errs = append(errs, fmt.Errorf("bind %s on %s: one is a directory, the other is not", src, dst))
		default:
			binds = append(binds, bind{src: src, dst: dst})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(binds) == 0 && !explicit {
		return nil, fmt.Errorf("none of %s found below lxcfs root %s", strings.Join(files, ", "), root)
	}
	return binds, nil
}
