// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Keys of the Secret [SelfSigned] keeps.
const (
	KeyCACert   = "ca.crt"
	KeyCAKey    = "ca.key"
	KeyCABundle = "ca-bundle.crt" // current CA, then the previous one while it is valid
	KeyTLSCert  = corev1.TLSCertKey
	KeyTLSKey   = corev1.TLSPrivateKeyKey
)

// SelfSigned keeps a CA and a serving certificate in a Secret and the CA
// bundle in a MutatingWebhookConfiguration. Replicas race safely: the
// Secret is created once (AlreadyExists means another replica won) and
// updated with its resourceVersion (Conflict means another replica
// renewed first); every replica then serves what the Secret holds. Each
// certificate is renewed after 2/3 of its lifetime; a renewed CA is
// bundled with the previous one, so replicas still serving a certificate
// of the old CA stay trusted until they resync.
type SelfSigned struct {
	Client      kubernetes.Interface
	Namespace   string
	SecretName  string
	WebhookName string // MutatingWebhookConfiguration whose caBundle we own
	ServiceName string
	// Lifetime of a serving certificate; the CA lives 10 times as long.
	Lifetime time.Duration
	// Resync is how often the Secret is checked; 0 means 1m.
	Resync time.Duration
	// Now is time.Now unless set by tests.
	Now func() time.Time
}

// Run keeps store and the webhook configuration up to date until ctx is
// done. Errors are logged and retried; readiness stays false until the
// first success.
func (s *SelfSigned) Run(ctx context.Context, store *CertStore) error {
	log := logr.FromContextOrDiscard(ctx)
	resync := s.Resync
	if resync == 0 {
		resync = time.Minute
	}
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		if err := s.Sync(ctx, store); err != nil {
			log.Error(err, "Could not sync webhook certificate", "secret", s.Namespace+"/"+s.SecretName)
			wait = 5 * time.Second
			continue
		}
		wait = resync
	}
}

// Sync makes sure the Secret holds a fresh pair, loads it into store and
// writes the CA bundle into the webhook configuration.
func (s *SelfSigned) Sync(ctx context.Context, store *CertStore) error {
	var data map[string][]byte
	var err error
	for try := 0; try < 5; try++ {
		data, err = s.ensureSecret(ctx)
		if err == nil || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			break
		}
	}
	if err != nil {
		return err
	}
	c, err := tls.X509KeyPair(data[KeyTLSCert], data[KeyTLSKey])
	if err != nil {
		return fmt.Errorf("load key pair from secret %s/%s: %w", s.Namespace, s.SecretName, err)
	}
	store.Set(&c)
	for try := 0; ; try++ {
		err = s.patchCABundle(ctx, data[KeyCABundle])
		if err == nil || try == 4 || !(apierrors.IsConflict(err) || apierrors.IsInvalid(err)) {
			return err
		}
	}
}

func (s *SelfSigned) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *SelfSigned) lifetime() time.Duration {
	if s.Lifetime <= 0 {
		return 365 * 24 * time.Hour
	}
	return s.Lifetime
}

// DNSNames are the names the serving certificate is valid for.
func (s *SelfSigned) DNSNames() []string {
	n, ns := s.ServiceName, s.Namespace
	return []string{n + "." + ns + ".svc", n + "." + ns + ".svc.cluster.local", n + "." + ns, n}
}

// ensureSecret returns the Secret's data after creating or renewing it
// if needed. Conflict and AlreadyExists errors are retried by the caller.
func (s *SelfSigned) ensureSecret(ctx context.Context) (map[string][]byte, error) {
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, s.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		data, err := s.generate(nil)
		if err != nil {
			return nil, err
		}
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: s.SecretName, Namespace: s.Namespace, Labels: map[string]string{
				"app.kubernetes.io/name": "k8s-lxcfs", "app.kubernetes.io/component": "webhook",
			}},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create secret %s/%s: %w", s.Namespace, s.SecretName, err)
		}
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", s.Namespace, s.SecretName, err)
	}
	if !s.needsRenewal(sec.Data) {
		return sec.Data, nil
	}
	data, err := s.generate(sec.Data)
	if err != nil {
		return nil, err
	}
	sec = sec.DeepCopy()
	sec.Data = data // sec.ResourceVersion makes a racing update fail with Conflict
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("update secret %s/%s: %w", s.Namespace, s.SecretName, err)
	}
	return data, nil
}

