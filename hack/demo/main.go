// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Command demo shows k8s-lxcfs at work: it mounts the filesystem on a
// temporary directory, starts a sandbox "container" (new pid and mount
// namespaces, a cgroup of 256 MiB and 1.5 CPUs) with the files bind-mounted
// over /proc, and prints what free, uptime, getconf and top say inside and
// outside. Everything it creates is removed on the way out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/proc"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
)

func main() {
	bin := flag.String("bin", "bin/k8s-lxcfs", "k8s-lxcfs binary to demonstrate")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("run as root: mounting FUSE, creating cgroups and namespaces need it")
	}
	dir, err := os.MkdirTemp("", "k8s-lxcfs-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mp := filepath.Join(dir, "lxcfs")

	daemon := exec.Command(bin, "serve", "-handover-socket="+mp+".sock", mp)
	logf, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return err
	}
	daemon.Stdout, daemon.Stderr = logf, logf
	daemon.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	reaped, err := proc.StartLocked(daemon)
	if err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	defer func() {
		_ = daemon.Process.Signal(syscall.SIGTERM)
		<-reaped.Done()
		if werr := reaped.Err(); werr != nil && err == nil {
			err = fmt.Errorf("daemon exit: %w", werr)
		}
	}()
	if err := waitLive(ctx, mp); err != nil {
		log, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("%w\ndaemon log:\n%s", err, log)
	}
	fmt.Printf("k8s-lxcfs is serving at %s (mount type fuse.lxcfs)\n", mp)

	cg, err := sandbox.NewCgroup(fmt.Sprintf("demo-%d", os.Getpid()), sandbox.Limits{
		MemoryBytes: 256 << 20, CPUQuotaUS: 150000, CPUPeriodUS: 100000,
	})
	if err != nil {
		return err
	}
	defer func() {
		if rerr := cg.Remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	c, err := sandbox.StartContainer(ctx, sandbox.ContainerOptions{Cgroup: cg, LXCFSRoot: mp})
	if err != nil {
		return err
	}
	defer func() {
		if serr := c.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	fmt.Printf("sandbox container: pid %d on the host, cgroup %s (memory 256 MiB, cpu quota 1.5 CPUs),\n"+
		"new pid+mount namespaces, %s/proc/* bound over /proc/*\n\n", c.Pid(), cg.RelPath(), mp)

	shows := []struct {
		title string
		argv  []string
	}{
		{"free -m", []string{"free", "-m"}},
		{"uptime", []string{"uptime"}},
		{"CPUs (getconf _NPROCESSORS_ONLN)", []string{"getconf", "_NPROCESSORS_ONLN"}},
		{"top -bn1 | head -5", []string{"sh", "-c", "top -bn1 | head -5"}},
	}
	for _, s := range shows {
		out, err := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...).Output()
		if err != nil {
			return fmt.Errorf("%s on the host: %w", s.title, err)
		}
		in, stderr, err := c.Exec(ctx, s.argv...)
		if err != nil {
			return fmt.Errorf("%s in the container: %w: %s", s.title, err, stderr)
		}
		fmt.Printf("== %s\n-- outside (host):\n%s-- inside (container):\n%s\n", s.title, indent(string(out)), indent(in))
	}
	if n, _ := os.ReadFile("/sys/devices/system/cpu/online"); strings.TrimSpace(string(n)) == "0-1" {
		fmt.Println("(This host has 2 CPUs, and ceil(1.5) = 2, so the CPU counts match; on bigger nodes the container sees 2.)")
	}
	return nil
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("   " + l + "\n")
	}
	return b.String()
}

func waitLive(ctx context.Context, mp string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := mountmgr.Probe(mp); err == nil && st == mountmgr.Live {
			if _, err := os.ReadFile(filepath.Join(mp, "proc/meminfo")); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("k8s-lxcfs did not mount %s within 15s", mp)
}
