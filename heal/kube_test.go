// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
)

const (
	kubeNode      = "node-a"
	kubeOtherNode = "node-b"
	kubeUID1      = "11111111-1111-4111-8111-111111111111"
	kubeUID2      = "22222222-2222-4222-8222-222222222222"
	kubeUID3      = "33333333-3333-4333-8333-333333333333"
)

var kubeT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// kubeClock is an injectable Now.
type kubeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *kubeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *kubeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// kubeLog collects log lines.
type kubeLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *kubeLog) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{Verbosity: 4})
}

func (l *kubeLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func kubePod(name, node, uid string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid), Annotations: annotations},
		Spec:       corev1.PodSpec{NodeName: node},
	}
}

// kubeEnv is one scenario's fake API server, Kube, clock and log.
type kubeEnv struct {
	cs    *fake.Clientset
	kube  *heal.Kube
	clock *kubeClock
	log   *kubeLog
}

// kubeRecorder keeps every fake clientset of TestKube, whose actions are
// checked against RBACRules once all scenarios are done.
type kubeRecorder struct {
	mu  sync.Mutex
	css []*fake.Clientset
}

func (r *kubeRecorder) env(o heal.KubeOptions, objs ...runtime.Object) *kubeEnv {
	e := &kubeEnv{cs: fake.NewClientset(objs...), clock: &kubeClock{t: kubeT0}, log: &kubeLog{}}
	r.mu.Lock()
	r.css = append(r.css, e.cs)
	r.mu.Unlock()
	if o.NodeName == "" {
		o.NodeName = kubeNode
	}
	o.Now, o.Log = e.clock.Now, e.log.logger()
	e.kube = heal.NewKube(e.cs, o)
	return e
}

// actions returns the API calls made, as "verb resource[/subresource]".
func (e *kubeEnv) actions() []string {
	var out []string
	for _, a := range e.cs.Actions() {
		out = append(out, a.GetVerb()+" "+kubeResource(a))
	}
	return out
}

func kubeResource(a k8stesting.Action) string {
	if a.GetSubresource() != "" {
		return a.GetResource().Resource + "/" + a.GetSubresource()
	}
	return a.GetResource().Resource
}

func (e *kubeEnv) wantActions(t *testing.T, want ...string) {
	t.Helper()
	if got := e.actions(); !slices.Equal(got, want) {
		t.Errorf("API calls = %q, want %q", got, want)
	}
}

// events returns the Events recorded in namespace "ns".
func (e *kubeEnv) events(t *testing.T) []corev1.Event {
	t.Helper()
	list, err := e.cs.Tracker().List(corev1.SchemeGroupVersion.WithResource("events"),
		corev1.SchemeGroupVersion.WithKind("Event"), "ns")
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return list.(*corev1.EventList).Items
}

// wantEvent checks that exactly one Event was recorded, a Warning with
// reason about pod, whose message contains each of msgs.
func (e *kubeEnv) wantEvent(t *testing.T, pod *corev1.Pod, reason string, msgs ...string) {
	t.Helper()
	evs := e.events(t)
	if len(evs) != 1 {
		t.Fatalf("%d Events recorded, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Reason != reason || ev.Type != corev1.EventTypeWarning {
		t.Errorf("Event reason, type = %q, %q; want %q, Warning", ev.Reason, ev.Type, reason)
	}
	io := ev.InvolvedObject
	if io.Kind != "Pod" || io.APIVersion != "v1" || io.Namespace != pod.Namespace || io.Name != pod.Name || io.UID != pod.UID {
		t.Errorf("Event involves %+v, want pod %s/%s %s", io, pod.Namespace, pod.Name, pod.UID)
	}
	if ev.Source.Component != heal.EventComponent || ev.Source.Host != kubeNode || ev.ReportingController != heal.EventComponent {
		t.Errorf("Event source %+v, reportingController %q; want component %q on %q", ev.Source, ev.ReportingController, heal.EventComponent, kubeNode)
	}
	if ev.Count != 1 || !ev.FirstTimestamp.Time.Equal(e.clock.Now()) || ev.Namespace != pod.Namespace {
		t.Errorf("Event count %d, first %v, namespace %q", ev.Count, ev.FirstTimestamp, ev.Namespace)
	}
	for _, m := range msgs {
		if !strings.Contains(ev.Message, m) {
			t.Errorf("Event message %q lacks %q", ev.Message, m)
		}
	}
}

func (e *kubeEnv) wantNoEvents(t *testing.T) {
	t.Helper()
	if evs := e.events(t); len(evs) != 0 {
		t.Errorf("%d Events recorded, want none: %+v", len(evs), evs)
	}
}

// evictionReturns makes pods/eviction answer err.
func (e *kubeEnv) evictionReturns(err error) {
	e.cs.PrependReactor("create", "pods/eviction", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, err
	})
}

