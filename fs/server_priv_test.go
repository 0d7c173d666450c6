// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package fs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	lxfs "github.com/k8s-lxcfs/k8s-lxcfs/fs"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// TestPrivQuiesceResume: after Quiesce no request is read, so a reader
// waits (its request queues in the kernel, unanswered but not lost); Start
// serves it. This is the pause a handover to a successor relies on.
func TestPrivQuiesceResume(t *testing.T) {
	testenv.RequirePrivileged(t)
	r, err := cgview.New(cgview.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mp := testenv.MountDir(t)
	f := lxfs.New(lxfs.Options{Resolver: r, CFS: true, Swap: true, Log: logr.Discard()})
	srv, err := lxfs.Mount(mp, f, nil, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	meminfo := filepath.Join(mp, "proc/meminfo")
	if b, err := os.ReadFile(meminfo); err != nil || !strings.HasPrefix(string(b), "MemTotal:") {
		t.Fatalf("read while serving: %q, %v", b, err)
	}
	if err := srv.Quiesce(5 * time.Second); err != nil {
		t.Fatalf("Quiesce: %v", err)
	}
	got := make(chan error, 1)
	go func() { _, err := os.ReadFile(meminfo); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("a read completed while quiesced (err %v): requests are still being read", err)
	case <-time.After(300 * time.Millisecond):
	}
	srv.Start()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("the read queued during the pause failed after Start: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read queued during the pause was not answered after Start")
	}
	// RELEASE is asynchronous: give the kernel's last ones time to arrive.
	if err := testenv.Eventually(context.Background(), 5*time.Second, func() error {
		if n := f.Handles(); n != 0 {
			return fmt.Errorf("%d file handles left open", n)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if err := srv.Unmount(); err != nil {
		t.Errorf("Unmount: %v", err)
	}
	if ms := testenv.MountsAt(t, mp); len(ms) != 0 {
		t.Errorf("%d mounts left after Unmount", len(ms))
	}
}
