// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package kustomize_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/daemon"
)

// rendered maps overlays to the files `make manifests` writes (the Makefile's
// MANIFESTS), and header is the line it puts first.
var rendered = map[string]string{
	"default":          "install.yaml",
	"admission-policy": "install-admission-policy.yaml",
}

func header(overlay string) string {
	return "# Rendered from kustomize/overlays/" + overlay + " by `make manifests`; do not edit.\n"
}

// kubectl is the kubectl (with kustomize) that renders, $KUBECTL or from
// $PATH; the test is skipped without one.
func kubectl(t *testing.T) string {
	t.Helper()
	name := os.Getenv("KUBECTL")
	if name == "" {
		name = "kubectl"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("no %s to render kustomizations with: %v", name, err)
	}
	return p
}

// render runs `kubectl kustomize dir`.
func render(t *testing.T, dir string) []byte {
	t.Helper()
	cmd := exec.Command(kubectl(t), "kustomize", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
	}
	return out
}

// renderWith renders base plus components, through a kustomization in a
// temporary directory (kustomize takes only relative paths).
func renderWith(t *testing.T, base string, components ...string) []byte {
	t.Helper()
	tmp := t.TempDir()
	rel := func(p string) string {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(tmp, abs)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + rel(base) + "\ncomponents:\n"
	for _, c := range components {
		k += "- " + rel(c) + "\n"
	}
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return render(t, tmp)
}

// object is one rendered document: its kind and name, and its JSON.
type object struct {
	Kind, Name, Namespace string
	JSON                  []byte
}

// parse splits a rendered stream into objects, checking each one of a
// built-in kind strictly against its Go type, so that a misspelt field
// (mountPropogation) fails here rather than being dropped by the API server.
func parse(t *testing.T, y []byte) []object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(y)))
	var objs []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		j, err := utilyaml.ToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		var m struct {
			metav1.TypeMeta
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(j, &m); err != nil {
			t.Fatal(err)
		}
		o := object{Kind: m.Kind, Name: m.Metadata.Name, Namespace: m.Metadata.Namespace, JSON: j}
		if typed := typeOf(m.APIVersion, m.Kind); typed != nil {
			d := json.NewDecoder(bytes.NewReader(j))
			d.DisallowUnknownFields()
			if err := d.Decode(typed); err != nil {
				t.Errorf("%s %s: %v", o.Kind, o.Name, err)
			}
		}
		objs = append(objs, o)
	}
	return objs
}

func typeOf(apiVersion, kind string) any {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1/Service":
		return &corev1.Service{}
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}
	}
	return nil
}

// get decodes the one object of kind and name into v.
func get(t *testing.T, objs []object, kind, name string, v any) {
	t.Helper()
	n := 0
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			n++
			if err := json.Unmarshal(o.JSON, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d objects %s/%s rendered, want 1", n, kind, name)
	}
}

func dirs(t *testing.T, parent string) []string {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, e := range ents {
		if e.IsDir() {
			ds = append(ds, e.Name())
		}
	}
	return ds
}

// TestManifestsUpToDate fails when manifests/ is not what the kustomize tree
// renders now; `make manifests` fixes it.
func TestManifestsUpToDate(t *testing.T) {
	kubectl(t)
	files, err := filepath.Glob("../manifests/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.Contains(slices.Collect(mapValues(rendered)), filepath.Base(f)) {
			t.Errorf("%s is not rendered by `make manifests`: remove it, or add it to MANIFESTS in the Makefile and here", f)
		}
	}
	for overlay, file := range rendered {
		want := header(overlay) + string(render(t, filepath.Join("overlays", overlay)))
		got, err := os.ReadFile(filepath.Join("..", "manifests", file))
		if err != nil {
			t.Errorf("%v: run `make manifests`", err)
			continue
		}
		if string(got) != want {
			t.Errorf("manifests/%s differs from kustomize/overlays/%s rendered now: run `make manifests`\n%s",
				file, overlay, firstDiff(string(got), want))
		}
	}
}

func mapValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("first difference at line %d:\n  file:   %q\n  render: %q", i+1, gl, wl)
		}
	}
	return ""
}

