// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"testing"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestSelfEvents(t *testing.T) {
	t.Parallel()
	env := map[string]string{PodNameEnv: "k8s-lxcfs-abcde", PodNamespaceEnv: "kube-system", PodUIDEnv: "uid-1"}
	client := fake.NewClientset()
	if e := newSelfEvents(nil, func(k string) string { return env[k] }, "node-a", logr.Discard(), nil); e != nil {
		t.Error("recorder without a client")
	}
	if e := newSelfEvents(client, func(string) string { return "" }, "node-a", logr.Discard(), nil); e != nil {
		t.Error("recorder without POD_NAME/POD_NAMESPACE")
	}
	var nilRec *selfEvents
	nilRec.record(context.Background(), ReasonHealed, "no API: nothing, no panic")

	e := newSelfEvents(client, func(k string) string { return env[k] }, "node-a", logr.Discard(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // recorded even when the daemon is stopping
	e.record(ctx, ReasonHandedOver, "handed over")
	e.record(context.Background(), ReasonHandedOver, "twice in one instant")
	evs, err := client.CoreV1().Events("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) != 2 {
		t.Fatalf("%d Events, want 2", len(evs.Items))
	}
	ev := evs.Items[0]
	if ev.Type != corev1.EventTypeNormal || ev.Reason != ReasonHandedOver || ev.InvolvedObject.Name != "k8s-lxcfs-abcde" ||
		ev.InvolvedObject.UID != "uid-1" || ev.Source.Host != "node-a" {
		t.Errorf("Event = %+v", ev)
	}
}
