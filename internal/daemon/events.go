// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/k8s-lxcfs/k8s-lxcfs/heal"
)

// Event reasons the daemon records on its own pod.
const (
	ReasonAdopted    = "Adopted"    // took the live FUSE connection over from a predecessor
	ReasonHandedOver = "HandedOver" // handed it to a successor
	ReasonHealed     = "Healed"     // a heal scan repaired containers' binds
)

// Downward-API variables that name the daemon's own pod.
const (
	PodNameEnv      = "POD_NAME"
	PodNamespaceEnv = "POD_NAMESPACE"
	PodUIDEnv       = "POD_UID" // optional
)

const selfEventTimeout = 5 * time.Second

// selfEvents records Normal Events on the daemon's own pod. A nil
// *selfEvents records nothing (no API access, or the pod is unknown).
type selfEvents struct {
	client    kubernetes.Interface
	pod       corev1.ObjectReference
	node      string
	log       logr.Logger
	seq       atomic.Uint64
	onFailure func() // counts a failed Event
}

// newSelfEvents returns a recorder for the pod named by getenv's POD_NAME
// and POD_NAMESPACE, or nil when either is unset or client is nil.
func newSelfEvents(client kubernetes.Interface, getenv func(string) string, node string, log logr.Logger, onFailure func()) *selfEvents {
	name, ns := getenv(PodNameEnv), getenv(PodNamespaceEnv)
	if client == nil || name == "" || ns == "" {
		return nil
	}
	return &selfEvents{client: client, node: node, log: log, onFailure: onFailure, pod: corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: name, UID: types.UID(getenv(PodUIDEnv)),
	}}
}

// record creates a Normal Event. It is best effort and bounded in time,
// even when ctx has ended (the handover it reports happened).
func (e *selfEvents) record(ctx context.Context, reason, msg string) {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), selfEventTimeout)
	defer cancel()
	now := metav1.NewTime(time.Now())
	name := e.pod.Name
	if len(name) > 200 { // Event names are DNS subdomains, at most 253 bytes
		name = name[:200]
	}
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x%x", name, now.UnixNano(), e.seq.Add(1)), Namespace: e.pod.Namespace},
		InvolvedObject:      e.pod,
		Reason:              reason,
		Message:             msg,
		Type:                corev1.EventTypeNormal,
		Source:              corev1.EventSource{Component: heal.EventComponent, Host: e.node},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: heal.EventComponent,
		ReportingInstance:   e.node,
	}
	if _, err := e.client.CoreV1().Events(e.pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		if e.onFailure != nil {
			e.onFailure()
		}
		e.log.Error(err, "Could not record Event on own pod", "pod", e.pod.Namespace+"/"+e.pod.Name, "reason", reason)
	}
}
