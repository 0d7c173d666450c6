// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/version"
)

// Policy is what a pod asks the healer to do with its broken lxcfs mounts,
// in the annotation [PolicyAnnotation].
type Policy string

const (
	// PolicyRepair repairs the mounts in place and restarts the pod only
	// when that fails. It is the default, and what unknown values mean.
	PolicyRepair Policy = "repair"
	// PolicyRestart restarts the pod without trying to repair in place,
	// for workloads that read the files once at start.
	PolicyRestart Policy = "restart"
	// PolicyIgnore leaves the pod alone: no repair, no restart, no Event.
	PolicyIgnore Policy = "ignore"
)

// PolicyAnnotation is the pod annotation that holds its [Policy].
const PolicyAnnotation = "lxcfs.k8s.io/heal"

// ParsePolicy reads the value of [PolicyAnnotation], ignoring case and
// surrounding blanks. An empty value is [PolicyRepair]; an unknown one is
// [PolicyRepair] too, with known false.
func ParsePolicy(v string) (p Policy, known bool) {
	switch p := Policy(strings.ToLower(strings.TrimSpace(v))); p {
	case "":
		return PolicyRepair, true
	case PolicyRepair, PolicyRestart, PolicyIgnore:
		return p, true
	}
	return PolicyRepair, false
}

// Event reasons, for `kubectl get events --field-selector reason=...`.
const (
	// ReasonRestarted: the pod was evicted (or deleted) so that its
	// replacement gets working lxcfs mounts.
	ReasonRestarted = "LXCFSRestarted"
	// ReasonMountsBroken: the pod's lxcfs mounts are broken and it could
	// not be restarted (a PodDisruptionBudget, or no eviction API).
	ReasonMountsBroken = "LXCFSMountsBroken"
	// EventComponent is the source component of our Events.
	EventComponent = "k8s-lxcfs"
)

// NodeNameEnv is the variable the DaemonSet fills from spec.nodeName with
// the downward API.
const NodeNameEnv = "NODE_NAME"

var (
	// ErrNoNodeName: a [Kube] without a node name would not know which pods
	// are its own, so it touches none.
	ErrNoNodeName = errors.New("heal: node name not set")
	// ErrPodNotFound: no pod with that UID runs on this node.
	ErrPodNotFound = errors.New("heal: pod not found on this node")
	// ErrNotOnNode: the pod runs on another node; its own agent heals it.
	ErrNotOnNode = errors.New("heal: pod is not on this node")
	// ErrPodIgnored: the pod's policy is [PolicyIgnore].
	ErrPodIgnored = errors.New("heal: pod asks to be left alone")
	// ErrPodGone: the pod is terminating, deleted, or replaced by a
	// namesake with another UID: nothing left to restart.
	ErrPodGone = errors.New("heal: pod is gone or terminating")
	// ErrRateLimited: another pod was restarted less than MinInterval ago.
	// The error is a [*RateLimitedError] that says when to retry.
	ErrRateLimited = errors.New("heal: pod restarts rate limited")
	// ErrBlockedByPDB: the eviction API refused because a
	// PodDisruptionBudget allows no disruption now. Retry later.
	ErrBlockedByPDB = errors.New("heal: eviction blocked by a PodDisruptionBudget")
	// ErrEvictionUnavailable: the API server does not serve pods/eviction
	// and deleting is not allowed (KubeOptions.AllowDelete).
	ErrEvictionUnavailable = errors.New("heal: eviction API unavailable")
)

// RateLimitedError is returned by [Kube.Restart] while restarts are rate
// limited; errors.Is(err, [ErrRateLimited]) holds.
type RateLimitedError struct {
	RetryAfter time.Duration // when the next restart is allowed
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%v: retry in %v", ErrRateLimited, e.RetryAfter)
}

// Is makes errors.Is(err, ErrRateLimited) hold.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// Pod is a pod of this node, as far as healing cares.
type Pod struct {
	Namespace, Name, UID, Node string
	Policy                     Policy
}

// KubeOptions configure a [Kube].
type KubeOptions struct {
	// NodeName is this node (see [NodeNameFromEnv]). Required: pods of other
	// nodes are never returned nor touched.
	NodeName string
	// AllowDelete deletes a pod when the eviction API refuses (a
	// PodDisruptionBudget) or is unavailable. It overrides the budget, and
	// needs the "delete pods" rule of [RBACRules].
	AllowDelete bool
	// MinInterval is the least time between two restarts on this node
	// (default 10s; negative: no limit), so that a node-wide breakage never
	// restarts every pod at once.
	MinInterval time.Duration
	Log         logr.Logger
	Now         func() time.Time // default time.Now
}

