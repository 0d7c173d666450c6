// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package integration

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
)

// bindServiceAccount creates service account name in ns, a ClusterRole with
// rules and a ClusterRoleBinding between them, and returns a client that
// impersonates the service account.
func bindServiceAccount(t *testing.T, ns, name string, rules []rbacv1.PolicyRule) kubernetes.Interface {
	t.Helper()
	ctx := t.Context()
	admin := adminClient(t)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account: %v", err)
	}
	role := ns + "-" + name // cluster-scoped: unique per test namespace
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      rules,
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRole: %v", err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ClusterRoleBinding: %v", err)
	}
	return clientFor(t, impersonating("system:serviceaccount:"+ns+":"+name))
}

// withoutDelete drops the "delete pods" rule, as a deployment without
// -heal-allow-delete may.
func withoutDelete(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		if slices.Contains(r.Verbs, "delete") {
			continue
		}
		out = append(out, r)
	}
	return out
}

// TestRBACRulesAgainstAPI checks heal.RBACRules as the API server's RBAC
// authorizer evaluates them: a service account bound to them may make every
// call heal.Kube makes, cluster-wide, and none of the neighbouring ones.
// Every call is real; those that would change something are dry runs, which
// the API server authorizes exactly like the real call.
func TestRBACRulesAgainstAPI(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	admin := adminClient(t)
	home := newNamespace(t, nil)   // where the service accounts live
	target := newNamespace(t, nil) // where the pods live: rules must be cluster-wide

	pod, err := admin.CoreV1().Pods(target).Create(ctx, testPod("victim", "node-a", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, StringData: map[string]string{"k": "v"}}
	if _, err := admin.CoreV1().Secrets(target).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret: %v", err)
	}

	dry := []string{metav1.DryRunAll}
	type call func(ctx context.Context, cs kubernetes.Interface) error
	cases := []struct {
		name string
		call call
		// allowed with all of heal.RBACRules, and without the delete rule
		allowed, allowedNoDelete bool
	}{
		{"get pods", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Pods(target).Get(ctx, pod.Name, metav1.GetOptions{})
			return err
		}, true, true},
		{"list pods in all namespaces by node", func(ctx context.Context, cs kubernetes.Interface) error {
			// Exactly heal.Kube's list: field selector, watch cache.
			_, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
				FieldSelector: "spec.nodeName=node-a", ResourceVersion: "0",
			})
			return err
		}, true, true},
		{"create pods/eviction", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Pods(target).EvictV1(ctx, &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: target},
				DeleteOptions: &metav1.DeleteOptions{DryRun: dry},
			})
		}, true, true},
		{"create events", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Events(target).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "e-" + rand.String(6)},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: target, Name: pod.Name, UID: pod.UID},
				Reason:         heal.ReasonRestarted, Message: "rbac test", Type: corev1.EventTypeWarning,
			}, metav1.CreateOptions{DryRun: dry})
			return err
		}, true, true},
		{"delete pods", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Pods(target).Delete(ctx, pod.Name, metav1.DeleteOptions{DryRun: dry})
		}, true, false},

		{"list secrets", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Secrets(target).List(ctx, metav1.ListOptions{})
			return err
		}, false, false},
		{"get secrets", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Secrets(target).Get(ctx, secret.Name, metav1.GetOptions{})
			return err
		}, false, false},
		{"create pods", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Pods(target).Create(ctx, testPod("new", "node-a", nil), metav1.CreateOptions{DryRun: dry})
			return err
		}, false, false},
		{"update pods", func(ctx context.Context, cs kubernetes.Interface) error {
			p := pod.DeepCopy()
			p.Labels = map[string]string{"touched": "yes"}
			_, err := cs.CoreV1().Pods(target).Update(ctx, p, metav1.UpdateOptions{DryRun: dry})
			return err
		}, false, false},
		{"update pods/status", func(ctx context.Context, cs kubernetes.Interface) error {
			p := pod.DeepCopy()
			p.Status.Phase = corev1.PodFailed
			_, err := cs.CoreV1().Pods(target).UpdateStatus(ctx, p, metav1.UpdateOptions{DryRun: dry})
			return err
		}, false, false},
		{"get pods/log", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Pods(target).GetLogs(pod.Name, &corev1.PodLogOptions{}).Do(ctx).Error()
		}, false, false},
		{"list nodes", func(ctx context.Context, cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
			return err
		}, false, false},
		{"delete events", func(ctx context.Context, cs kubernetes.Interface) error {
			return cs.CoreV1().Events(target).DeleteCollection(ctx, metav1.DeleteOptions{DryRun: dry}, metav1.ListOptions{})
		}, false, false},
	}

	subjects := []struct {
		name    string
		client  kubernetes.Interface
		allowed func(i int) bool
	}{
		{"RBACRules", bindServiceAccount(t, home, "heal", heal.RBACRules()),
			func(i int) bool { return cases[i].allowed }},
		{"RBACRules without delete", bindServiceAccount(t, home, "heal-no-delete", withoutDelete(heal.RBACRules())),
			func(i int) bool { return cases[i].allowedNoDelete }},
	}
	for _, s := range subjects {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			for i, c := range cases {
				err := c.call(ctx, s.client)
				switch want := s.allowed(i); {
				case want && err != nil:
					t.Errorf("%s: want allowed, got %v", c.name, err)
				case !want && !apierrors.IsForbidden(err):
					t.Errorf("%s: want Forbidden, got %v", c.name, err)
				}
			}
		})
	}

	// The dry runs changed nothing.
	got, err := admin.CoreV1().Pods(target).Get(ctx, pod.Name, metav1.GetOptions{})
	switch {
	case err != nil:
		t.Errorf("get pod after dry runs: %v", err)
	case got.DeletionTimestamp != nil || got.ResourceVersion != pod.ResourceVersion:
		t.Errorf("pod changed by dry runs: deletionTimestamp %v, resourceVersion %s (was %s)",
			got.DeletionTimestamp, got.ResourceVersion, pod.ResourceVersion)
	}
}

// testPod returns a pod bound to node (envtest has no scheduler: a pod with
// spec.nodeName set is accepted as already scheduled there).
func testPod(name, node string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "main", Image: "busybox"}},
		},
	}
}
