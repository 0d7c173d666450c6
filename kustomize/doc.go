// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package kustomize has no code. This directory holds the kustomize tree the
// deployment is built from (base/, components/, overlays/), and the package's
// tests check it: that every overlay renders, that manifests/ is what it
// renders (`make manifests`), that the DaemonSet keeps the fields the daemon
// depends on, and that the RBAC is exactly what heal.RBACRules asks for.
package kustomize
