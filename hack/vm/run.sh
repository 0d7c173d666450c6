#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The k8s-lxcfs Authors.
#
# run.sh MODE... boots a Debian kernel under qemu once per MODE (v2: cgroup2
# only, cgroup_no_v1=all; v1: cgroup v1 controllers) with an initramfs
# holding the daemon, the privileged test binaries and the real clients the
# tests call, streams the guest console here, and fails when a test fails or
# the guest hangs (VM_TIMEOUT seconds per boot). VM_RUN=REGEXP runs only
# the matching tests.
#
# Inputs (made by `make test-v2`): _output/vm/bin/k8s-lxcfs and
# _output/vm/tests/*.test. The kernel package is downloaded once into
# VM_CACHE (default /var/cache/k8s-lxcfs/vm).
set -euo pipefail
cd "$(dirname "$0")/../.."

VM_CACHE=${VM_CACHE:-/var/cache/k8s-lxcfs/vm}
VM_TIMEOUT=${VM_TIMEOUT:-1200}
OUT=_output/vm
modes=("${@:-v2}")

log() { echo "vm: $*" >&2; }

need() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	[[ -x /bin/busybox ]] && /bin/busybox --list | grep -qx insmod || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	if ((${#missing[@]})); then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# kernel fetches Debian's linux-image-amd64 (the package it depends on) once.
kernel() {
	mkdir -p "$VM_CACHE"
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	[[ -n "$pkg" ]] || { log "cannot tell which kernel linux-image-amd64 depends on"; exit 1; }
	KDIR=$VM_CACHE/$pkg
	if [[ ! -f $KDIR/.done ]]; then
		log "fetching $pkg"
		rm -rf "$KDIR" && mkdir -p "$KDIR"
		(cd "$KDIR" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg -x ./*.deb root && rm -f ./*.deb)
		touch "$KDIR/.done"
	fi
	VMLINUZ=$(ls "$KDIR"/root/boot/vmlinuz-*)
	MODDIR=$(ls -d "$KDIR"/root/lib/modules/*)
}

# copy_bin adds host binaries and the shared libraries they load.
copy_bin() {
	local root=$1; shift
	for b in "$@"; do
		local p
		p=$(command -v "$b")
		mkdir -p "$root$(dirname "$p")"
		cp -L "$p" "$root$p"
		ldd "$p" 2>/dev/null | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
			[[ -e $lib ]] || continue
			mkdir -p "$root$(dirname "$lib")"
			cp -Ln "$lib" "$root$lib" 2>/dev/null || true
		done
	done
}

initramfs() {
	local root=$OUT/root
	rm -rf "$root" && mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,modules,tests,var/tmp,lib64}
	# The real clients the tests call: busybox's free and uptime would call
	# sysinfo(2) and never read /proc, and its ps lacks -p.
	copy_bin "$root" free top uptime ps lscpu nsenter unshare mount umount getconf dd mkswap swapon dash
	cp /lib64/ld-linux-x86-64.so.2 "$root/lib64/" 2>/dev/null || true
	# /bin/sh is dash: Debian's static busybox prefers its own applets to
	# anything on PATH, so a busybox sh would run busybox's mount and ps.
	ln -s /usr/bin/dash "$root/bin/sh"
	cp /bin/busybox "$root/bin/busybox"
	for a in $(/bin/busybox --list); do
		[[ -e $root/bin/$a || -e $root/usr/bin/$a || -e $root/usr/sbin/$a ]] || ln -s busybox "$root/bin/$a"
	done
	for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk fuse; do
		f=$(find "$MODDIR" -name "$m.ko*" | head -1)
		[[ -n $f ]] && cp "$f" "$root/modules/$m.ko"
	done
	cp "$OUT/bin/k8s-lxcfs" "$root/usr/bin/k8s-lxcfs"
	cp "$OUT"/tests/*.test "$root/tests/"
	cp hack/vm/init.sh "$root/init" && chmod +x "$root/init"
	# top(1) needs a terminal description even in batch mode.
	mkdir -p "$root/lib/terminfo/l" "$root/lib/terminfo/d"
	cp /lib/terminfo/l/linux "$root/lib/terminfo/l/" && cp /lib/terminfo/d/dumb "$root/lib/terminfo/d/"
	echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
	echo "root:x:0:" > "$root/etc/group"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/initramfs.gz"
}

accel() {
	# /dev/kvm on PVM hosts (kvm_pvm) boots only PVM guest kernels; a stock
	# Debian kernel hangs there, so those hosts use TCG.
	if [[ -w /dev/kvm && ! -d /sys/module/kvm_pvm ]]; then
		echo "-accel kvm -cpu host"
	else
		echo "-accel tcg,thread=multi -cpu max"
	fi
}

boot() {
	local mode=$1 console=$OUT/console-$1.log args
	# mitigations=off: speculative-execution defences cost a lot under TCG and
	# protect nothing in a throwaway test guest.
	args="console=ttyS0 panic=-1 quiet loglevel=3 psi=1 mitigations=off k8s_lxcfs_mode=$mode"
	[[ $mode == v2 ]] && args+=" cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
	[[ -n ${VM_RUN:-} ]] && args+=" k8s_lxcfs_run=$VM_RUN" # a -test.run regexp, for debugging one test
	truncate -s 512M "$OUT/swap-$mode.img"
	truncate -s 256M "$OUT/scratch-$mode.img"
	log "booting mode=$mode with $(accel | cut -d' ' -f2) (timeout ${VM_TIMEOUT}s)"
	local start=$SECONDS rc=0
	# shellcheck disable=SC2046
	timeout --signal=KILL "$VM_TIMEOUT" qemu-system-x86_64 $(accel) -smp 2 -m 2048 -nodefaults \
		-kernel "$VMLINUZ" -initrd "$OUT/initramfs.gz" -append "$args" \
		-drive "file=$OUT/swap-$mode.img,if=virtio,format=raw" \
		-drive "file=$OUT/scratch-$mode.img,if=virtio,format=raw" \
		-display none -serial stdio -monitor none -no-reboot </dev/null 2>&1 | tee "$console" || rc=$?
	rm -f "$OUT/swap-$mode.img" "$OUT/scratch-$mode.img"
	log "mode=$mode finished in $((SECONDS - start))s (qemu rc=$rc)"
	if ! grep -q "K8S-LXCFS-VM-DONE mode=$mode" "$console"; then
		log "FAIL mode=$mode: the guest did not finish (hang, crash or timeout); console in $console"
		return 1
	fi
	local bad
	bad=$(grep "K8S-LXCFS-VM-RESULT mode=$mode" "$console" | grep -v ' rc=0' || true)
	grep "K8S-LXCFS-VM-RESULT mode=$mode" "$console" | sed 's/^/vm: /' >&2
	if [[ -n $bad ]]; then
		log "FAIL mode=$mode"
		return 1
	fi
	grep -c -- "--- PASS" "$console" | xargs -I{} echo "vm: mode=$mode: {} tests passed" >&2
}

need
kernel
initramfs
# The modes boot one after the other. VM_PARALLEL=1 boots them side by side,
# which on a 2-core host was no faster (2m40s against 2m20s) and starved
# the guests' CPU-time tests (a 0.5-CPU container got 0.23 CPUs).
status=0
if [[ ${VM_PARALLEL:-0} == 1 && ${#modes[@]} -gt 1 ]]; then
	pids=()
	for m in "${modes[@]}"; do
		boot "$m" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || status=1
	done
else
	for m in "${modes[@]}"; do
		boot "$m" || status=1
	done
fi
exit $status
