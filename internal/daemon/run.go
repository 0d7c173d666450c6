// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/kubernetes"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	lxfs "github.com/k8s-lxcfs/k8s-lxcfs/fs"
	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/metrics"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/version"
	"github.com/k8s-lxcfs/k8s-lxcfs/loadavg"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr/mountns"
	"github.com/k8s-lxcfs/k8s-lxcfs/upgrade"
)

// errHandedOver stops the errgroup once a successor serves.
var errHandedOver = errors.New("handed over to a successor")

// daemon is one serving process: the filesystem, its connection and the
// state a successor takes over.
type daemon struct {
	cfg     Config
	log     logr.Logger
	res     *cgview.Resolver
	sampler *loadavg.Sampler
	fsys    *lxfs.FS
	ns      lxfs.InNS
	srv     *lxfs.Server
	since   time.Time
	// generation counts the processes that served this connection before
	// us (0: we mounted it).
	generation int
	adoptedAt  atomic.Int64 // unix nanos; 0 when we mounted
	healer     *heal.Healer
	// metrics is nil when -http-address is empty; health is always set.
	metrics *metrics.Metrics
	health  *metrics.Health
	events  *selfEvents // nil: no API access or own pod unknown

	kubeOnce   sync.Once
	kubeClient kubernetes.Interface
}

// client returns a Kubernetes client, or nil without API access (neither
// in a pod nor given -kubeconfig) or when one can't be built.
func (d *daemon) client() kubernetes.Interface {
	d.kubeOnce.Do(func() {
		if d.cfg.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return
		}
		c, err := heal.NewClient(d.cfg.Kubeconfig)
		if err != nil {
			d.log.Error(err, "Could not build a Kubernetes client: pods whose mounts can't be repaired are only logged, and no Events are recorded")
			return
		}
		d.kubeClient = c
	})
	return d.kubeClient
}

// handover counts a handover in the metrics, if any.
func (d *daemon) handover(role, result string) {
	if d.metrics != nil {
		d.metrics.Handover(role, result)
	}
}

// restarter returns the Kubernetes last resort of healing, or nil (only
// log and count) without API access.
func (d *daemon) restarter() heal.Restarter {
	if d.cfg.Kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		d.log.V(2).Info("No Kubernetes API: pods whose mounts can't be repaired are only logged")
		return nil
	}
	if d.cfg.NodeName == "" {
		d.log.Info("No node name (-node-name or NODE_NAME): pods whose mounts can't be repaired are only logged")
		return nil
	}
	client := d.client()
	if client == nil {
		return nil
	}
	return heal.NewKube(client, heal.KubeOptions{NodeName: d.cfg.NodeName, AllowDelete: d.cfg.AllowDelete,
		Log: d.log.WithName("kube")})
}

// handoverState is what a predecessor sends besides the descriptors.
type handoverState struct {
	FS         lxfs.State         `json:"fs"`
	Memos      []cgview.SavedMemo `json:"memos"`
	Loadavg    []loadavg.Saved    `json:"loadavg,omitempty"`
	Generation int                `json:"generation"`
}

