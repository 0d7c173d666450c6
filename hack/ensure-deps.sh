#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The k8s-lxcfs Authors.
#
# ensure-deps.sh [profile...] installs what `make test`, `make demo` and
# `make bench` need on a fresh Debian machine, and nothing when it is there.
# Profiles: base (Go, procps, util-linux), bench (+ Debian's lxcfs, the peer).
# Prints the Go binary to use on its last line.
set -euo pipefail

GO_VERSION=$(awk '/^go /{print $2}' "$(dirname "$0")/../go.mod")
profiles=("${@:-base}")

need_pkgs=()
want() { command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2"); }
want free procps
want top procps
want uptime procps
want lscpu util-linux
want unshare util-linux
want nsenter util-linux
want getconf libc-bin
want curl curl
want unzip unzip
for p in "${profiles[@]}"; do
	case "$p" in
	bench) want lxcfs lxcfs ;;
	base) ;;
	*) echo "ensure-deps: unknown profile $p" >&2; exit 2 ;;
	esac
done

if ((${#need_pkgs[@]})); then
	if [[ $(id -u) != 0 ]]; then
		echo "ensure-deps: missing ${need_pkgs[*]}; run as root or install them" >&2
		exit 1
	fi
	echo "ensure-deps: installing ${need_pkgs[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
	# Debian's lxcfs package starts its own daemon on /var/lib/lxcfs; the
	# benchmark runs lxcfs itself on a private mount point instead.
	if [[ " ${need_pkgs[*]} " == *" lxcfs "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
		systemctl disable --now lxcfs >&2 || true
	fi
fi

# Go: the one on PATH or in /usr/local/go if new enough, else the toolchain
# zip from the Go module proxy (the only Go download this needs).
go_ok() { [[ -x "$1" ]] && "$1" version 2>/dev/null | grep -qE "go1\.(2[6-9]|[3-9][0-9])"; }
for g in "$(command -v go || true)" /usr/local/go/bin/go "/usr/local/go$GO_VERSION/bin/go"; do
	if [[ -n "$g" ]] && go_ok "$g"; then
		echo "$g"
		exit 0
	fi
done
dest=/usr/local/go$GO_VERSION
echo "ensure-deps: fetching Go $GO_VERSION from the module proxy into $dest" >&2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
arch=$(dpkg --print-architecture)
curl -fsSL -o "$tmp/go.zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip"
unzip -q "$tmp/go.zip" -d "$tmp"
mv "$tmp/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch" "$dest"
chmod +x "$dest"/bin/* "$dest"/pkg/tool/*/* 2>/dev/null || true
echo "$dest/bin/go"