// podListTTL is how long a list of this node's pods answers PodByUID, and
// podListMinAge how old it must be before a miss lists again.
const (
	podListTTL    = 5 * time.Second
	podListMinAge = time.Second
)

// eventTimeout bounds recording an Event, which happens even when the
// caller's context ended right after the pod was evicted.
const eventTimeout = 10 * time.Second

// Kube finds this node's pods and restarts them through the Kubernetes API,
// the healer's last resort. Its methods are safe for concurrent use. The API
// calls it makes are exactly those [RBACRules] allows.
type Kube struct {
	client      kubernetes.Interface
	node        string
	allowDelete bool
	minInterval time.Duration
	log         logr.Logger
	now         func() time.Time

	mu      sync.Mutex // guards the pod list cache
	pods    map[string]Pod
	listed  time.Time       // when pods was listed; zero: never
	unknown map[string]bool // UIDs whose unknown policy was logged

	restartMu   sync.Mutex // serializes restarts
	lastRestart time.Time

	eventSeq atomic.Uint64 // keeps Event names unique within one instant
}

// NewKube returns a Kube for node o.NodeName that talks through client.
func NewKube(client kubernetes.Interface, o KubeOptions) *Kube {
	if o.MinInterval == 0 {
		o.MinInterval = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log.GetSink() == nil {
		o.Log = logr.Discard()
	}
	return &Kube{
		client:      client,
		node:        o.NodeName,
		allowDelete: o.AllowDelete,
		minInterval: max(o.MinInterval, 0),
		log:         o.Log,
		now:         o.Now,
		unknown:     map[string]bool{},
	}
}

func (k *Kube) usable() error {
	if k == nil || k.client == nil {
		return errors.New("heal: no Kubernetes client")
	}
	if k.node == "" {
		return ErrNoNodeName
	}
	return nil
}

// PodByUID returns the pod of this node with that UID. It answers from a
// list of the node's pods (spec.nodeName field selector) that is at most a
// few seconds old, and lists again on a miss. It returns [ErrPodNotFound]
// when no pod of this node has the UID, whether or not another node runs it.
func (k *Kube) PodByUID(ctx context.Context, uid string) (*Pod, error) {
	if err := k.usable(); err != nil {
		return nil, err
	}
	uid = strings.ToLower(uid)
	if uid == "" {
		return nil, fmt.Errorf("find pod with empty UID: %w", ErrPodNotFound)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	age := now.Sub(k.listed)
	if p, ok := k.pods[uid]; ok && !k.listed.IsZero() && age < podListTTL {
		return &p, nil
	}
	if k.listed.IsZero() || age >= podListMinAge || age < 0 {
		if err := k.listPods(ctx, now); err != nil {
			return nil, err
		}
	}
	if p, ok := k.pods[uid]; ok {
		return &p, nil
	}
	return nil, fmt.Errorf("find pod %s on node %s: %w", uid, k.node, ErrPodNotFound)
}

// listPods refreshes the cache; k.mu is held.
func (k *Kube) listPods(ctx context.Context, now time.Time) error {
	list, err := k.client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", k.node).String(),
		// "0": served from the API server's watch cache, as the kubelet's
		// own node-scoped list is; etcd is not read for every refresh.
		ResourceVersion: "0",
	})
	if err != nil {
		return fmt.Errorf("list pods on node %s: %w", k.node, err)
	}
	pods := make(map[string]Pod, len(list.Items))
	for i := range list.Items {
		cp := &list.Items[i]
		// The field selector already filters; an API server or proxy that
		// ignored it must still not hand us other nodes' pods.
		if cp.UID == "" || cp.Spec.NodeName != k.node {
			continue
		}
		pods[string(cp.UID)] = k.podOf(cp)
	}
	for uid := range k.unknown {
		if _, ok := pods[uid]; !ok {
			delete(k.unknown, uid)
		}
	}
	k.pods, k.listed = pods, now
	return nil
}

// podOf converts an API pod; k.mu is held. An unknown policy is logged once
// per pod.
func (k *Kube) podOf(cp *corev1.Pod) Pod {
	v := cp.Annotations[PolicyAnnotation]
	policy, known := ParsePolicy(v)
	if !known && !k.unknown[string(cp.UID)] {
		k.unknown[string(cp.UID)] = true
		k.log.Info("Ignored unknown heal policy of pod, using repair", "pod", klog.KObj(cp),
			"annotation", PolicyAnnotation, "value", v)
	}
	return Pod{Namespace: cp.Namespace, Name: cp.Name, UID: string(cp.UID), Node: cp.Spec.NodeName, Policy: policy}
}

