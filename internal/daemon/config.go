// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package daemon is the composition root of `k8s-lxcfs serve`: it parses the
// command line into a Config, validates it, and runs the filesystem with its
// background samplers until the context ends.
package daemon

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/loadavg"
	"github.com/k8s-lxcfs/k8s-lxcfs/upgrade"
)

// Config is everything `serve` needs.
type Config struct {
	MountPoint      string
	ProcRoot        string
	SysRoot         string
	CgroupRoot      string
	CFS             bool
	Loadavg         bool
	LoadavgInterval time.Duration
	Swap            bool
	EntryTimeout    time.Duration
	CacheTTL        time.Duration
	Verbosity       int
	PidFile         string
	// HandoverSocket is where the serving daemon listens for a successor
	// (and for status queries); "" disables handover.
	HandoverSocket string
	// ExitAfterHandover ends the process once a successor serves. Off in a
	// pod: the kubelet would restart the container, and its daemon would
	// take the connection back.
	ExitAfterHandover bool
	// HostMountNS is a mount namespace file (e.g. /proc/1/ns/mnt) to mount
	// into, when the daemon runs in another one; "" mounts in our own.
	HostMountNS string
	// Heal repairs containers' broken lxcfs mounts every HealInterval.
	Heal         bool
	HealInterval time.Duration
	// Kubeconfig, NodeName and AllowDelete configure the last resort:
	// restarting pods through the API. Kubeconfig "" uses the in-cluster
	// config when there is one.
	Kubeconfig  string
	NodeName    string
	AllowDelete bool
	// HTTPAddress is where /metrics, /healthz and /readyz are served
	// (host:port; port 0 picks one and logs it); "" disables them.
	HTTPAddress string
}

// DefaultHTTPAddress is where serve answers metrics and probes by default.
const DefaultHTTPAddress = ":9742"

// ErrHelp is returned when --help was asked for; usage has been printed.
var ErrHelp = flag.ErrHelp

const serveUsage = `Usage: k8s-lxcfs serve [flags] MOUNTPOINT

Serves cgroup-aware copies of /proc/meminfo, cpuinfo, stat, uptime, loadavg,
diskstats, swaps, slabinfo, pressure/* and /sys/devices/system/cpu at
MOUNTPOINT (lxcfs's layout, e.g. /var/lib/lxcfs). Each reader sees the limits
and usage of the cgroup of the init of its pid namespace. Runs in the
foreground; SIGTERM or SIGINT unmounts and exits 0. A dead filesystem left at
MOUNTPOINT by a crashed server is detached first.

Upgrades break nothing: a serve started while another one serves the same
MOUNTPOINT (on the same -handover-socket) takes over its live FUSE connection;
the old one exits 0 without unmounting, and containers' bind mounts keep
working. In a pod, -host-mount-ns=/proc/1/ns/mnt mounts in the host's mount
namespace.

lxcfs command lines keep working: --enable-cfs, -l/--enable-loadavg,
-u/--disable-swap, -f, -s, -d, -p PIDFILE and -o OPTS are accepted.

Flags:
`

