// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package integration

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// repoRoot is the product module's root; go test runs in this package's
// directory, test/integration.
const repoRoot = "../.."

// optionalGroups are API groups whose CRDs a cluster may lack (the
// Prometheus operator's ServiceMonitor, cert-manager). Objects of these
// groups are skipped, with a log line, when the API server does not serve
// them; any other unknown kind fails.
var optionalGroups = map[string]bool{
	"monitoring.coreos.com": true,
	"cert-manager.io":       true,
}

// TestManifestsServerSideDryRun applies every object of manifests/*.yaml
// (install.yaml and the other renderings of `make manifests`), and of each kustomize/overlays/* rendered by
// `kubectl kustomize`, with a server-side dry run: the API server's
// validation, defaulting and admission accept them (a client-side schema
// check does not run admission or CEL validation).
func TestManifestsServerSideDryRun(t *testing.T) {
	t.Parallel()

	rendered, err := filepath.Glob(filepath.Join(repoRoot, "manifests", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rendered, filepath.Join(repoRoot, "manifests", "install.yaml")) {
		t.Errorf("no manifests/install.yaml (render it with `make manifests`)")
	}
	for _, path := range rendered {
		t.Run("manifests/"+filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			dryRunApply(t, data)
		})
	}

	overlays, err := filepath.Glob(filepath.Join(repoRoot, "kustomize", "overlays", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(overlays) == 0 {
		t.Errorf("no kustomize/overlays/*/kustomization.yaml")
	}
	for _, k := range overlays {
		dir := filepath.Dir(k)
		t.Run("kustomize/overlays/"+filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(t.Context(), kubectlPath, "kustomize", dir)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.Bytes())
			}
			dryRunApply(t, out)
		})
	}
}

// dryRunApply server-side applies each object of the YAML stream with
// dryRun=All. Namespaces the objects live in are created for real first:
// the NamespaceLifecycle admission plugin refuses objects, dry run or not,
// in a namespace that does not exist.
func dryRunApply(t *testing.T, stream []byte) {
	t.Helper()
	ctx := t.Context()
	objs := decodeObjects(t, stream)
	if len(objs) == 0 {
		t.Fatalf("no objects")
	}
	dc, err := discovery.NewDiscoveryClientForConfig(adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(adminConfig)
	if err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t)

	type item struct {
		obj     *unstructured.Unstructured
		mapping *meta.RESTMapping
	}
	var items []item
	namespaces := map[string]bool{}
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case meta.IsNoMatchError(err) && optionalGroups[gvk.Group]:
			t.Logf("skip %s %s: the API server does not serve %s (its CRD is not installed here)", gvk.Kind, obj.GetName(), gvk.GroupVersion())
			continue
		case err != nil:
			t.Errorf("%s %s: %v", gvk.Kind, obj.GetName(), err)
			continue
		}
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(metav1.NamespaceDefault)
			}
			namespaces[obj.GetNamespace()] = true
		}
		items = append(items, item{obj, mapping})
	}
	for ns := range namespaces {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	for _, it := range items {
		ri := dyn.Resource(it.mapping.Resource).Namespace(it.obj.GetNamespace())
		_, err := ri.Apply(ctx, it.obj.GetName(), it.obj, metav1.ApplyOptions{
			FieldManager: "k8s-lxcfs-integration",
			Force:        true,
			DryRun:       []string{metav1.DryRunAll},
		})
		if err != nil {
			t.Errorf("server-side dry-run apply %s %s/%s: %v", it.obj.GetKind(), it.obj.GetNamespace(), it.obj.GetName(), err)
			continue
		}
		t.Logf("accepted %s %s", it.obj.GetKind(), namespaced(it.obj))
	}
}

func namespaced(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// decodeObjects splits a multi-document YAML stream into objects; empty
// documents are dropped and List kinds are flattened.
func decodeObjects(t *testing.T, stream []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode YAML: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			err := u.EachListItem(func(o runtime.Object) error {
				objs = append(objs, o.(*unstructured.Unstructured))
				return nil
			})
			if err != nil {
				t.Fatalf("decode List: %v", err)
			}
			continue
		}
		objs = append(objs, u)
	}
}
