#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The k8s-lxcfs Authors.
#
# PID 1 of the test VM (see run.sh). It mounts the basics, sets up the cgroup
# layout the kernel command line asks for (k8s_lxcfs_mode=v2 or v1), gives the
# machine swap, runs every privileged test binary in /tests and reports each
# result on the console as "K8S-LXCFS-VM-RESULT mode=... test=... rc=...",
# then powers off. The host reads those lines; a guest that never prints
# "K8S-LXCFS-VM-DONE" has hung or crashed.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
set -o pipefail # a test's status, not sed's, decides each result
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run /var/tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname k8s-lxcfs-vm
# Loopback: the daemon's metrics and probe server listens on 127.0.0.1.
/bin/busybox ip link set lo up 2>/dev/null || /bin/busybox ifconfig lo 127.0.0.1 up

mode=$(sed -n 's/.*k8s_lxcfs_mode=\([a-z0-9]*\).*/\1/p' /proc/cmdline)
run=$(sed -n 's/.*k8s_lxcfs_run=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "K8S-LXCFS-VM: booted $(uname -r), mode=$mode, $(nproc) CPUs, $(awk '/MemTotal/{print $2}' /proc/meminfo) kB"

for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk fuse; do
	insmod /modules/$m.ko || echo "K8S-LXCFS-VM: insmod $m failed"
done
mdev -s 2>/dev/null
# /dev/vda: swap, so memory.swap.max and memsw have something to account.
# /dev/vdb: a raw scratch disk the I/O tests write to with O_DIRECT (the
# root is an initramfs, where O_DIRECT isn't supported).
i=0; while [ ! -b /dev/vdb ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
mkswap /dev/vda >/dev/null && swapon /dev/vda
echo 0 > /sys/module/zswap/parameters/enabled 2>/dev/null # swap to the disk, not to compressed RAM
export K8S_LXCFS_SCRATCH_DEV=/dev/vdb

case "$mode" in
v2)
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	echo "+cpuset +cpu +io +memory +pids" > /sys/fs/cgroup/cgroup.subtree_control
	;;
v1)
	mount -t tmpfs cgroup /sys/fs/cgroup
	for c in cpuset memory blkio pids devices freezer; do
		mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
	done
	# systemd's layout: cpu and cpuacct co-mounted, with a link for each name.
	mkdir -p /sys/fs/cgroup/cpu,cpuacct && mount -t cgroup -o cpu,cpuacct cgroup /sys/fs/cgroup/cpu,cpuacct
	ln -s cpu,cpuacct /sys/fs/cgroup/cpu
	ln -s cpu,cpuacct /sys/fs/cgroup/cpuacct
	echo 1 > /sys/fs/cgroup/memory/memory.use_hierarchy 2>/dev/null
	;;
esac
echo "K8S-LXCFS-VM: cgroups: $(awk '$3 ~ /cgroup/ {print $3":"$2}' /proc/mounts | tr '\n' ' ')"

export TERM=linux K8S_LXCFS_PRIVILEGED_TESTS=1 K8S_LXCFS_BIN=/usr/bin/k8s-lxcfs K8S_LXCFS_VM_MODE=$mode HOME=/root
mkdir -p /root
cd /tmp
for t in /tests/*.test; do
	name=$(basename "$t" .test)
	echo "K8S-LXCFS-VM: === $name ($mode)"
	# A private mount namespace per binary, as on the host (make test-priv).
	unshare --mount --propagation private "$t" -test.run "${run:-^TestPriv}" -test.v -test.count=1 -test.timeout=15m 2>&1 | sed "s/^/[$mode] /"
	rc=$?
	echo "K8S-LXCFS-VM-RESULT mode=$mode test=$name rc=$rc"
done
echo "K8S-LXCFS-VM-DONE mode=$mode"
sync
poweroff -f
