// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"io"
	"strings"
	"testing"
)

func TestParseWebhook(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		if k == "POD_NAMESPACE" {
			return "lxcfs-system"
		}
		return ""
	}
	cfg, err := ParseWebhook(nil, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "lxcfs-system" || cfg.Listen != ":8443" || cfg.WebhookName != "k8s-lxcfs" || cfg.Root != "/var/lib/lxcfs" {
		t.Errorf("defaults %+v", cfg)
	}
	if _, err := ParseWebhook([]string{"-tls-cert-file=/a"}, env, io.Discard); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("cert without key: %v", err)
	}
	if _, err := ParseWebhook(nil, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("self-managed TLS without a namespace accepted")
	}
	if cfg, err := ParseWebhook([]string{"-tls-cert-file=/a", "-tls-key-file=/b"}, func(string) string { return "" }, io.Discard); err != nil || cfg.CertFile != "/a" {
		t.Errorf("file TLS: %+v %v", cfg, err)
	}
}
