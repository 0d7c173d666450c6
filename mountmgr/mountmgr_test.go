// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestIsStale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "not connected", err: unix.ENOTCONN, want: true},
		{name: "aborted", err: unix.ECONNABORTED, want: true},
		{name: "wrapped", err: fmt.Errorf("stat x: %w", &os.PathError{Op: "stat", Path: "x", Err: unix.ENOTCONN}), want: true},
		{name: "missing", err: os.ErrNotExist, want: false},
		{name: "permission", err: unix.EACCES, want: false},
		{name: "nil", err: nil, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := IsStale(tc.err); got != tc.want {
				t.Errorf("IsStale(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestProbePlainDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if st, err := Probe(dir); err != nil || st != Absent {
		t.Errorf("Probe(plain dir) = %v, %v; want absent", st, err)
	}
	if st, err := Probe(dir + "/missing"); err != nil || st != Absent {
		t.Errorf("Probe(missing) = %v, %v; want absent", st, err)
	}
	if n, err := CleanStale(dir); n != 0 || err != nil {
		t.Errorf("CleanStale(plain dir) = %d, %v; want 0, nil", n, err)
	}
}
