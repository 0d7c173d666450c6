// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/k8s-lxcfs/k8s-lxcfs/inject"
)

const podReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1",
"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"a",
"object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`

func post(t *testing.T, h http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec
}

func TestHandlerPaths(t *testing.T) {
	t.Parallel()
	h := NewHandler(logr.Discard(), inject.Options{}, nil)
	for path, wantPatch := range map[string]bool{PathMutate: false, PathNamespace: true} {
		rec := post(t, h, path, podReview)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		if out.Kind != "AdmissionReview" || out.Response.UID != "u1" || (out.Response.Patch != nil) != wantPatch {
			t.Errorf("%s: %+v", path, out.Response)
		}
	}
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	h := NewHandler(logr.Discard(), inject.Options{}, nil)
	if rec := post(t, h, PathMutate, `{"request":`); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "malformed") {
		t.Errorf("malformed: %d %s", rec.Code, rec.Body)
	}
	big := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"` + strings.Repeat("x", MaxBody) + `"}}`
	if rec := post(t, h, PathMutate, big); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("too large: %d %s", rec.Code, rec.Body)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathMutate, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", rec.Code)
	}
}

func TestHandlerRecovers(t *testing.T) {
	t.Parallel()
	h := NewHandler(logr.Discard(), inject.Options{}, func() bool { panic("boom") })
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("panic: %d", rec.Code)
	}
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	store := &CertStore{}
	h := NewHandler(logr.Discard(), inject.Options{}, store.Ready)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz without cert: %d", rec.Code)
	}
}

func newSelfSigned(c *fake.Clientset) *SelfSigned {
	return &SelfSigned{Client: c, Namespace: "lxcfs-system", SecretName: "tls", WebhookName: "k8s-lxcfs",
		ServiceName: "k8s-lxcfs-webhook", Lifetime: 30 * 24 * time.Hour}
}

func mwc() *admregv1.MutatingWebhookConfiguration {
	return &admregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "k8s-lxcfs"},
		Webhooks:   []admregv1.MutatingWebhook{{Name: "namespace.lxcfs.k8s.io"}, {Name: "pod.lxcfs.k8s.io"}},
	}
}

// TestSelfSignedServe creates the Secret, writes the caBundle, and serves
// a review over TLS that verifies against that bundle.
func TestSelfSignedServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(mwc())
	ss := newSelfSigned(client)
	store := &CertStore{}
	if err := ss.Sync(ctx, store); err != nil {
		t.Fatal(err)
	}
	got, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "k8s-lxcfs", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, wh := range got.Webhooks {
		if len(wh.ClientConfig.CABundle) == 0 {
			t.Fatalf("webhook %s has no caBundle", wh.Name)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(got.Webhooks[0].ClientConfig.CABundle)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewHandler(logr.Discard(), inject.Options{}, store.Ready), store) }()
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, ServerName: "k8s-lxcfs-webhook.lxcfs-system.svc",
	}}}
	rsp, err := cl.Post("https://"+ln.Addr().String()+PathNamespace, "application/json", bytes.NewReader([]byte(podReview)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rsp.Body)
	_ = rsp.Body.Close()
	if rsp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"patch"`)) {
		t.Errorf("%d %s", rsp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestSelfSignedRenew: a second replica reuses the Secret; after 2/3 of
// the lifetime the serving certificate is renewed under the same CA.
func TestSelfSignedRenew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := fake.NewClientset(mwc())
	now := time.Now()
	a, b := newSelfSigned(client), newSelfSigned(client)
	a.Now = func() time.Time { return now }
	b.Now = a.Now
	sa, sb := &CertStore{}, &CertStore{}
	if err := a.Sync(ctx, sa); err != nil {
		t.Fatal(err)
	}
	first, _ := client.CoreV1().Secrets("lxcfs-system").Get(ctx, "tls", metav1.GetOptions{})
	if err := b.Sync(ctx, sb); err != nil {
		t.Fatal(err)
	}
	second, _ := client.CoreV1().Secrets("lxcfs-system").Get(ctx, "tls", metav1.GetOptions{})
	if !bytes.Equal(first.Data[KeyTLSCert], second.Data[KeyTLSCert]) {
		t.Error("second replica replaced a fresh certificate")
	}
	now = now.Add(21 * 24 * time.Hour) // past 2/3 of 30 days
	if err := b.Sync(ctx, sb); err != nil {
		t.Fatal(err)
	}
	third, _ := client.CoreV1().Secrets("lxcfs-system").Get(ctx, "tls", metav1.GetOptions{})
	if bytes.Equal(first.Data[KeyTLSCert], third.Data[KeyTLSCert]) {
		t.Error("certificate not renewed after 2/3 of its lifetime")
	}
	if !bytes.Equal(first.Data[KeyCACert], third.Data[KeyCACert]) {
		t.Error("CA renewed although it is fresh")
	}
	now = now.Add(200 * 24 * time.Hour) // past 2/3 of the CA's 300 days
	if err := a.Sync(ctx, sa); err != nil {
		t.Fatal(err)
	}
	fourth, _ := client.CoreV1().Secrets("lxcfs-system").Get(ctx, "tls", metav1.GetOptions{})
	if bytes.Equal(first.Data[KeyCACert], fourth.Data[KeyCACert]) || !bytes.Contains(fourth.Data[KeyCABundle], first.Data[KeyCACert]) {
		t.Error("CA not renewed, or old CA not kept in the bundle")
	}
	got, _ := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "k8s-lxcfs", metav1.GetOptions{})
	if !bytes.Equal(got.Webhooks[1].ClientConfig.CABundle, fourth.Data[KeyCABundle]) {
		t.Error("caBundle not updated")
	}
}

func TestFileSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ss := newSelfSigned(fake.NewClientset())
	data, err := ss.generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := FileSource{CertFile: dir + "/tls.crt", KeyFile: dir + "/tls.key"}
	if _, err := fs.Load(); err == nil {
		t.Error("load of missing files succeeded")
	}
	writeFile(t, fs.CertFile, data[KeyTLSCert])
	writeFile(t, fs.KeyFile, data[KeyTLSKey])
	if _, err := fs.Load(); err != nil {
		t.Fatal(err)
	}
}
