// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package testenv

import (
	"errors"
	"strings"
	"testing"
)

func TestRequirePrivilegedDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       string
		euid      int
		fuseErr   error
		wantSkip  bool
		wantFatal string // substring; "" means no failure
	}{
		{name: "not opted in", env: "", euid: 0, wantSkip: true},
		{name: "not opted in as user", env: "", euid: 1000, fuseErr: errors.New("no fuse"), wantSkip: true},
		{name: "other value is not opt-in", env: "true", euid: 0, wantSkip: true},
		{name: "opted in, all present", env: "1", euid: 0},
		{name: "opted in, not root", env: "1", euid: 1000, wantFatal: "not running as root"},
		{name: "opted in, no fuse", env: "1", euid: 0, fuseErr: errors.New("open /dev/fuse: no such device"), wantFatal: "/dev/fuse is unusable: open /dev/fuse: no such device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string {
				if k != PrivilegedEnv {
					t.Errorf("getenv(%q), want only %q", k, PrivilegedEnv)
				}
				return tc.env
			}
			skip, fatal := privilegedProblem(getenv, func() int { return tc.euid }, func() error { return tc.fuseErr })
			if got := skip != ""; got != tc.wantSkip {
				t.Errorf("skip = %q, want skip %v", skip, tc.wantSkip)
			}
			switch {
			case tc.wantFatal == "" && fatal != "":
				t.Errorf("fatal = %q, want none", fatal)
			case tc.wantFatal != "" && !strings.Contains(fatal, tc.wantFatal):
				t.Errorf("fatal = %q, want it to contain %q", fatal, tc.wantFatal)
			}
			if skip != "" && fatal != "" {
				t.Errorf("both skip %q and fatal %q", skip, fatal)
			}
		})
	}
}

func TestModeString(t *testing.T) {
	t.Parallel()
	for m, want := range map[Mode]string{ModeUnknown: "unknown", ModeV1: "v1", ModeHybrid: "hybrid", ModeV2: "v2", Mode(42): "unknown"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestCgroupModeAtPlainDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if got := cgroupModeAt(dir); got != ModeUnknown {
		t.Errorf("cgroupModeAt(%s) = %v, want %v", dir, got, ModeUnknown)
	}
	if got := cgroupModeAt(dir + "/missing"); got != ModeUnknown {
		t.Errorf("cgroupModeAt(missing) = %v, want %v", got, ModeUnknown)
	}
}