// fresh reports whether c is valid now and not yet 2/3 through its life.
func (s *SelfSigned) fresh(c *x509.Certificate) bool {
	now := s.now()
	renew := c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
	return now.After(c.NotBefore) && now.Before(renew)
}

func (s *SelfSigned) needsRenewal(data map[string][]byte) bool {
	ca, _, err := parsePair(data[KeyCACert], data[KeyCAKey])
	if err != nil || !s.fresh(ca) {
		return true
	}
	leaf, _, err := parsePair(data[KeyTLSCert], data[KeyTLSKey])
	if err != nil || !s.fresh(leaf) || leaf.CheckSignatureFrom(ca) != nil {
		return true
	}
	if len(data[KeyCABundle]) == 0 {
		return true
	}
	for _, n := range s.DNSNames() {
		if leaf.VerifyHostname(n) != nil {
			return true
		}
	}
	return false
}

// generate returns new Secret data: a new serving certificate, signed by
// the old CA if it is still fresh, else by a new CA bundled with the old.
func (s *SelfSigned) generate(old map[string][]byte) (map[string][]byte, error) {
	now := s.now()
	caCert, caKey, err := parsePair(old[KeyCACert], old[KeyCAKey])
	caPEM, caKeyPEM := old[KeyCACert], old[KeyCAKey]
	bundle := old[KeyCABundle]
	if err != nil || !s.fresh(caCert) {
		prev := []byte(nil)
		if err == nil && now.Before(caCert.NotAfter) {
			prev = old[KeyCACert]
		}
		caCert, caKey, caPEM, caKeyPEM, err = newCert(now, 10*s.lifetime(), &x509.Certificate{
			Subject:               pkix.Name{CommonName: "k8s-lxcfs-webhook-ca"},
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		}, nil, nil)
		if err != nil {
			return nil, err
		}
		bundle = append(append([]byte{}, caPEM...), prev...)
	}
	if len(bundle) == 0 {
		bundle = caPEM
	}
	_, _, leafPEM, leafKeyPEM, err := newCert(now, s.lifetime(), &x509.Certificate{
		Subject:     pkix.Name{CommonName: s.DNSNames()[0]},
		DNSNames:    s.DNSNames(),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		KeyCACert: caPEM, KeyCAKey: caKeyPEM, KeyCABundle: bundle,
		KeyTLSCert: append(leafPEM, caPEM...), KeyTLSKey: leafKeyPEM,
	}, nil
}

// newCert creates a certificate from tmpl with a new P-256 key, signed by
// parent (self-signed if nil), valid from an hour ago (clock skew).
func newCert(now time.Time, life time.Duration, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(life)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	return c, key,
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// parsePair parses the first certificate in certPEM and an EC key.
func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("no PEM data")
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return c, k, nil
}

// patchCABundle writes bundle into every webhook of the configuration
// that differs, guarded by a JSON patch test of the resourceVersion.
func (s *SelfSigned) patchCABundle(ctx context.Context, bundle []byte) error {
	if s.WebhookName == "" {
		return nil
	}
	mwcs := s.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := mwcs.Get(ctx, s.WebhookName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get mutatingwebhookconfiguration %s: %w", s.WebhookName, err)
	}
	var ops []map[string]any
	if mwc.ResourceVersion != "" { // always set by a real API server; a racing writer fails the test
		ops = append(ops, map[string]any{"op": "test", "path": "/metadata/resourceVersion", "value": mwc.ResourceVersion})
	}
	guard := len(ops)
	for i, wh := range mwc.Webhooks {
		if bytes.Equal(wh.ClientConfig.CABundle, bundle) {
			continue
		}
		ops = append(ops, map[string]any{
			"op": "add", "path": fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i),
			"value": base64.StdEncoding.EncodeToString(bundle),
		})
	}
	if len(ops) == guard {
		return nil
	}
	raw, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("marshal patch: %w", err)
	}
	if _, err := mwcs.Patch(ctx, s.WebhookName, types.JSONPatchType, raw, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("patch caBundle of mutatingwebhookconfiguration %s: %w", s.WebhookName, err)
	}
	return nil
}
