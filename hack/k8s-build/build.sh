#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The k8s-lxcfs Authors.
#
# build.sh assembles the envtest assets directory for the integration tests
# (make test-integration; KUBEBUILDER_ASSETS): kube-apiserver built from the
# k8s.io/kubernetes Go module, plus links to the host's etcd and kubectl
# (kubectl is built too if the host has none). Everything lives in a cache
# directory outside the repository; a binary already there is not rebuilt.
#
# k8s.io/kubernetes is not meant to be imported: its go.mod replaces every
# staging module (k8s.io/api, k8s.io/client-go, ...) with ./staging paths. A
# throwaway module under $K8S_BUILD_DIR reproduces that replace block with
# published v0.X.Y versions; it never touches this repository's go.mod.
#
# Cold build of kube-apiserver: 8-10 min on 2 idle cores (34 min measured while
# other builds shared them), 2.4 GB peak RSS, ~3 GB of GOCACHE; warm: instant.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
CACHE_ROOT="${K8S_LXCFS_CACHE:-/var/cache/k8s-lxcfs}"
BIN_DIR="${K8S_BIN_DIR:-$CACHE_ROOT/k8s-$K8S_VERSION}"
K8S_BUILD_DIR="${K8S_BUILD_DIR:-$CACHE_ROOT/k8s-build}"
GO="${GO:-go}"

# link NAME: $BIN_DIR/NAME -> the host's NAME, if it has one.
link() {
	local p
	p="$(command -v "$1" || true)"
	[[ -n "$p" ]] || return 1
	ln -sfn "$p" "$BIN_DIR/$1"
}

mkdir -p "$BIN_DIR"
if ! link etcd; then
	echo "no etcd in PATH: install Debian's etcd-server (make test-integration does)" >&2
	exit 1
fi
targets=()
[[ -x "$BIN_DIR/kube-apiserver" ]] || targets+=(kube-apiserver)
if [[ ! -x "$BIN_DIR/kubectl" || -L "$BIN_DIR/kubectl" ]] && ! link kubectl; then
	targets+=(kubectl)
fi
if ((${#targets[@]} == 0)); then
	echo "envtest assets ready in $BIN_DIR (kube-apiserver $K8S_VERSION cached)"
	exit 0
fi

minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
staging="v0.${K8S_VERSION#v1.}" # v1.37.2 -> v0.37.2

mkdir -p "$K8S_BUILD_DIR"
cd "$K8S_BUILD_DIR"

# Every staging module k8s.io/kubernetes replaces. sample-cli-plugin and
# sample-controller are left out: nothing needs them and the proxy refuses them.
staging_modules=(
	api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
	cloud-provider cluster-bootstrap code-generator component-base
	component-helpers controller-manager cri-api cri-client cri-streaming
	csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
	kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler
	kubectl kubelet metrics mount-utils pod-security-admission
	sample-apiserver streaming
)

{
	echo "module example.com/k8sbuild"
	echo
	echo "go 1.26.0"
	echo
	echo "require k8s.io/kubernetes $K8S_VERSION"
	echo
	echo "replace ("
	for m in "${staging_modules[@]}"; do
		echo "	k8s.io/$m => k8s.io/$m $staging"
	done
	echo ")"
} >go.mod

cat >tools.go <<'GO'
//go:build tools

package k8sbuild

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO

if [[ ! -f go.sum ]] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" go.sum || ! grep -q "k8s.io/kubectl $staging" go.sum; then
	echo "resolving k8s.io/kubernetes $K8S_VERSION module graph in $K8S_BUILD_DIR"
	"$GO" mod tidy
fi

# Without these, the binary reports v0.0.0-master and kubectl/envtest warn.
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

for t in "${targets[@]}"; do
	echo "building $t $K8S_VERSION into $BIN_DIR (kube-apiserver, cold: ~10 min on 2 cores)"
	start=$(date +%s)
	# Build to a temporary name and rename, so that an interrupted build never
	# leaves a binary that the check above would trust.
	CGO_ENABLED=0 "$GO" build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$t.tmp" "k8s.io/kubernetes/cmd/$t"
	mv -f "$BIN_DIR/$t.tmp" "$BIN_DIR/$t"
	echo "built $t in $(($(date +%s) - start)) s"
done
echo "envtest assets ready in $BIN_DIR"
