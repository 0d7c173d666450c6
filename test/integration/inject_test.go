// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	admregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/k8s-lxcfs/k8s-lxcfs/inject"
	"github.com/k8s-lxcfs/k8s-lxcfs/webhook"
)

// TestInjectionWebhookAndPolicy creates the same pods through the API
// server twice: once in namespaces that only the real webhook server (run
// in-process on 127.0.0.1, registered with the MutatingWebhookConfiguration
// of kustomize/components/webhook) mutates, once in namespaces that only the
// MutatingAdmissionPolicy of kustomize/components/admission-policy mutates.
// Both must produce the pod inject.Apply predicts, volume for volume and
// mount for mount.
//
// kube-apiserver 1.37 serves admissionregistration.k8s.io/v1
// MutatingAdmissionPolicy and runs its admission plugin by default (GA in
// 1.36), so envtest needs no extra flags.
func TestInjectionWebhookAndPolicy(t *testing.T) {
	t.Parallel()
	enabled := map[string]string{inject.Key: inject.Enabled}
	ns := map[string]struct{ on, off string }{
		"webhook": {newNamespace(t, enabled), newNamespace(t, nil)},
		"policy":  {newNamespace(t, enabled), newNamespace(t, nil)},
	}
	url, caPEM := startWebhook(t)
	registerWebhook(t, url, caPEM, ns["webhook"].on, ns["webhook"].off)
	registerPolicy(t, ns["policy"].on, ns["policy"].off)
	for mutator, n := range ns {
		waitForInjection(t, mutator, n.on)
	}

	cases := []struct {
		name      string
		nsEnabled bool
		pod       *corev1.Pod
		injected  bool
	}{
		{"namespace opted in", true, plainPod(nil), true},
		{"namespace opted in, pod opts out", true, plainPod(map[string]string{inject.Key: inject.Disabled}), false},
		{"pod opts in", false, plainPod(map[string]string{inject.Key: inject.Enabled}), true},
		{"not opted in", false, plainPod(nil), false},
		{"unknown annotation value", true, plainPod(map[string]string{inject.Key: "yes"}), true},
		{"init containers and own mounts", true, busyPod(), true},
	}
	for i, c := range cases {
		c.pod.Name = fmt.Sprintf("case-%d", i) // cases share namespaces
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nsLabels := map[string]string(nil)
			if c.nsEnabled {
				nsLabels = enabled
			}
			want, err := inject.Apply(c.pod, nsLabels, inject.Options{})
			if err != nil {
				t.Fatalf("inject.Apply: %v", err)
			}
			if got := hasLXCFSVolumes(want); got != c.injected {
				t.Fatalf("inject.Apply injected %v, want %v", got, c.injected)
			}
			got := map[string]*corev1.Pod{}
			for mutator, n := range ns {
				target := n.off
				if c.nsEnabled {
					target = n.on
				}
				p, err := adminClient(t).CoreV1().Pods(target).Create(t.Context(), c.pod.DeepCopy(), metav1.CreateOptions{})
				if err != nil {
					t.Fatalf("create pod through %s: %v", mutator, err)
				}
				got[mutator] = p
				if diff := cmp.Diff(mounts(want), mounts(p)); diff != "" {
					t.Errorf("pod through the %s differs from inject.Apply (-want +got):\n%s", mutator, diff)
				}
			}
			if diff := cmp.Diff(mounts(got["webhook"]), mounts(got["policy"])); diff != "" {
				t.Errorf("webhook and policy made different pods (-webhook +policy):\n%s", diff)
			}
		})
	}
}

// podMounts is what injection changes: volumes and each container's mounts.
type podMounts struct {
	Volumes        []corev1.Volume
	InitContainers map[string][]corev1.VolumeMount
	Containers     map[string][]corev1.VolumeMount
}

func mounts(p *corev1.Pod) podMounts {
	m := podMounts{Volumes: p.Spec.Volumes, InitContainers: map[string][]corev1.VolumeMount{}, Containers: map[string][]corev1.VolumeMount{}}
	for _, c := range p.Spec.InitContainers {
		m.InitContainers[c.Name] = c.VolumeMounts
	}
	for _, c := range p.Spec.Containers {
		m.Containers[c.Name] = c.VolumeMounts
	}
	return m
}

func hasLXCFSVolumes(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if strings.HasPrefix(v.Name, inject.VolumePrefix) {
			return true
		}
	}
	return false
}

// plainPod has one container and no volumes.
func plainPod(annotations map[string]string) *corev1.Pod {
	p := testPod("app", "", nil)
	p.Annotations = annotations
	return p
}

// busyPod has an init container, two containers one of which mounts its
// own /proc/meminfo, an own volume, and already a volume with one of the
// reserved names: each is kept and only what is missing is added.
func busyPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busy"},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers: []corev1.Container{
				{Name: "main", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}}},
				{Name: "sidecar", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "own-meminfo", MountPath: "/proc/meminfo"}}},
			},
			Volumes: []corev1.Volume{
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "own-meminfo", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "lxcfs-proc-uptime", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
}

