// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
)

// Serve serves h over TLS on ln with certificates from store until ctx is
// done, then shuts down within 10s. Timeouts bound slow clients: the API
// server itself gives up after the webhook's timeoutSeconds (≤ 30).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, store *CertStore) error {
	log := logr.FromContextOrDiscard(ctx)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: store.GetCertificate,
		},
		ErrorLog: nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	log.Info("Serving admission webhook", "address", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve webhook on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down webhook server: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve webhook: %w", err)
	}
	return nil
}
