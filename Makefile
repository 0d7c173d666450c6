# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The k8s-lxcfs Authors.

SHELL   := /bin/bash
MODULE  := github.com/k8s-lxcfs/k8s-lxcfs
VERSION ?= $(shell git describe --tags --dirty --always 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(MODULE)/internal/version.Version=$(VERSION)
# The Go toolchain ensure-deps found or installed (see hack/ensure-deps.sh).
GO       = $(shell cat _output/go 2>/dev/null || command -v go)
# Privileged tests run as root in a private mount namespace, so a mount a
# failed test leaves behind dies with the test binary.
PRIV_EXEC ?= env K8S_LXCFS_PRIVILEGED_TESTS=1 unshare --mount --propagation private

.PHONY: all build demo test verify test-unit test-priv test-v2 fuzz bench bench-scale deps deps-bench clean help

all: build

help: ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

deps: ## install what build, demo and tests need (Go, procps, util-linux) if missing
	@mkdir -p _output && hack/ensure-deps.sh base | tail -1 > _output/go

deps-bench: ## deps plus Debian's lxcfs, the benchmark's peer
	@mkdir -p _output && hack/ensure-deps.sh base bench | tail -1 > _output/go

build: deps ## static binary bin/k8s-lxcfs
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/k8s-lxcfs ./cmd/k8s-lxcfs

demo: build ## mount on a temp dir, run a 256 MiB / 1.5 CPU sandbox container, show inside vs outside
	$(GO) run ./hack/demo -bin bin/k8s-lxcfs

test: deps verify test-unit test-priv test-integration test-v2 ## everything: lint, unit, privileged (as root) on this kernel, a real kube-apiserver (envtest), and cgroup v2 and v1 VMs

verify: deps ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$out" ]]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test-unit: deps ## L0: unprivileged unit, fixture, golden and fuzz-seed tests, with -race
	$(GO) test -race -count=1 ./...

test-priv: deps ## L1: real FUSE, cgroups and namespaces; must run as root (fails, never skips, once started)
	@if [[ $$(id -u) != 0 ]]; then echo "test-priv must run as root (CI does)"; exit 1; fi
	$(GO) test -exec '$(PRIV_EXEC)' -p 1 -count=1 -timeout 20m -run '^TestPriv' ./...

fuzz: deps ## run each parser fuzzer for FUZZTIME (default 30s)
	@for f in $$($(GO) test -list '^Fuzz' ./internal/procfs | grep ^Fuzz); do \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $${FUZZTIME:-30s} ./internal/procfs || exit 1; done

bench: deps-bench build ## k8s-lxcfs vs lxcfs 5.0.3 vs host /proc: ops/s, p50/p99, daemon CPU/read, RSS
	$(GO) run ./hack/bench -bin bin/k8s-lxcfs

bench-scale: deps-bench build ## per-read cost at 10 vs 1000 cgroups; loadavg sampling cost at 1000
	$(GO) run ./hack/bench -bin bin/k8s-lxcfs -scale -loadavg-cost

clean:
	rm -rf bin _output

# Packages with privileged tests, built as test binaries for the VM.
PRIV_PKGS = $(shell grep -l 'func TestPriv' $$(git ls-files '*_test.go') | xargs -n1 dirname | sort -u)

test-v2: deps ## L1 on real cgroup v2 (and v1) kernels: the privileged suite inside qemu
	@rm -rf _output/vm/tests _output/vm/bin && mkdir -p _output/vm/tests _output/vm/bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o _output/vm/bin/k8s-lxcfs ./cmd/k8s-lxcfs
	CGO_ENABLED=0 $(GO) test -c -o _output/vm/tests/ $(addprefix ./,$(PRIV_PKGS))
	hack/vm/run.sh $${VM_MODES:-v2 v1}

.PHONY: bench-upgrade
bench-upgrade: deps build ## 50 live handovers between bin/k8s-lxcfs and bin/k8s-lxcfs-next under 8 readers: failed reads, stalls, predecessor exits
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X $(MODULE)/internal/version.Version=$(VERSION)-next' -o bin/k8s-lxcfs-next ./cmd/k8s-lxcfs
	$(GO) run ./hack/bench -upgrade -bin bin/k8s-lxcfs -bin2 bin/k8s-lxcfs-next $(BENCH_UPGRADE_FLAGS)

# Readers pinned to CPU 0 leave the daemons a CPU, as a node with CPUs
# reserved for system daemons does; BENCH_UPGRADE_FLAGS= runs them anywhere.
BENCH_UPGRADE_FLAGS ?= -reader-cpus=0

.PHONY: bench-heal
bench-heal: deps build ## SIGKILL + restart of bin/k8s-lxcfs under 10 and 100 containers: time until every container's binds are repaired in place
	$(GO) run ./hack/bench -heal -bin bin/k8s-lxcfs $(BENCH_HEAL_FLAGS)

# Images and manifests. IMG names the image `make image` builds and what
# your overlay should point at (kustomize edit set image k8s-lxcfs=$(IMG)).
IMG       ?= k8s-lxcfs:$(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
# e.g. --push (to a registry), or PLATFORMS=linux/amd64 IMAGE_BUILD_FLAGS=--load
IMAGE_BUILD_FLAGS ?=
KUBECTL   ?= kubectl
# overlay:rendered file pairs under kustomize/overlays and manifests/;
# kustomize/kustomize_test.go renders the same and fails on drift.
MANIFESTS = default:install admission-policy:install-admission-policy

.PHONY: image manifests verify-manifests
image: ## multi-arch image $(IMG) for $(PLATFORMS) with docker buildx; without docker, says how to build it
	@if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
		set -x; docker buildx build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) -t $(IMG) $(IMAGE_BUILD_FLAGS) . ; \
	else \
		echo "make image: no usable docker buildx here (docker engine and buildx needed); nothing built."; \
		echo "To build $(IMG) elsewhere, from this directory:"; \
		echo "  docker buildx build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) -t $(IMG) --push ."; \
		echo "or, with podman/buildah: podman build --platform $(PLATFORMS) --build-arg VERSION=$(VERSION) --manifest $(IMG) ."; \
	fi

manifests: ## render kustomize/overlays/{default,admission-policy} to manifests/install{,-admission-policy}.yaml
	@mkdir -p manifests
	@for m in $(MANIFESTS); do o=$${m%%:*} f=manifests/$${m#*:}.yaml; \
		{ echo "# Rendered from kustomize/overlays/$$o by \`make manifests\`; do not edit."; \
		  $(KUBECTL) kustomize kustomize/overlays/$$o; } > $$f.tmp && mv $$f.tmp $$f || { rm -f $$f.tmp; exit 1; }; \
		echo "$$f"; done

verify-manifests: manifests ## manifests/ is what the kustomize tree renders
	git diff --exit-code -- manifests/

# Integration tests (test/integration, its own module): envtest against a real
# kube-apiserver $(K8S_VERSION) and etcd. hack/k8s-build/build.sh builds
# kube-apiserver from k8s.io/kubernetes once into $(K8S_ASSETS), outside the
# repository (~10 min and ~3 GB of GOCACHE cold on 2 cores; seconds afterwards),
# and links etcd (Debian etcd-server) and kubectl there.
K8S_VERSION ?= v1.37.2
K8S_ASSETS  ?= /var/cache/k8s-lxcfs/k8s-$(K8S_VERSION)

.PHONY: test-integration
test-integration: deps ## envtest on a real kube-apiserver + etcd: RBAC, eviction and PDBs, manifests dry-run, webhook vs admission policy
	@command -v etcd >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server; }
	GO=$(GO) K8S_VERSION=$(K8S_VERSION) K8S_BIN_DIR=$(K8S_ASSETS) hack/k8s-build/build.sh
	cd test/integration && KUBEBUILDER_ASSETS=$(K8S_ASSETS) $(GO) test -count=1 -timeout 10m ./...
