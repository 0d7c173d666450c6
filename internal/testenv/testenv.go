// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// PrivilegedEnv is the environment variable that opts into privileged tests.
const PrivilegedEnv = "K8S_LXCFS_PRIVILEGED_TESTS"

// RequirePrivileged skips t unless K8S_LXCFS_PRIVILEGED_TESTS=1. Once opted
// in, it fails t when the process is not root or /dev/fuse cannot be opened.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	skip, fatal := privilegedProblem(os.Getenv, os.Geteuid, openFUSE)
	if skip != "" {
		t.Skip(skip)
	}
	if fatal != "" {
		t.Fatal(fatal)
	}
}

// privilegedProblem decides what RequirePrivileged does. An empty skip and
// fatal means the prerequisites are met. It is separate from RequirePrivileged
// so the decision table can be tested without root.
func privilegedProblem(getenv func(string) string, geteuid func() int, openFUSE func() error) (skip, fatal string) {
	if getenv(PrivilegedEnv) != "1" {
		return "privileged test; run `make test-priv` (sets " + PrivilegedEnv + "=1)", ""
	}
	if geteuid() != 0 {
		return "", PrivilegedEnv + "=1 but not running as root"
	}
	if err := openFUSE(); err != nil {
		return "", PrivilegedEnv + "=1 but /dev/fuse is unusable: " + err.Error()
	}
	return "", ""
}

// openFUSE proves /dev/fuse can be opened read-write, which is what a FUSE
// server needs; a stat would miss a device cgroup or a missing module.
func openFUSE() error {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/dev/fuse", Err: err}
	}
	_ = unix.Close(fd) // never used for I/O; nothing to flush
	return nil
}