func kubePodRef(p *corev1.Pod) *heal.Pod {
	policy, _ := heal.ParsePolicy(p.Annotations[heal.PolicyAnnotation])
	return &heal.Pod{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Node: p.Spec.NodeName, Policy: policy}
}

var (
	kubeErrPDB = apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	// kubeErrPDBCause is kubeErrPDB as an API server sends it, naming the budget.
	kubeErrPDBCause = func() error {
		err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{
			Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget db needs 2 healthy pods and has 2 currently",
		})
		return err
	}()
	// What an API server without the eviction subresource answers.
	kubeErrNoEvictionAPI = &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource",
	}}
	kubeErrEvictionNotAllowed = apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "pods/eviction"}, "create")
)

// kubeScenarios are TestKube's cases; each gets its own fake API server.
var kubeScenarios = []struct {
	name string
	run  func(t *testing.T, r *kubeRecorder)
}{
	{"PodByUIDFindsPodOfNode", func(t *testing.T, r *kubeRecorder) {
		own := kubePod("own", kubeNode, kubeUID1, map[string]string{heal.PolicyAnnotation: " Restart "})
		e := r.env(heal.KubeOptions{}, own, kubePod("other", kubeOtherNode, kubeUID2, nil))
		got, err := e.kube.PodByUID(context.Background(), strings.ToUpper(kubeUID1))
		if err != nil {
			t.Fatalf("PodByUID() error: %v", err)
		}
		want := heal.Pod{Namespace: "ns", Name: "own", UID: kubeUID1, Node: kubeNode, Policy: heal.PolicyRestart}
		if *got != want {
			t.Errorf("PodByUID() = %+v, want %+v", *got, want)
		}
		got.Name = "changed" // the cache keeps its own copy
		if again, err := e.kube.PodByUID(context.Background(), kubeUID1); err != nil || again.Name != "own" {
			t.Errorf("PodByUID() again = %+v, %v; want own", again, err)
		}
		// The list asks for this node's pods only.
		acts := e.cs.Actions()
		if len(acts) != 1 {
			t.Fatalf("API calls = %q, want one list", e.actions())
		}
		la, ok := acts[0].(k8stesting.ListActionImpl)
		if !ok || la.GetListRestrictions().Fields.String() != "spec.nodeName="+kubeNode || la.GetNamespace() != "" {
			t.Errorf("list action %+v, want all namespaces with field selector spec.nodeName=%s", acts[0], kubeNode)
		}
	}},
	{"PodByUIDNeverReturnsOtherNodes", func(t *testing.T, r *kubeRecorder) {
		// The fake ignores field selectors, like a misbehaving proxy might.
		e := r.env(heal.KubeOptions{}, kubePod("other", kubeOtherNode, kubeUID2, nil), kubePod("pending", "", kubeUID3, nil))
		for _, uid := range []string{kubeUID2, kubeUID3} {
			if p, err := e.kube.PodByUID(context.Background(), uid); !errors.Is(err, heal.ErrPodNotFound) {
				t.Errorf("PodByUID(%s) = %+v, %v; want ErrPodNotFound", uid, p, err)
			}
		}
	}},
	{"PodByUIDCacheRefresh", func(t *testing.T, r *kubeRecorder) {
		e := r.env(heal.KubeOptions{}, kubePod("a", kubeNode, kubeUID1, nil))
		ctx := context.Background()
		lookup := func(uid string, wantFound bool, wantLists int) {
			t.Helper()
			p, err := e.kube.PodByUID(ctx, uid)
			if wantFound && (err != nil || p.UID != uid) {
				t.Errorf("PodByUID(%s) = %+v, %v; want the pod", uid, p, err)
			}
			if !wantFound && !errors.Is(err, heal.ErrPodNotFound) {
				t.Errorf("PodByUID(%s) = %+v, %v; want ErrPodNotFound", uid, p, err)
			}
			if n := len(e.actions()); n != wantLists {
				t.Errorf("after PodByUID(%s): %d lists, want %d", uid, n, wantLists)
			}
		}
		lookup(kubeUID1, true, 1)
		e.clock.Add(2 * time.Second)
		lookup(kubeUID1, true, 1) // fresh: from the cache
		if err := e.cs.Tracker().Add(kubePod("b", kubeNode, kubeUID2, nil)); err != nil {
			t.Fatal(err)
		}
		lookup(kubeUID2, true, 2) // miss: lists again
		e.clock.Add(500 * time.Millisecond)
		lookup(kubeUID3, false, 2) // a miss right after a list doesn't list again
		e.clock.Add(time.Second)
		lookup(kubeUID3, false, 3) // a later one does
		if err := e.cs.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), "ns", "a"); err != nil {
			t.Fatal(err)
		}
		lookup(kubeUID1, true, 3) // still cached
		e.clock.Add(10 * time.Second)
		lookup(kubeUID1, false, 4) // expired: listed again, gone
		e.clock.Add(-time.Hour)
		lookup(kubeUID1, false, 5) // the clock went back: the list's age is unknown
	}},
	{"PodByUIDUnknownPolicy", func(t *testing.T, r *kubeRecorder) {
		e := r.env(heal.KubeOptions{},
			kubePod("bogus", kubeNode, kubeUID1, map[string]string{heal.PolicyAnnotation: "reboot"}),
			kubePod("empty", kubeNode, kubeUID2, map[string]string{heal.PolicyAnnotation: ""}),
			kubePod("ignore", kubeNode, kubeUID3, map[string]string{heal.PolicyAnnotation: "ignore"}))
		for i, tc := range []struct {
			uid  string
			want heal.Policy
		}{{kubeUID1, heal.PolicyRepair}, {kubeUID2, heal.PolicyRepair}, {kubeUID3, heal.PolicyIgnore}, {kubeUID1, heal.PolicyRepair}} {
			e.clock.Add(time.Minute) // list every time
			p, err := e.kube.PodByUID(context.Background(), tc.uid)
			if err != nil || p.Policy != tc.want {
				t.Errorf("%d: PodByUID(%s) = %+v, %v; want policy %q", i, tc.uid, p, err, tc.want)
			}
		}
		if n := e.log.count("Ignored unknown heal policy"); n != 1 {
			t.Errorf("unknown policy logged %d times over 4 lists, want once", n)
		}
		if n := e.log.count(`"value"="reboot"`); n != 1 {
			t.Errorf("log lacks the unknown value: %q", e.log.lines)
		}
	}},
	{"PodByUIDOddInput", func(t *testing.T, r *kubeRecorder) {
		noUID := kubePod("no-uid", kubeNode, "", nil)
		e := r.env(heal.KubeOptions{}, noUID)
		if _, err := e.kube.PodByUID(context.Background(), ""); !errors.Is(err, heal.ErrPodNotFound) {
			t.Errorf("PodByUID(\"\") error %v, want ErrPodNotFound", err)
		}
		if _, err := e.kube.PodByUID(context.Background(), "not-a-uid"); !errors.Is(err, heal.ErrPodNotFound) {
			t.Errorf("PodByUID(not-a-uid) error %v, want ErrPodNotFound", err)
		}
		e.cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no RBAC"))
		})
		e.clock.Add(time.Minute)
		if _, err := e.kube.PodByUID(context.Background(), kubeUID1); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "list pods on node "+kubeNode) {
			t.Errorf("PodByUID() with list forbidden: error %v, want it wrapped", err)
		}
	}},
	{"RestartEvicts", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("web", kubeNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{}, pod)
		if err := e.kube.Restart(context.Background(), kubePodRef(pod), "mounts stale"); err != nil {
			t.Fatalf("Restart() error: %v", err)
		}
		e.wantActions(t, "get pods", "create pods/eviction", "create events")
		ev, ok := e.cs.Actions()[1].(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if !ok || ev.Name != "web" || ev.Namespace != "ns" || ev.DeleteOptions == nil ||
			ev.DeleteOptions.Preconditions == nil || *ev.DeleteOptions.Preconditions.UID != pod.UID {
			t.Errorf("eviction %+v, want ns/web with UID precondition %s", ev, pod.UID)
		}
		e.wantEvent(t, pod, heal.ReasonRestarted, "Evicted", "mounts stale")
		if n := e.log.count("Evicted pod with broken lxcfs mounts"); n != 1 {
			t.Errorf("eviction logged %d times, want once", n)
		}
	}},
	{"RestartBlockedByPDB", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("db", kubeNode, kubeUID1, nil)
		pod2 := kubePod("web", kubeNode, kubeUID2, nil)
		e := r.env(heal.KubeOptions{}, pod, pod2)
		e.cs.PrependReactor("create", "pods/eviction", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction).Name == "db" {
				return true, nil, kubeErrPDBCause
			}
			return false, nil, nil
		})
		err := e.kube.Restart(context.Background(), kubePodRef(pod), "mounts stale")
		if !errors.Is(err, heal.ErrBlockedByPDB) || !apierrors.IsTooManyRequests(err) {
			t.Fatalf("Restart() error %v, want ErrBlockedByPDB wrapping the 429", err)
		}
		e.wantActions(t, "get pods", "create pods/eviction", "create events") // no delete
		e.wantEvent(t, pod, heal.ReasonMountsBroken, "PodDisruptionBudget", "budget db needs 2 healthy pods", "mounts stale")
		// A refused eviction disrupted nothing: it doesn't rate-limit the next.
		if err := e.kube.Restart(context.Background(), kubePodRef(pod2), "mounts stale"); err != nil {
			t.Errorf("Restart() of another pod right after a refused one: %v", err)
		}
	}},
	{"RestartBlockedByPlain429", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("db", kubeNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{}, pod)
		e.evictionReturns(kubeErrPDB) // no DisruptionBudget cause: still a refusal
		if err := e.kube.Restart(context.Background(), kubePodRef(pod), "x"); !errors.Is(err, heal.ErrBlockedByPDB) {
			t.Fatalf("Restart() error %v, want ErrBlockedByPDB", err)
		}
		e.wantActions(t, "get pods", "create pods/eviction", "create events")
		e.wantEvent(t, pod, heal.ReasonMountsBroken, "PodDisruptionBudget forbids it now; will retry")
	}},
	{"RestartPDBAllowDelete", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("db", kubeNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{AllowDelete: true}, pod)
		e.evictionReturns(kubeErrPDB)
		if err := e.kube.Restart(context.Background(), kubePodRef(pod), "mounts stale"); err != nil {
			t.Fatalf("Restart() error: %v", err)
		}
		e.wantActions(t, "get pods", "create pods/eviction", "delete pods", "create events")
		da := e.cs.Actions()[2].(k8stesting.DeleteAction)
		if pre := da.GetDeleteOptions().Preconditions; da.GetName() != "db" || pre == nil || *pre.UID != pod.UID {
			t.Errorf("delete %s with %+v, want db with UID precondition", da.GetName(), da.GetDeleteOptions())
		}
		e.wantEvent(t, pod, heal.ReasonRestarted, "Deleted", "PodDisruptionBudget", "mounts stale")
		if _, err := e.cs.CoreV1().Pods("ns").Get(context.Background(), "db", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod still there after delete: %v", err)
		}
	}},
	{"RestartEvictionUnavailable", func(t *testing.T, r *kubeRecorder) {
		for _, tc := range []struct {
			name        string
			err         error
			allowDelete bool
		}{
			{"404", kubeErrNoEvictionAPI, false},
			{"405", kubeErrEvictionNotAllowed, false},
			{"404-allow-delete", kubeErrNoEvictionAPI, true},
			{"405-allow-delete", kubeErrEvictionNotAllowed, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pod := kubePod("web", kubeNode, kubeUID1, nil)
				e := r.env(heal.KubeOptions{AllowDelete: tc.allowDelete}, pod)
				e.evictionReturns(tc.err)
				err := e.kube.Restart(context.Background(), kubePodRef(pod), "mounts stale")
				if !tc.allowDelete {
					if !errors.Is(err, heal.ErrEvictionUnavailable) {
						t.Fatalf("Restart() error %v, want ErrEvictionUnavailable", err)
					}
					e.wantActions(t, "get pods", "create pods/eviction", "create events")
					e.wantEvent(t, pod, heal.ReasonMountsBroken, "serves no eviction", "mounts stale")
					return
				}
				if err != nil {
					t.Fatalf("Restart() error: %v", err)
				}
				e.wantActions(t, "get pods", "create pods/eviction", "delete pods", "create events")
				e.wantEvent(t, pod, heal.ReasonRestarted, "Deleted", "eviction unavailable")
			})
		}
	}},
	{"RestartPodGone", func(t *testing.T, r *kubeRecorder) {
		live := kubePod("web", kubeNode, kubeUID1, nil)
		terminating := kubePod("web", kubeNode, kubeUID1, nil)
		terminating.DeletionTimestamp = &metav1.Time{Time: kubeT0}
		terminating.Finalizers = []string{"example.com/keep"} // the tracker needs one with a deletion timestamp
		namesake := kubePod("web", kubeNode, kubeUID2, nil)
		gone := apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web")
		conflict := apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web", errors.New("UID precondition failed"))
		for _, tc := range []struct {
			name        string
			objs        []runtime.Object
			evictErr    error
			deleteErr   error
			allowDelete bool
			want        []string
		}{
			{name: "deleted", want: []string{"get pods"}},
			{name: "terminating", objs: []runtime.Object{terminating}, want: []string{"get pods"}},
			{name: "replaced-by-namesake", objs: []runtime.Object{namesake}, want: []string{"get pods"}},
			{name: "evict-404-naming-pod", objs: []runtime.Object{live}, evictErr: gone, want: []string{"get pods", "create pods/eviction"}},
			{name: "evict-409", objs: []runtime.Object{live}, evictErr: conflict, allowDelete: true, want: []string{"get pods", "create pods/eviction"}},
			{
				name: "delete-404", objs: []runtime.Object{live}, evictErr: gone, deleteErr: gone, allowDelete: true,
				want: []string{"get pods", "create pods/eviction", "delete pods"},
			},
			{
				name: "delete-409", objs: []runtime.Object{live}, evictErr: kubeErrPDB, deleteErr: conflict, allowDelete: true,
				want: []string{"get pods", "create pods/eviction", "delete pods"},
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := r.env(heal.KubeOptions{AllowDelete: tc.allowDelete}, tc.objs...)
				if tc.evictErr != nil {
					e.evictionReturns(tc.evictErr)
				}
				if tc.deleteErr != nil {
					e.cs.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
						return true, nil, tc.deleteErr
					})
				}
				if err := e.kube.Restart(context.Background(), kubePodRef(live), "x"); !errors.Is(err, heal.ErrPodGone) {
					t.Errorf("Restart() error %v, want ErrPodGone", err)
				}
				e.wantActions(t, tc.want...)
				e.wantNoEvents(t)
			})
		}
	}},
	{"RestartIgnoredPodNeverTouched", func(t *testing.T, r *kubeRecorder) {
		ignored := kubePod("keep", kubeNode, kubeUID1, map[string]string{heal.PolicyAnnotation: "ignore"})
		e := r.env(heal.KubeOptions{AllowDelete: true}, ignored)
		if err := e.kube.Restart(context.Background(), kubePodRef(ignored), "x"); !errors.Is(err, heal.ErrPodIgnored) {
			t.Errorf("Restart() error %v, want ErrPodIgnored", err)
		}
		e.wantActions(t) // not even a get
		// The annotation changed since the pod was looked up: the fresh get sees it.
		stale := kubePodRef(ignored)
		stale.Policy = heal.PolicyRepair
		if err := e.kube.Restart(context.Background(), stale, "x"); !errors.Is(err, heal.ErrPodIgnored) {
			t.Errorf("Restart() of a pod now ignored: error %v, want ErrPodIgnored", err)
		}
		e.wantActions(t, "get pods")
		e.wantNoEvents(t)
	}},
	{"RestartOtherNodeNeverTouched", func(t *testing.T, r *kubeRecorder) {
		other := kubePod("web", kubeOtherNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{AllowDelete: true}, other)
		if err := e.kube.Restart(context.Background(), kubePodRef(other), "x"); !errors.Is(err, heal.ErrNotOnNode) {
			t.Errorf("Restart() error %v, want ErrNotOnNode", err)
		}
		e.wantActions(t)
		// A caller that claims the pod is ours is checked against the API.
		lie := kubePodRef(other)
		lie.Node = kubeNode
		if err := e.kube.Restart(context.Background(), lie, "x"); !errors.Is(err, heal.ErrNotOnNode) {
			t.Errorf("Restart() of a pod claimed ours: error %v, want ErrNotOnNode", err)
		}
		e.wantActions(t, "get pods")
		e.wantNoEvents(t)
	}},
	{"RestartRateLimited", func(t *testing.T, r *kubeRecorder) {
		a, b, c := kubePod("a", kubeNode, kubeUID1, nil), kubePod("b", kubeNode, kubeUID2, nil), kubePod("c", kubeNode, kubeUID3, nil)
		e := r.env(heal.KubeOptions{MinInterval: 10 * time.Second}, a, b, c)
		ctx := context.Background()
		if err := e.kube.Restart(ctx, kubePodRef(a), "x"); err != nil {
			t.Fatalf("first Restart() error: %v", err)
		}
		n := len(e.actions())
		e.clock.Add(3 * time.Second)
		err := e.kube.Restart(ctx, kubePodRef(b), "x")
		var rl *heal.RateLimitedError
		if !errors.Is(err, heal.ErrRateLimited) || !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
			t.Fatalf("Restart() 3s later: error %v, want a RateLimitedError retrying after 7s", err)
		}
		if len(e.actions()) != n {
			t.Errorf("rate-limited Restart() called the API: %q", e.actions()[n:])
		}
		e.clock.Add(7 * time.Second)
		if err := e.kube.Restart(ctx, kubePodRef(b), "x"); err != nil {
			t.Fatalf("Restart() 10s later: %v", err)
		}
		e.clock.Add(9 * time.Second)
		if err := e.kube.Restart(ctx, kubePodRef(c), "x"); !errors.Is(err, heal.ErrRateLimited) {
			t.Errorf("third Restart() 9s after the second: error %v, want ErrRateLimited", err)
		}
	}},
	{"RestartRateLimitDefaults", func(t *testing.T, r *kubeRecorder) {
		for _, tc := range []struct {
			name     string
			interval time.Duration
			wantWait time.Duration // 0: not limited
		}{{"default-10s", 0, 10 * time.Second}, {"negative-unlimited", -1, 0}} {
			t.Run(tc.name, func(t *testing.T) {
				a, b := kubePod("a", kubeNode, kubeUID1, nil), kubePod("b", kubeNode, kubeUID2, nil)
				e := r.env(heal.KubeOptions{MinInterval: tc.interval}, a, b)
				if err := e.kube.Restart(context.Background(), kubePodRef(a), "x"); err != nil {
					t.Fatal(err)
				}
				err := e.kube.Restart(context.Background(), kubePodRef(b), "x")
				var rl *heal.RateLimitedError
				switch {
				case tc.wantWait == 0 && err != nil:
					t.Errorf("second Restart() error %v, want none", err)
				case tc.wantWait != 0 && (!errors.As(err, &rl) || rl.RetryAfter != tc.wantWait):
					t.Errorf("second Restart() error %v, want retry after %v", err, tc.wantWait)
				}
			})
		}
	}},
	{"RestartOtherErrors", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("web", kubeNode, kubeUID1, nil)
		pod2 := kubePod("web2", kubeNode, kubeUID2, nil)
		e := r.env(heal.KubeOptions{AllowDelete: true}, pod, pod2)
		e.evictionReturns(apierrors.NewInternalError(errors.New("pod has more than one PodDisruptionBudget")))
		err := e.kube.Restart(context.Background(), kubePodRef(pod), "x")
		if !apierrors.IsInternalError(err) || errors.Is(err, heal.ErrBlockedByPDB) || errors.Is(err, heal.ErrPodGone) {
			t.Errorf("Restart() error %v, want the internal error only", err)
		}
		e.wantActions(t, "get pods", "create pods/eviction") // no delete on an unknown failure
		e.wantNoEvents(t)

		// Get fails.
		e2 := r.env(heal.KubeOptions{}, pod)
		e2.cs.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("down")
		})
		if err := e2.kube.Restart(context.Background(), kubePodRef(pod), "x"); !apierrors.IsServiceUnavailable(err) {
			t.Errorf("Restart() with get failing: error %v", err)
		}

		// Delete after a PDB refusal fails; no restart counted.
		e3 := r.env(heal.KubeOptions{AllowDelete: true}, pod, pod2)
		e3.evictionReturns(kubeErrPDB)
		e3.cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if a.(k8stesting.DeleteAction).GetName() == "web" {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web", errors.New("no RBAC"))
			}
			return false, nil, nil
		})
		if err := e3.kube.Restart(context.Background(), kubePodRef(pod), "x"); !apierrors.IsForbidden(err) || errors.Is(err, heal.ErrBlockedByPDB) {
			t.Errorf("Restart() with delete forbidden: error %v", err)
		}
		e3.wantNoEvents(t)
		if err := e3.kube.Restart(context.Background(), kubePodRef(pod2), "x"); err != nil {
			t.Errorf("Restart() after a failed one: %v", err)
		}
	}},
	{"RestartEventFailureIsNotFatal", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("web", kubeNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{}, pod)
		e.cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "", errors.New("no RBAC"))
		})
		if err := e.kube.Restart(context.Background(), kubePodRef(pod), "x"); err != nil {
			t.Errorf("Restart() error %v, want none (the pod was evicted)", err)
		}
		if n := e.log.count("Could not record Event on pod"); n != 1 {
			t.Errorf("Event failure logged %d times, want once: %q", n, e.log.lines)
		}
	}},
	{"RestartEventAfterContextEnds", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod("web", kubeNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{}, pod)
		ctx, cancel := context.WithCancel(context.Background())
		e.cs.PrependReactor("create", "pods/eviction", func(k8stesting.Action) (bool, runtime.Object, error) {
			cancel() // the caller gives up while the eviction goes through
			return false, nil, nil
		})
		var eventCtxErr error
		e.cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
			eventCtxErr = ctx.Err()
			return false, nil, nil
		})
		if err := e.kube.Restart(ctx, kubePodRef(pod), "x"); err != nil {
			t.Fatalf("Restart() error: %v", err)
		}
		if eventCtxErr == nil {
			t.Fatal("test broken: the caller's context had not ended")
		}
		e.wantEvent(t, pod, heal.ReasonRestarted, "Evicted")
	}},
	{"RestartLongReasonAndName", func(t *testing.T, r *kubeRecorder) {
		pod := kubePod(strings.Repeat("n", 250), kubeNode, kubeUID1, nil)
		e := r.env(heal.KubeOptions{}, pod)
		if err := e.kube.Restart(context.Background(), kubePodRef(pod), strings.Repeat("why ", 1000)); err != nil {
			t.Fatal(err)
		}
		evs := e.events(t)
		if len(evs) != 1 || len(evs[0].Message) > 1024 || len(evs[0].Name) > 253 {
			t.Errorf("Event name %d bytes, message %d bytes; want at most 253, 1024", len(evs[0].Name), len(evs[0].Message))
		}
	}},
	{"OddInputsNeverPanic", func(t *testing.T, r *kubeRecorder) {
		e := r.env(heal.KubeOptions{})
		ctx := context.Background()
		for _, p := range []*heal.Pod{nil, {}, {Namespace: "ns", Name: "x"}, {UID: kubeUID1, Node: kubeNode}} {
			if err := e.kube.Restart(ctx, p, ""); err == nil {
				t.Errorf("Restart(%+v) succeeded", p)
			}
		}
		e.wantActions(t)

		noNode := heal.NewKube(e.cs, heal.KubeOptions{})
		if _, err := noNode.PodByUID(ctx, kubeUID1); !errors.Is(err, heal.ErrNoNodeName) {
			t.Errorf("PodByUID() without a node name: error %v, want ErrNoNodeName", err)
		}
		// Pods without a node must not be the ones "" matches.
		if err := noNode.Restart(ctx, &heal.Pod{Namespace: "ns", Name: "x", UID: kubeUID1}, ""); !errors.Is(err, heal.ErrNoNodeName) {
			t.Errorf("Restart() without a node name: error %v, want ErrNoNodeName", err)
		}
		e.wantActions(t)

		for _, k := range []*heal.Kube{nil, heal.NewKube(nil, heal.KubeOptions{NodeName: kubeNode})} {
			if _, err := k.PodByUID(ctx, kubeUID1); err == nil {
				t.Error("PodByUID() without a client succeeded")
			}
			if err := k.Restart(ctx, &heal.Pod{Namespace: "ns", Name: "x", UID: kubeUID1, Node: kubeNode}, ""); err == nil {
				t.Error("Restart() without a client succeeded")
			}
		}
	}},
}