// Restart evicts p so that its controller replaces it with a pod whose
// lxcfs mounts work; reason (why its mounts can't be repaired) goes into
// the pod's Event. It returns
//   - [ErrNotOnNode], [ErrPodIgnored]: the pod is never touched;
//   - a [*RateLimitedError] ([ErrRateLimited]) when another restart happened
//     less than MinInterval ago: nothing was called, retry after RetryAfter;
//   - [ErrPodGone] when the pod is already terminating, deleted, or replaced;
//   - [ErrBlockedByPDB] when a PodDisruptionBudget forbids the eviction now
//     (a Warning Event says so), unless AllowDelete deletes it instead;
//   - [ErrEvictionUnavailable] when the API server serves no eviction and
//     AllowDelete is off.
//
// Only a restart that happened (eviction or deletion accepted) counts
// against MinInterval; a refused one disrupted nothing. Both eviction and
// deletion carry p.UID as a precondition, so a namesake is never hit.
func (k *Kube) Restart(ctx context.Context, p *Pod, reason string) error {
	if err := k.usable(); err != nil {
		return err
	}
	if p == nil || p.Namespace == "" || p.Name == "" || p.UID == "" {
		return fmt.Errorf("restart pod %+v: namespace, name and UID needed", p)
	}
	if p.Node != k.node {
		return fmt.Errorf("restart pod %s/%s on node %q: %w", p.Namespace, p.Name, p.Node, ErrNotOnNode)
	}
	if p.Policy == PolicyIgnore {
		return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, ErrPodIgnored)
	}

	k.restartMu.Lock()
	defer k.restartMu.Unlock()
	now := k.now()
	if !k.lastRestart.IsZero() {
		if wait := k.lastRestart.Add(k.minInterval).Sub(now); wait > 0 {
			return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, &RateLimitedError{RetryAfter: wait})
		}
	}

	// Decide on the pod as it is now, not as a list a few seconds old saw it:
	// its annotation may have changed, it may be going away already.
	cur, err := k.client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, ErrPodGone)
	case err != nil:
		return fmt.Errorf("get pod %s/%s: %w", p.Namespace, p.Name, err)
	case string(cur.UID) != p.UID:
		return fmt.Errorf("restart pod %s/%s with UID %s (now %s): %w", p.Namespace, p.Name, p.UID, cur.UID, ErrPodGone)
	case cur.Spec.NodeName != k.node:
		return fmt.Errorf("restart pod %s/%s on node %q: %w", p.Namespace, p.Name, cur.Spec.NodeName, ErrNotOnNode)
	case cur.DeletionTimestamp != nil:
		return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, ErrPodGone)
	}
	if policy, _ := ParsePolicy(cur.Annotations[PolicyAnnotation]); policy == PolicyIgnore {
		return fmt.Errorf("restart pod %s/%s: %w", p.Namespace, p.Name, ErrPodIgnored)
	}
	log := k.log.WithValues("pod", klog.KObj(cur), "node", k.node)
	uid := cur.UID

	err = k.client.CoreV1().Pods(cur.Namespace).EvictV1(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Namespace: cur.Namespace, Name: cur.Name},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}},
	})
	var refused string // why eviction did not happen, for the Event
	switch {
	case err == nil:
		k.lastRestart = now
		k.event(ctx, cur, ReasonRestarted, "Evicted pod with broken lxcfs mounts so that its replacement gets working ones: "+reason)
		log.V(2).Info("Evicted pod with broken lxcfs mounts", "reason", reason)
		return nil
	case apierrors.IsTooManyRequests(err):
		// A budget refusal. (Priority-and-fairness 429s carry Retry-After
		// and client-go retries them before they get here.)
		budget := "a PodDisruptionBudget forbids it now"
		if c, ok := apierrors.StatusCause(err, policyv1.DisruptionBudgetCause); ok && c.Message != "" {
			budget += " (" + c.Message + ")" // names the budget and its numbers
		}
		if !k.allowDelete {
			k.event(ctx, cur, ReasonMountsBroken, "Could not evict pod with broken lxcfs mounts, "+budget+"; will retry: "+reason)
			return fmt.Errorf("evict pod %s/%s: %w: %w", cur.Namespace, cur.Name, ErrBlockedByPDB, err)
		}
		refused = "eviction refused: " + budget
	case apierrors.IsConflict(err):
		// The UID precondition failed: a namesake replaced the pod.
		return fmt.Errorf("evict pod %s/%s: %w: %w", cur.Namespace, cur.Name, ErrPodGone, err)
	case apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err):
		// 404 or 405 for the subresource: this API server serves no
		// policy/v1 eviction. A 404 may also mean the pod just went; a
		// delete tells, else the Status details do.
		if !k.allowDelete {
			if podGone(err, cur.Name) {
				return fmt.Errorf("evict pod %s/%s: %w: %w", cur.Namespace, cur.Name, ErrPodGone, err)
			}
			k.event(ctx, cur, ReasonMountsBroken, "Could not evict pod with broken lxcfs mounts, the API server serves no eviction and deleting is not allowed: "+reason)
			return fmt.Errorf("evict pod %s/%s: %w: %w", cur.Namespace, cur.Name, ErrEvictionUnavailable, err)
		}
		refused = "eviction unavailable"
	default:
		return fmt.Errorf("evict pod %s/%s: %w", cur.Namespace, cur.Name, err)
	}

	err = k.client.CoreV1().Pods(cur.Namespace).Delete(ctx, cur.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	switch {
	case err == nil:
		k.lastRestart = now
		k.event(ctx, cur, ReasonRestarted, "Deleted pod with broken lxcfs mounts ("+refused+") so that its replacement gets working ones: "+reason)
		log.V(2).Info("Deleted pod with broken lxcfs mounts", "reason", reason, "evictionRefused", refused)
		return nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return fmt.Errorf("delete pod %s/%s: %w: %w", cur.Namespace, cur.Name, ErrPodGone, err)
	default:
		return fmt.Errorf("delete pod %s/%s (%s): %w", cur.Namespace, cur.Name, refused, err)
	}
}