// ParseServe parses serve's arguments. It never exits; usage and errors go
// to stderr and come back as an error.
func ParseServe(args []string, stderr io.Writer) (Config, error) {
	cfg := Config{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, serveUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&cfg.CFS, "cfs", true, "Show ceil(CFS quota/period) CPUs when a container has a CPU quota, in cpuinfo, stat, online and the cpu directory alike, so thread pools size to the quota rather than to the node.")
	fs.BoolVar(&cfg.Loadavg, "loadavg", true, "Keep per-container load averages by sampling each reading container's tasks; off serves the host's /proc/loadavg.")
	fs.DurationVar(&cfg.LoadavgInterval, "loadavg-interval", 5*time.Second, "How often load averages are sampled (the kernel uses 5s); longer lowers sampling cost, coarser averages.")
	fs.BoolVar(&cfg.Swap, "swap", true, "Show the container's swap in meminfo and swaps; off reports no swap at all.")
	fs.StringVar(&cfg.ProcRoot, "proc-root", "/proc", "Where the host's /proc is mounted (the daemon must share the readers' pid namespace or an ancestor of it).")
	fs.StringVar(&cfg.SysRoot, "sys-root", "/sys", "Where the host's /sys is mounted, for the CPU directory.")
	fs.StringVar(&cfg.CgroupRoot, "cgroup-root", "/sys/fs/cgroup", "Where the host's cgroup filesystems are mounted (v1 controllers below it, or cgroup2 at it).")
	fs.DurationVar(&cfg.EntryTimeout, "entry-timeout", 10*time.Second, "How long the kernel may cache names and attributes that are the same for every reader; per-reader entries are never cached.")
	fs.DurationVar(&cfg.CacheTTL, "cache-ttl", 100*time.Millisecond, "How long a container's rendered file is reused for its next opens; bounds the cost of tight polling loops. 0 renders every open.")
	fs.IntVar(&cfg.Verbosity, "v", 0, "Log verbosity: 0 lifecycle, 2 state changes, 4 debug (every host fallback), 6 request tracing.")
	fs.StringVar(&cfg.PidFile, "pidfile", "", "Write the daemon's pid to this file while it serves.")
	fs.StringVar(&cfg.HandoverSocket, "handover-socket", upgrade.DefaultSocket, "Unix socket where the serving daemon hands its live FUSE connection to a successor started with the same socket, and answers `k8s-lxcfs status`; empty disables handover (a restart then breaks containers' mounts).")
	fs.BoolVar(&cfg.ExitAfterHandover, "exit-after-handover", true, "Exit 0 once a successor has taken the connection over. Set false in a DaemonSet pod: a container that exits is restarted by the kubelet, and the old daemon would take the connection back; it then idles until SIGTERM and exits 0 without unmounting.")
	fs.BoolVar(&cfg.Heal, "heal", true, "Repair containers whose lxcfs binds belong to a dead connection (after a crash) or to the directory beneath MOUNTPOINT (created while nothing served): in place, without their images' tools.")
	fs.DurationVar(&cfg.HealInterval, "heal-interval", 10*time.Second, "How often to look for broken binds (each look reads every process's mount table once per mount namespace).")
	fs.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "Kubeconfig for restarting pods whose mounts can't be repaired; empty uses the in-cluster config, if any. Without API access the daemon only logs and counts.")
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "This node's name (downward API: NODE_NAME); pods of other nodes are never touched.")
	fs.BoolVar(&cfg.AllowDelete, "heal-allow-delete", false, "When eviction is unavailable, delete pods that can't be repaired (eviction, which honours PodDisruptionBudgets, is always tried first).")
	fs.StringVar(&cfg.HTTPAddress, "http-address", DefaultHTTPAddress, "host:port for Prometheus /metrics and the /healthz and /readyz probes (ready once the filesystem is served, not after handing it to a successor); port 0 picks a free port and logs it; empty disables. A busy address is retried, not fatal: a predecessor on the same host frees it when it hands over.")
	fs.StringVar(&cfg.HostMountNS, "host-mount-ns", "", "Mount namespace to mount MOUNTPOINT in, e.g. /proc/1/ns/mnt for the host's when running in a pod (hostPID); empty uses the daemon's own. MOUNTPOINT is made a shared mount there so pods' HostToContainer volumes see each new mount.")

	// lxcfs's spellings, so an existing lxcfs command line keeps working.
	enable := func(dst *bool, v bool) func(string) error {
		return func(string) error { *dst = v; return nil }
	}
	fs.BoolFunc("enable-cfs", "lxcfs spelling of -cfs (on by default).", enable(&cfg.CFS, true))
	fs.BoolFunc("enable-loadavg", "lxcfs spelling of -loadavg (on by default).", enable(&cfg.Loadavg, true))
	fs.BoolFunc("l", "Same as --enable-loadavg.", enable(&cfg.Loadavg, true))
	fs.BoolFunc("disable-swap", "lxcfs spelling of -swap=false.", enable(&cfg.Swap, false))
	fs.BoolFunc("u", "Same as --disable-swap.", enable(&cfg.Swap, false))
	noop := func(string) error { return nil }
	fs.BoolFunc("f", "Ignored: k8s-lxcfs always runs in the foreground (lxcfs compatibility).", noop)
	fs.BoolFunc("s", "Ignored: requests are served by a bounded worker pool (lxcfs compatibility).", noop)
	fs.BoolFunc("d", "Same as -v=6 (lxcfs compatibility).", func(string) error { cfg.Verbosity = 6; return nil })
	fs.StringVar(&cfg.PidFile, "p", "", "Same as -pidfile (lxcfs compatibility).")
	fs.Func("o", "Ignored FUSE mount options (lxcfs compatibility); k8s-lxcfs always mounts allow_other, read-only.", noop)

	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch fs.NArg() {
	case 1:
		cfg.MountPoint = fs.Arg(0)
	case 0:
		fs.Usage()
		return cfg, errors.New("serve: MOUNTPOINT is required")
	default:
		return cfg, fmt.Errorf("serve: one MOUNTPOINT expected, got %q", fs.Args())
	}
	return cfg, cfg.Validate()
}

