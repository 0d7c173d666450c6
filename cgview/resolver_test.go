// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package cgview_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
)

func TestModeDetection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want cgview.Mode
	}{
		{name: "v1-cgroupfs-burstable", want: cgview.ModeV1},
		{name: "v1-missing-controllers", want: cgview.ModeV1},
		{name: "hybrid-cgroupfs-guaranteed", want: cgview.ModeHybrid},
		{name: "v2-systemd-burstable", want: cgview.ModeV2},
		{name: "v2-systemd-guaranteed", want: cgview.ModeV2},
		{name: "v2-systemd-besteffort", want: cgview.ModeV2},
		{name: "v2-max", want: cgview.ModeV2},
		{name: "v2-cpuset-only", want: cgview.ModeV2},
		{name: "v2-quota-only", want: cgview.ModeV2},
		{name: "v2-nested", want: cgview.ModeV2},
		{name: "v2-over-host", want: cgview.ModeV2},
		{name: "v2-malformed", want: cgview.ModeV2},
		{name: "v2-missing-controllers", want: cgview.ModeV2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.name))
			if got := r.Mode(); got != tc.want {
				t.Errorf("Mode() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestModeString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode cgview.Mode
		want string
	}{
		{name: "unknown", mode: cgview.ModeUnknown, want: "unknown"},
		{name: "v1", mode: cgview.ModeV1, want: "v1"},
		{name: "hybrid", mode: cgview.ModeHybrid, want: "hybrid"},
		{name: "v2", mode: cgview.ModeV2, want: "v2"},
		{name: "out of range", mode: cgview.Mode(42), want: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.mode.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	tests := []struct {
		name     string
		opts     cgview.Options
		wantErr  bool
		wantMode cgview.Mode
	}{
		{
			name:    "no cgroup filesystem",
			opts:    cgview.Options{ProcRoot: filepath.Join(fixture("v2-max"), "proc"), CgroupRoot: empty},
			wantErr: true,
		},
		{
			name:    "no proc/self",
			opts:    cgview.Options{ProcRoot: empty, CgroupRoot: filepath.Join(fixture("v2-max"), "sys", "fs", "cgroup")},
			wantErr: true,
		},
		{
			name:     "mode override wins over detection",
			opts:     cgview.Options{ProcRoot: filepath.Join(fixture("v2-max"), "proc"), CgroupRoot: empty, Mode: cgview.ModeV2},
			wantMode: cgview.ModeV2,
		},
		{
			name:     "detected",
			opts:     cgview.Options{ProcRoot: filepath.Join(fixture("v2-max"), "proc"), CgroupRoot: filepath.Join(fixture("v2-max"), "sys", "fs", "cgroup")},
			wantMode: cgview.ModeV2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := cgview.New(tc.opts)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("New() = %v, nil; want an error", r.Mode())
				}
				return
			}
			if err != nil {
				t.Fatalf("New() = %v", err)
			}
			if r.Mode() != tc.wantMode {
				t.Errorf("Mode() = %v, want %v", r.Mode(), tc.wantMode)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	v1Paths := func(p string, ctls ...string) map[string]string {
		m := map[string]string{}
		for _, c := range ctls {
			m[c] = p
		}
		return m
	}
	al2 := []string{"pids", "hugetlb", "devices", "cpuset", "blkio", "memory", "perf_event", "freezer", "net_cls", "net_prio", "cpu", "cpuacct", "name=systemd"}
	tests := []struct {
		name      string
		fixture   string
		pid       int
		wantKey   uint64
		wantInit  int
		wantStart uint64
		wantV2    string
		wantV1    map[string]string // nil: not checked
	}{
		{name: "v2 reader via ancestors", fixture: "v2-systemd-burstable", pid: readPid, wantKey: ctrNS, wantInit: initPid, wantStart: v2Start, wantV2: v2Burstable},
		{name: "v2 child of init", fixture: "v2-systemd-burstable", pid: shPid, wantKey: ctrNS, wantInit: initPid, wantStart: v2Start, wantV2: v2Burstable},
		{name: "v2 init itself", fixture: "v2-systemd-burstable", pid: initPid, wantKey: ctrNS, wantInit: initPid, wantStart: v2Start, wantV2: v2Burstable},
		{name: "v2 setns process via proc scan", fixture: "v2-systemd-burstable", pid: execPid, wantKey: ctrNS, wantInit: initPid, wantStart: v2Start, wantV2: v2Burstable},
		{name: "v2 nested namespace resolves to its own init", fixture: "v2-systemd-burstable", pid: nestPid, wantKey: 4026532600, wantInit: nestPid, wantStart: 35482117 - 900, wantV2: v2Burstable},
		{name: "v2 host reader gets its own cgroup", fixture: "v2-systemd-burstable", pid: hostPid, wantKey: 0, wantInit: hostPid, wantStart: hostInit, wantV2: "/user.slice/user-1000.slice/session-3.scope"},
		{name: "v2 host init", fixture: "v2-systemd-burstable", pid: 1, wantKey: 0, wantInit: 1, wantStart: hostInit, wantV2: "/init.scope"},
		{name: "v2 guaranteed", fixture: "v2-systemd-guaranteed", pid: readPid, wantKey: ctrNS, wantInit: initPid, wantStart: v2Start, wantV2: v2Guaranteed},
		{name: "v2 besteffort setns", fixture: "v2-systemd-besteffort", pid: execPid, wantKey: ctrNS, wantInit: initPid, wantStart: v2Start, wantV2: v2BestEffort},
		{name: "v2 second container of malformed", fixture: "v2-malformed", pid: 5400, wantKey: 4026532499, wantInit: 5242, wantStart: v2Start + 5000,
			wantV2: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0c9d8e7f_6a5b_4c3d_2e1f_a0b1c2d3e4f5.slice/cri-containerd-e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5.scope"},
		{name: "v1 reader", fixture: "v1-cgroupfs-burstable", pid: readPid, wantKey: ctrNS, wantInit: initPid, wantStart: v1Start, wantV1: v1Paths(v1Burstable, al2...)},
		{name: "v1 setns", fixture: "v1-cgroupfs-burstable", pid: execPid, wantKey: ctrNS, wantInit: initPid, wantStart: v1Start, wantV1: v1Paths(v1Burstable, al2...)},
		{name: "v1 missing controllers", fixture: "v1-missing-controllers", pid: readPid, wantKey: ctrNS, wantInit: initPid, wantStart: v1Start,
			wantV1: v1Paths(v1Burstable, "devices", "memory", "freezer", "cpu", "cpuacct", "name=systemd")},
		{name: "v1 host reader", fixture: "v1-cgroupfs-burstable", pid: hostPid, wantKey: 0, wantInit: hostPid, wantStart: 3, wantV1: v1Paths("/system.slice/sshd.service", al2...)},
		{name: "hybrid reader", fixture: "hybrid-cgroupfs-guaranteed", pid: readPid, wantKey: ctrNS, wantInit: initPid, wantStart: hyStart, wantV2: "/",
			wantV1: v1Paths(v1Guaranteed, "name=systemd", "pids", "blkio", "freezer", "devices", "memory", "cpuset", "cpuacct", "cpu")},
		{name: "hybrid setns", fixture: "hybrid-cgroupfs-guaranteed", pid: execPid, wantKey: ctrNS, wantInit: initPid, wantStart: hyStart, wantV2: "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newResolver(t, fixture(tc.fixture))
			c := resolve(t, r, tc.pid)
			if c.Key != tc.wantKey || c.InitPid != tc.wantInit || c.InitStart != tc.wantStart {
				t.Errorf("Resolve(%d) = {Key %d, InitPid %d, InitStart %d}, want {%d, %d, %d}",
					tc.pid, c.Key, c.InitPid, c.InitStart, tc.wantKey, tc.wantInit, tc.wantStart)
			}
			if c.V2 != tc.wantV2 {
				t.Errorf("V2 = %q, want %q", c.V2, tc.wantV2)
			}
			if tc.wantV1 != nil && !reflect.DeepEqual(c.V1, tc.wantV1) {
				t.Errorf("V1 = %v, want %v", c.V1, tc.wantV1)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		pid  int
	}{
		{name: "zero pid", pid: 0},
		{name: "negative pid", pid: -7},
		{name: "exited reader", pid: 99999},
		{name: "namespace without init", pid: orphPid},
	}
	r := newResolver(t, fixture("v2-systemd-burstable"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := r.Resolve(tc.pid)
			if !errors.Is(err, cgview.ErrNoContainer) {
				t.Fatalf("Resolve(%d) = %+v, %v; want ErrNoContainer", tc.pid, c, err)
			}
		})
	}
}

func TestResolveFileProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		pid    int
		mutate func(t *testing.T, root string)
	}{
		{
			name: "reader without ns link",
			pid:  readPid,
			mutate: func(t *testing.T, root string) {
				if err := os.Remove(filepath.Join(root, "proc/4300/ns/pid")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:   "garbled ns link",
			pid:    readPid,
			mutate: func(t *testing.T, root string) { writeFile(t, root, "proc/4300/ns/pid", "mnt:[4026532398]\n") },
		},
		{
			name:   "init stat unparsable",
			pid:    readPid,
			mutate: func(t *testing.T, root string) { writeFile(t, root, "proc/4242/stat", "4242 (nginx) S\n") },
		},
		{
			name: "init cgroup file gone",
			pid:  readPid,
			mutate: func(t *testing.T, root string) {
				if err := os.Remove(filepath.Join(root, "proc/4242/cgroup")); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:   "init cgroup file garbled",
			pid:    readPid,
			mutate: func(t *testing.T, root string) { writeFile(t, root, "proc/4242/cgroup", "not a cgroup line\n") },
		},
		{
			name:   "v2 host but init only in v1 hierarchies",
			pid:    readPid,
			mutate: func(t *testing.T, root string) { writeFile(t, root, "proc/4242/cgroup", "4:memory:/kubepods\n") },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := copyFixture(t, "v2-systemd-burstable")
			tc.mutate(t, root)
			r := newResolver(t, root)
			c, err := r.Resolve(tc.pid)
			if !errors.Is(err, cgview.ErrNoContainer) {
				t.Fatalf("Resolve(%d) = %+v, %v; want ErrNoContainer", tc.pid, c, err)
			}
		})
	}
}

func TestResolveV1InitWithoutV1Cgroups(t *testing.T) {
	t.Parallel()
	root := copyFixture(t, "v1-cgroupfs-burstable")
	writeFile(t, root, "proc/4242/cgroup", "0::/\n")
	r := newResolver(t, root)
	if c, err := r.Resolve(readPid); !errors.Is(err, cgview.ErrNoContainer) {
		t.Fatalf("Resolve = %+v, %v; want ErrNoContainer", c, err)
	}
}

func TestResolveCachesPerNamespace(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("v2-systemd-burstable"))
	first := resolve(t, r, readPid)
	for _, pid := range []int{shPid, dPid, initPid, execPid, readPid} {
		if c := resolve(t, r, pid); c != first {
			t.Errorf("Resolve(%d) returned a new container %p, want the cached %p", pid, c, first)
		}
	}
	// Host readers are not cached: each resolution is a fresh object.
	h1, h2 := resolve(t, r, hostPid), resolve(t, r, hostPid)
	if h1 == h2 {
		t.Errorf("host readers share a Container; want fresh ones")
	}
	if got := len(r.Containers()); got != 1 {
		t.Errorf("Containers() has %d entries, want 1", got)
	}
}

func TestResolveConcurrent(t *testing.T) {
	t.Parallel()
	r := newResolver(t, fixture("v2-systemd-burstable"))
	const n = 16
	got := make([]*cgview.Container, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pids := []int{readPid, execPid, shPid, initPid}
			c, err := r.Resolve(pids[i%len(pids)])
			if err != nil {
				t.Errorf("Resolve: %v", err)
				return
			}
			c.Memo.Update("k", func(prev []uint64) []uint64 {
				if prev == nil {
					return []uint64{1}
				}
				return []uint64{prev[0] + 1}
			})
			got[i] = c
		}()
	}
	wg.Wait()
	// Concurrent first resolutions may build several objects, but the cache
	// keeps one, and every later resolution returns it.
	cached := resolve(t, r, readPid)
	for range 3 {
		if c := resolve(t, r, execPid); c != cached {
			t.Fatalf("Resolve after the race returned %p, want the cached %p", c, cached)
		}
	}
	if len(r.Containers()) != 1 {
		t.Errorf("Containers() = %d entries, want 1", len(r.Containers()))
	}
}

func TestResolvePidCache(t *testing.T) {
	t.Parallel()
	root := copyFixture(t, "v2-systemd-burstable")
	clk := newFakeClock()
	r := newResolver(t, root, func(o *cgview.Options) { o.Now, o.Revalidate = clk.Now, time.Hour })
	c1 := resolve(t, r, readPid)
	// Make the reader look like a member of the nested namespace: only a
	// resolution that looks at the pid again notices.
	writeFile(t, root, "proc/4300/ns/pid", "pid:[4026532600]\n")
	writeFile(t, root, "proc/4300/status", strings.Replace(readFile(t, root, "proc/4300/status"), "NSpid:\t4300\t23", "NSpid:\t4300\t23\t1", 1))
	clk.Advance(50 * time.Millisecond)
	if c := resolve(t, r, readPid); c != c1 {
		t.Fatalf("Resolve within the pid TTL = %+v, want the cached %+v", c, c1)
	}
	clk.Advance(100 * time.Millisecond)
	if c := resolve(t, r, readPid); c.Key != 4026532600 {
		t.Fatalf("Resolve after the pid TTL = Key %d, want the pid looked at again (Key 4026532600)", c.Key)
	}
}

func TestResolveRevalidation(t *testing.T) {
	t.Parallel()
	const moved = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podUID_ + ".slice/cri-containerd-moved.scope"
	tests := []struct {
		name      string
		mutate    func(t *testing.T, root string)
		advance   time.Duration // clock step before the second resolution
		wantSame  bool          // the very same *Container
		wantV2    string
		wantNoCtr bool // the second resolution fails with ErrNoContainer
	}{
		{
			name:     "within revalidate the cache is trusted",
			mutate:   func(t *testing.T, root string) { writeFile(t, root, "proc/4242/cgroup", "0::"+moved+"\n") },
			advance:  500 * time.Millisecond,
			wantSame: true, wantV2: v2Burstable,
		},
		{
			name:    "after revalidate the init's cgroup move is followed",
			mutate:  func(t *testing.T, root string) { writeFile(t, root, "proc/4242/cgroup", "0::"+moved+"\n") },
			advance: 1500 * time.Millisecond,
			wantV2:  moved,
		},
		{
			name:     "after revalidate an unchanged init keeps its container",
			mutate:   func(*testing.T, string) {},
			advance:  time.Hour,
			wantSame: true, wantV2: v2Burstable,
		},
		{
			name: "after revalidate an exited init means no container",
			mutate: func(t *testing.T, root string) {
				if err := os.RemoveAll(filepath.Join(root, "proc", "4242")); err != nil {
					t.Fatal(err)
				}
			},
			advance:   1500 * time.Millisecond,
			wantNoCtr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := copyFixture(t, "v2-systemd-burstable")
			clk := newFakeClock()
			r := newResolver(t, root, func(o *cgview.Options) { o.Now, o.Revalidate = clk.Now, time.Second })
			c1 := resolve(t, r, readPid)
			c1.Memo.Update("stat", func([]uint64) []uint64 { return []uint64{42} })
			tc.mutate(t, root)
			clk.Advance(tc.advance)
			c2, err := r.Resolve(readPid)
			if tc.wantNoCtr {
				if !errors.Is(err, cgview.ErrNoContainer) {
					t.Fatalf("second Resolve = %+v, %v; want ErrNoContainer", c2, err)
				}
				if n := len(r.Containers()); n != 0 {
					t.Errorf("Containers() = %d entries, want the dead one dropped", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("second Resolve = %v", err)
			}
			if (c1 == c2) != tc.wantSame {
				t.Errorf("second Resolve returned same=%v, want same=%v", c1 == c2, tc.wantSame)
			}
			if c2.V2 != tc.wantV2 || c2.InitPid != initPid || c2.InitStart != v2Start {
				t.Errorf("second Resolve = {V2 %q, InitPid %d, InitStart %d}, want {%q, %d, %d}", c2.V2, c2.InitPid, c2.InitStart, tc.wantV2, initPid, v2Start)
			}
			// The memo lives as long as the namespace, across cgroup moves.
			if c2.Memo != c1.Memo {
				t.Errorf("Memo changed across revalidation")
			}
			if got := r.Containers(); len(got) != 1 || got[0] != c2 {
				t.Errorf("Containers() = %v, want [%p]", got, c2)
			}
		})
	}
}

func TestResolveRevalidateDefault(t *testing.T) {
	t.Parallel()
	const moved = "/kubepods.slice/elsewhere.scope"
	root := copyFixture(t, "v2-systemd-burstable")
	clk := newFakeClock()
	r := newResolver(t, root, func(o *cgview.Options) { o.Now = clk.Now }) // Revalidate zero: one second
	c1 := resolve(t, r, readPid)
	writeFile(t, root, "proc/4242/cgroup", "0::"+moved+"\n")
	clk.Advance(999 * time.Millisecond)
	if c := resolve(t, r, readPid); c != c1 {
		t.Fatalf("Resolve before one second re-read the init's cgroup")
	}
	// The resolution at 999ms is reused for pidTTL (100ms) more.
	clk.Advance(150 * time.Millisecond)
	if c := resolve(t, r, readPid); c.V2 != moved {
		t.Fatalf("Resolve after one second and the pid TTL = %+v, want V2 %q", c, moved)
	}
}

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPrune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(t *testing.T, root string)
		wantKeys []uint64
	}{
		{name: "nothing changed", mutate: func(*testing.T, string) {}, wantKeys: []uint64{ctrNS, 4026532600}},
		{
			name: "init start time changed",
			mutate: func(t *testing.T, root string) {
				writeFile(t, root, "proc/4242/stat", pidStatLine(initPid, "nginx", 'S', shimPid, v2Start+7))
			},
			wantKeys: []uint64{4026532600},
		},
		{
			name: "init exited",
			mutate: func(t *testing.T, root string) {
				if err := os.RemoveAll(filepath.Join(root, "proc", "4242")); err != nil {
					t.Fatal(err)
				}
			},
			wantKeys: []uint64{4026532600},
		},
		{
			name:     "init pid reused in another namespace",
			mutate:   func(t *testing.T, root string) { writeFile(t, root, "proc/4500/ns/pid", "pid:[4026539999]\n") },
			wantKeys: []uint64{ctrNS},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root := copyFixture(t, "v2-systemd-burstable")
			r := newResolver(t, root)
			resolve(t, r, readPid)
			resolve(t, r, nestPid)
			if got := len(r.Containers()); got != 2 {
				t.Fatalf("Containers() = %d entries before Prune, want 2", got)
			}
			tc.mutate(t, root)
			r.Prune()
			var keys []uint64
			for _, c := range r.Containers() {
				keys = append(keys, c.Key)
			}
			if !sameKeys(keys, tc.wantKeys) {
				t.Errorf("after Prune keys = %v, want %v", keys, tc.wantKeys)
			}
		})
	}
}

func sameKeys(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	in := map[uint64]int{}
	for _, k := range a {
		in[k]++
	}
	for _, k := range b {
		in[k]--
	}
	for _, v := range in {
		if v != 0 {
			return false
		}
	}
	return true
}

func TestRunPrunesAndStops(t *testing.T) {
	t.Parallel()
	root := copyFixture(t, "v2-systemd-burstable")
	r := newResolver(t, root)
	resolve(t, r, readPid)
	writeFile(t, root, "proc/4242/stat", pidStatLine(initPid, "nginx", 'S', shimPid, v2Start+9))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, time.Millisecond) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.Containers()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not prune the dead container")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil on cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestMemoUpdate(t *testing.T) {
	t.Parallel()
	c := cgview.Container{Memo: &cgview.Memo{}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Memo.Update("n", func(prev []uint64) []uint64 {
				if prev == nil {
					return []uint64{1}
				}
				return []uint64{prev[0] + 1}
			})
		}()
	}
	wg.Wait()
	c.Memo.Update("n", func(prev []uint64) []uint64 {
		if len(prev) != 1 || prev[0] != 50 {
			t.Errorf("memo = %v, want [50]", prev)
		}
		return prev
	})
	c.Memo.Update("other", func(prev []uint64) []uint64 {
		if prev != nil {
			t.Errorf("fresh key memo = %v, want nil", prev)
		}
		return nil
	})
}
