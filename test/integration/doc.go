// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package integration runs k8s-lxcfs's Kubernetes-facing code against a real
// kube-apiserver and etcd (controller-runtime's envtest): RBAC as the API
// server evaluates it, evictions and PodDisruptionBudgets as the eviction
// subresource decides them, the manifests as the API server validates them,
// and pod injection through the webhook and the MutatingAdmissionPolicy.
//
// It is its own module so that controller-runtime and envtest stay out of the
// product's go.mod. `make test-integration` installs etcd (Debian
// etcd-server), builds kube-apiserver v1.37.2 once into
// /var/cache/k8s-lxcfs/k8s-v1.37.2 (hack/k8s-build/build.sh) and runs
// `go test ./...` here with KUBEBUILDER_ASSETS pointing at it. Without those
// binaries the tests fail and say so; they never skip.
//
// envtest runs no controllers and no kubelet: pods are API objects that
// stay Pending unless a test writes their status as a kubelet would, nothing
// deletes a terminating pod, and PodDisruptionBudget status is whatever a
// test writes in place of the disruption controller.
package integration
