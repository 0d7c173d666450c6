// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
)

const (
	thisNode  = "node-a"
	otherNode = "node-b"
)

// healFixture is one test's namespace, a client for the agent's service
// account (bound to exactly heal.RBACRules, so every call heal makes is also
// an RBAC check), and an admin client to set the scene and look.
type healFixture struct {
	t     *testing.T
	ns    string
	admin kubernetes.Interface
	agent kubernetes.Interface
}

func newHealFixture(t *testing.T) *healFixture {
	t.Helper()
	ns := newNamespace(t, nil)
	return &healFixture{
		t:     t,
		ns:    ns,
		admin: adminClient(t),
		agent: bindServiceAccount(t, ns, "k8s-lxcfs", heal.RBACRules()),
	}
}

// kube returns a heal.Kube for thisNode without rate limiting, talking as
// the agent's service account.
func (f *healFixture) kube(allowDelete bool) *heal.Kube {
	return heal.NewKube(f.agent, heal.KubeOptions{NodeName: thisNode, AllowDelete: allowDelete, MinInterval: -1})
}

// pod creates a pod on node, labelled app=app. running makes it Running and Ready, as a
// kubelet would report it: the eviction API lets Pending pods go whatever
// their budget says (canIgnorePDB in pkg/registry/core/pod/storage/eviction.go),
// so only a running pod tests a budget.
func (f *healFixture) pod(name, app, node string, running bool, annotations map[string]string) *corev1.Pod {
	f.t.Helper()
	ctx := f.t.Context()
	p := testPod(name, node, map[string]string{"app": app})
	p.Annotations = annotations
	p, err := f.admin.CoreV1().Pods(f.ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create pod: %v", err)
	}
	if !running {
		return p
	}
	now := metav1.Now()
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", Image: "busybox", Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
	if p, err = f.admin.CoreV1().Pods(f.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatalf("set pod running: %v", err)
	}
	return p
}

// find returns heal's view of p, found by UID as the healer finds it.
func (f *healFixture) find(k *heal.Kube, p *corev1.Pod) *heal.Pod {
	f.t.Helper()
	hp, err := k.PodByUID(f.t.Context(), string(p.UID))
	if err != nil {
		f.t.Fatalf("PodByUID(%s): %v", p.Name, err)
	}
	return hp
}

// pdb creates a budget with minAvailable 1 selecting app=app. status, if
// not nil, is written as the disruption controller would write it (envtest
// runs none); observedGeneration is set to the budget's generation.
func (f *healFixture) pdb(app string, status *policyv1.PodDisruptionBudgetStatus) *policyv1.PodDisruptionBudget {
	f.t.Helper()
	ctx := f.t.Context()
	one := intstr.FromInt32(1)
	b, err := f.admin.PolicyV1().PodDisruptionBudgets(f.ns).Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one,
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("create PodDisruptionBudget: %v", err)
	}
	if status == nil {
		return b
	}
	b.Status = *status
	b.Status.ObservedGeneration = b.Generation
	if b, err = f.admin.PolicyV1().PodDisruptionBudgets(f.ns).UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		f.t.Fatalf("write PodDisruptionBudget status: %v", err)
	}
	return b
}

// evicted reports whether p is terminating or gone. With no kubelet, a
// gracefully deleted pod that is bound to a node stays, with a
// deletionTimestamp, until its 30 s grace period would be confirmed.
func (f *healFixture) evicted(p *corev1.Pod) bool {
	f.t.Helper()
	cur, err := f.admin.CoreV1().Pods(f.ns).Get(f.t.Context(), p.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return true
	case err != nil:
		f.t.Fatalf("get pod: %v", err)
	case cur.UID != p.UID:
		return true
	}
	return cur.DeletionTimestamp != nil
}

// untouched fails unless p is exactly as it was.
func (f *healFixture) untouched(p *corev1.Pod) {
	f.t.Helper()
	cur, err := f.admin.CoreV1().Pods(f.ns).Get(f.t.Context(), p.Name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("get pod: %v", err)
	}
	if cur.DeletionTimestamp != nil || cur.ResourceVersion != p.ResourceVersion {
		f.t.Errorf("pod %s was touched: deletionTimestamp %v, resourceVersion %s (was %s)",
			p.Name, cur.DeletionTimestamp, cur.ResourceVersion, p.ResourceVersion)
	}
}

// events returns the Events on p.
func (f *healFixture) events(p *corev1.Pod) []corev1.Event {
	f.t.Helper()
	list, err := f.admin.CoreV1().Events(f.ns).List(f.t.Context(), metav1.ListOptions{
		FieldSelector: "involvedObject.uid=" + string(p.UID),
	})
	if err != nil {
		f.t.Fatalf("list events: %v", err)
	}
	return list.Items
}

