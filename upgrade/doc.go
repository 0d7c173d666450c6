// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package upgrade hands the live /dev/fuse connection to a successor daemon
// on the same node. It never unmounts: containers' bind mounts of the
// filesystem's files stay on the same connection and never see ENOTCONN.
//
// # Protocol
//
// The serving daemon (the predecessor) listens on a unix stream socket,
// /run/k8s-lxcfs/handover.sock by default, readable by root only. Both
// sides check with SO_PEERCRED that the other is root. Messages are JSON
// objects, each framed by a 4-byte little-endian length; descriptors travel
// as SCM_RIGHTS on the frame that names them. Every step has a deadline.
//
//	successor                         predecessor
//	hello {op, protocol range, version} →
//	                                  ← offer {protocol, version, mount point, FUSE session}
//	                                    or refuse {error}
//	(checks the offer: same mount point, and replaying the FUSE INIT gives
//	 the reply the kernel already got; else abort {error}, nothing stopped)
//	take →
//	                                  (stops reading requests, answers those in flight)
//	                                  ← state {…} + SCM_RIGHTS [fuse, root]
//	(imports the state)
//	adopted →
//	                                  ← release
//	(serves)                          (closes its descriptors, exits 0)
//
// Until the predecessor has sent release, it can still take the connection
// back: if the successor aborts, disconnects or misses a deadline, the
// predecessor resumes serving (the requests that queued meanwhile are
// answered then). The successor serves only after release, or when the
// predecessor has died after sending its state (it checks with a pidfd):
// exactly one process serves at any time. A status query (hello with op
// "status") gets the predecessor's status and changes nothing.
//
// The protocol version is negotiated in hello/offer: each side states the
// range it speaks, and the highest common one is used, so adjacent releases
// upgrade and downgrade. With no common version, the predecessor refuses
// before stopping anything, and the successor exits with that error.
//
// # Why our own serve loop
//
// go-fuse's Server reads the kernel's INIT itself and cannot be given a
// connection that is already initialised (go-fuse#618, #522). k8s-lxcfs
// keeps go-fuse as the FUSE library but drives its exported ProtocolServer
// from its own loop (package fs): the predecessor saves the INIT request and
// its reply, and the successor replays the request into a fresh
// ProtocolServer, which so learns what the kernel negotiated, and checks
// that its reply is the very one the kernel got. No fork of go-fuse is
// needed.
//
// # Kernel facts this relies on
//
// A descriptor passed with SCM_RIGHTS is the same open file: requests the
// predecessor read but never answered would hang, which is why it quiesces
// (stops reading and answers what it read) before sending. The connection
// ends only when the last /dev/fuse file is closed, so nothing is lost while
// both processes hold it. FUSE_DEV_IOC_CLONE, which gives a second file with
// its own request queue, is not needed: one process serves at a time.
package upgrade