// podGone tells whether a 404 from the eviction subresource names the pod
// (it no longer exists) rather than the subresource (no eviction API).
func podGone(err error, name string) bool {
	var se apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &se) {
		return false
	}
	d := se.Status().Details
	return d != nil && d.Name == name && d.Kind == "pods"
}

// event records a Warning Event on the pod. It runs even if ctx has ended
// (the action it reports happened), and is best effort: a failure is logged.
func (k *Kube) event(ctx context.Context, pod *corev1.Pod, reason, msg string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	now := metav1.NewTime(k.now())
	const maxMessage = 1024 // the API's limit for an Event's note
	if len(msg) > maxMessage {
		msg = msg[:maxMessage-3] + "..."
	}
	name := pod.Name
	if len(name) > 200 { // Event names are DNS subdomains, at most 253 bytes
		name = name[:200]
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x%x", name, now.UnixNano(), k.eventSeq.Add(1)),
			Namespace: pod.Namespace,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind:            "Pod",
			APIVersion:      "v1",
			Namespace:       pod.Namespace,
			Name:            pod.Name,
			UID:             pod.UID,
			ResourceVersion: pod.ResourceVersion,
		},
		Reason:              reason,
		Message:             msg,
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: EventComponent, Host: k.node},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: EventComponent,
		ReportingInstance:   k.node,
	}
	if _, err := k.client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		k.log.Error(err, "Could not record Event on pod", "pod", klog.KObj(pod), "reason", reason)
	}
}

// RBACRules are the permissions [Kube] needs, exactly the calls it makes
// (a test compares them with what it calls). The "delete pods" rule is used
// only with KubeOptions.AllowDelete; a deployment without it can drop it.
func RBACRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		// PodByUID lists this node's pods; Restart gets the pod fresh.
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		// Restart evicts through policy/v1 Eviction, which honours PDBs.
		{APIGroups: []string{""}, Resources: []string{"pods/eviction"}, Verbs: []string{"create"}},
		// Restart deletes when eviction is refused, with AllowDelete only.
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"delete"}},
		// Every restart, and every refused one, leaves a core/v1 Event.
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}},
	}
}

// NewClient returns a clientset from the in-cluster config (the pod's
// service account) when kubeconfig is "", else from that kubeconfig file.
func NewClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		if cfg, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("load in-cluster Kubernetes config (outside a pod, give a kubeconfig): %w", err)
		}
	} else {
		if cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
		}
	}
	cfg.UserAgent = EventComponent + "/" + version.Version
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client for %s: %w", cfg.Host, err)
	}
	return cs, nil
}

// NodeNameFromEnv returns $NODE_NAME ([NodeNameEnv]), which the DaemonSet
// sets from spec.nodeName, or "" when it is unset.
func NodeNameFromEnv() string {
	return strings.TrimSpace(os.Getenv(NodeNameEnv))
}

// compile-time check that the healer can use a Kube.
var _ interface {
	PodByUID(ctx context.Context, uid string) (*Pod, error)
	Restart(ctx context.Context, p *Pod, reason string) error
} = (*Kube)(nil)
