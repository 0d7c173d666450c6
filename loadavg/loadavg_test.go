// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package loadavg

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/k8s-lxcfs/k8s-lxcfs/cgview"
	"github.com/k8s-lxcfs/k8s-lxcfs/fs/render"
	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// The kernel's EXP_1, EXP_5 and EXP_15 for LOAD_FREQ = 5 s
// (include/linux/sched/loadavg.h).
var kernelExp = [3]uint64{1884, 2014, 2037}

const one = fixed1 // 1.00 in fixed point

func TestExpMatchesKernel(t *testing.T) {
	t.Parallel()
	s := New(nil, "", 5*time.Second, logr.Discard())
	if s.exp != kernelExp {
		t.Errorf("exp for 5s = %v, want the kernel's %v", s.exp, kernelExp)
	}
	// Other intervals follow FIXED_1/e^(interval/period).
	s = New(nil, "", time.Second, logr.Discard())
	for i, minutes := range []float64{1, 5, 15} {
		want := math.Round(one / math.Exp(1/(60*minutes)))
		if float64(s.exp[i]) != want {
			t.Errorf("exp[%d] for 1s = %d, want %v", i, s.exp[i], want)
		}
	}
}

func TestCalcLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		load, exp, active uint64
		want              uint64
	}{
		{name: "first sample of one task", load: 0, exp: 1884, active: one, want: 164},
		{name: "second sample", load: 164, exp: 1884, active: one, want: 315},
		{name: "rounds up while rising", load: 2047, exp: 1884, active: one, want: 2048},
		{name: "steady at one", load: one, exp: 1884, active: one, want: one},
		{name: "decays without rounding up", load: one, exp: 1884, active: 0, want: 1884},
		{name: "smallest load decays to zero", load: 1, exp: 2037, active: 0, want: 0},
		{name: "idle stays zero", load: 0, exp: 2037, active: 0, want: 0},
		{name: "two tasks on 15 minutes", load: 0, exp: 2037, active: 2 * one, want: 22},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := calcLoad(tc.load, tc.exp, tc.active); got != tc.want {
				t.Errorf("calcLoad(%d, %d, %d) = %d, want %d", tc.load, tc.exp, tc.active, got, tc.want)
			}
		})
	}
}

// step folds n samples of active tasks into avg.
func step(avg [3]uint64, active uint64, n int) [3]uint64 {
	for range n {
		for i := range avg {
			avg[i] = calcLoad(avg[i], kernelExp[i], active*one)
		}
	}
	return avg
}

func TestCalcLoadOneTaskConvergesAndDecays(t *testing.T) {
	t.Parallel()
	var avg [3]uint64
	var rising []uint64
	for range 5 {
		avg = step(avg, 1, 1)
		rising = append(rising, avg[0])
	}
	if want := []uint64{164, 315, 454, 582, 700}; !slices.Equal(rising, want) {
		t.Errorf("1-minute average over the first 5 samples = %v, want the kernel's %v", rising, want)
	}
	// Five minutes (60 samples) of one runnable task.
	avg = step([3]uint64{}, 1, 60)
	if got := loadText(avg); got != "1.00 0.64 0.29" {
		t.Errorf("after 5 minutes of one task: %q, want %q", got, "1.00 0.64 0.29")
	}
	// Every average reaches exactly 1.00 and stays, never overshooting.
	avg = [3]uint64{}
	reached := [3]int{}
	for n := 1; n <= 2000; n++ {
		prev := avg
		avg = step(avg, 1, 1)
		for i := range avg {
			if avg[i] < prev[i] || avg[i] > one {
				t.Fatalf("sample %d: average %d went %d → %d", n, i, prev[i], avg[i])
			}
			if avg[i] == one && reached[i] == 0 {
				reached[i] = n
			}
		}
	}
	if reached != [3]int{68, 246, 561} {
		t.Errorf("samples to reach 1.00 = %v, want [68 246 561]", reached)
	}
	// One minute without tasks: 1/e of the 1-minute average is left.
	decayed := step(avg, 0, 12)
	if got := loadText(decayed); got != "0.37 0.82 0.94" {
		t.Errorf("one minute after the task stopped: %q, want %q", got, "0.37 0.82 0.94")
	}
	for i, want := range []float64{math.Exp(-1), math.Exp(-1.0 / 5), math.Exp(-1.0 / 15)} {
		if got := float64(decayed[i]) / one; math.Abs(got-want) > 0.01 {
			t.Errorf("average %d after a minute = %.4f, want ≈ %.4f", i, got, want)
		}
	}
	// And it decays all the way to 0.00.
	if got := loadText(step(avg, 0, 600)); got != "0.00 0.00 0.00" {
		t.Errorf("long after the task stopped: %q, want 0.00 0.00 0.00", got)
	}
}

