# syntax=docker/dockerfile:1
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The k8s-lxcfs Authors.
#
# `make image` builds this for linux/amd64 and linux/arm64 with docker buildx:
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v1.2.3 -t k8s-lxcfs:v1.2.3 .
# The binary is cross-compiled on the build machine's platform (no emulation):
# it is pure Go (CGO_ENABLED=0), so GOOS/GOARCH are all a cross build needs.

# Keep in step with the go directive of go.mod. Release builds pin it (and the
# base below) by digest.
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/k8s-lxcfs/k8s-lxcfs/internal/version.Version=${VERSION}" \
      -o /out/k8s-lxcfs ./cmd/k8s-lxcfs

# distroless static: no shell, no package manager, no libc; CA certificates
# (for the API server's chain, though in-cluster config brings its own CA),
# /etc/passwd and tzdata only. Nothing else is needed: the daemon mounts with
# mount(2) itself (go-fuse DirectMountStrict, no fusermount), enters other
# mount namespaces with setns(2) (no nsenter), and reads mount tables with
# moby/sys/mountinfo (no findmnt).
#
# The :latest tag runs as root, and root it must be: the DaemonSet is
# privileged, and the daemon opens /dev/fuse, mounts, setns()es into the
# host's and containers' mount namespaces and binds files there with
# open_tree/move_mount. A :nonroot image would need USER 0 in the pod spec
# anyway; saying it here keeps `docker run` and the pod consistent.
FROM gcr.io/distroless/static-debian12:latest
COPY --from=build /out/k8s-lxcfs /k8s-lxcfs
USER 0:0
ENTRYPOINT ["/k8s-lxcfs"]
