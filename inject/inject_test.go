// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package inject_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/k8s-lxcfs/k8s-lxcfs/inject"
	"github.com/k8s-lxcfs/k8s-lxcfs/webhook"
)

var nsEnabled = map[string]string{inject.Key: inject.Enabled}

// review runs a fixture through the webhook's review logic and returns the
// response and the pod before and after the patch.
func review(t *testing.T, fixture string, nsLabels map[string]string, o inject.Options) (*admissionv1.AdmissionResponse, *corev1.Pod, *corev1.Pod) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	out, status, err := webhook.Review(body, nsLabels, o)
	if err != nil || status != http.StatusOK {
		t.Fatalf("Review(%s) = %d, %v", fixture, status, err)
	}
	var in admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &in); err != nil {
		t.Fatal(err)
	}
	if out.Response.UID != in.Request.UID || !out.Response.Allowed {
		t.Fatalf("response uid %q allowed %v, want uid %q allowed", out.Response.UID, out.Response.Allowed, in.Request.UID)
	}
	var pod corev1.Pod
	if err := json.Unmarshal(in.Request.Object.Raw, &pod); err != nil {
		t.Fatal(err)
	}
	if out.Response.Patch == nil {
		return out.Response, &pod, pod.DeepCopy()
	}
	if *out.Response.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %s", *out.Response.PatchType)
	}
	var ops []inject.JSONPatchOp
	if err := json.Unmarshal(out.Response.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	after, err := inject.ApplyPatch(&pod, ops)
	if err != nil {
		t.Fatalf("apply patch %s: %v", out.Response.Patch, err)
	}
	return out.Response, &pod, after
}

func mountPaths(c corev1.Container) map[string]corev1.VolumeMount {
	m := map[string]corev1.VolumeMount{}
	for _, vm := range c.VolumeMounts {
		m[vm.MountPath] = vm
	}
	return m
}

// checkInjected checks that every container of pod has every lxcfs mount
// (or its own at that path), backed by an lxcfs volume.
func checkInjected(t *testing.T, pod *corev1.Pod, o inject.Options) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		if _, dup := vols[v.Name]; dup {
			t.Errorf("duplicate volume %s", v.Name)
		}
		vols[v.Name] = v
	}
	for _, f := range inject.Files(o) {
		v, ok := vols[f.VolumeName()]
		if !ok {
			t.Errorf("no volume %s", f.VolumeName())
			continue
		}
		want := corev1.HostPathFile
		if f.Dir {
			want = corev1.HostPathDirectory
		}
		if v.HostPath == nil || v.HostPath.Path != "/var/lib/lxcfs/"+f.Path || *v.HostPath.Type != want {
			t.Errorf("volume %s = %+v, want hostPath /var/lib/lxcfs/%s type %s", v.Name, v.HostPath, f.Path, want)
		}
	}
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for _, c := range all {
		m := mountPaths(c)
		if len(m) != len(c.VolumeMounts) {
			t.Errorf("container %s mounts a path twice: %+v", c.Name, c.VolumeMounts)
		}
		for _, f := range inject.Files(o) {
			vm, ok := m[f.MountPath()]
			if !ok {
				t.Errorf("container %s lacks %s", c.Name, f.MountPath())
				continue
			}
			if vm.Name != f.VolumeName() {
				continue // its own mount, left alone
			}
			if !vm.ReadOnly || vm.MountPropagation == nil || *vm.MountPropagation != corev1.MountPropagationHostToContainer {
				t.Errorf("container %s mount %s = %+v, want readOnly HostToContainer", c.Name, f.MountPath(), vm)
			}
		}
	}
}

func TestNamespaceLabel(t *testing.T) {
	t.Parallel()
	rsp, before, after := review(t, "namespace-label.json", nsEnabled, inject.Options{})
	if rsp.Patch == nil {
		t.Fatal("no patch for a pod in an enabled namespace")
	}
	checkInjected(t, after, inject.Options{})
	if len(before.Spec.Volumes) != 0 || len(after.Spec.Volumes) != len(inject.Files(inject.Options{})) {
		t.Errorf("volumes %d → %d", len(before.Spec.Volumes), len(after.Spec.Volumes))
	}
	if !strings.Contains(rsp.AuditAnnotations["reason"], "namespace label") {
		t.Errorf("reason %q", rsp.AuditAnnotations["reason"])
	}
}

func TestNotOptedIn(t *testing.T) {
	t.Parallel()
	rsp, _, _ := review(t, "not-opted-in.json", nil, inject.Options{})
	if rsp.Patch != nil {
		t.Fatalf("patch %s for a pod that did not opt in", rsp.Patch)
	}
}

func TestAnnotation(t *testing.T) {
	t.Parallel()
	rsp, before, after := review(t, "annotation.json", nil, inject.Options{})
	if rsp.Patch == nil {
		t.Fatal("no patch for an annotated pod")
	}
	checkInjected(t, after, inject.Options{})
	// The pod's own volumes and mounts stay first and unchanged.
	for i, v := range before.Spec.Volumes {
		if after.Spec.Volumes[i].Name != v.Name {
			t.Errorf("volume %d: %s, want %s", i, after.Spec.Volumes[i].Name, v.Name)
		}
	}
	for i, vm := range before.Spec.Containers[0].VolumeMounts {
		if !equality.Semantic.DeepEqual(after.Spec.Containers[0].VolumeMounts[i], vm) {
			t.Errorf("mount %d changed: %+v", i, after.Spec.Containers[0].VolumeMounts[i])
		}
	}
}