// TestKube runs the scenarios in parallel and then checks that RBACRules
// matches the API calls they made: every call is allowed by a rule, and
// every rule is needed by some call.
func TestKube(t *testing.T) {
	t.Parallel()
	var r kubeRecorder
	var ran sync.Map
	t.Run("scenario", func(t *testing.T) {
		for _, sc := range kubeScenarios {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				ran.Store(sc.name, true)
				sc.run(t, &r)
			})
		}
	})

	type perm struct{ group, resource, verb string }
	used := map[perm]bool{}
	for _, cs := range r.css {
		for _, a := range cs.Actions() {
			used[perm{a.GetResource().Group, kubeResource(a), a.GetVerb()}] = true
		}
	}
	granted := map[perm]bool{}
	for _, rule := range heal.RBACRules() {
		if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
			t.Errorf("rule %+v is narrower or wider than Kube needs", rule)
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					granted[perm{g, res, v}] = true
				}
			}
		}
	}
	for p := range used {
		if !granted[p] {
			t.Errorf("Kube called %q on %q (group %q), which RBACRules does not grant", p.verb, p.resource, p.group)
		}
	}
	all := true
	for _, sc := range kubeScenarios {
		if _, ok := ran.Load(sc.name); !ok {
			all = false
		}
	}
	if !all {
		t.Log("not every scenario ran (-run): not checking that every rule is used")
		return
	}
	for p := range granted {
		if !used[p] {
			t.Errorf("RBACRules grants %q on %q (group %q), which no test saw Kube call", p.verb, p.resource, p.group)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in        string
		want      heal.Policy
		wantKnown bool
	}{
		{"", heal.PolicyRepair, true},
		{"repair", heal.PolicyRepair, true},
		{"restart", heal.PolicyRestart, true},
		{"ignore", heal.PolicyIgnore, true},
		{" IGNORE\n", heal.PolicyIgnore, true},
		{"Restart", heal.PolicyRestart, true},
		{"evict", heal.PolicyRepair, false},
		{"ignore please", heal.PolicyRepair, false},
		{"\x00", heal.PolicyRepair, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			t.Parallel()
			got, known := heal.ParsePolicy(tc.in)
			if got != tc.want || known != tc.wantKnown {
				t.Errorf("ParsePolicy(%q) = %q, %v; want %q, %v", tc.in, got, known, tc.want, tc.wantKnown)
			}
		})
	}
}