// TestEverythingRenders renders every overlay, and the base with every
// component, and checks the objects strictly.
func TestEverythingRenders(t *testing.T) {
	kubectl(t)
	for _, o := range dirs(t, "overlays") {
		t.Run("overlays/"+o, func(t *testing.T) {
			objs := parse(t, render(t, filepath.Join("overlays", o)))
			var ds appsv1.DaemonSet
			get(t, objs, "DaemonSet", "k8s-lxcfs", &ds)
			for _, obj := range objs {
				if obj.Kind != "Namespace" && !strings.HasPrefix(obj.Kind, "Cluster") &&
					!strings.HasSuffix(obj.Kind, "Configuration") && !strings.Contains(obj.Kind, "AdmissionPolicy") &&
					obj.Namespace != "lxcfs-system" {
					t.Errorf("%s %s is in namespace %q, want lxcfs-system", obj.Kind, obj.Name, obj.Namespace)
				}
			}
		})
	}
	for _, c := range dirs(t, "components") {
		t.Run("components/"+c, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join("components", c, "kustomization.yaml")); err != nil {
				t.Skipf("not a component (yet): %v", err)
			}
			var paths []string
			for _, d := range append(componentNeeds[c], c) {
				paths = append(paths, filepath.Join("components", d))
			}
			parse(t, renderWith(t, "base", paths...))
		})
	}
}

// componentNeeds lists the components a component is applied after.
var componentNeeds = map[string][]string{
	"webhook-cert-manager": {"webhook"},
}

// container returns the daemon's container.
func container(t *testing.T, ds *appsv1.DaemonSet) *corev1.Container {
	t.Helper()
	for i := range ds.Spec.Template.Spec.Containers {
		if c := &ds.Spec.Template.Spec.Containers[i]; c.Name == "k8s-lxcfs" {
			return c
		}
	}
	t.Fatal("no container k8s-lxcfs in the DaemonSet")
	return nil
}

