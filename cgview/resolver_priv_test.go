// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package cgview_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/sandbox"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestPrivResolvePrune resolves real containers on the real /proc and
// cgroupfs, then checks that Prune forgets exactly the ones whose init
// exited, and releases what it held for them.
func TestPrivResolvePrune(t *testing.T) {
	testenv.RequirePrivileged(t)
	r, err := cgview.New(cgview.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := openFds(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var containers []*sandbox.Container
	for i, mem := range []int64{128 << 20, 192 << 20} {
		cg, err := sandbox.NewCgroup("prune-"+string(rune('a'+i)), sandbox.Limits{MemoryBytes: mem})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cg.Remove() })
		c, err := sandbox.StartContainer(ctx, sandbox.ContainerOptions{Cgroup: cg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Stop() })
		containers = append(containers, c)
		got, err := r.Resolve(c.Pid())
		if err != nil {
			t.Fatalf("resolve container init %d: %v", c.Pid(), err)
		}
		m, err := r.Memory(got)
		if err != nil {
			t.Fatal(err)
		}
		if m.Limit != uint64(mem) {
			t.Errorf("container %d: limit %d, want %d", i, m.Limit, mem)
		}
	}
	if n := len(r.Containers()); n != 2 {
		t.Fatalf("%d containers cached, want 2", n)
	}
	if err := containers[0].Stop(); err != nil {
		t.Fatal(err)
	}
	r.Prune()
	left := r.Containers()
	if len(left) != 1 || left[0].InitPid != containers[1].Pid() {
		t.Errorf("after the first init exited, cached = %v, want only init %d", left, containers[1].Pid())
	}
	if err := containers[1].Stop(); err != nil {
		t.Fatal(err)
	}
	r.Prune()
	if n := len(r.Containers()); n != 0 {
		t.Errorf("%d containers cached after both exited", n)
	}
	if after := openFds(t); after > before {
		t.Errorf("%d descriptors open after pruning everything, %d before", after, before)
	}
}