// TestKubeConcurrent hammers one Kube from many goroutines, for -race.
func TestKubeConcurrent(t *testing.T) {
	t.Parallel()
	var objs []runtime.Object
	for i := range 20 {
		objs = append(objs, kubePod(fmt.Sprintf("p%d", i), kubeNode, fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), nil))
	}
	cs := fake.NewClientset(objs...)
	clock := &kubeClock{t: kubeT0}
	k := heal.NewKube(cs, heal.KubeOptions{NodeName: kubeNode, Now: clock.Now, MinInterval: time.Second})
	var wg sync.WaitGroup
	var mu sync.Mutex
	restarted := 0
	for i := range 20 {
		wg.Go(func() {
			clock.Add(100 * time.Millisecond)
			p, err := k.PodByUID(context.Background(), fmt.Sprintf("%08d-0000-4000-8000-000000000000", i))
			if err != nil {
				t.Errorf("PodByUID(%d): %v", i, err)
				return
			}
			err = k.Restart(context.Background(), p, "x")
			switch {
			case err == nil:
				mu.Lock()
				restarted++
				mu.Unlock()
			case !errors.Is(err, heal.ErrRateLimited):
				t.Errorf("Restart(%d): %v", i, err)
			}
		})
	}
	wg.Wait()
	// 20 × 100ms = 2s of clock: at most 3 restarts 1s apart.
	if restarted < 1 || restarted > 3 {
		t.Errorf("%d restarts within 2s at one per second", restarted)
	}
}