func env(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// TestDaemonSet checks the fields of the installed DaemonSet that upgrades,
// mounting and healing depend on (see the comments in base/daemonset.yaml).
func TestDaemonSet(t *testing.T) {
	objs := parse(t, render(t, "overlays/default"))
	var ds appsv1.DaemonSet
	get(t, objs, "DaemonSet", "k8s-lxcfs", &ds)
	spec := ds.Spec.Template.Spec
	c := container(t, &ds)

	// Handover: the successor surges beside its predecessor.
	if s := ds.Spec.UpdateStrategy; s.Type != appsv1.RollingUpdateDaemonSetStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxSurge == nil || s.RollingUpdate.MaxSurge.String() != "1" ||
		s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.String() != "0" {
		t.Errorf("updateStrategy = %+v, want RollingUpdate maxSurge 1 maxUnavailable 0", s)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g < 10 {
		t.Errorf("terminationGracePeriodSeconds = %v, want ≥ 10 (room for a handover)", g)
	}
	if !spec.HostPID {
		t.Error("hostPID is false: FUSE reports readers' pids in the host's pid namespace")
	}
	if spec.HostNetwork {
		t.Error("hostNetwork is true: the surge pod's :9742 would collide with its predecessor's")
	}
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("container is not privileged")
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName = %q, want system-node-critical", spec.PriorityClassName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tl corev1.Toleration) bool {
		return tl.Operator == corev1.TolerationOpExists && tl.Key == "" && tl.Effect == ""
	}) {
		t.Errorf("tolerations = %+v, want one {operator: Exists}", spec.Tolerations)
	}

	// Probes: ready after mount or adoption; alive while the loops run.
	port := func(p *corev1.Probe, path string) {
		t.Helper()
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http-metrics" {
			t.Errorf("probe = %+v, want httpGet %s on port http-metrics", p, path)
		}
	}
	port(c.ReadinessProbe, "/readyz")
	port(c.LivenessProbe, "/healthz")
	if p := c.LivenessProbe; p != nil && p.PeriodSeconds*p.FailureThreshold < 60 {
		t.Errorf("liveness gives up after %ds, want ≥ 60s: a restart unmounts", p.PeriodSeconds*p.FailureThreshold)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == "http-metrics" && p.ContainerPort == 9742
	}) {
		t.Errorf("ports = %+v, want http-metrics 9742", c.Ports)
	}

	// Memory: a limit, and GOMEMLIMIT following it.
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("CPU limit set: throttling stalls every container's reads")
	}
	if e := env(c, "GOMEMLIMIT"); e == nil || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil ||
		e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" ||
		!e.ValueFrom.ResourceFieldRef.Divisor.Equal(resource.MustParse("1")) {
		t.Errorf("GOMEMLIMIT = %+v, want resourceFieldRef limits.memory, divisor 1 (bytes)", e)
	}
	for _, n := range []string{"NODE_NAME", "POD_NAME", "POD_NAMESPACE"} {
		if e := env(c, n); e == nil || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			t.Errorf("%s is not from the downward API: %+v", n, e)
		}
	}

	// The command line parses as serve's, and mounts in the host's namespace.
	args := expand(t, c)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("args = %q, want serve ...", c.Args)
	}
	cfg, err := daemon.ParseServe(args[1:], io.Discard)
	if err != nil {
		t.Fatalf("serve %q: %v", args[1:], err)
	}
	if cfg.HostMountNS != "/proc/1/ns/mnt" || cfg.MountPoint != "/var/lib/lxcfs" || cfg.NodeName != "node-a" ||
		cfg.AllowDelete || !cfg.Heal || cfg.ExitAfterHandover {
		t.Errorf("serve %q = %+v, want -host-mount-ns=/proc/1/ns/mnt, -node-name from NODE_NAME, /var/lib/lxcfs, healing without delete", args[1:], cfg)
	}

	// The probes and the metrics port reach what the daemon listens on.
	if _, p, err := net.SplitHostPort(cfg.HTTPAddress); err != nil || p != "9742" {
		t.Errorf("-http-address = %q, want port 9742 (http-metrics, the probes' port)", cfg.HTTPAddress)
	}

	// Volumes: the handover socket's directory is the host's; the mount
	// point is not a volume (it is resolved in the host's mount namespace).
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	sockDir := filepath.Dir(cfg.HandoverSocket)
	for _, v := range spec.Volumes {
		m, ok := mounts[v.Name]
		if !ok {
			t.Errorf("volume %s is not mounted", v.Name)
			continue
		}
		if v.HostPath == nil {
			continue
		}
		switch {
		case strings.HasPrefix(v.HostPath.Path, "/var/lib/lxcfs") || strings.HasPrefix(m.MountPath, "/var/lib/lxcfs"):
			t.Errorf("volume %s: a hostPath for the mount point, which -host-mount-ns makes unneeded and a surge pod would mount twice", v.Name)
		case m.MountPath == sockDir:
			if v.HostPath.Path != sockDir {
				t.Errorf("volume %s: handover socket directory %s is host %s, want the same path", v.Name, sockDir, v.HostPath.Path)
			}
		case m.MountPath == cfg.CgroupRoot:
			if !m.ReadOnly {
				t.Errorf("volume %s: the host's cgroups are mounted read-write", v.Name)
			}
		}
		if m.MountPropagation != nil && *m.MountPropagation == corev1.MountPropagationBidirectional {
			t.Errorf("volume %s: Bidirectional propagation; the daemon mounts through -host-mount-ns", v.Name)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == sockDir }) {
		t.Errorf("no volume at %s: predecessor and successor pods wouldn't share the handover socket", sockDir)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == cfg.CgroupRoot }) {
		t.Errorf("no volume at -cgroup-root %s: readers' limits are read from the host's tree", cfg.CgroupRoot)
	}

	// RBAC reaches the pod.
	var crb rbacv1.ClusterRoleBinding
	get(t, objs, "ClusterRoleBinding", "k8s-lxcfs", &crb)
	if crb.RoleRef.Name != "k8s-lxcfs" || !slices.Contains(crb.Subjects, rbacv1.Subject{
		Kind: "ServiceAccount", Name: spec.ServiceAccountName, Namespace: ds.Namespace}) {
		t.Errorf("ClusterRoleBinding %+v doesn't bind ClusterRole k8s-lxcfs to %s/%s", crb, ds.Namespace, spec.ServiceAccountName)
	}
}