// startWebhook serves the webhook package's handler on 127.0.0.1 with a
// serving certificate from a fresh test CA, as the Deployment does in a
// cluster. It returns the server's base URL and the CA's PEM.
func startWebhook(t *testing.T) (string, []byte) {
	t.Helper()
	caPEM, cert := testServingCert(t)
	store := &webhook.CertStore{}
	store.Set(cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- webhook.Serve(ctx, ln, webhook.NewHandler(logr.Discard(), inject.Options{}, store.Ready), store)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook server: %v", err)
		}
	})
	return "https://" + ln.Addr().String(), caPEM
}

// testServingCert makes a CA and a serving certificate for 127.0.0.1.
func testServingCert(t *testing.T) ([]byte, *tls.Certificate) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k8s-lxcfs integration test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "k8s-lxcfs-webhook"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// onlyIn restricts a selector to the named namespaces, so that this test's
// mutators touch only its own namespaces of the shared API server.
func onlyIn(sel *metav1.LabelSelector, names ...string) *metav1.LabelSelector {
	if sel == nil {
		sel = &metav1.LabelSelector{}
	}
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: names,
	})
	return sel
}

// registerWebhook creates the MutatingWebhookConfiguration of
// kustomize/components/webhook, pointed at url instead of the Service, with
// caBundle, and restricted to namespaces. failurePolicy becomes Fail so that
// a webhook that can't be called fails the pod create here instead of
// letting the pod through unmutated.
func registerWebhook(t *testing.T, url string, caPEM []byte, namespaces ...string) {
	t.Helper()
	var mwc admregv1.MutatingWebhookConfiguration
	decodeFile(t, filepath.Join(repoRoot, "kustomize", "components", "webhook", "mutatingwebhookconfiguration.yaml"), &mwc)
	mwc.Name = "it-" + namespaces[0]
	fail := admregv1.Fail
	for i := range mwc.Webhooks {
		w := &mwc.Webhooks[i]
		if w.ClientConfig.Service == nil || w.ClientConfig.Service.Path == nil {
			t.Fatalf("webhook %s: want clientConfig.service with a path", w.Name)
		}
		u := url + *w.ClientConfig.Service.Path
		w.ClientConfig = admregv1.WebhookClientConfig{URL: &u, CABundle: caPEM}
		w.FailurePolicy = &fail
		w.NamespaceSelector = onlyIn(w.NamespaceSelector, namespaces...)
	}
	if _, err := adminClient(t).AdmissionregistrationV1().MutatingWebhookConfigurations().Create(t.Context(), &mwc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
}

// registerPolicy creates the MutatingAdmissionPolicy and its binding from
// kustomize/components/admission-policy, the binding restricted to
// namespaces.
func registerPolicy(t *testing.T, namespaces ...string) {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(repoRoot, "kustomize", "components", "admission-policy", "policy.yaml")
	var policy admregv1.MutatingAdmissionPolicy
	var binding admregv1.MutatingAdmissionPolicyBinding
	decodeFile(t, path, &policy, &binding)
	if policy.Kind != "MutatingAdmissionPolicy" || binding.Kind != "MutatingAdmissionPolicyBinding" {
		t.Fatalf("%s: want a MutatingAdmissionPolicy then its binding, got %s and %s", path, policy.Kind, binding.Kind)
	}
	name := "it-" + namespaces[0]
	policy.Name, binding.Name, binding.Spec.PolicyName = name, name, name
	if binding.Spec.MatchResources == nil {
		binding.Spec.MatchResources = &admregv1.MatchResources{}
	}
	binding.Spec.MatchResources.NamespaceSelector = onlyIn(binding.Spec.MatchResources.NamespaceSelector, namespaces...)
	fail := admregv1.Fail
	policy.Spec.FailurePolicy = &fail // as for the webhook: errors show, not unmutated pods
	admreg := adminClient(t).AdmissionregistrationV1()
	if _, err := admreg.MutatingAdmissionPolicies().Create(ctx, &policy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingAdmissionPolicy: %v", err)
	}
	if _, err := admreg.MutatingAdmissionPolicyBindings().Create(ctx, &binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingAdmissionPolicyBinding: %v", err)
	}
}

// waitForInjection waits until pods created in ns get mounts: the API
// server picks up new webhook configurations and policies from informers,
// a moment after they are created. It probes with dry runs.
func waitForInjection(t *testing.T, mutator, ns string) {
	t.Helper()
	start := time.Now()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p, err := adminClient(t).CoreV1().Pods(ns).Create(ctx, plainPod(nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			last = err
			return false, nil
		}
		return hasLXCFSVolumes(p), nil
	})
	if err != nil {
		t.Fatalf("%s never injected a pod in namespace %s: %v (last error: %v)", mutator, ns, err, last)
	}
	t.Logf("%s active after %v", mutator, time.Since(start).Round(time.Millisecond))
}

// decodeFile decodes the YAML documents of path into objs, in order.
func decodeFile(t *testing.T, path string, objs ...any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for i, o := range objs {
		if err := dec.Decode(o); err != nil {
			t.Fatalf("%s: document %d: %v", path, i+1, err)
		}
	}
	var rest map[string]any
	if err := dec.Decode(&rest); !errors.Is(err, io.EOF) && len(rest) > 0 {
		t.Fatalf("%s: more than %d documents", path, len(objs))
	}
}