func TestNewClient(t *testing.T) {
	// Not parallel: t.Setenv.
	dir := t.TempDir()
	good := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(good, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "garbage")
	if err := os.WriteFile(bad, []byte("{{{ not yaml"), 0o600); err != nil {
		t.Fatal(err)
	}

	cs, err := heal.NewClient(good)
	if err != nil || cs == nil {
		t.Errorf("NewClient(good kubeconfig) = %v, %v", cs, err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), bad} {
		if _, err := heal.NewClient(path); err == nil || !strings.Contains(err.Error(), "load kubeconfig "+path) {
			t.Errorf("NewClient(%s) error %v, want one naming the file", path, err)
		}
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	if _, err := heal.NewClient(""); err == nil || !strings.Contains(err.Error(), "in-cluster") {
		t.Errorf("NewClient(\"\") outside a cluster: error %v, want one about the in-cluster config", err)
	}
}

func TestNodeNameFromEnv(t *testing.T) {
	// Not parallel: t.Setenv.
	t.Setenv(heal.NodeNameEnv, " node-x\n")
	if got := heal.NodeNameFromEnv(); got != "node-x" {
		t.Errorf("NodeNameFromEnv() = %q, want node-x", got)
	}
	t.Setenv(heal.NodeNameEnv, "")
	if got := heal.NodeNameFromEnv(); got != "" {
		t.Errorf("NodeNameFromEnv() with NODE_NAME empty = %q", got)
	}
	os.Unsetenv(heal.NodeNameEnv) //nolint:errcheck // t.Setenv restores it
	if got := heal.NodeNameFromEnv(); got != "" {
		t.Errorf("NodeNameFromEnv() with NODE_NAME unset = %q", got)
	}
}
