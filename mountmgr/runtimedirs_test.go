// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// lxcfsFiles are the bind sources pods use, as the daemon would pass them.
var lxcfsFiles = []string{
	"proc/meminfo", "proc/cpuinfo", "proc/stat", "proc/uptime", "proc/diskstats", "proc/swaps", "proc/loadavg",
	"sys/devices/system/cpu/online",
}

// tree creates dirs (ending in /) and files below root.
func tree(t *testing.T, root string, paths ...string) {
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

// listTree returns every path below root, relative, directories ending in /.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			rel += "/"
		}
		got = append(got, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCleanRuntimeDirs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		tree        []string
		files       []string // lxcfsFiles if nil
		wantRemoved []string
		wantLeft    []string
		wantErr     []string // substrings of the joined error
	}{
		{
			name: "runtime-made directories with their parents",
			tree: []string{"proc/meminfo/", "proc/cpuinfo/", "sys/devices/system/cpu/online/"},
			wantRemoved: []string{
				"proc/meminfo", "proc/cpuinfo", "proc",
				"sys/devices/system/cpu/online", "sys/devices/system/cpu", "sys/devices/system", "sys/devices", "sys",
			},
		},
		{
			name:        "files and unrelated entries stay",
			tree:        []string{"proc/meminfo/", "proc/stat", "sys/devices/system/cpu/online", "sys/devices/system/cpu/possible/", "README"},
			wantRemoved: []string{"proc/meminfo"},
			wantLeft:    []string{"README", "proc/", "proc/stat", "sys/", "sys/devices/", "sys/devices/system/", "sys/devices/system/cpu/", "sys/devices/system/cpu/online", "sys/devices/system/cpu/possible/"},
		},
		{
			name:        "non-empty directory reported and kept",
			tree:        []string{"proc/meminfo/keep", "proc/uptime/"},
			wantRemoved: []string{"proc/uptime"},
			wantLeft:    []string{"proc/", "proc/meminfo/", "proc/meminfo/keep"},
			wantErr:     []string{"proc/meminfo: directory not empty"},
		},
		{
			name:     "nothing there",
			tree:     nil,
			wantLeft: nil,
		},
		{
			name:        "only the listed paths",
			tree:        []string{"proc/meminfo/", "proc/other/"},
			files:       []string{"proc/meminfo", "proc/meminfo"},
			wantRemoved: []string{"proc/meminfo"},
			wantLeft:    []string{"proc/", "proc/other/"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := filepath.Join(t.TempDir(), "lxcfs")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			tree(t, root, tc.tree...)
			files := tc.files
			if files == nil {
				files = lxcfsFiles
			}
			removed, err := CleanRuntimeDirs(root, files)
			for _, want := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("CleanRuntimeDirs error = %v; want it to say %q", err, want)
				}
			}
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("CleanRuntimeDirs: %v", err)
			}
			var want []string
			for _, r := range tc.wantRemoved {
				want = append(want, filepath.Join(root, r))
			}
			if !reflect.DeepEqual(removed, want) {
				t.Errorf("removed %q, want %q", removed, want)
			}
			if left := listTree(t, root); !reflect.DeepEqual(left, tc.wantLeft) {
				t.Errorf("left %q, want %q", left, tc.wantLeft)
			}
		})
	}
}

func TestCleanRuntimeDirsSymlink(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	root := filepath.Join(base, "lxcfs")
	outside := filepath.Join(base, "outside")
	tree(t, base, "lxcfs/", "outside/meminfo/")
	if err := os.Symlink(outside, filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	removed, err := CleanRuntimeDirs(root, []string{"proc/meminfo"})
	if err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("CleanRuntimeDirs through a symlink: error %v; want it reported", err)
	}
	if len(removed) != 0 {
		t.Errorf("removed %q through a symlink", removed)
	}
	if _, err := os.Stat(filepath.Join(outside, "meminfo")); err != nil {
		t.Errorf("directory outside the mount point: %v", err)
	}

	// A symlinked mount point itself is resolved, not refused.
	link := filepath.Join(base, "link")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	removed, err = CleanRuntimeDirs(link, []string{"meminfo"})
	if err != nil || !slices.Equal(removed, []string{filepath.Join(outside, "meminfo")}) {
		t.Errorf("CleanRuntimeDirs(symlinked mount point) = %q, %v; want %s removed", removed, err, filepath.Join(outside, "meminfo"))
	}
}

func TestCleanRuntimeDirsBadInput(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	tree(t, root, "proc/meminfo/")
	for _, tc := range []struct {
		name       string
		mountPoint string
		files      []string
		wantErr    string
	}{
		{name: "relative mount point", mountPoint: "lxcfs", files: []string{"proc/meminfo"}, wantErr: "not an absolute path"},
		{name: "escaping path", mountPoint: root, files: []string{"proc/meminfo", "../etc"}, wantErr: `"../etc" is not a path below it`},
		{name: "absolute path", mountPoint: root, files: []string{"/proc/meminfo"}, wantErr: "is not a path below it"},
		{name: "mount point itself", mountPoint: root, files: []string{"proc/.."}, wantErr: "is not a path below it"},
		{name: "empty path", mountPoint: root, files: []string{""}, wantErr: "is not a path below it"},
	} {
		removed, err := CleanRuntimeDirs(tc.mountPoint, tc.files)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || removed != nil {
			t.Errorf("%s: CleanRuntimeDirs = %q, %v; want nothing removed and an error saying %q", tc.name, removed, err, tc.wantErr)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "proc/meminfo")); err != nil {
		t.Errorf("bad input removed something: %v", err)
	}
	if removed, err := CleanRuntimeDirs(filepath.Join(root, "missing"), lxcfsFiles); err != nil || removed != nil {
		t.Errorf("CleanRuntimeDirs(missing mount point) = %q, %v; want nothing, nil", removed, err)
	}
}
