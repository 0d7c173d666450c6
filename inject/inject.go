// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package inject

import (
	"encoding/json"
	"fmt"
	"strings"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
)

const (
	// Key is the namespace label and the pod annotation that opt in
	// ([Enabled]) or, on a pod, out ([Disabled]).
	Key = "lxcfs.k8s.io/inject"
	// Enabled opts a namespace or a pod in.
	Enabled = "enabled"
	// Disabled opts a pod out.
	Disabled = "disabled"
	// VolumePrefix starts the name of every volume this package adds.
	VolumePrefix = "lxcfs-"
	// DefaultRoot is where the DaemonSet mounts the filesystem on every node.
	DefaultRoot = "/var/lib/lxcfs"
)

// Options configure [Patch]. The zero value injects the default files
// from [DefaultRoot], as the admission policy does.
type Options struct {
	// Root is the host directory the daemon mounts; "" means [DefaultRoot].
	Root string
	// Pressure adds /proc/pressure/{cpu,memory,io}. Off by default: PSI
	// files exist only on kernels with CONFIG_PSI (and psi=1), and a
	// missing file keeps the pod from starting (hostPath type File).
	Pressure bool
}

// JSONPatchOp is one RFC 6902 operation. Patch emits only "add".
type JSONPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// File is one injected path: the same relative path below the lxcfs root
// on the host and below / in the container.
type File struct {
	// Path is relative, e.g. "proc/meminfo".
	Path string
	// Dir is true for a directory (hostPath type Directory).
	Dir bool
}

// VolumeName is the reserved name of the volume serving f.
func (f File) VolumeName() string {
	return VolumePrefix + strings.ReplaceAll(f.Path, "/", "-")
}

// MountPath is where f appears in the container.
func (f File) MountPath() string { return "/" + f.Path }

// Files returns the injected files in the order they are added.
func Files(o Options) []File {
	fs := []File{
		{Path: "proc/meminfo"},
		{Path: "proc/cpuinfo"},
		{Path: "proc/stat"},
		{Path: "proc/uptime"},
		{Path: "proc/loadavg"},
		{Path: "proc/diskstats"},
		{Path: "proc/swaps"},
		{Path: "proc/slabinfo"},
	}
	if o.Pressure {
		fs = append(fs, File{Path: "proc/pressure/cpu"}, File{Path: "proc/pressure/memory"}, File{Path: "proc/pressure/io"})
	}
	return append(fs, File{Path: "sys/devices/system/cpu", Dir: true})
}

// Volumes returns the volumes for [Files].
func Volumes(o Options) []corev1.Volume {
	root := o.Root
	if root == "" {
		root = DefaultRoot
	}
	root = strings.TrimSuffix(root, "/")
	var out []corev1.Volume
	for _, f := range Files(o) {
		t := corev1.HostPathFile // never create: see the package doc
		if f.Dir {
			t = corev1.HostPathDirectory
		}
		out = append(out, corev1.Volume{
			Name: f.VolumeName(),
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: root + "/" + f.Path,
				Type: &t,
			}},
		})
	}
	return out
}

// VolumeMounts returns the mounts for [Files], in order.
func VolumeMounts(o Options) []corev1.VolumeMount {
	prop := corev1.MountPropagationHostToContainer // a healed remount reaches the container
	var out []corev1.VolumeMount
	for _, f := range Files(o) {
		out = append(out, corev1.VolumeMount{
			Name:             f.VolumeName(),
			MountPath:        f.MountPath(),
			ReadOnly:         true,
			MountPropagation: &prop,
		})
	}
	return out
}

// Wanted reports whether pod, created in a namespace with labels
// nsLabels, opts in, and why (a short reason for logs and the
// AdmissionResponse audit annotation).
func Wanted(pod *corev1.Pod, nsLabels map[string]string) (bool, string) {
	switch pod.Annotations[Key] {
	case Disabled:
		return false, "pod annotation " + Key + "=" + Disabled
	case Enabled:
		return true, "pod annotation " + Key + "=" + Enabled
	}
	if nsLabels[Key] == Enabled {
		return true, "namespace label " + Key + "=" + Enabled
	}
	return false, "not opted in"
}

