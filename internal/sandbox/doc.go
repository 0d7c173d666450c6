// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package sandbox builds throw-away "containers" for privileged tests, the
// benchmark and `make demo`: real cgroups with limits ([Cgroup]) and a
// long-lived init in its own pid and mount namespaces ([Container]) that has
// k8s-lxcfs (or lxcfs) files bind-mounted over /proc and
// /sys/devices/system/cpu, just as a container runtime does with the
// lxcfs hook.
//
// It is test tooling, not product code: it shells out to /bin/sh and to the
// util-linux binaries mount(8) and nsenter(1), and needs root.
//
// Every cgroup lives below a dedicated parent, [ParentName], directly under the
// root of each hierarchy (cgroup v1: memory, cpu, cpuacct, cpuset, blkio and
// pids, whichever are mounted; cgroup v2: the unified tree at /sys/fs/cgroup).
// On cgroup v2 the parent has to sit at the root because of the "no internal
// processes" rule: only the root may enable controllers for its children while
// it holds processes itself.
//
// Cleanup: [Container.Stop] SIGKILLs the init, which takes every process of the
// pid namespace with it, and the mount namespace (with all its binds) dies
// with its last process. [Cgroup.Remove] removes the cgroups, and the parent
// once it is empty. Processes are only ever ended by the pid (or process
// group) of something this package started.
package sandbox
