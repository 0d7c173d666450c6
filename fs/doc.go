// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package fs is the k8s-lxcfs filesystem: a read-only FUSE tree laid out like
// lxcfs's (proc/meminfo, proc/stat, ..., sys/devices/system/cpu) whose files
// are rendered, at open, for the container of the process opening them.
//
// It is a go-fuse [fuse.RawFileSystem] rather than a go-fuse fs (node API)
// tree, because the connection must outlive the process: a successor adopts
// the live /dev/fuse and must answer for the node IDs and file handles the
// kernel already holds. Here a node ID is a pure function of the node's path
// (FNV-1a), so any version computes the same IDs, and the handle table is
// plain data that can be exported.
//
// The transport is ours too (server.go): go-fuse's exported ProtocolServer
// decodes and encodes requests, while this package owns the /dev/fuse file,
// the INIT exchange and the worker loop. Owning the loop is what lets a
// process stop reading between requests (quiesce) and serve a connection whose
// INIT happened in another process.
//
// Each open renders one snapshot; reads at any offset slice that snapshot
// (FOPEN_DIRECT_IO), so chunked reads assemble exactly one consistent text.
// When the reader's container can't be resolved, the host's file is served:
// an answer that breaks `free` is worse than an unvirtualized one.
package fs