// Patch returns the operations that inject the lxcfs volumes and mounts
// into pod, the reason for the decision, and an error only for a pod it
// can't handle (nil). No operations means nothing to do: not opted in, or
// already injected. Patch does not modify pod.
func Patch(pod *corev1.Pod, nsLabels map[string]string, o Options) ([]JSONPatchOp, string, error) {
	if pod == nil {
		return nil, "", fmt.Errorf("inject: no pod")
	}
	ok, reason := Wanted(pod, nsLabels)
	if !ok {
		return nil, reason, nil
	}
	var ops []JSONPatchOp

	have := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		have[v.Name] = true
	}
	var vols []corev1.Volume
	for _, v := range Volumes(o) {
		if !have[v.Name] {
			vols = append(vols, v)
		}
	}
	ops = appendOps(ops, "/spec/volumes", len(pod.Spec.Volumes), vols)

	mounts := VolumeMounts(o)
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		ops = appendOps(ops, fmt.Sprintf("/spec/initContainers/%d/volumeMounts", i), len(c.VolumeMounts), missing(c, mounts))
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		ops = appendOps(ops, fmt.Sprintf("/spec/containers/%d/volumeMounts", i), len(c.VolumeMounts), missing(c, mounts))
	}
	if len(ops) == 0 {
		return nil, reason + "; already injected", nil
	}
	return ops, reason, nil
}

// missing returns the mounts whose mountPath c does not mount yet.
func missing(c *corev1.Container, mounts []corev1.VolumeMount) []corev1.VolumeMount {
	have := map[string]bool{}
	for _, m := range c.VolumeMounts {
		have[m.MountPath] = true
	}
	var out []corev1.VolumeMount
	for _, m := range mounts {
		if !have[m.MountPath] {
			out = append(out, m)
		}
	}
	return out
}

// appendOps appends items to the array at path, which has n elements; an
// absent array (n == 0, omitempty) is added whole.
func appendOps[T any](ops []JSONPatchOp, path string, n int, items []T) []JSONPatchOp {
	if len(items) == 0 {
		return ops
	}
	if n == 0 {
		return append(ops, JSONPatchOp{Op: "add", Path: path, Value: items})
	}
	for _, it := range items {
		ops = append(ops, JSONPatchOp{Op: "add", Path: path + "/-", Value: it})
	}
	return ops
}

// Apply returns pod as mutated by [Patch]: the pod the webhook makes. The
// envtest suite compares it with what the MutatingAdmissionPolicy made
// from the same input. pod itself is left unchanged.
func Apply(pod *corev1.Pod, nsLabels map[string]string, o Options) (*corev1.Pod, error) {
	ops, _, err := Patch(pod, nsLabels, o)
	if err != nil {
		return nil, err
	}
	out := pod.DeepCopy()
	if len(ops) == 0 {
		return out, nil
	}
	return ApplyPatch(pod, ops)
}

// ApplyPatch applies ops to a copy of pod.
func ApplyPatch(pod *corev1.Pod, ops []JSONPatchOp) (*corev1.Pod, error) {
	doc, err := json.Marshal(pod)
	if err != nil {
		return nil, fmt.Errorf("marshal pod: %w", err)
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("marshal patch: %w", err)
	}
	p, err := jsonpatch.DecodePatch(raw)
	if err != nil {
		return nil, fmt.Errorf("decode patch: %w", err)
	}
	doc, err = p.Apply(doc)
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	out := &corev1.Pod{}
	if err := json.Unmarshal(doc, out); err != nil {
		return nil, fmt.Errorf("unmarshal patched pod: %w", err)
	}
	return out, nil
}
