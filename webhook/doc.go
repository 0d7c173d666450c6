// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

// Package webhook serves the inject package as a mutating admission webhook
// (AdmissionReview v1) over HTTPS, with a certificate either read from files
// (cert-manager; reloaded when they change) or managed here: a CA and a
// serving certificate kept in a Secret, and the CA bundle written into the
// MutatingWebhookConfiguration.
//
// Two paths carry the opt-in that label selectors can express: the
// MutatingWebhookConfiguration sends pods of namespaces labelled
// lxcfs.k8s.io/inject=enabled to [PathNamespace] and all other pods to
// [PathMutate], where only the pod annotation can opt in. So the server
// never reads Namespace objects and needs no RBAC for them.
//
// The handler never blocks a pod: anything it can't mutate is allowed
// unchanged (and failurePolicy is Ignore). Request bodies above [MaxBody]
// get 413, malformed reviews 400, a panic 500; the API server then applies
// the failure policy.
package webhook