// expand returns the container's args with $(VAR) references to its literal
// env values substituted, as the kubelet does; NODE_NAME is "node-a".
func expand(t *testing.T, c *corev1.Container) []string {
	t.Helper()
	vals := map[string]string{"NODE_NAME": "node-a"}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			vals[e.Name] = e.Value
		}
	}
	var out []string
	for _, a := range c.Args {
		out = append(out, os.Expand(strings.NewReplacer("$(", "${", ")", "}").Replace(a), func(k string) string {
			v, ok := vals[k]
			if !ok {
				t.Errorf("arg %q refers to $(%s), which has no literal value", a, k)
			}
			return v
		}))
	}
	return out
}

// TestE2EOverlay: the e2e suite loads its image into the nodes.
func TestE2EOverlay(t *testing.T) {
	var ds appsv1.DaemonSet
	get(t, parse(t, render(t, "overlays/e2e")), "DaemonSet", "k8s-lxcfs", &ds)
	if c := container(t, &ds); c.Image != "k8s-lxcfs:e2e" || c.ImagePullPolicy != corev1.PullNever {
		t.Errorf("image %s pull %s, want k8s-lxcfs:e2e pull Never", c.Image, c.ImagePullPolicy)
	}
}

// rules flattens policy rules into "group resource verb" triples.
func rules(rs []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rs {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, g+" "+res+" "+v)
				}
			}
		}
		if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
			out = append(out, fmt.Sprintf("unexpected %+v", r))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestRBAC: the base grants exactly heal.RBACRules() but "delete pods";
// components/allow-delete adds exactly that, and turns the flag on.
func TestRBAC(t *testing.T) {
	all := rules(heal.RBACRules())
	const del = " pods delete"
	if !slices.Contains(all, del) {
		t.Fatalf("heal.RBACRules() = %q has no %q; update this test and components/allow-delete", all, del)
	}
	want := slices.DeleteFunc(slices.Clone(all), func(s string) bool { return s == del })

	for _, tc := range []struct {
		name        string
		objs        []object
		want        []string
		allowDelete bool
	}{
		{"base", parse(t, render(t, "base")), want, false},
		{"overlays/default", parse(t, render(t, "overlays/default")), want, false},
		{"base+allow-delete", parse(t, renderWith(t, "base", "components/allow-delete")), all, true},
	} {
		var cr rbacv1.ClusterRole
		get(t, tc.objs, "ClusterRole", "k8s-lxcfs", &cr)
		if got := rules(cr.Rules); !slices.Equal(got, tc.want) {
			t.Errorf("%s: ClusterRole k8s-lxcfs grants %q, want %q", tc.name, got, tc.want)
		}
		var ds appsv1.DaemonSet
		get(t, tc.objs, "DaemonSet", "k8s-lxcfs", &ds)
		cfg, err := daemon.ParseServe(expand(t, container(t, &ds))[1:], io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.AllowDelete != tc.allowDelete {
			t.Errorf("%s: -heal-allow-delete is %v, want %v", tc.name, cfg.AllowDelete, tc.allowDelete)
		}
	}
}

// TestServiceMonitor: the Service finds the daemon's pods and their port.
func TestServiceMonitor(t *testing.T) {
	objs := parse(t, renderWith(t, "base", "components/servicemonitor"))
	var ds appsv1.DaemonSet
	get(t, objs, "DaemonSet", "k8s-lxcfs", &ds)
	var svc corev1.Service
	get(t, objs, "Service", "k8s-lxcfs-metrics", &svc)
	for k, v := range svc.Spec.Selector {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s doesn't match the daemon's pods (%v)", k, v, ds.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http-metrics" || svc.Spec.ClusterIP != "None" {
		t.Errorf("Service spec = %+v, want headless, target port http-metrics", svc.Spec)
	}
	var sm struct {
		Spec struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port string `json:"port"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	get(t, objs, "ServiceMonitor", "k8s-lxcfs", &sm)
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s doesn't match the Service's labels %v", k, v, svc.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http-metrics" {
		t.Errorf("ServiceMonitor endpoints = %+v, want port http-metrics", sm.Spec.Endpoints)
	}
}
