// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// DefaultAssets is where `make test-integration` puts kube-apiserver and
// links etcd and kubectl; KUBEBUILDER_ASSETS overrides it.
const DefaultAssets = "/var/cache/k8s-lxcfs/k8s-v1.37.2"

// One API server for the whole package: starting one takes 3-4 s. Tests
// share it and stay independent by working in namespaces of their own.
var (
	adminConfig *rest.Config // system:masters
	kubeconfig  string       // adminConfig as a kubeconfig file, for kubectl
	kubectlPath string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// controller-runtime complains, with a stack trace, if its logger is unset.
	ctrllog.SetLogger(logr.Discard())

	dir, err := assetsDir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: start kube-apiserver and etcd from %s: %v\n", dir, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "envtest: kube-apiserver and etcd from %s up in %v\n", dir, time.Since(start).Round(time.Millisecond))
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest: %v\n", err)
		}
	}()
	adminConfig = cfg
	kubectlPath = filepath.Join(dir, "kubectl")

	tmp, err := os.MkdirTemp("", "k8s-lxcfs-integration-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	kubeconfig = filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	return m.Run()
}

// assetsDir returns the directory with etcd, kube-apiserver and kubectl, or
// an error that says how to get them. A missing binary is a failure, not a
// skip: a green run must mean the tests ran.
func assetsDir() (string, error) {
	dir, from := os.Getenv("KUBEBUILDER_ASSETS"), "KUBEBUILDER_ASSETS"
	if dir == "" {
		dir, from = DefaultAssets, "the default assets directory"
	}
	var errs []error
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			errs = append(errs, err)
		case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s is not an executable file", filepath.Join(dir, name)))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("integration tests need etcd, kube-apiserver and kubectl in %s (%s): %w\n"+
			"Run `make test-integration` from the repository root: it installs etcd-server, builds kube-apiserver "+
			"v1.37.2 once into %s (about 10 min on 2 cores) and runs these tests",
			dir, from, errors.Join(errs...), DefaultAssets)
	}
	return dir, nil
}

// adminClient returns a clientset with cluster-admin rights.
func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	return clientFor(t, adminConfig)
}

// clientFor returns a clientset for cfg.
func clientFor(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("new clientset: %v", err)
	}
	return cs
}

// impersonating returns adminConfig acting as user, as the API server's
// impersonation filter sees it (a service account user also gets its
// groups). Authorization then is exactly that user's.
func impersonating(user string) *rest.Config {
	cfg := rest.CopyConfig(adminConfig)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	return cfg
}

// newNamespace creates a namespace with a generated name and labels. Nothing
// deletes it: envtest runs no namespace controller, and the API server dies
// with the test binary.
func newNamespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	ns, err := adminClient(t).CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "it-", Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}
