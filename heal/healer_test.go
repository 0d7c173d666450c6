// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package heal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/k8s-lxcfs/k8s-lxcfs/mountmgr"
)

// fakeRestarter records restarts and serves pods by UID.
type fakeRestarter struct {
	pods     map[string]*Pod
	err      error
	restarts []string // pod name: reason
}

func (f *fakeRestarter) PodByUID(_ context.Context, uid string) (*Pod, error) {
	if p, ok := f.pods[uid]; ok {
		return p, nil
	}
	return nil, ErrPodNotFound
}

func (f *fakeRestarter) Restart(_ context.Context, p *Pod, reason string) error {
	if f.err != nil {
		return f.err
	}
	f.restarts = append(f.restarts, p.Name+": "+reason)
	return nil
}

const podUID = "1b2c3d4e-0000-4000-8000-00000000abcd"

// procWithPod makes a proc root where pid's cgroup names a burstable pod.
func procWithPod(t *testing.T, pid int) string {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cg := "4:memory:/kubepods/burstable/pod" + podUID + "/0123456789abcdef\n"
	if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cg), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestHealPolicies(t *testing.T) {
	t.Parallel()
	repairErr := errors.New("move_mount: permission denied")
	cases := []struct {
		name         string
		policy       Policy // "" = no pod found
		repairErr    error
		wantRepairs  int
		wantRestarts int
		wantFailed   int
		wantInReason string
	}{
		{name: "no pod: repair", wantRepairs: 1},
		{name: "repair policy", policy: PolicyRepair, wantRepairs: 1},
		{name: "restart policy", policy: PolicyRestart, wantRestarts: 1, wantInReason: "policy"},
		{name: "ignore policy", policy: PolicyIgnore},
		{name: "repair fails: last resort", policy: PolicyRepair, repairErr: repairErr, wantRepairs: 1, wantRestarts: 1, wantFailed: 1, wantInReason: "permission denied"},
		{name: "repair fails without a pod", repairErr: repairErr, wantRepairs: 1, wantFailed: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeRestarter{pods: map[string]*Pod{}}
			if tc.policy != "" {
				fr.pods[podUID] = &Pod{Namespace: "default", Name: "web", UID: podUID, Node: "n1", Policy: tc.policy}
			}
			h := New(Options{ProcRoot: procWithPod(t, 42), MountPoint: "/var/lib/lxcfs", Restarter: fr, Log: logr.Discard()})
			repairs := 0
			h.repair = func(mountmgr.Namespace, mountmgr.Device) (int, error) {
				repairs++
				if tc.repairErr != nil {
					return 0, tc.repairErr
				}
				return 3, nil
			}
			var res Result
			h.heal(context.Background(), mountmgr.Namespace{ID: "mnt:[1]", Pid: 42, Stale: true}, mountmgr.Device{Minor: 9}, &res)
			if repairs != tc.wantRepairs || len(fr.restarts) != tc.wantRestarts || res.Failed != tc.wantFailed {
				t.Errorf("repairs %d restarts %v failed %d; want %d, %d, %d", repairs, fr.restarts, res.Failed,
					tc.wantRepairs, tc.wantRestarts, tc.wantFailed)
			}
			if tc.wantInReason != "" && (len(fr.restarts) == 0 || !strings.Contains(fr.restarts[0], tc.wantInReason)) {
				t.Errorf("restart reason %v lacks %q", fr.restarts, tc.wantInReason)
			}
			if tc.wantRepairs == 1 && tc.repairErr == nil && (res.Repaired != 3 || h.Counters.Repaired.Load() != 3) {
				t.Errorf("repaired %d (counter %d), want 3", res.Repaired, h.Counters.Repaired.Load())
			}
		})
	}
}

func TestHealBackoff(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	h := New(Options{MountPoint: "/x", Interval: 10 * time.Second, Log: logr.Discard(), Now: func() time.Time { return now }})
	h.repair = func(mountmgr.Namespace, mountmgr.Device) (int, error) { return 0, errors.New("no") }
	ns := mountmgr.Namespace{ID: "mnt:[7]", Pid: 7, Stale: true}
	var res Result
	h.heal(context.Background(), ns, mountmgr.Device{}, &res)
	if h.due(ns.ID, now.Add(9*time.Second)) || !h.due(ns.ID, now.Add(10*time.Second)) {
		t.Errorf("after one failure: due within the interval, or not after it")
	}
	h.heal(context.Background(), ns, mountmgr.Device{}, &res)
	if h.due(ns.ID, now.Add(19*time.Second)) || !h.due(ns.ID, now.Add(20*time.Second)) {
		t.Errorf("after two failures: backoff is not 20s")
	}
	for range 20 {
		h.fail(ns.ID)
	}
	if !h.due(ns.ID, now.Add(5*time.Minute)) {
		t.Errorf("backoff exceeds 5 minutes")
	}
	h.forgetExcept(nil)
	if !h.due(ns.ID, now) {
		t.Errorf("a namespace that is gone keeps its backoff")
	}
	h.repair = func(mountmgr.Namespace, mountmgr.Device) (int, error) { return 1, nil }
	h.fail(ns.ID)
	now = now.Add(time.Hour)
	h.heal(context.Background(), ns, mountmgr.Device{}, &res)
	if !h.due(ns.ID, now) {
		t.Errorf("a repaired namespace keeps its backoff")
	}
}

func TestHealRateLimitedRestartIsNotAFailure(t *testing.T) {
	t.Parallel()
	fr := &fakeRestarter{pods: map[string]*Pod{podUID: {Name: "web", UID: podUID, Policy: PolicyRestart}},
		err: &RateLimitedError{RetryAfter: time.Second}}
	h := New(Options{ProcRoot: procWithPod(t, 42), MountPoint: "/x", Restarter: fr, Log: logr.Discard()})
	var res Result
	ns := mountmgr.Namespace{ID: "mnt:[2]", Pid: 42, Stale: true}
	h.heal(context.Background(), ns, mountmgr.Device{}, &res)
	if !h.due(ns.ID, time.Now()) {
		t.Errorf("a rate-limited restart backed the namespace off")
	}
	if res.Restarted != 0 || h.Counters.Restarted.Load() != 0 {
		t.Errorf("a rate-limited restart was counted")
	}
}

func TestAttrsOf(t *testing.T) {
	t.Parallel()
	got := attrsOf("ro,nosuid,nodev,noexec,relatime")
	want := uint64(0x1 | 0x2 | 0x4 | 0x8) // MOUNT_ATTR_RDONLY|NOSUID|NODEV|NOEXEC
	if got != want {
		t.Errorf("attrsOf = %#x, want %#x", got, want)
	}
	if attrsOf("rw,relatime") != 0 {
		t.Errorf("rw,relatime gave attributes")
	}
}
