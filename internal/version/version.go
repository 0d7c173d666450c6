// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package version holds the build's version string, stamped by the linker:
// -ldflags "-X github.com/k8s-lxcfs/k8s-lxcfs/internal/version.Version=v1.2.3".
package version

// Version identifies this build. It is "dev" for builds without ldflags.
var Version = "dev"
