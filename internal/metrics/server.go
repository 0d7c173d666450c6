// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Phase is where the daemon is in its life, as the probes see it.
type Phase int32

const (
	// Starting: taking over from a predecessor or mounting. Healthy, not ready.
	Starting Phase = iota
	// Serving: a fresh mount or an adopted connection is served. Healthy
	// and ready. A handover's quiesce keeps this phase: the pause is
	// deliberate and short.
	Serving
	// HandedOver: a successor serves the connection. Not ready; healthy,
	// since the daemon is exiting on purpose.
	HandedOver
	// Stopped: the FUSE serving loop ended (the kernel ended the connection,
	// or the daemon is shutting down). Neither healthy nor ready.
	Stopped
)

var phaseNames = [...]string{"starting", "serving", "handed over", "stopped"}

func (p Phase) String() string {
	if p < 0 || int(p) >= len(phaseNames) {
		return fmt.Sprintf("phase(%d)", int32(p))
	}
	return phaseNames[p]
}

// Health is the daemon's phase, set by the daemon and read by the probes.
// The zero value is Starting.
type Health struct{ p atomic.Int32 }

// Set moves to phase p.
func (h *Health) Set(p Phase) { h.p.Store(int32(p)) }

// Phase returns the current phase.
func (h *Health) Phase() Phase { return Phase(h.p.Load()) }

// Healthy reports whether the daemon's own loops are alive.
func (h *Health) Healthy() bool { return h.Phase() != Stopped }

// Ready reports whether the daemon serves the filesystem.
func (h *Health) Ready() bool { return h.Phase() == Serving }

// Handler serves /metrics from m's registry (nil: none), /healthz and /readyz.
func Handler(m *Metrics, h *Health) http.Handler {
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
			Registry: m.Registry, MaxRequestsInFlight: 4, Timeout: 10 * time.Second,
		}))
	}
	probe := func(ok func() bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			p := h.Phase()
			if !ok() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			fmt.Fprintln(w, p.String())
		}
	}
	mux.Handle("GET /healthz", probe(h.Healthy))
	mux.Handle("GET /readyz", probe(h.Ready))
	return mux
}

// ShutdownTimeout bounds how long Serve waits for requests in flight.
const ShutdownTimeout = 2 * time.Second

// bindRetry is how often Serve tries again to bind a busy address.
var bindRetry = 500 * time.Millisecond

// Serve serves handler on addr until ctx ends, then shuts down within
// ShutdownTimeout; the listening socket is closed at once, so a successor
// on the same host can bind the address. While addr is in use (a
// predecessor on the same host still holds it during a handover) Serve
// logs once and keeps trying: the HTTP endpoint is never worth failing the
// daemon for. It logs the bound address ("httpAddress", useful with port
// 0) and calls bound with it, if not nil. It returns nil when ctx ends.
func Serve(ctx context.Context, addr string, handler http.Handler, log logr.Logger, bound func(net.Addr)) error {
	var l net.Listener
	for logged := false; ; {
		var err error
		l, err = (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if !logged {
			log.Error(err, "Could not listen for HTTP; metrics and probes are unavailable until the address is free, retrying", "httpAddress", addr)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(bindRetry):
		}
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	log.Info("Serving HTTP metrics and probes", "httpAddress", l.Addr().String())
	if bound != nil {
		bound(l.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve HTTP on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close() //nolint:errcheck // forcing after the deadline
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve HTTP on %s: %w", l.Addr(), err)
	}
	return nil
}

// Stop moves to Stopped, unless the daemon has handed over.
func (h *Health) Stop() {
	for {
		p := h.p.Load()
		if Phase(p) == HandedOver || Phase(p) == Stopped || h.p.CompareAndSwap(p, int32(Stopped)) {
			return
		}
	}
}
