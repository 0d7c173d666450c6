// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package stress drives live-upgrade scenarios against real k8s-lxcfs
// binaries: a daemon serves a mount, sandbox containers (internal/sandbox)
// read it through bind mounts over /proc, and successors take the live FUSE
// connection over one after another while the readers keep reading.
//
// It is shared by the privileged test TestPrivHandoverUnderLoad
// (internal/daemon) and by `make bench-upgrade` (hack/bench -upgrade), so the
// assertions and the benchmark table come from one orchestration and one
// reader. It does not import package testing: callers judge the [UpgradeResult].
//
// The reader is the caller's own binary re-run inside each container (the test
// binary in helper mode, or the bench binary's hidden subcommand); it calls
// [ReaderMain]. Readers timestamp every read with CLOCK_MONOTONIC, which is
// system-wide, so the orchestrator can attribute reads to handover windows
// after the fact.
//
// Everything a run creates (daemons, containers, cgroups, FIFOs, mounts) is
// removed before [RunUpgrade] returns, also after failures.
package stress