func TestCalcLoadTracksFloatModel(t *testing.T) {
	t.Parallel()
	// While rising, the fixed-point average follows
	// load(n) = active·(1 − (exp/FIXED_1)^n), the exact average for the
	// kernel's rounded constants (EXP_15 = 2037 is itself 2036.65 rounded).
	// calc_load rounds up while rising, so it runs ahead by at most the
	// geometric sum of those roundings, 1/(FIXED_1−exp) load units.
	for _, active := range []uint64{1, 3, 16, 100} {
		var avg [3]uint64
		for n := 1; n <= 600; n++ {
			avg = step(avg, active, 1)
			for i := range avg {
				want := float64(active) * (1 - math.Pow(float64(kernelExp[i])/one, float64(n)))
				tol := 1/float64(one-kernelExp[i]) + 0.001
				if got := float64(avg[i]) / one; got < want-0.001 || got > want+tol {
					t.Fatalf("active %d, sample %d, average %d: %.4f, want ≈ %.4f", active, n, i, got, want)
				}
			}
		}
	}
}

func TestShortIntervalFreezesAverages(t *testing.T) {
	t.Parallel()
	// Below about 220ms EXP_15 = round(FIXED_1/e^(interval/15min)) rounds to
	// FIXED_1 and the 15-minute average would never move; New raises such
	// intervals to MinInterval.
	s := New(nil, "", 100*time.Millisecond, logr.Discard())
	if s.exp[2] >= fixed1 {
		t.Fatalf("EXP_15 = %d: the 15-minute average cannot move", s.exp[2])
	}
	var avg uint64
	for range int(15 * time.Minute / s.interval) { // 15 minutes of samples with one runnable task
		avg = calcLoad(avg, s.exp[2], one)
	}
	if avg < one/2 {
		t.Errorf("15-minute average after 15 minutes of one task = %d (%.2f), want about 0.63", avg, float64(avg)/one)
	}
}

func loadText(avg [3]uint64) string {
	b := render.Loadavg(avg, 0, 0, 0)
	return string(b[:len(b)-len(" 0/0 0\n")])
}

func TestLoadavgRendering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		avg     [3]uint64
		running uint64
		total   uint64
		last    int
		want    string
	}{
		{name: "idle container", running: 1, total: 5, last: 123, want: "0.00 0.00 0.00 1/5 123\n"},
		{name: "one sample of one task", avg: step([3]uint64{}, 1, 1), running: 1, total: 1, last: 1, want: "0.08 0.02 0.01 1/1 1\n"},
		{name: "steady two tasks", avg: step([3]uint64{}, 2, 5000), running: 2, total: 40, last: 4321, want: "2.00 2.00 2.00 2/40 4321\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := string(render.Loadavg(tc.avg, tc.running, tc.total, tc.last)); got != tc.want {
				t.Errorf("Loadavg = %q, want %q", got, tc.want)
			}
		})
	}
}

const (
	fixtures = "../cgview/testdata"
	readPid  = 4300
)

// newSampler builds a Resolver and a 5s Sampler over a fixture tree.
func newSampler(t *testing.T, root string) (*cgview.Resolver, *Sampler) {
	t.Helper()
	r, err := cgview.New(cgview.Options{ProcRoot: filepath.Join(root, "proc"), CgroupRoot: filepath.Join(root, "sys", "fs", "cgroup")})
	if err != nil {
		t.Fatal(err)
	}
	return r, New(r, filepath.Join(root, "proc"), 5*time.Second, logr.Discard())
}

func resolve(t *testing.T, r *cgview.Resolver, pid int) *cgview.Container {
	t.Helper()
	c, err := r.Resolve(pid)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSamplerGet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fixture string
		want    Sample
	}{
		// Tasks 4242 S, 4250 S, 4260 D, 4300 R, 4400 S; the newest, 4400, is 31 inside.
		{name: "v2", fixture: "v2-systemd-guaranteed", want: Sample{Running: 1, Blocked: 1, Total: 5, LastPid: 31}},
		{name: "v1 pids", fixture: "v1-cgroupfs-burstable", want: Sample{Running: 1, Blocked: 1, Total: 5, LastPid: 31}},
		{name: "v1 cpuacct tasks", fixture: "v1-missing-controllers", want: Sample{Running: 1, Blocked: 1, Total: 5, LastPid: 31}},
		{name: "hybrid", fixture: "hybrid-cgroupfs-guaranteed", want: Sample{Running: 1, Blocked: 1, Total: 5, LastPid: 31}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, s := newSampler(t, filepath.Join(fixtures, tc.fixture))
			c := resolve(t, r, readPid)
			if got := s.Get(c); got != tc.want {
				t.Errorf("Get() = %+v, want %+v", got, tc.want)
			}
			if s.Len() != 1 {
				t.Errorf("Len() = %d, want 1", s.Len())
			}
			if got := s.Get(resolve(t, r, 4400)); got != tc.want || s.Len() != 1 {
				t.Errorf("Get() from another reader of the container = %+v with Len %d, want the same entry", got, s.Len())
			}
		})
	}
}

