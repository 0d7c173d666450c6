// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// CertStore holds the serving certificate handed to each TLS handshake.
type CertStore struct {
	mu   sync.RWMutex
	cert *tls.Certificate
}

// Set replaces the certificate.
func (s *CertStore) Set(c *tls.Certificate) {
	s.mu.Lock()
	s.cert = c
	s.mu.Unlock()
}

// Ready reports whether a certificate is loaded.
func (s *CertStore) Ready() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cert != nil
}

// GetCertificate is a [tls.Config.GetCertificate].
func (s *CertStore) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.cert == nil {
		return nil, fmt.Errorf("webhook: no serving certificate yet")
	}
	return s.cert, nil
}

// FileSource loads a key pair from files, as mounted from a cert-manager
// Certificate's Secret, and reloads it when either file changes. The
// kubelet swaps Secret volumes atomically (a ..data symlink), so a
// reload sees a matching pair or an error, and an error keeps the old
// pair.
type FileSource struct {
	CertFile, KeyFile string
	// Interval between checks; 0 means 10s.
	Interval time.Duration
}

// Load reads the pair once.
func (f FileSource) Load() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load key pair %s, %s: %w", f.CertFile, f.KeyFile, err)
	}
	return &c, nil
}

// Run loads the pair into store and reloads it on change until ctx is
// done. It fails only if the first load fails.
func (f FileSource) Run(ctx context.Context, store *CertStore) error {
	log := logr.FromContextOrDiscard(ctx)
	c, err := f.Load()
	if err != nil {
		return err
	}
	store.Set(c)
	last := f.stamp()
	iv := f.Interval
	if iv == 0 {
		iv = 10 * time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		st := f.stamp()
		if st == last {
			continue
		}
		c, err := f.Load()
		if err != nil {
			log.Error(err, "Could not reload serving certificate; keeping the old one")
			continue
		}
		last = st
		store.Set(c)
		log.Info("Reloaded serving certificate", "file", f.CertFile)
	}
}

// stamp identifies the current file contents by modification time and size.
func (f FileSource) stamp() string {
	s := ""
	for _, p := range []string{f.CertFile, f.KeyFile} {
		fi, err := os.Stat(p) // follows the ..data symlink
		if err != nil {
			s += "missing;"
			continue
		}
		s += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return s
}
