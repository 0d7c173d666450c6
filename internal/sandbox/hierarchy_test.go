// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package sandbox

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// hybridMountinfo is the cgroup part of /proc/self/mountinfo on the Debian 12
// VM (kernel 6.18) the privileged tests were first run on: one v1 hierarchy
// per controller and an empty cgroup2 at /sys/fs/cgroup/unified.
const hybridMountinfo = `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

// systemdV1Mountinfo is the layout systemd uses on legacy hosts: cpu and
// cpuacct co-mounted, with symlinks (absent from mountinfo) for the single
// names. The first line is a second mount of the memory hierarchy elsewhere,
// which must lose against the one below /sys/fs/cgroup.
const systemdV1Mountinfo = `20 1 0:44 / /mnt/memory rw,relatime - cgroup cgroup rw,memory
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpuset
33 25 0:30 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,blkio
`

// unifiedMountinfo is a cgroup v2-only host (systemd default since 2021).
const unifiedMountinfo = `35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestTreeFromMounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		mountinfo string
		wantV2    bool
		wantRoots map[string]string
		wantDirs  []string // dirs("x")
		wantErr   error
	}{
		{
			name: "hybrid", mountinfo: hybridMountinfo,
			wantRoots: map[string]string{
				"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
				"cpuset": "/sys/fs/cgroup/cpuset", "blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids",
			},
			wantDirs: []string{
				"/sys/fs/cgroup/blkio/x", "/sys/fs/cgroup/cpu/x", "/sys/fs/cgroup/cpuacct/x",
				"/sys/fs/cgroup/cpuset/x", "/sys/fs/cgroup/memory/x", "/sys/fs/cgroup/pids/x",
			},
		},
		{
			name: "v1 co-mounted", mountinfo: systemdV1Mountinfo,
			wantRoots: map[string]string{
				"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
				"cpuset": "/sys/fs/cgroup/cpuset", "blkio": "/sys/fs/cgroup/blkio",
			},
			wantDirs: []string{"/sys/fs/cgroup/blkio/x", "/sys/fs/cgroup/cpu,cpuacct/x", "/sys/fs/cgroup/cpuset/x", "/sys/fs/cgroup/memory/x"},
		},
		{
			name: "unified", mountinfo: unifiedMountinfo, wantV2: true,
			wantRoots: map[string]string{
				"memory": "/sys/fs/cgroup", "cpu": "/sys/fs/cgroup", "cpuset": "/sys/fs/cgroup", "io": "/sys/fs/cgroup", "pids": "/sys/fs/cgroup",
			},
			wantDirs: []string{"/sys/fs/cgroup/x"},
		},
		{
			name:      "no memory hierarchy",
			mountinfo: "31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n40 30 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
			wantErr:   ErrNoCgroups,
		},
		{name: "nothing", mountinfo: "", wantErr: ErrNoCgroups},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mounts, err := mountinfo.GetMountsFromReader(strings.NewReader(tc.mountinfo), nil)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := treeFromMounts(mounts, hostFS{})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("treeFromMounts() err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if tr.v2 != tc.wantV2 {
				t.Errorf("v2 = %v, want %v", tr.v2, tc.wantV2)
			}
			if !maps.Equal(tr.roots, tc.wantRoots) {
				t.Errorf("roots = %v, want %v", tr.roots, tc.wantRoots)
			}
			if got := tr.dirs("x"); !slices.Equal(got, tc.wantDirs) {
				t.Errorf("dirs(x) = %v, want %v", got, tc.wantDirs)
			}
		})
	}
}

func TestTreeDir(t *testing.T) {
	t.Parallel()
	v1 := &tree{roots: map[string]string{"memory": "/cg/memory", "cpu": "/cg/cpu,cpuacct", "cpuacct": "/cg/cpu,cpuacct"}}
	v2 := &tree{v2: true, roots: map[string]string{"memory": "/cg", "cpu": "/cg"}}
	tests := []struct {
		tr         *tree
		controller string
		want       string
	}{
		{v1, "memory", "/cg/memory/a/b"},
		{v1, "cpuacct", "/cg/cpu,cpuacct/a/b"},
		{v1, "blkio", ""},
		{v2, "cpu", "/cg/a/b"},
		{v2, "blkio", "/cg/a/b"},
		{v2, "", "/cg/a/b"},
	}
	for _, tc := range tests {
		if got := tc.tr.dir(tc.controller, "a/b"); got != tc.want {
			t.Errorf("v2=%v dir(%q) = %q, want %q", tc.tr.v2, tc.controller, got, tc.want)
		}
	}
}
