// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package cgview answers "what resources does this reader have?": it maps the
// pid of a process reading a k8s-lxcfs file to its container — the cgroup of
// the init (pid 1) of the reader's pid namespace, as lxcfs does — and reads
// that cgroup's limits and usage on cgroup v1, v2 and hybrid hosts.
//
// Resolution is cached per pid namespace and revalidated cheaply (the init's
// start time, at most once per Options.Revalidate), so the hot path costs a
// readlink and a map lookup. [Resolver.Run] prunes entries of namespaces whose
// init exited.
//
// containerd/cgroups/v3 provides mode detection and /proc/PID/cgroup parsing.
// Its managers' Stat() reads every file of every controller, far more than one
// /proc read needs, so the few files each view needs are read directly with
// the parsers of internal/procfs.
//
// All host paths come from [Options]; nothing reads /proc or /sys/fs/cgroup
// by a hard-coded path, so fixture trees stand in for hosts in tests.
package cgview
