// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal

import (
	"bytes"
	"strings"
)

// PodUIDFromCgroup finds the UID of the pod a process belongs to in the
// content of its /proc/PID/cgroup. Every layout the kubelet writes works, on
// cgroup v1 ("4:memory:/...") and v2 ("0::/..."), for every QoS class:
//
//	cgroupfs driver: /kubepods/burstable/pod<uid>/<container>
//	                 /kubepods/pod<uid>/<container> (guaranteed)
//	systemd driver:  /kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope
//
// where the systemd driver spells the UID's dashes as underscores (a dash
// nests slices). Paths relative to a cgroup namespace ("/../../kubepods-…")
// and nested kubelets (kind) work too: the innermost pod wins.
//
// The UID comes back in the canonical form the API uses (dashed, lowercase)
// and is a UUID, else ok is false. Static pods are not found: their cgroups
// carry the kubelet's config hash (32 hex digits), not the UID of their
// mirror pod, and the API can't restart them anyway. ok is also false when
// lines name different pods, so that a confused reading never picks one.
func PodUIDFromCgroup(procCgroup []byte) (uid string, ok bool) {
	for len(procCgroup) > 0 {
		var line []byte
		line, procCgroup, _ = bytes.Cut(procCgroup, []byte{'\n'})
		// hierarchy-ID:controller-list:cgroup-path; the path may hold colons.
		_, rest, found := bytes.Cut(line, []byte{':'})
		if !found {
			continue
		}
		_, path, found := bytes.Cut(rest, []byte{':'})
		if !found {
			continue
		}
		u, found := podUIDFromPath(strings.TrimRight(string(path), "\r"))
		if !found {
			continue
		}
		if uid != "" && u != uid {
			return "", false
		}
		uid = u
	}
	return uid, uid != ""
}

// podUIDFromPath returns the UID of the innermost pod cgroup on path.
func podUIDFromPath(path string) (string, bool) {
	for path != "" {
		var elem string
		if i := strings.LastIndexByte(path, '/'); i >= 0 {
			path, elem = path[:i], path[i+1:]
		} else {
			path, elem = "", path
		}
		if uid, ok := podUIDFromElem(elem); ok {
			return uid, true
		}
	}
	return "", false
}

// podUIDFromElem recognizes "pod<uid>" (cgroupfs) and
// "<parent>-pod<uid_>.slice" (systemd).
func podUIDFromElem(elem string) (string, bool) {
	if name, ok := strings.CutSuffix(elem, ".slice"); ok {
		// The last dash-separated part of a slice name is its own name.
		if i := strings.LastIndexByte(name, '-'); i >= 0 {
			name = name[i+1:]
		}
		raw, ok := strings.CutPrefix(name, "pod")
		if !ok {
			return "", false
		}
		raw = strings.ReplaceAll(raw, `\x2d`, "-") // systemd-escape's spelling of a dash
		return canonicalUID(strings.ReplaceAll(raw, "_", "-"))
	}
	raw, ok := strings.CutPrefix(elem, "pod")
	if !ok {
		return "", false
	}
	return canonicalUID(raw)
}

// canonicalUID returns s in lowercase if it is a UUID in its dashed form
// (8-4-4-4-12 hex digits); the version and variant bits are not checked.
func canonicalUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return "", false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			b[i] = c + ('a' - 'A')
		default:
			return "", false
		}
	}
	return string(b), true
}