func TestOptOut(t *testing.T) {
	t.Parallel()
	rsp, _, _ := review(t, "opt-out.json", nsEnabled, inject.Options{})
	if rsp.Patch != nil {
		t.Fatalf("patch %s for an opted-out pod", rsp.Patch)
	}
	if !strings.Contains(rsp.AuditAnnotations["reason"], "disabled") {
		t.Errorf("reason %q", rsp.AuditAnnotations["reason"])
	}
}

func TestHasMeminfo(t *testing.T) {
	t.Parallel()
	_, _, after := review(t, "has-meminfo.json", nil, inject.Options{})
	checkInjected(t, after, inject.Options{})
	app := mountPaths(after.Spec.Containers[0])
	if app["/proc/meminfo"].Name != "my-meminfo" {
		t.Errorf("own /proc/meminfo mount replaced: %+v", app["/proc/meminfo"])
	}
	if app["/proc/cpuinfo"].Name != "lxcfs-proc-cpuinfo" {
		t.Errorf("other paths not injected: %+v", app["/proc/cpuinfo"])
	}
	if mountPaths(after.Spec.Containers[1])["/proc/meminfo"].Name != "lxcfs-proc-meminfo" {
		t.Error("per-container decision: the other container should get lxcfs meminfo")
	}
}

func TestInitContainers(t *testing.T) {
	t.Parallel()
	_, _, after := review(t, "init-containers.json", nil, inject.Options{})
	checkInjected(t, after, inject.Options{})
	if len(after.Spec.InitContainers) != 2 || len(after.Spec.InitContainers[1].VolumeMounts) == 0 {
		t.Errorf("init containers not injected: %+v", after.Spec.InitContainers)
	}
}

func TestPressure(t *testing.T) {
	t.Parallel()
	o := inject.Options{Pressure: true, Root: "/run/lxcfs/"}
	_, _, after := review(t, "init-containers.json", nil, o)
	m := mountPaths(after.Spec.Containers[0])
	if m["/proc/pressure/memory"].Name != "lxcfs-proc-pressure-memory" {
		t.Errorf("no pressure mount: %+v", m)
	}
	for _, v := range after.Spec.Volumes {
		if !strings.HasPrefix(v.HostPath.Path, "/run/lxcfs/") || strings.Contains(v.HostPath.Path, "//") {
			t.Errorf("volume %s path %s", v.Name, v.HostPath.Path)
		}
	}
}

// TestIdempotent applies the patch to its own output (reinvocationPolicy
// IfNeeded) for every fixture: the second round adds nothing.
func TestIdempotent(t *testing.T) {
	t.Parallel()
	for _, fx := range []string{"namespace-label.json", "annotation.json", "has-meminfo.json", "init-containers.json"} {
		for _, o := range []inject.Options{{}, {Pressure: true}} {
			_, _, once := review(t, fx, nsEnabled, o)
			ops, reason, err := inject.Patch(once, nsEnabled, o)
			if err != nil || len(ops) != 0 {
				t.Errorf("%s: second Patch = %+v, %v", fx, ops, err)
			}
			if !strings.Contains(reason, "already injected") {
				t.Errorf("%s: reason %q", fx, reason)
			}
			twice, err := inject.Apply(once, nsEnabled, o)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(once)
			b, _ := json.Marshal(twice)
			if string(a) != string(b) {
				t.Errorf("%s: Apply not idempotent:\n%s\n%s", fx, a, b)
			}
		}
	}
}

func TestMalformed(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"fixture":    "",
		"no request": `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`,
		"v1beta1":    `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`,
	} {
		b := []byte(body)
		if name == "fixture" {
			var err error
			if b, err = os.ReadFile("testdata/malformed.json"); err != nil {
				t.Fatal(err)
			}
		}
		_, status, err := webhook.Review(b, nil, inject.Options{})
		if status != http.StatusBadRequest || err == nil {
			t.Errorf("%s: status %d err %v, want 400 and an error", name, status, err)
		}
	}
	// A well-formed review whose pod doesn't parse is allowed, with a warning.
	out, status, err := webhook.Review([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"Pod","version":"v1"},"operation":"CREATE","object":{"spec":{"containers":"nope"}}}}`), nil, inject.Options{})
	if err != nil || status != http.StatusOK || !out.Response.Allowed || out.Response.Patch != nil || len(out.Response.Warnings) == 0 {
		t.Errorf("bad pod: %d %v %+v", status, err, out)
	}
}

func TestNotAPodCreate(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/annotation.json")
	if err != nil {
		t.Fatal(err)
	}
	body = []byte(strings.Replace(string(body), `"operation": "CREATE"`, `"operation": "UPDATE"`, 1))
	out, _, err := webhook.Review(body, nil, inject.Options{})
	if err != nil || out.Response.Patch != nil || !out.Response.Allowed {
		t.Errorf("update: %v %+v", err, out.Response)
	}
}

// TestLargePod injects a pod of about 2 MiB (big annotations, many
// containers): the patch stays proportional to the containers.
func TestLargePod(t *testing.T) {
	t.Parallel()
	pod := &corev1.Pod{}
	pod.Annotations = map[string]string{inject.Key: inject.Enabled, "big": strings.Repeat("x", 2<<20)}
	for i := 0; i < 200; i++ {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + strings.Repeat("0", 3) + string(rune('a'+i%26)) + string(rune('a'+i/26))})
	}
	after, err := inject.Apply(pod, nil, inject.Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkInjected(t, after, inject.Options{})
}
