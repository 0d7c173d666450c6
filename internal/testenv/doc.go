// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package testenv holds the gates and environment probes shared by the
// privileged (L1) tests, the *_priv_test.go files with TestPriv* tests.
// Privileged tests are opt-in through K8S_LXCFS_PRIVILEGED_TESTS=1; once opted
// in, a missing prerequisite is a test failure, never a skip, so CI cannot
// turn green by accident.
//
// It imports package testing: only tests may import it (sandbox does not).
package testenv
