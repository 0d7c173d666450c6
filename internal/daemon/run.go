// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	lxfs "github.com/k8s-lxcfs/k8s-lxcfs/fs"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/version"
	"github.com/k8s-lxcfs/k8s-lxcfs/loadavg"
	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
)

// Run serves the filesystem until ctx ends, then unmounts. It returns nil on
// a clean stop.
func Run(ctx context.Context, cfg Config) error {
	log := logr.FromContextOrDiscard(ctx)
	res, err := cgview.New(cgview.Options{ProcRoot: cfg.ProcRoot, CgroupRoot: cfg.CgroupRoot})
	if err != nil {
		return err
	}
	var sampler *loadavg.Sampler
	if cfg.Loadavg {
		sampler = loadavg.New(res, cfg.ProcRoot, cfg.LoadavgInterval, log.WithName("loadavg"))
	}
	fsys := lxfs.New(lxfs.Options{
		ProcRoot: cfg.ProcRoot, SysRoot: cfg.SysRoot, Resolver: res, Loadavg: sampler,
		CFS: cfg.CFS, Swap: cfg.Swap, EntryTimeout: cfg.EntryTimeout, CacheTTL: cfg.CacheTTL, Log: log.WithName("fs"),
	})

	// A server that died left its mount behind: every access to it fails with
	// ENOTCONN (lxcfs refuses to start there). Detach it first.
	n, err := mountmgr.CleanStale(cfg.MountPoint)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("Detached stale FUSE mounts", "mountPoint", cfg.MountPoint, "count", n)
	}
	if err := os.MkdirAll(cfg.MountPoint, 0o755); err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	if st, err := mountmgr.Probe(cfg.MountPoint); err != nil {
		return err
	} else if st == mountmgr.Live {
		return fmt.Errorf("a live FUSE filesystem is already mounted at %s; stop its server first", cfg.MountPoint)
	}
	srv, err := lxfs.Mount(cfg.MountPoint, fsys, log.WithName("fuse"))
	if err != nil {
		return err
	}
	srv.Start()
	log.Info("Mounted FUSE filesystem", "mountPoint", cfg.MountPoint, "version", version.Version,
		"cgroupMode", res.Mode().String(), "cfs", cfg.CFS, "loadavg", cfg.Loadavg, "swap", cfg.Swap)
	if cfg.PidFile != "" {
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error(err, "Could not write pid file", "file", cfg.PidFile)
		} else {
			defer os.Remove(cfg.PidFile) //nolint:errcheck // best effort on the way out
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return res.Run(gctx, 10*time.Second) })
	if sampler != nil {
		g.Go(func() error { return sampler.Run(gctx) })
	}
	g.Go(func() error {
		err := srv.Wait(gctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err == nil {
			err = lxfs.ErrUnmounted
		}
		return err
	})
	<-gctx.Done()
	serveErr := g.Wait()
	uerr := srv.Unmount()
	if errors.Is(serveErr, lxfs.ErrUnmounted) {
		log.Info("FUSE connection ended by the kernel", "mountPoint", cfg.MountPoint)
		return serveErr
	}
	if uerr != nil {
		return uerr
	}
	log.Info("Unmounted FUSE filesystem", "mountPoint", cfg.MountPoint, "opens", fsys.Counters.Opens.Load(),
		"hostFallbacks", fsys.Counters.HostFallbacks.Load())
	return serveErr
}
