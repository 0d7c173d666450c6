// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
	"github.com/k8s-lxcfs/k8s-lxcfs/upgrade"
)

// DefaultMountPoint is where lxcfs and k8s-lxcfs are mounted by convention.
const DefaultMountPoint = "/var/lib/lxcfs"

const statusUsage = `Usage: k8s-lxcfs status [flags] [MOUNTPOINT]

Shows whether the filesystem at MOUNTPOINT (default ` + DefaultMountPoint + `) is
live, stale (its server died: "Transport endpoint is not connected") or
absent; which daemon serves it (pid, version, since when, how many handovers
the connection has been through), asked over the handover socket; and how
many containers (mount namespaces) bind its files, live or stale. Exit status:
0 live, 3 stale or absent, 1 when the state could not be found out.

Flags:
`

// statusConfig is the status command line.
type statusConfig struct {
	mountPoint, socket, hostMountNS, procRoot, output string
}

func parseStatus(args []string, stderr io.Writer) (statusConfig, error) {
	var c statusConfig
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), statusUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.socket, "handover-socket", upgrade.DefaultSocket, "The serving daemon's handover socket, asked for its pid and version.")
	fs.StringVar(&c.hostMountNS, "host-mount-ns", "", "Mount namespace MOUNTPOINT lives in (e.g. /proc/1/ns/mnt from a pod); empty: our own.")
	fs.StringVar(&c.procRoot, "proc-root", "/proc", "The host's /proc, scanned for containers binding the filesystem.")
	fs.StringVar(&c.output, "o", "text", "Output format: text or json.")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.mountPoint = DefaultMountPoint
	switch fs.NArg() {
	case 0:
	case 1:
		c.mountPoint = fs.Arg(0)
	default:
		return c, fmt.Errorf("status: at most one MOUNTPOINT, got %q", fs.Args())
	}
	if !filepath.IsAbs(c.mountPoint) {
		return c, fmt.Errorf("status: MOUNTPOINT must be an absolute path, got %q", c.mountPoint)
	}
	if c.output != "text" && c.output != "json" {
		return c, fmt.Errorf("status: -o must be text or json, got %q", c.output)
	}
	return c, nil
}

// status runs the status command.
func status(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := parseStatus(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "k8s-lxcfs:", err)
		return 2
	}
	st, err := collectStatus(ctx, c)
	if err != nil {
		fmt.Fprintln(stderr, "k8s-lxcfs: status:", err)
		return 1
	}
	if c.output == "json" {
		b, _ := json.MarshalIndent(st, "", "  ") // plain data always encodes
		fmt.Fprintln(stdout, string(b))
	} else {
		printStatus(stdout, st)
	}
	if st.State != mountmgr.Live.String() {
		return 3
	}
	return 0
}

// collectStatus finds out what it can; what it can't goes to Errors. It
// fails only when the mount's state itself is unknown.
func collectStatus(ctx context.Context, c statusConfig) (Status, error) {
	st := Status{MountPoint: c.mountPoint, Socket: c.socket}
	ns, err := inNamespace(c.hostMountNS)
	if err != nil {
		return st, err
	}
	var state mountmgr.State
	var dev mountmgr.Device
	err = ns.Do(func() error {
		var err error
		if state, err = mountmgr.Probe(c.mountPoint); err != nil || state != mountmgr.Live {
			return err
		}
		dev, err = mountmgr.DeviceOf(c.mountPoint)
		return err
	})
	if err != nil {
		return st, err
	}
	st.State = state.String()
	if state == mountmgr.Live {
		st.Device = dev.String()
		cen, err := mountmgr.Census(c.procRoot, c.mountPoint, dev)
		if err != nil {
			st.Errors = append(st.Errors, "census: "+err.Error())
		} else {
			st.Containers, st.StaleContainers = cen.LiveBinds, cen.StaleBinds
		}
	}
	if c.socket != "" {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		var ds Status
		switch err := upgrade.Query(qctx, c.socket, &ds); {
		case err == nil && ds.MountPoint == c.mountPoint:
			st.Pid, st.Version, st.ServingSince, st.Generation = ds.Pid, ds.Version, ds.ServingSince, ds.Generation
			st.Goroutines, st.Fds, st.Handles, st.Opens = ds.Goroutines, ds.Fds, ds.Handles, ds.Opens
			st.Healed, st.HealFailed, st.Restarted = ds.Healed, ds.HealFailed, ds.Restarted
		case err == nil:
			st.Errors = append(st.Errors, fmt.Sprintf("the daemon on %s (pid %d) serves %s", c.socket, ds.Pid, ds.MountPoint))
		case errors.Is(err, upgrade.ErrNoPredecessor) && state != mountmgr.Live:
			// Nothing serves: nothing to ask.
		default:
			st.Errors = append(st.Errors, "ask the daemon: "+err.Error())
		}
	}
	return st, nil
}

func printStatus(w io.Writer, st Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Mount point:\t%s\n", st.MountPoint)
	fmt.Fprintf(tw, "State:\t%s\n", st.State)
	if st.Device != "" {
		fmt.Fprintf(tw, "Device:\t%s\n", st.Device)
	}
	if st.Pid != 0 {
		fmt.Fprintf(tw, "Served by:\tpid %d, version %s, since %s\n", st.Pid, st.Version, st.ServingSince.Format(time.RFC3339))
		fmt.Fprintf(tw, "Handovers:\t%d (of this connection, before this daemon)\n", st.Generation)
		fmt.Fprintf(tw, "Open files:\t%d (%d opens served)\n", st.Handles, st.Opens)
		fmt.Fprintf(tw, "Daemon:\t%d goroutines, %d file descriptors\n", st.Goroutines, st.Fds)
		fmt.Fprintf(tw, "Self-healing:\t%d mounts repaired, %d repairs failed, %d pods restarted\n", st.Healed, st.HealFailed, st.Restarted)
	}
	if st.State == mountmgr.Live.String() {
		fmt.Fprintf(tw, "Containers:\t%d binding it, %d binding a dead connection\n", st.Containers, st.StaleContainers)
	}
	if st.Socket != "" {
		fmt.Fprintf(tw, "Handover socket:\t%s\n", st.Socket)
	}
	tw.Flush() //nolint:errcheck // best effort to a terminal
	for _, e := range st.Errors {
		fmt.Fprintf(w, "warning: %s\n", strings.TrimSpace(e))
	}
}