// Run serves the filesystem until ctx ends, then unmounts; or until a
// successor takes the connection over, then it returns without unmounting.
// It returns nil on a clean stop.
func Run(ctx context.Context, cfg Config) error {
	log := logr.FromContextOrDiscard(ctx)
	res, err := cgview.New(cgview.Options{ProcRoot: cfg.ProcRoot, CgroupRoot: cfg.CgroupRoot})
	if err != nil {
		return err
	}
	d := &daemon{cfg: cfg, log: log, res: res, since: time.Now(), health: &metrics.Health{}}
	if cfg.Loadavg {
		d.sampler = loadavg.New(res, cfg.ProcRoot, cfg.LoadavgInterval, log.WithName("loadavg"))
	}
	fopts := lxfs.Options{
		ProcRoot: cfg.ProcRoot, SysRoot: cfg.SysRoot, Resolver: res, Loadavg: d.sampler,
		CFS: cfg.CFS, Swap: cfg.Swap, EntryTimeout: cfg.EntryTimeout, CacheTTL: cfg.CacheTTL, Log: log.WithName("fs"),
	}
	if cfg.HTTPAddress != "" {
		d.metrics = metrics.New(version.Version)
		fopts.Metrics = func(file string) lxfs.FileMetrics { return d.metrics.File(file) }
	}
	d.fsys = lxfs.New(fopts)
	if d.ns, err = inNamespace(cfg.HostMountNS); err != nil {
		return err
	}
	var onEventFailure func()
	if d.metrics != nil {
		onEventFailure = func() { d.metrics.Error(metrics.OpEvent) }
	}
	d.events = newSelfEvents(d.client(), os.Getenv, cfg.NodeName, log.WithName("events"), onEventFailure)

	// The HTTP endpoint comes up first, so that probes see "starting"
	// during a takeover, and goes down as soon as we hand over or stop.
	httpCtx, stopHTTP := context.WithCancel(ctx)
	httpDone := make(chan struct{})
	defer func() { stopHTTP(); <-httpDone }()
	if cfg.HTTPAddress != "" {
		go func() {
			defer close(httpDone)
			h := metrics.Handler(d.metrics, d.health)
			if err := metrics.Serve(httpCtx, cfg.HTTPAddress, h, log.WithName("http"), nil); err != nil {
				log.Error(err, "HTTP metrics and probes stopped", "httpAddress", cfg.HTTPAddress)
			}
		}()
	} else {
		close(httpDone)
	}

	var adopted []loadavg.Saved
	if cfg.HandoverSocket != "" {
		adopted, err = d.takeOver(ctx)
		switch {
		case err == nil:
			d.handover(metrics.RoleSuccessor, metrics.ResultAdopted)
		case errors.Is(err, upgrade.ErrNoPredecessor):
			log.V(2).Info("No daemon to take over from; mounting afresh", "socket", cfg.HandoverSocket, "reason", err.Error())
		default:
			d.handover(metrics.RoleSuccessor, metrics.ResultFailed)
			return fmt.Errorf("take over from the running daemon on %s: %w", cfg.HandoverSocket, err)
		}
	}
	if d.srv == nil {
		if err := d.mountFresh(); err != nil {
			return err
		}
	}
	d.srv.Start()
	d.health.Set(metrics.Serving)
	if d.generation > 0 {
		go d.events.record(ctx, ReasonAdopted, fmt.Sprintf("Adopted the live FUSE connection at %s from the previous daemon (generation %d); containers' mounts stayed live", cfg.MountPoint, d.generation))
	}
	if d.sampler != nil && len(adopted) > 0 {
		// After Start: resolving every container again takes a while, and
		// the kernel is waiting for us.
		n := d.sampler.Import(adopted)
		log.V(2).Info("Adopted load averages", "containers", n, "offered", len(adopted))
	}

	var l *upgrade.Listener
	if cfg.HandoverSocket != "" {
		if l, err = upgrade.Listen(cfg.HandoverSocket, log.WithName("upgrade")); err != nil {
			// Serving matters more; but the next upgrade will break mounts.
			log.Error(err, "Could not listen for a successor; an upgrade or restart will break containers' mounts", "socket", cfg.HandoverSocket)
		}
	}
	if cfg.PidFile != "" {
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error(err, "Could not write pid file", "file", cfg.PidFile)
		} else {
			defer removeIfOurs(cfg.PidFile)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return res.Run(gctx, 10*time.Second) })
	if cfg.Heal {
		d.healer = heal.New(heal.Options{ProcRoot: cfg.ProcRoot, MountPoint: cfg.MountPoint, InHost: d.ns,
			Interval: cfg.HealInterval, Restarter: d.restarter(), Log: log.WithName("heal"),
			OnScan: func(r heal.Result) { d.healed(gctx, r) }})
		g.Go(func() error { return d.healer.Run(gctx) })
	}
	if d.metrics != nil {
		src := metrics.Sources{
			RenderErrors: d.fsys.Counters.Errors.Load,
			Containers:   func() int { return len(res.Containers()) },
		}
		if h := d.healer; h != nil {
			src.HealScanErrors, src.StaleMounts = h.Counters.ScanErrors.Load, h.Counters.BrokenMounts.Load
			src.HealRepaired, src.HealFailed, src.HealRestarted = h.Counters.Repaired.Load, h.Counters.Failed.Load, h.Counters.Restarted.Load
		}
		d.metrics.Watch(src)
	}
	if d.sampler != nil {
		g.Go(func() error { return d.sampler.Run(gctx) })
	}
	g.Go(func() error {
		err := d.srv.Wait(gctx)
		d.health.Stop() // unless handed over
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	if l != nil {
		g.Go(func() error {
			done, err := l.Serve(gctx, d)
			if done {
				d.health.Set(metrics.HandedOver)
				return errHandedOver
			}
			return err
		})
	}
	<-gctx.Done()
	serveErr := g.Wait()
	if errors.Is(serveErr, errHandedOver) {
		// The successor serves the connection; ours are only copies. Free
		// the HTTP address for a successor on the same host.
		stopHTTP()
		d.handover(metrics.RolePredecessor, metrics.ResultHandedOver)
		d.events.record(ctx, ReasonHandedOver, fmt.Sprintf("Handed the live FUSE connection at %s to a successor; the mount stays live", cfg.MountPoint))
		l.Handed() //nolint:errcheck // the path is, or is about to be, the successor's
		if err := d.srv.Detach(time.Second); err != nil {
			log.Error(err, "Could not close our copy of the FUSE connection")
		}
		if !cfg.ExitAfterHandover {
			// In a pod, exiting would make the kubelet restart this
			// container, whose old daemon would take the connection back.
			// Idle until the pod is deleted; SIGTERM then exits 0 without
			// unmounting.
			log.Info("Handed over; idling until stopped, the mount stays live", "mountPoint", cfg.MountPoint)
			<-ctx.Done()
			return nil
		}
		log.Info("Exiting after handover; the mount stays live", "mountPoint", cfg.MountPoint)
		return nil
	}
	d.health.Stop()
	if l != nil {
		l.Close() //nolint:errcheck // stopping anyway
	}
	uerr := d.srv.Unmount()
	if errors.Is(serveErr, lxfs.ErrUnmounted) {
		log.Info("FUSE connection ended by the kernel", "mountPoint", cfg.MountPoint)
		return serveErr
	}
	if uerr != nil {
		return uerr
	}
	log.Info("Unmounted FUSE filesystem", "mountPoint", cfg.MountPoint, "opens", d.fsys.Counters.Opens.Load(),
		"hostFallbacks", d.fsys.Counters.HostFallbacks.Load())
	return serveErr
}

// inNamespace returns how to run path operations in the mount namespace at
// path: nil when that is our own (or path is empty).
func inNamespace(path string) (lxfs.InNS, error) {
	if path == "" {
		return nil, nil
	}
	same, err := mountns.Same(path)
	if err != nil {
		return nil, fmt.Errorf("-host-mount-ns: %w", err)
	}
	if same {
		return nil, nil
	}
	return func(fn func() error) error { return mountns.Do(path, fn) }, nil
}

// mountFresh cleans what a dead daemon left at the mount point and mounts
// anew, in the host's mount namespace if configured.
func (d *daemon) mountFresh() error {
	mp := d.cfg.MountPoint
	err := d.ns.Do(func() error {
		// A server that died left its mount behind: every access to it
		// fails with ENOTCONN (lxcfs refuses to start there). Detach it, and
		// any stacked below it.
		n, err := mountmgr.CleanStale(mp)
		if err != nil {
			return err
		}
		if n > 0 {
			d.log.Info("Detached stale FUSE mounts", "mountPoint", mp, "count", n)
		}
		if err := os.MkdirAll(mp, 0o755); err != nil {
			return fmt.Errorf("create mount point: %w", err)
		}
		if st, err := mountmgr.Probe(mp); err != nil {
			return err
		} else if st == mountmgr.Live {
			return fmt.Errorf("a live FUSE filesystem is already mounted at %s, served by a daemon not listening on -handover-socket %q; stop it first", mp, d.cfg.HandoverSocket)
		}
		// Bind sources a container runtime created as directories while no
		// one served; they hide nothing now but break binds later.
		removed, err := mountmgr.CleanRuntimeDirs(mp, lxfs.Files())
		if len(removed) > 0 {
			d.log.Info("Removed directories a container runtime created in place of our files", "mountPoint", mp, "paths", removed)
		}
		if err != nil {
			d.log.Error(err, "Could not remove every directory created in place of our files", "mountPoint", mp)
		}
		if n, err := mountmgr.CleanMtab("/etc/mtab", mp); err != nil {
			d.log.Error(err, "Could not clean stale lines from /etc/mtab")
		} else if n > 0 {
			d.log.Info("Removed stale lxcfs lines from /etc/mtab", "count", n)
		}
		// Shared, so that the new mount propagates to pods' HostToContainer
		// volumes and back from a Bidirectional one.
		return mountmgr.MakeShared(mp)
	})
	if err != nil {
		return err
	}
	srv, err := lxfs.Mount(mp, d.fsys, d.ns, d.log.WithName("fuse"))
	if err != nil {
		return err
	}
	d.srv = srv
	d.log.Info("Mounted FUSE filesystem", "mountPoint", mp, "version", version.Version, "hostMountNS", d.cfg.HostMountNS,
		"cgroupMode", d.res.Mode().String(), "cfs", d.cfg.CFS, "loadavg", d.cfg.Loadavg, "swap", d.cfg.Swap)
	return nil
}

// takeOver adopts the connection of the daemon serving on the handover
// socket. It returns the load averages to import once serving.
func (d *daemon) takeOver(ctx context.Context) ([]loadavg.Saved, error) {
	var sess lxfs.Session
	h, err := upgrade.Adopt(ctx, d.cfg.HandoverSocket, upgrade.Hello{Version: version.Version, Pid: os.Getpid()},
		func(o upgrade.Offer) error {
			if o.MountPoint != d.cfg.MountPoint {
				return fmt.Errorf("the running daemon (pid %d) serves %s, not %s", o.Pid, o.MountPoint, d.cfg.MountPoint)
			}
			if err := json.Unmarshal(o.Session, &sess); err != nil {
				return fmt.Errorf("malformed FUSE session from pid %d: %w", o.Pid, err)
			}
			return lxfs.CheckSession(sess, d.fsys, d.log.WithName("fuse"))
		})
	if err != nil {
		return nil, err
	}
	var st handoverState
	if err := json.Unmarshal(h.State, &st); err != nil {
		err = fmt.Errorf("malformed handover state: %w", err)
		h.Abort(err)
		return nil, err
	}
	if err := d.fsys.ImportState(st.FS); err != nil {
		h.Abort(err)
		return nil, err
	}
	d.res.ImportMemos(st.Memos)
	fuseFd, rootFd := h.Fds["fuse"], h.Fds["root"]
	delete(h.Fds, "fuse")
	delete(h.Fds, "root")
	srv, err := lxfs.Adopt(fuseFd, rootFd, d.cfg.MountPoint, sess, d.fsys, d.ns, d.log.WithName("fuse"))
	if err != nil { // Adopt closed the descriptors
		h.Abort(err)
		return nil, err
	}
	if err := h.Commit(ctx); err != nil {
		srv.Detach(time.Second) //nolint:errcheck // never started: only closes
		return nil, err
	}
	d.srv = srv
	d.generation = st.Generation + 1
	d.adoptedAt.Store(time.Now().UnixNano())
	d.log.Info("Adopted FUSE connection", "mountPoint", d.cfg.MountPoint, "version", version.Version,
		"predecessorPid", h.PredecessorPid(), "predecessorVersion", h.Offer.Version, "protocol", h.Offer.Proto,
		"handles", len(st.FS.Handles), "generation", d.generation)
	return st.Loadavg, nil
}

// Offer implements upgrade.Predecessor.
func (d *daemon) Offer() upgrade.Offer {
	sess, _ := json.Marshal(d.srv.Session()) // byte slices always encode
	return upgrade.Offer{Version: version.Version, Pid: os.Getpid(), MountPoint: d.cfg.MountPoint, Session: sess}
}

// Stop implements upgrade.Predecessor: quiesce, then export.
func (d *daemon) Stop() ([]int, any, error) {
	fuseFd, rootFd := d.srv.Files()
	if rootFd < 0 {
		return nil, nil, errors.New("no descriptor of the filesystem root to hand over")
	}
	if err := d.srv.Quiesce(upgrade.QuiesceTimeout); err != nil {
		d.srv.Start()
		d.handover(metrics.RolePredecessor, metrics.ResultFailed)
		return nil, nil, err
	}
	st := handoverState{FS: d.fsys.ExportState(), Memos: d.res.ExportMemos(), Generation: d.generation}
	if d.sampler != nil {
		st.Loadavg = d.sampler.Export()
	}
	return []int{fuseFd, rootFd}, st, nil
}

// Resume implements upgrade.Predecessor.
func (d *daemon) Resume() {
	d.srv.Start()
	d.handover(metrics.RolePredecessor, metrics.ResultFailed)
}

// healed records what a heal scan repaired as an Event on our pod.
func (d *daemon) healed(ctx context.Context, r heal.Result) {
	if r.Repaired == 0 && r.Restarted == 0 {
		return
	}
	d.events.record(ctx, ReasonHealed, fmt.Sprintf("Repaired %d broken lxcfs binds in place (%d broken in %d containers' mount namespaces; %d failed, %d pods restarted, %d deferred)",
		r.Repaired, r.BrokenMounts, r.Broken, r.Failed, r.Restarted, r.Skipped))
}

// Status is what `k8s-lxcfs status` shows.
type Status struct {
	MountPoint string `json:"mountPoint"`
	// State is live, stale (its server is gone: ENOTCONN) or absent.
	State string `json:"state"`
	// Device is the mount's device number (major:minor), when mounted.
	Device string `json:"device,omitempty"`
	// From the serving daemon, over the handover socket.
	Pid          int       `json:"pid,omitempty"`
	Version      string    `json:"version,omitempty"`
	ServingSince time.Time `json:"servingSince,omitzero"`
	Generation   int       `json:"generation"`
	Goroutines   int       `json:"goroutines,omitempty"`
	Fds          int       `json:"fds,omitempty"`
	Handles      int       `json:"handles"`
	Opens        uint64    `json:"opens"`
	// Containers is how many mount namespaces other than the host's bind
	// the live filesystem's files; StaleContainers bind a dead one.
	Containers      int `json:"containers"`
	StaleContainers int `json:"staleContainers"`
	// Healed, HealFailed and Restarted count what self-healing did since
	// the daemon started: mounts repaired in place, namespaces whose repair
	// failed, pods restarted through the API.
	Healed     uint64 `json:"healed"`
	HealFailed uint64 `json:"healFailed"`
	Restarted  uint64 `json:"restarted"`
	Socket     string `json:"socket,omitempty"`
	// Errors are what could not be found out.
	Errors []string `json:"errors,omitempty"`
}

// Status implements upgrade.Predecessor: what the daemon knows of itself.
func (d *daemon) Status() any {
	st := Status{MountPoint: d.cfg.MountPoint, State: mountmgr.Live.String(), Pid: os.Getpid(),
		Version: version.Version, ServingSince: d.since, Generation: d.generation,
		Goroutines: runtime.NumGoroutine(), Handles: d.fsys.Handles(), Opens: d.fsys.Counters.Opens.Load(),
		Socket: d.cfg.HandoverSocket}
	if d.healer != nil {
		st.Healed, st.HealFailed, st.Restarted = d.healer.Counters.Repaired.Load(), d.healer.Counters.Failed.Load(), d.healer.Counters.Restarted.Load()
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		st.Fds = len(ents) - 1 // the directory's own descriptor
	}
	return st
}

// removeIfOurs removes the pid file unless a successor has rewritten it.
func removeIfOurs(path string) {
	b, err := os.ReadFile(path)
	if err == nil && string(b) == strconv.Itoa(os.Getpid())+"\n" {
		_ = os.Remove(path)
	}
}