// event fails unless p has exactly one Event, with reason and a message
// that contains msg, recorded as heal records them; it returns the Event.
func (f *healFixture) event(p *corev1.Pod, reason, msg string) corev1.Event {
	f.t.Helper()
	evs := f.events(p)
	if len(evs) != 1 {
		f.t.Fatalf("pod %s has %d Events, want 1: %+v", p.Name, len(evs), evs)
	}
	ev := evs[0]
	if ev.Reason != reason || !strings.Contains(ev.Message, msg) || ev.Type != corev1.EventTypeWarning ||
		ev.Source.Component != heal.EventComponent || ev.Source.Host != thisNode ||
		ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.Name != p.Name {
		f.t.Errorf("Event on %s = reason %q type %q source %+v object %+v message %q; want reason %q, Warning, from %s on %s, message containing %q",
			p.Name, ev.Reason, ev.Type, ev.Source, ev.InvolvedObject, ev.Message, reason, heal.EventComponent, thisNode, msg)
	}
	return ev
}

// TestHealRestartAgainstAPI drives heal.Kube.Restart through the real
// eviction subresource, as the agent's service account.
func TestHealRestartAgainstAPI(t *testing.T) {
	t.Parallel()

	t.Run("evicts and records an Event", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("web", "web", thisNode, true, nil)
		k := f.kube(false)
		hp := f.find(k, p)
		if hp.Node != thisNode || hp.Namespace != f.ns || hp.Policy != heal.PolicyRepair {
			t.Errorf("PodByUID = %+v", hp)
		}
		if err := k.Restart(t.Context(), hp, "bind is stale"); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if !f.evicted(p) {
			t.Errorf("pod not evicted")
		}
		f.event(p, heal.ReasonRestarted, "Evicted pod with broken lxcfs mounts")
		// The pod is terminating now: nothing left to restart.
		if err := k.Restart(t.Context(), hp, "again"); !errors.Is(err, heal.ErrPodGone) {
			t.Errorf("second Restart: got %v, want ErrPodGone", err)
		}
	})

	// A fresh budget has observedGeneration 0 < generation 1 until the
	// disruption controller processes it, which envtest never does. The
	// eviction API then refuses every running pod it covers: 429, cause
	// "The disruption budget ... is still being processed by the server",
	// and Retry-After 10 s (createTooManyRequestsError in
	// pkg/registry/core/pod/storage/eviction.go). A budget blocks even before
	// it is computed. client-go honours that Retry-After up to 10 times, so
	// with a default client Restart returns ErrBlockedByPDB only after about
	// 100 s; here a 3 s context ends the wait first.
	t.Run("budget not yet processed blocks", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("db", "db", thisNode, true, nil)
		f.pdb("db", nil)

		// What the API answers, without client-side retries.
		err := f.agent.CoreV1().RESTClient().Post().Namespace(f.ns).Resource("pods").Name(p.Name).
			SubResource("eviction").MaxRetries(0).
			Body(&policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: f.ns}}).
			Do(t.Context()).Error()
		c, _ := apierrors.StatusCause(err, policyv1.DisruptionBudgetCause)
		delay, _ := apierrors.SuggestsClientDelay(err)
		if !apierrors.IsTooManyRequests(err) || !strings.Contains(c.Message, "still being processed") || delay != 10 {
			t.Errorf("eviction: got %v (cause %q, Retry-After %d s), want 429, still being processed, Retry-After 10 s", err, c.Message, delay)
		}

		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		k := f.kube(false)
		err = k.Restart(ctx, f.find(k, p), "bind is stale")
		if !errors.Is(err, heal.ErrBlockedByPDB) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Restart: got %v, want ErrBlockedByPDB, or the deadline while client-go waits out Retry-After", err)
		}
		t.Logf("Restart: %v", err)
		f.untouched(p)
	})

	// As the disruption controller would compute it for one healthy pod
	// under minAvailable 1: no disruption allowed.
	t.Run("budget allowing no disruption blocks", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("db", "db", thisNode, true, nil)
		f.pdb("db", &policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1, DisruptionsAllowed: 0})
		k := f.kube(false)
		err := k.Restart(t.Context(), f.find(k, p), "bind is stale")
		if !errors.Is(err, heal.ErrBlockedByPDB) {
			t.Fatalf("Restart: got %v, want ErrBlockedByPDB", err)
		}
		f.untouched(p)
		f.event(p, heal.ReasonMountsBroken, "needs 1 healthy pods and has 1 currently")
	})

	// Two healthy pods under minAvailable 1: the API lets one go and takes
	// the disruption off the budget itself (disruptionsAllowed 1 -> 0, the
	// pod listed in disruptedPods), so the second is then refused.
	t.Run("budget allowing one disruption lets one pod go", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p1 := f.pod("db-0", "db", thisNode, true, nil)
		p2 := f.pod("db-1", "db", thisNode, true, nil)
		f.pdb("db", &policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 1, ExpectedPods: 2, DisruptionsAllowed: 1})
		k := f.kube(false)
		if err := k.Restart(t.Context(), f.find(k, p1), "bind is stale"); err != nil {
			t.Fatalf("Restart first pod: %v", err)
		}
		if !f.evicted(p1) {
			t.Errorf("first pod not evicted")
		}
		b, err := f.admin.PolicyV1().PodDisruptionBudgets(f.ns).Get(t.Context(), "db", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get budget: %v", err)
		}
		if _, ok := b.Status.DisruptedPods[p1.Name]; b.Status.DisruptionsAllowed != 0 || !ok {
			t.Errorf("budget after eviction: disruptionsAllowed %d, disruptedPods %v; want 0 and %s",
				b.Status.DisruptionsAllowed, b.Status.DisruptedPods, p1.Name)
		}
		if err := k.Restart(t.Context(), f.find(k, p2), "bind is stale"); !errors.Is(err, heal.ErrBlockedByPDB) {
			t.Errorf("Restart second pod: got %v, want ErrBlockedByPDB", err)
		}
		f.untouched(p2)
	})

	// Pending (and terminal) pods are evicted whatever their budget says.
	t.Run("pending pod ignores budget", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("db", "db", thisNode, false, nil)
		f.pdb("db", nil)
		k := f.kube(false)
		if err := k.Restart(t.Context(), f.find(k, p), "bind is stale"); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if !f.evicted(p) {
			t.Errorf("pod not evicted")
		}
	})

	t.Run("AllowDelete overrides budget", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("db", "db", thisNode, true, nil)
		f.pdb("db", &policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1})
		k := f.kube(true)
		if err := k.Restart(t.Context(), f.find(k, p), "bind is stale"); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if !f.evicted(p) {
			t.Errorf("pod not deleted")
		}
		f.event(p, heal.ReasonRestarted, "Deleted pod with broken lxcfs mounts (eviction refused")
	})

	t.Run("pod on another node is never touched", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("web", "web", otherNode, true, nil)
		k := f.kube(true)
		if _, err := k.PodByUID(t.Context(), string(p.UID)); !errors.Is(err, heal.ErrPodNotFound) {
			t.Errorf("PodByUID: got %v, want ErrPodNotFound", err)
		}
		// As the other node's pod, and as a stale view claiming it is ours:
		// Restart reads the pod afresh before acting.
		for _, node := range []string{otherNode, thisNode} {
			hp := &heal.Pod{Namespace: f.ns, Name: p.Name, UID: string(p.UID), Node: node, Policy: heal.PolicyRepair}
			if err := k.Restart(t.Context(), hp, "bind is stale"); !errors.Is(err, heal.ErrNotOnNode) {
				t.Errorf("Restart claiming node %s: got %v, want ErrNotOnNode", node, err)
			}
		}
		f.untouched(p)
		if evs := f.events(p); len(evs) != 0 {
			t.Errorf("Events on another node's pod: %+v", evs)
		}
	})

	t.Run("policy ignore is respected", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		p := f.pod("web", "web", thisNode, true, map[string]string{heal.PolicyAnnotation: "Ignore"})
		k := f.kube(true)
		hp := f.find(k, p)
		if hp.Policy != heal.PolicyIgnore {
			t.Errorf("PodByUID policy = %q, want %q", hp.Policy, heal.PolicyIgnore)
		}
		if err := k.Restart(t.Context(), hp, "bind is stale"); !errors.Is(err, heal.ErrPodIgnored) {
			t.Errorf("Restart: got %v, want ErrPodIgnored", err)
		}
		// A view from before the annotation was set: the pod as it is now wins.
		stale := *hp
		stale.Policy = heal.PolicyRepair
		if err := k.Restart(t.Context(), &stale, "bind is stale"); !errors.Is(err, heal.ErrPodIgnored) {
			t.Errorf("Restart with stale policy: got %v, want ErrPodIgnored", err)
		}
		f.untouched(p)
		if evs := f.events(p); len(evs) != 0 {
			t.Errorf("Events on an ignored pod: %+v", evs)
		}
	})

	// The UID precondition: a namesake that replaced the pod is not evicted.
	t.Run("namesake is not evicted", func(t *testing.T) {
		t.Parallel()
		f := newHealFixture(t)
		old := f.pod("web", "web", thisNode, false, nil)
		k := f.kube(false)
		hp := f.find(k, old)
		if err := f.admin.CoreV1().Pods(f.ns).Delete(t.Context(), old.Name, *metav1.NewDeleteOptions(0)); err != nil {
			t.Fatalf("delete pod: %v", err)
		}
		p := f.pod("web", "web", thisNode, true, nil)
		if err := k.Restart(t.Context(), hp, "bind is stale"); !errors.Is(err, heal.ErrPodGone) {
			t.Errorf("Restart of the replaced pod: got %v, want ErrPodGone", err)
		}
		f.untouched(p)
	})
}
