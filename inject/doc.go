// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package inject computes the JSON patch that makes a pod read its /proc
// files from k8s-lxcfs. It is pure: no I/O, no API calls. The webhook
// package serves it; kustomize/components/admission-policy expresses the
// same rules as a MutatingAdmissionPolicy, and both must produce the same
// pod for the same input (see [Apply]).
//
// # Who gets injected
//
// A pod is injected when it is created in a namespace labelled
// lxcfs.k8s.io/inject=enabled, or when it carries the annotation
// lxcfs.k8s.io/inject: "enabled". The annotation lxcfs.k8s.io/inject:
// "disabled" opts a pod out even in an enabled namespace. Any other
// annotation value counts as absent. kube-system and lxcfs-system are
// excluded by the webhook's and the policy's namespaceSelector, not here.
//
// # What is injected
//
// One hostPath volume per file, named lxcfs-<path with / as ->
// (lxcfs-proc-meminfo, …, lxcfs-sys-devices-system-cpu): the names starting
// with "lxcfs-" are reserved. A pod volume that already has one of these
// names is kept as it is and not added again. Every container and every
// init container gets a read-only volumeMount with mountPropagation
// HostToContainer at /proc/meminfo, /proc/cpuinfo, /proc/stat,
// /proc/uptime, /proc/loadavg, /proc/diskstats, /proc/swaps,
// /proc/slabinfo and /sys/devices/system/cpu (and, with
// [Options.Pressure], /proc/pressure/{cpu,memory,io}). Volumes and mounts
// are appended after the pod's own, in that order.
//
// Conflicts are decided per path and per container: a container that
// already mounts something at exactly one of these mountPaths keeps its
// own mount and gets only the others. Paths are compared as strings, as
// the policy's CEL does.
//
// Init containers are injected too: an init script that sizes a heap or a
// thread pool reads the same files. Ephemeral containers are not: their
// volumeMounts can only be set through the pods/ephemeralcontainers
// subresource, which neither the webhook nor the policy intercepts, and
// the API refuses to change them on pod create anyway. A debug container
// sees the host's /proc unless `kubectl debug` is given mounts.
//
// Idempotence: a second invocation (reinvocationPolicy: IfNeeded) finds
// every volume by name and every mount by path and adds nothing.
//
// # A pod scheduled while the daemon is down
//
// File volumes use hostPath type File and the cpu directory type
// Directory. Neither creates anything on the host: with DirectoryOrCreate
// or an empty type kubelet would create a directory at
// /var/lib/lxcfs/proc/meminfo, and bind-mounting that directory over the
// file /proc/meminfo fails ("not a directory") until someone removes it.
// With type File, kubelet refuses to start the pod while
// /var/lib/lxcfs/proc/meminfo is missing or is not a regular file: the
// pod stays in ContainerCreating with a FailedMount event saying
// `hostPath type check failed: /var/lib/lxcfs/proc/meminfo is not a file`
// and kubelet retries with backoff, so the pod starts by itself once the
// daemon has mounted the filesystem. A pod that started before the daemon
// died sees ENOTCONN on these files until the daemon's healer repairs the
// mount (heal/), which HostToContainer propagation makes possible:
// remounts below /var/lib/lxcfs reach the container. HostToContainer is
// allowed on any hostPath, files included (API validation only restricts
// Bidirectional, to privileged containers).
package inject
