// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package metrics is the daemon's HTTP endpoint: Prometheus metrics on
// /metrics from a registry of its own (never the global one), and the
// probes /healthz and /readyz.
//
// The FUSE open path is hot, so per-file series are resolved once at start
// ([Metrics.File]) and an open costs two atomic adds and a histogram
// observation, no label lookup. Counters the daemon already keeps (heals,
// render errors, cached containers) are read at scrape time.
//
// Health and readiness follow the daemon's lifecycle ([Health]): healthy
// while its own loops run (a handover's quiesce included), never judged by
// reading the mount, so that a probe can't kill-loop a pod whose mount is
// broken for other reasons; ready only once a fresh mount or an adopted
// connection serves, and no longer once handed to a successor.
package metrics
