// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
	"github.com/k8s-lxcfs/k8s-lxcfs/inject"
	"github.com/k8s-lxcfs/k8s-lxcfs/webhook"
)

// WebhookConfig configures `k8s-lxcfs webhook`.
type WebhookConfig struct {
	Listen      string
	CertFile    string
	KeyFile     string
	Kubeconfig  string
	Namespace   string
	SecretName  string
	WebhookName string
	ServiceName string
	CertLife    time.Duration
	Root        string
	Pressure    bool
	Verbosity   int
}

// Validate reports every problem at once.
func (c WebhookConfig) Validate() error {
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("-tls-cert-file and -tls-key-file go together"))
	}
	if c.CertFile == "" {
		if c.Namespace == "" {
			errs = append(errs, errors.New("self-managed TLS needs -namespace (or POD_NAMESPACE)"))
		}
		if c.SecretName == "" || c.ServiceName == "" {
			errs = append(errs, errors.New("self-managed TLS needs -tls-secret and -service"))
		}
		if c.CertLife < time.Hour {
			errs = append(errs, fmt.Errorf("-cert-lifetime %s: at least 1h", c.CertLife))
		}
	}
	return errors.Join(errs...)
}

// ParseWebhook parses the flags of `k8s-lxcfs webhook`; getenv supplies
// POD_NAMESPACE.
func ParseWebhook(args []string, getenv func(string) string, stderr io.Writer) (WebhookConfig, error) {
	c := WebhookConfig{}
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Listen, "listen", ":8443", "Address of the HTTPS server the API server sends AdmissionReviews to.")
	fs.StringVar(&c.CertFile, "tls-cert-file", "", "Serving certificate (e.g. from a cert-manager Certificate), reloaded when it changes. Empty: manage a CA and certificate in -tls-secret.")
	fs.StringVar(&c.KeyFile, "tls-key-file", "", "Key of -tls-cert-file.")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "Kubeconfig for self-managed TLS; empty uses the in-cluster config.")
	fs.StringVar(&c.Namespace, "namespace", getenv("POD_NAMESPACE"), "Namespace of the TLS Secret and the Service (default $POD_NAMESPACE).")
	fs.StringVar(&c.SecretName, "tls-secret", "k8s-lxcfs-webhook-tls", "Secret holding the self-managed CA and serving certificate; replicas share it.")
	fs.StringVar(&c.WebhookName, "webhook-config", "k8s-lxcfs", "MutatingWebhookConfiguration whose caBundle the self-managed CA is written to; empty leaves it alone.")
	fs.StringVar(&c.ServiceName, "service", "k8s-lxcfs-webhook", "Service the API server calls; the certificate is valid for its DNS names.")
	fs.DurationVar(&c.CertLife, "cert-lifetime", 365*24*time.Hour, "Lifetime of a self-managed serving certificate, renewed after 2/3 of it (the CA lives 10 times as long).")
	fs.StringVar(&c.Root, "lxcfs-root", inject.DefaultRoot, "Host directory where the DaemonSet mounts k8s-lxcfs; pods get hostPath volumes below it.")
	fs.BoolVar(&c.Pressure, "inject-pressure", false, "Also mount /proc/pressure/{cpu,memory,io}; only if every node has PSI (a missing file keeps pods from starting).")
	fs.IntVar(&c.Verbosity, "v", 0, "Log verbosity (2: every injection).")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("webhook: unexpected arguments %q", fs.Args())
	}
	return c, c.Validate()
}

func runWebhookCmd(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := ParseWebhook(args, os.Getenv, stderr)
	if errors.Is(err, ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "k8s-lxcfs:", err)
		return 2
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.Level(-cfg.Verbosity)})).WithName("webhook")
	if err := RunWebhook(logr.NewContext(ctx, log), cfg); err != nil {
		log.Error(err, "Webhook stopped with error")
		return 1
	}
	return 0
}

// RunWebhook serves the admission webhook until ctx is done.
func RunWebhook(ctx context.Context, cfg WebhookConfig) error {
	log := logr.FromContextOrDiscard(ctx)
	store := &webhook.CertStore{}
	h := webhook.NewHandler(log, inject.Options{Root: cfg.Root, Pressure: cfg.Pressure}, store.Ready)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	if cfg.CertFile != "" {
		src := webhook.FileSource{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		c, err := src.Load()
		if err != nil {
			_ = ln.Close() // nothing served on it yet
			return err
		}
		store.Set(c)
		g.Go(func() error { return src.Run(gctx, store) })
	} else {
		client, err := heal.NewClient(cfg.Kubeconfig)
		if err != nil {
			_ = ln.Close() // nothing served on it yet
			return err
		}
		ss := &webhook.SelfSigned{
			Client: client, Namespace: cfg.Namespace, SecretName: cfg.SecretName,
			WebhookName: cfg.WebhookName, ServiceName: cfg.ServiceName, Lifetime: cfg.CertLife,
		}
		g.Go(func() error { return ss.Run(gctx, store) })
	}
	g.Go(func() error { return webhook.Serve(gctx, ln, h, store) })
	return g.Wait()
}
