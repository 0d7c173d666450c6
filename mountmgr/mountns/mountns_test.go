// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountns

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func TestDoWithoutNamespace(t *testing.T) {
	t.Parallel()
	sentinel := errors.New("from fn")
	ran := false
	if err := Do("", func() error { ran = true; return sentinel }); err != sentinel || !ran {
		t.Errorf("Do(\"\") = %v (ran %v); want fn's own error, unwrapped", err, ran)
	}
	defer func() {
		if p := recover(); p != "boom" {
			t.Errorf("recovered %v, want fn's panic", p)
		}
	}()
	_ = Do("", func() error { panic("boom") })
}

// TestDoBadNamespace covers the errors that come before setns, which need
// no privileges.
func TestDoBadNamespace(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "mnt")
	for _, tc := range []struct {
		name    string
		nsPath  string
		fn      func() error
		wantErr string
		wantIs  error
	}{
		{name: "missing", nsPath: missing, wantErr: "open mount namespace " + missing, wantIs: os.ErrNotExist},
		{name: "not a namespace", nsPath: "/dev/null", wantErr: "/dev/null is not a namespace file", wantIs: unix.ENOTTY},
		{name: "other namespace type", nsPath: "/proc/self/ns/net", wantErr: "/proc/self/ns/net is not a mount namespace"},
		{name: "nil function", nsPath: "/proc/self/ns/mnt", fn: nil, wantErr: "nil function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fn := tc.fn
			if fn == nil && tc.name != "nil function" {
				fn = func() error { t.Error("fn ran"); return nil }
			}
			err := Do(tc.nsPath, fn)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Do(%q) = %v; want an error saying %q", tc.nsPath, err, tc.wantErr)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Do(%q) = %v; want it to wrap %v", tc.nsPath, err, tc.wantIs)
			}
		})
	}
}

func TestSame(t *testing.T) {
	t.Parallel()
	if same, err := Same("/proc/self/ns/mnt"); err != nil || !same {
		t.Errorf("Same(own namespace) = %v, %v; want true", same, err)
	}
	if same, err := Same("/proc/self/ns/net"); err != nil || same {
		t.Errorf("Same(network namespace) = %v, %v; want false", same, err)
	}
	if _, err := Same(""); err == nil {
		t.Error("Same(\"\"): no error")
	}
	missing := filepath.Join(t.TempDir(), "mnt")
	if _, err := Same(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Same(missing) = %v; want an error naming it", err)
	}
}

func TestOpenMountinfo(t *testing.T) {
	t.Parallel()
	f, err := OpenMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() //nolint:errcheck // read-only
	ms, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", f.Name(), err)
	}
	want, err := mountinfo.GetMounts(nil) // outside Do both read /proc/thread-self
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(want) || len(ms) == 0 {
		t.Errorf("OpenMountinfo lists %d mounts, mountinfo.GetMounts %d", len(ms), len(want))
	}
}
