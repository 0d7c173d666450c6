// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package heal keeps containers' lxcfs binds working after the daemon died
// without handing over (OOM kill, SIGKILL, a crash).
//
// A container binds single files of the filesystem (proc/meminfo, …) over
// its own /proc. Those binds hold the FUSE connection they were made from;
// when its server dies they fail with ENOTCONN forever, and a new mount at
// the mount point does not change them. The Healer finds them and replaces
// them in place:
//
//   - Find: mountmgr.CensusWithOrphans reads every process's mountinfo,
//     once per mount namespace, for fuse.lxcfs mounts whose device is not
//     the live mount's, and for binds of the directory beneath the mount
//     point (containers created while nothing was mounted, which got an
//     empty directory a runtime made instead of our file).
//   - Repair: in the host's namespace, open_tree(OPEN_TREE_CLONE) of the
//     same path of the live mount gives a detached bind, given the broken
//     mount's flags with mount_setattr (read-only, nosuid, …). On a thread
//     that joined the container's mount namespace and chrooted to its root
//     (/proc/PID/root), the broken mount is detached and the clone attached
//     with move_mount, then read through. Nothing from the container's
//     image runs; distroless containers heal like any other.
//   - Last resort: with API access, a pod whose repair fails (or whose
//     lxcfs.k8s.io/heal annotation says "restart") is evicted through the
//     Eviction API, honouring PodDisruptionBudgets, with an Event saying
//     why; "ignore" leaves it alone. Pods are found by the pod UID in the
//     process's cgroup path and are never looked up on other nodes.
//
// Scans run at start and every interval; failures back off per namespace
// (doubling to 5 minutes) and at most MaxPerScan namespaces are repaired
// per scan.
//
// A file descriptor a container opened on the dead connection stays
// ENOTCONN: it belongs to that connection, and only reopening the path (now
// the fresh bind) helps. Programs that reopen /proc files for each read,
// as free, top and JVMs do, recover by themselves.
package heal
