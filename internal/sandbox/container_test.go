// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mkTree creates files (a trailing "/" makes a directory) below root.
func mkTree(t *testing.T, root string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlanBinds(t *testing.T) {
	t.Parallel()
	// host stands in for / : it has what the kernel has, including PSI.
	host := t.TempDir()
	mkTree(t, host, "proc/meminfo", "proc/cpuinfo", "proc/stat", "proc/uptime", "proc/loadavg",
		"proc/diskstats", "proc/swaps", "proc/slabinfo", "proc/pressure/cpu", "proc/pressure/memory",
		"proc/pressure/io", "sys/devices/system/cpu/online")
	// lxcfs serves a subset and has an extra file the host lacks.
	lxcfs := t.TempDir()
	mkTree(t, lxcfs, "proc/meminfo", "proc/uptime", "proc/cpuinfo", "proc/extra", "sys/devices/system/cpu/online")
	// dirmix has a directory where the host has a file.
	dirmix := t.TempDir()
	mkTree(t, dirmix, "proc/meminfo/", "proc/stat")

	tests := []struct {
		name    string
		root    string
		files   []string
		want    []string // "src-relative-to-root -> dst"
		wantErr string
	}{
		{name: "no root, no files", root: "", files: nil},
		{name: "files without root", root: "", files: []string{"proc/meminfo"}, wantErr: "without an lxcfs root"},
		{
			name: "defaults bind what exists on both sides", root: lxcfs,
			want: []string{"proc/meminfo -> /proc/meminfo", "proc/cpuinfo -> /proc/cpuinfo", "proc/uptime -> /proc/uptime", "sys/devices/system/cpu -> /sys/devices/system/cpu"},
		},
		{name: "explicit", root: lxcfs, files: []string{"proc/uptime"}, want: []string{"proc/uptime -> /proc/uptime"}},
		{name: "explicit missing source", root: lxcfs, files: []string{"proc/uptime", "proc/stat"}, wantErr: "proc/stat: no such file"},
		{name: "explicit missing target", root: lxcfs, files: []string{"proc/extra"}, wantErr: "proc/extra: no such file"},
		{name: "explicit empty list binds nothing", root: lxcfs, files: []string{}},
		{name: "absolute file", root: lxcfs, files: []string{"/proc/meminfo"}, wantErr: "want a clean path"},
		{name: "escaping file", root: lxcfs, files: []string{"../proc/meminfo"}, wantErr: "want a clean path"},
		{name: "unclean file", root: lxcfs, files: []string{"proc//meminfo"}, wantErr: "want a clean path"},
		{name: "kind mismatch", root: dirmix, wantErr: "one is a directory"},
		{name: "root without any file", root: t.TempDir(), wantErr: "none of proc/meminfo, proc/cpuinfo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			binds, err := planBinds(tc.root, tc.files, host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("planBinds() = %v, %v; want error containing %q", binds, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("planBinds() = %v", err)
			}
			var got []string
			for _, b := range binds {
				rel, err := filepath.Rel(tc.root, b.src)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rel+" -> "+b.dst)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("binds = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestStartContainerRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		o       ContainerOptions
		wantErr string
	}{
		{name: "propagation", o: ContainerOptions{Propagation: "shared"}, wantErr: `propagation "shared"`},
		{name: "files without root", o: ContainerOptions{Files: []string{"proc/meminfo"}}, wantErr: "without an lxcfs root"},
		{name: "empty root", o: ContainerOptions{LXCFSRoot: t.TempDir()}, wantErr: "none of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := StartContainer(context.Background(), tc.o)
			if err == nil {
				_ = c.Stop()
				t.Fatal("StartContainer() succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("StartContainer() = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestExecNeedsCommand(t *testing.T) {
	t.Parallel()
	c := &Container{}
	if _, _, err := c.Exec(context.Background()); err == nil {
		t.Error("Exec() without argv succeeded")
	}
}

func TestStderrNote(t *testing.T) {
	t.Parallel()
	if got := stderrNote(" \n"); got != "" {
		t.Errorf("stderrNote(blank) = %q, want \"\"", got)
	}
	if got := stderrNote("mount: boom\n"); got != ` (stderr: "mount: boom")` {
		t.Errorf("stderrNote() = %q", got)
	}
	if got := stderrNote(strings.Repeat("x", 5000)); len(got) > 1100 || !strings.HasSuffix(got, `..."`+")") {
		t.Errorf("stderrNote(long) has %d bytes, ends %q", len(got), got[len(got)-10:])
	}
}
