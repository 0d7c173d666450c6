// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal_test

import (
	"strings"
	"testing"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
)

// Fixture cgroup paths in the shapes the kubelet writes (containerd 1.7/2.x,
// kubelet 1.28+); the UID and container ID are made up.
const (
	puidUID   = "6b1f1d5e-3c2a-4f5e-9d8a-0e1b2c3d4e5f"
	puidUID_  = "6b1f1d5e_3c2a_4f5e_9d8a_0e1b2c3d4e5f" // systemd slice spelling
	puidUID2  = "0c9d8e7f-6a5b-4c3d-8e1f-a0b1c2d3e4f5"
	puidCtrID = "e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5"
)

// puidV1CgroupfsBurstable is a whole /proc/PID/cgroup of a burstable pod's
// container on a cgroup v1 node with the cgroupfs driver.
const puidV1CgroupfsBurstable = `12:hugetlb:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
11:cpuset:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
10:pids:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
9:net_cls,net_prio:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
8:freezer:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
7:perf_event:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
6:devices:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
5:blkio:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
4:memory:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
3:cpu,cpuacct:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
2:rdma:/
1:name=systemd:/kubepods/burstable/pod` + puidUID + `/` + puidCtrID + `
0::/
`

// puidV1SystemdGuaranteed is the same on a cgroup v1 (hybrid) node with the
// systemd driver, for a guaranteed pod (no QoS slice).
const puidV1SystemdGuaranteed = `11:memory:/kubepods.slice/kubepods-pod` + puidUID_ + `.slice/cri-containerd-` + puidCtrID + `.scope
10:cpu,cpuacct:/kubepods.slice/kubepods-pod` + puidUID_ + `.slice/cri-containerd-` + puidCtrID + `.scope
4:pids:/kubepods.slice/kubepods-pod` + puidUID_ + `.slice/cri-containerd-` + puidCtrID + `.scope
1:name=systemd:/kubepods.slice/kubepods-pod` + puidUID_ + `.slice/cri-containerd-` + puidCtrID + `.scope
0::/kubepods.slice/kubepods-pod` + puidUID_ + `.slice/cri-containerd-` + puidCtrID + `.scope
`

func TestPodUIDFromCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cgroup string
		want   string // "" means not found
	}{
		{name: "v1-cgroupfs-burstable", cgroup: puidV1CgroupfsBurstable, want: puidUID},
		{name: "v1-systemd-guaranteed", cgroup: puidV1SystemdGuaranteed, want: puidUID},
		{name: "v1-cgroupfs-guaranteed", cgroup: "4:memory:/kubepods/pod" + puidUID + "/" + puidCtrID + "\n", want: puidUID},
		{name: "v1-cgroupfs-besteffort", cgroup: "4:memory:/kubepods/besteffort/pod" + puidUID + "/" + puidCtrID + "\n", want: puidUID},
		{name: "v1-cgroupfs-pod-level", cgroup: "4:memory:/kubepods/burstable/pod" + puidUID + "\n", want: puidUID},
		{name: "v2-cgroupfs-burstable", cgroup: "0::/kubepods/burstable/pod" + puidUID + "/" + puidCtrID + "\n", want: puidUID},
		{name: "v2-cgroupfs-guaranteed", cgroup: "0::/kubepods/pod" + puidUID + "/" + puidCtrID + "\n", want: puidUID},
		{
			name:   "v2-systemd-burstable",
			cgroup: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + puidUID_ + ".slice/cri-containerd-" + puidCtrID + ".scope\n",
			want:   puidUID,
		},
		{
			name:   "v2-systemd-besteffort",
			cgroup: "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + puidUID_ + ".slice/cri-containerd-" + puidCtrID + ".scope\n",
			want:   puidUID,
		},
		{
			name:   "v2-systemd-guaranteed",
			cgroup: "0::/kubepods.slice/kubepods-pod" + puidUID_ + ".slice/cri-containerd-" + puidCtrID + ".scope\n",
			want:   puidUID,
		},
		{
			name:   "v2-systemd-crio",
			cgroup: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + puidUID_ + ".slice/crio-" + puidCtrID + ".scope\n",
			want:   puidUID,
		},
		{
			name:   "v2-systemd-escaped-dashes",
			cgroup: `0::/kubepods.slice/kubepods-pod` + strings.ReplaceAll(puidUID, "-", `\x2d`) + ".slice/x.scope\n",
			want:   puidUID,
		},
		{
			name:   "v2-cgroup-namespace-relative",
			cgroup: "0::/../../kubepods-burstable-pod" + puidUID_ + ".slice/cri-containerd-" + puidCtrID + ".scope\n",
			want:   puidUID,
		},
		{
			name:   "v2-kind-nested-innermost-wins",
			cgroup: "0::/kubepods/burstable/pod" + puidUID2 + "/" + puidCtrID + "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + puidUID_ + ".slice/cri-containerd-" + puidCtrID + ".scope\n",
			want:   puidUID,
		},
		{name: "uppercase-lowered", cgroup: "0::/kubepods/pod" + strings.ToUpper(puidUID) + "/x\n", want: puidUID},
		{name: "crlf", cgroup: "0::/kubepods/pod" + puidUID + "\r\n", want: puidUID},
		{name: "no-trailing-newline", cgroup: "0::/kubepods/pod" + puidUID, want: puidUID},
		{name: "colon-in-path", cgroup: "0::/kubepods/pod" + puidUID + "/a:b\n", want: puidUID},
		{name: "lines-agree-with-root-lines", cgroup: "2:rdma:/\n0::/kubepods/pod" + puidUID + "/x\n1:name=systemd:/\n", want: puidUID},

		// Not a pod, or not a UID we can trust.
		{name: "conflicting-lines", cgroup: "4:memory:/kubepods/pod" + puidUID + "/x\n0::/kubepods/pod" + puidUID2 + "/x\n"},
		{name: "host-init", cgroup: "0::/init.scope\n"},
		{name: "host-service", cgroup: "0::/system.slice/containerd.service\n"},
		{name: "v1-host", cgroup: "12:hugetlb:/\n4:memory:/user.slice\n1:name=systemd:/init.scope\n"},
		{name: "kubepods-qos-level", cgroup: "0::/kubepods.slice/kubepods-burstable.slice\n"},
		{name: "static-pod-config-hash", cgroup: "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b1f1d5e3c2a4f5e9d8a0e1b2c3d4e5f.slice/cri-containerd-x.scope\n"},
		{name: "static-pod-cgroupfs", cgroup: "0::/kubepods/burstable/pod6b1f1d5e3c2a4f5e9d8a0e1b2c3d4e5f/x\n"},
		{name: "uid-too-short", cgroup: "0::/kubepods/pod" + puidUID[:35] + "/x\n"},
		{name: "uid-too-long", cgroup: "0::/kubepods/pod" + puidUID + "0/x\n"},
		{name: "uid-not-hex", cgroup: "0::/kubepods/pod" + strings.Replace(puidUID, "6", "g", 1) + "/x\n"},
		{name: "uid-dash-misplaced", cgroup: "0::/kubepods/pod6b1f1d5e3-c2a-4f5e-9d8a-0e1b2c3d4e5f/x\n"},
		{name: "uid-in-scope-not-slice", cgroup: "0::/kubepods.slice/kubepods-pod" + puidUID_ + ".scope\n"},
		{name: "uid-underscores-cgroupfs", cgroup: "0::/kubepods/pod" + puidUID_ + "/x\n"},
		{name: "uid-in-controller-field", cgroup: "0:pod" + puidUID + ":/\n"},
		{name: "uid-without-colons", cgroup: "/kubepods/pod" + puidUID + "/x\n"},
		{name: "one-colon", cgroup: "0:/kubepods/pod" + puidUID + "/x\n"},
		{name: "empty"},
		{name: "newlines", cgroup: "\n\n\n"},
		{name: "colons", cgroup: "::\n:::\n::::/\n"},
		{name: "bare-pod", cgroup: "0::/pod\n0::pod\n0::/kubepods-pod.slice\n0::/.slice\n0::/-.slice\n"},
		{name: "binary", cgroup: "\x00\xff\xfe:\x00:\x80/pod\xff\n"},
		{name: "slashes", cgroup: "0::///////\n0::/\n0::\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := heal.PodUIDFromCgroup([]byte(tc.cgroup))
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("PodUIDFromCgroup() = %q, %v; want %q, %v", got, ok, tc.want, tc.want != "")
			}
		})
	}
}

func TestPodUIDFromCgroupLongInput(t *testing.T) {
	t.Parallel()
	long := "0::/" + strings.Repeat("kubepods-pod/", 1<<16) + "pod" + puidUID + "\n" + strings.Repeat(":", 1<<16)
	if got, ok := heal.PodUIDFromCgroup([]byte(long)); !ok || got != puidUID {
		t.Errorf("PodUIDFromCgroup(long) = %q, %v; want %q, true", got, ok, puidUID)
	}
}

// FuzzPodUIDFromCgroup checks that no input panics and that a UID found is
// canonical.
func FuzzPodUIDFromCgroup(f *testing.F) {
	for _, s := range []string{
		puidV1CgroupfsBurstable,
		puidV1SystemdGuaranteed,
		"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + puidUID_ + ".slice/cri-containerd-" + puidCtrID + ".scope\n",
		"0::/../pod" + puidUID + "\n",
		"0::/init.scope\n",
		"",
		"\x00:\x00:\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		uid, ok := heal.PodUIDFromCgroup(b)
		if ok != (uid != "") {
			t.Fatalf("PodUIDFromCgroup() = %q, %v: ok disagrees with the UID", uid, ok)
		}
		if !ok {
			return
		}
		if len(uid) != 36 || strings.Trim(uid, "0123456789abcdef-") != "" || strings.Count(uid, "-") != 4 {
			t.Fatalf("PodUIDFromCgroup() = %q, not a canonical UID", uid)
		}
	})
}