func TestSamplerLastPidInContainerNamespace(t *testing.T) {
	t.Parallel()
	r, s := newSampler(t, filepath.Join(fixtures, "v2-systemd-burstable"))
	got := s.Get(resolve(t, r, readPid))
	if got.LastPid != 40 {
		t.Errorf("LastPid = %d, want 40 (pid 4500 as the container sees it)", got.LastPid)
	}
}

func TestSampleAllConverges(t *testing.T) {
	t.Parallel()
	r, s := newSampler(t, filepath.Join(fixtures, "v2-systemd-guaranteed"))
	c := resolve(t, r, readPid)
	s.Get(c)
	for range 5000 {
		s.SampleAll()
	}
	got := s.Get(c)
	want := Sample{Avg: [3]uint64{2 * one, 2 * one, 2 * one}, Running: 1, Blocked: 1, Total: 5, LastPid: 31}
	if got != want {
		t.Errorf("after 5000 samples of R+D = 2: %+v, want %+v", got, want)
	}
	if text := string(render.Loadavg(got.Avg, got.Running, got.Total, got.LastPid)); text != "2.00 2.00 2.00 1/5 31\n" {
		t.Errorf("rendered %q", text)
	}
}

// copyTree copies a fixture tree into a temporary directory.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	return testenv.CopyTree(t, src)
}

const guaranteedScope = "sys/fs/cgroup/kubepods.slice/kubepods-pod6b1f1d5e_3c2a_4f5e_9d8a_0e1b2c3d4e5f.slice/cri-containerd-7d3c5b2a9e8f1d6c4b0a3e2f5d8c7b6a1e0f9d2c3b4a5e6f7d8c9b0a1e2f3d4c.scope"

func TestSampleAllFollowsTasks(t *testing.T) {
	t.Parallel()
	root := copyTree(t, filepath.Join(fixtures, "v2-systemd-guaranteed"))
	r, s := newSampler(t, root)
	c := resolve(t, r, readPid)
	s.Get(c)
	// The D task exits: it leaves the cgroup and /proc. (The race where it
	// exits between the listing and the stat read — a kept stat file then
	// fails with ESRCH — needs a real procfs: TestPrivLoadavg's tasks come
	// and go under it.)
	if err := os.RemoveAll(filepath.Join(root, "proc", "4260")); err != nil {
		t.Fatal(err)
	}
	threads := filepath.Join(root, guaranteedScope, "cgroup.threads")
	b, err := os.ReadFile(threads)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(threads, []byte(strings.Replace(string(b), "4260\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.SampleAll()
	got := s.Get(c)
	if got.Running != 1 || got.Blocked != 0 || got.Total != 4 {
		t.Errorf("after the D task exited: %+v, want 1 running, 0 blocked, 4 total", got)
	}
	if got.Avg[0] != calcLoad(0, kernelExp[0], one) {
		t.Errorf("1-minute average = %d, want one sample of one task", got.Avg[0])
	}
	// The cgroup empties: the container is forgotten.
	if err := os.WriteFile(filepath.Join(root, guaranteedScope, "cgroup.threads"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.SampleAll()
	if s.Len() != 0 {
		t.Errorf("Len() = %d after the cgroup emptied, want 0", s.Len())
	}
}

func TestSamplerGetUnreadableCgroup(t *testing.T) {
	t.Parallel()
	root := copyTree(t, filepath.Join(fixtures, "v2-systemd-guaranteed"))
	r, s := newSampler(t, root)
	c := resolve(t, r, readPid)
	if err := os.Remove(filepath.Join(root, guaranteedScope, "cgroup.threads")); err != nil {
		t.Fatal(err)
	}
	if got := s.Get(c); got != (Sample{}) {
		t.Errorf("Get() without a task list = %+v, want zeros", got)
	}
	s.SampleAll()
	if s.Len() != 0 {
		t.Errorf("Len() = %d, want the container dropped", s.Len())
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	r, _ := newSampler(t, filepath.Join(fixtures, "v2-systemd-guaranteed"))
	// 20ms: short enough for a quick test, long enough that EXP_1 < FIXED_1.
	s := New(r, filepath.Join(fixtures, "v2-systemd-guaranteed", "proc"), 20*time.Millisecond, logr.Discard())
	c := resolve(t, r, readPid)
	s.Get(c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for s.Get(c).Avg[0] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run took no sample")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
}
