// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package procfs parses the host's /proc and cgroup text files that k8s-lxcfs
// virtualizes. Parsers are pure functions over bytes, so they are fuzzed and
// fixture-tested; they never panic on malformed input and report it as an error
// naming the file and the offending text.
package procfs
