// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package inject_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	admregv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/k8s-lxcfs/k8s-lxcfs/inject"
	"github.com/k8s-lxcfs/k8s-lxcfs/webhook"
)

const components = "../kustomize/components"

// docs splits a multi-document YAML file.
func docs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(d) != "" {
			out = append(out, d)
		}
	}
	return out
}

func decode(t *testing.T, doc string, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
		t.Fatalf("decode %T: %v\n%s", into, err, doc)
	}
}

// TestPolicyInSync checks the MutatingAdmissionPolicy against the Go rules it
// mirrors; the envtest suite checks that both make the same pod.
func TestPolicyInSync(t *testing.T) {
	t.Parallel()
	v1, err := os.ReadFile(filepath.Join(components, "admission-policy/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	beta, err := os.ReadFile(filepath.Join(components, "admission-policy/v1beta1/policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(string(v1), "admissionregistration.k8s.io/v1\n", "admissionregistration.k8s.io/v1beta1\n"); want != string(beta) {
		t.Error("admission-policy/v1beta1/policy.yaml is not policy.yaml with apiVersion v1beta1; regenerate it with sed")
	}
	d := docs(t, filepath.Join(components, "admission-policy/policy.yaml"))
	var pol admregv1.MutatingAdmissionPolicy
	var bind admregv1.MutatingAdmissionPolicyBinding
	decode(t, d[0], &pol)
	decode(t, d[1], &bind)
	if bind.Spec.PolicyName != pol.Name {
		t.Errorf("binding names %q, policy is %q", bind.Spec.PolicyName, pol.Name)
	}
	if *pol.Spec.FailurePolicy != admregv1.Ignore || pol.Spec.ReinvocationPolicy != admregv1.IfNeededReinvocationPolicy {
		t.Errorf("failurePolicy %v reinvocationPolicy %v", *pol.Spec.FailurePolicy, pol.Spec.ReinvocationPolicy)
	}
	var files string
	for _, v := range pol.Spec.Variables {
		if v.Name == "files" {
			files = v.Expression
		}
	}
	for _, f := range inject.Files(inject.Options{}) {
		typ := "File"
		if f.Dir {
			typ = "Directory"
		}
		want := "{'name': '" + f.VolumeName() + "', 'path': '" + f.Path + "', 'type': '" + typ + "'}"
		if !strings.Contains(files, want) {
			t.Errorf("policy variable files lacks %s", want)
		}
	}
	if n := strings.Count(files, "'name'"); n != len(inject.Files(inject.Options{})) {
		t.Errorf("policy injects %d files, inject.Files %d", n, len(inject.Files(inject.Options{})))
	}
	expr := pol.Spec.Mutations[0].ApplyConfiguration.Expression
	for _, s := range []string{"'" + inject.DefaultRoot + "/' + f.path", "readOnly: true", "mountPropagation: 'HostToContainer'", "initContainers"} {
		if !strings.Contains(expr, s) {
			t.Errorf("mutation lacks %q", s)
		}
	}
}

// TestWebhookComponent decodes every object of components/webhook into
// its type and checks what the code depends on.
func TestWebhookComponent(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(components, "webhook")
	var dep appsv1.Deployment
	decode(t, docs(t, filepath.Join(dir, "deployment.yaml"))[0], &dep)
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || !*dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("container security context %+v", c.SecurityContext)
	}
	var svc corev1.Service
	decode(t, docs(t, filepath.Join(dir, "service.yaml"))[0], &svc)
	var pdb policyv1.PodDisruptionBudget
	decode(t, docs(t, filepath.Join(dir, "pdb.yaml"))[0], &pdb)
	var sa corev1.ServiceAccount
	decode(t, docs(t, filepath.Join(dir, "serviceaccount.yaml"))[0], &sa)
	rb := docs(t, filepath.Join(dir, "rbac.yaml"))
	var role rbacv1.Role
	var crole rbacv1.ClusterRole
	decode(t, rb[0], &role)
	decode(t, rb[2], &crole)
	decode(t, rb[1], &rbacv1.RoleBinding{})
	decode(t, rb[3], &rbacv1.ClusterRoleBinding{})
	var mwc admregv1.MutatingWebhookConfiguration
	decode(t, docs(t, filepath.Join(dir, "mutatingwebhookconfiguration.yaml"))[0], &mwc)

	args := strings.Join(c.Args, " ")
	for _, want := range []string{"-service=" + svc.Name, "-tls-secret=" + role.Rules[1].ResourceNames[0], "-webhook-config=" + mwc.Name} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if crole.Rules[0].ResourceNames[0] != mwc.Name || dep.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Error("RBAC does not name the webhook configuration or service account")
	}
	paths := map[string]bool{}
	for _, wh := range mwc.Webhooks {
		if *wh.FailurePolicy != admregv1.Ignore || *wh.SideEffects != admregv1.SideEffectClassNone ||
			*wh.ReinvocationPolicy != admregv1.IfNeededReinvocationPolicy || *wh.TimeoutSeconds > 10 {
			t.Errorf("webhook %s: unsafe settings", wh.Name)
		}
		if wh.ClientConfig.Service.Name != svc.Name {
			t.Errorf("webhook %s calls service %s", wh.Name, wh.ClientConfig.Service.Name)
		}
		paths[*wh.ClientConfig.Service.Path] = true
	}
	if !paths[webhook.PathMutate] || !paths[webhook.PathNamespace] {
		t.Errorf("webhook paths %v", paths)
	}
}

// TestKustomize renders the components through a throwaway kustomization
// (a Component can't be built alone) when kubectl is installed.
func TestKustomize(t *testing.T) {
	t.Parallel()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	abs, err := filepath.Abs(components)
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range [][]string{{"webhook"}, {"webhook", "webhook-cert-manager"}, {"admission-policy"}, {"admission-policy/v1beta1"}} {
		dir := t.TempDir()
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: lxcfs-system\ncomponents:\n"
		for _, c := range set {
			rel, err := filepath.Rel(dir, filepath.Join(abs, c)) // kustomize refuses absolute component paths
			if err != nil {
				t.Fatal(err)
			}
			k += "- " + rel + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Errorf("kustomize %v: %v\n%s", set, err, out)
			continue
		}
		if set[len(set)-1] == "webhook-cert-manager" && (strings.Contains(string(out), "kind: Role\n") || !strings.Contains(string(out), "-tls-cert-file=")) {
			t.Errorf("cert-manager variant kept RBAC or lacks -tls-cert-file:\n%s", out)
		}
	}
}