// Validate reports every problem with the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	for _, p := range []struct{ name, v string }{
		{"MOUNTPOINT", c.MountPoint}, {"-proc-root", c.ProcRoot}, {"-sys-root", c.SysRoot}, {"-cgroup-root", c.CgroupRoot},
	} {
		if p.v == "" || !filepath.IsAbs(p.v) {
			errs = append(errs, fmt.Errorf("%s must be an absolute path, got %q", p.name, p.v))
		}
	}
	if strings.ContainsAny(c.MountPoint, ",\n") {
		errs = append(errs, fmt.Errorf("MOUNTPOINT %q must not contain commas or newlines", c.MountPoint))
	}
	if c.LoadavgInterval < loadavg.MinInterval {
		errs = append(errs, fmt.Errorf("-loadavg-interval must be at least %s, got %s", loadavg.MinInterval, c.LoadavgInterval))
	}
	if c.CacheTTL < 0 || c.CacheTTL > 10*time.Second {
		errs = append(errs, fmt.Errorf("-cache-ttl must be between 0 and 10s, got %s", c.CacheTTL))
	}
	if c.HandoverSocket != "" && (!filepath.IsAbs(c.HandoverSocket) || len(c.HandoverSocket) > 107) {
		errs = append(errs, fmt.Errorf("-handover-socket must be an absolute path of at most 107 bytes, got %q", c.HandoverSocket))
	}
	if c.HostMountNS != "" && !filepath.IsAbs(c.HostMountNS) {
		errs = append(errs, fmt.Errorf("-host-mount-ns must be an absolute path, got %q", c.HostMountNS))
	}
	if c.Heal && c.HealInterval < time.Second {
		errs = append(errs, fmt.Errorf("-heal-interval must be at least 1s, got %s", c.HealInterval))
	}
	if c.HTTPAddress != "" {
		if _, port, err := net.SplitHostPort(c.HTTPAddress); err != nil {
			errs = append(errs, fmt.Errorf("-http-address must be host:port or :port, got %q: %w", c.HTTPAddress, err))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			errs = append(errs, fmt.Errorf("-http-address must have a numeric port (0 picks one), got %q", c.HTTPAddress))
		}
	}
	if c.EntryTimeout < 0 {
		errs = append(errs, fmt.Errorf("-entry-timeout must not be negative, got %s", c.EntryTimeout))
	}
	return errors.Join(errs...)
}
