// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package upgrade

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// These tests run unprivileged and without FUSE: a fake Predecessor hands
// over pipe ends instead of /dev/fuse and the mount's root.
//
// Tests that change the package variables speaks, timeouts or requiredUID,
// or that count this process's descriptors, do not call t.Parallel: Go
// starts parallel tests only after every sequential one has returned, so
// nothing runs beside them. Each test joins the goroutines it starts
// (Serve, scripted peers, helper processes) before it returns, so that no
// goroutine reads a package variable that a later test changes.

// waitLimit bounds every wait for something that should happen at once; it
// is reached only when a test fails.
const waitLimit = 10 * time.Second

// failedMsg is what Serve logs when a handover attempt fails.
const failedMsg = "Handover failed; serving on"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	requiredUID = uint32(os.Getuid())
	// Deadlines are reached only on failure paths (tests that need one to
	// pass shorten it further), so a broken test fails in seconds. The
	// adopt deadline stays: it also covers encoding the state, which takes
	// a while with -race on a busy machine.
	timeouts.hello = 2 * time.Second
	timeouts.check = 2 * time.Second
	timeouts.quiesce = time.Second
	timeouts.release = 2 * time.Second
	os.Exit(m.Run())
}

// sockPath returns a socket path in a fresh short directory: t.TempDir
// paths can exceed the 107 bytes a unix socket path may have.
func sockPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "up")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) //nolint:errcheck // temp dir
	return filepath.Join(dir, "handover.sock")
}

// logEntry is one line Serve logged.
type logEntry struct {
	msg string
	err error // nil for Info
	kv  []any
}

func (e logEntry) value(key string) any {
	for i := 0; i+1 < len(e.kv); i += 2 {
		if e.kv[i] == key {
			return e.kv[i+1]
		}
	}
	return nil
}

// chanSink is a logr sink that sends every line to a channel: tests use it
// to see what Serve decided and as a barrier, since Serve logs a failed
// handover only after the connection and the descriptors it received are
// closed.
type chanSink struct {
	ch chan<- logEntry
	kv []any
}

func (s *chanSink) Init(logr.RuntimeInfo) {}
func (s *chanSink) Enabled(int) bool      { return true }
func (s *chanSink) Info(_ int, msg string, kv ...any) {
	s.ch <- logEntry{msg: msg, kv: append(slices.Clip(s.kv), kv...)}
}

func (s *chanSink) Error(err error, msg string, kv ...any) {
	s.ch <- logEntry{msg: msg, err: err, kv: append(slices.Clip(s.kv), kv...)}
}

func (s *chanSink) WithValues(kv ...any) logr.LogSink {
	return &chanSink{ch: s.ch, kv: append(slices.Clip(s.kv), kv...)}
}
func (s *chanSink) WithName(string) logr.LogSink { return s }

// server is a Listener serving a Predecessor in a goroutine.
type server struct {
	sock   string
	l      *Listener
	logs   chan logEntry
	cancel context.CancelFunc
	done   chan struct{}

	handedOver bool // set before done closes
	err        error
}

// serve listens on sock and serves p until the test ends. Tests that change
// package variables must do so before calling serve, so that their restoring
// cleanup runs after Serve has returned.
func serve(t *testing.T, sock string, p Predecessor) *server {
	t.Helper()
	logs := make(chan logEntry, 1024)
	l, err := Listen(sock, logr.New(&chanSink{ch: logs}))
	if err != nil {
		t.Fatalf("Listen(%s): %v", sock, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{sock: sock, l: l, logs: logs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.handedOver, s.err = l.Serve(ctx, p)
	}()
	t.Cleanup(func() {
		// Close first: it closes the listening socket before it returns
		// (Serve closes it on cancel in a goroutine of its own), which the
		// tests counting descriptors rely on. It fails if Serve has closed
		// it already; the socket file is removed either way.
		_ = l.Close()
		s.wait(t)
		cancel()
	})
	return s
}

// wait waits for Serve to return and returns its results.
func (s *server) wait(t *testing.T) (bool, error) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return")
	}
	return s.handedOver, s.err
}

// running fails the test if Serve has returned.
func (s *server) running(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("Serve returned (%v, %v); want it serving on", s.handedOver, s.err)
	default:
	}
}

// waitLog returns the next line logged with msg, skipping others.
func (s *server) waitLog(t *testing.T, msg string) logEntry {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case e := <-s.logs:
			if e.msg == msg {
				return e
			}
		case <-timeout:
			t.Fatalf("Serve logged no %q", msg)
		}
	}
}

// waitFailed waits for Serve to log a failed handover and returns its error.
func (s *server) waitFailed(t *testing.T) error {
	t.Helper()
	e := s.waitLog(t, failedMsg)
	if e.err == nil {
		t.Fatalf("%q logged without an error", failedMsg)
	}
	return e.err
}

// failures returns the errors of failed handovers logged so far.
func (s *server) failures() []error {
	var errs []error
	for _, e := range s.logged() {
		if e.msg == failedMsg {
			errs = append(errs, e.err)
		}
	}
	return errs
}

// logged returns the lines logged so far.
func (s *server) logged() []logEntry {
	var out []logEntry
	for {
		select {
		case e := <-s.logs:
			out = append(out, e)
		default:
			return out
		}
	}
}

// fakeStatus is what the fake predecessor answers a status query with.
type fakeStatus struct {
	Pid     int    `json:"pid"`
	Version string `json:"version"`
	Mounted bool   `json:"mounted"`
}

// testState is the state the fake predecessor hands over.
type testState struct {
	Version string   `json:"version"`
	Handles []uint64 `json:"handles"`
	Blob    string   `json:"blob,omitempty"`
}

// fakePredecessor records the calls the listener makes.
type fakePredecessor struct {
	offer  Offer
	status any
	stop   func() ([]int, any, error)

	resumed chan struct{} // a token per Resume

	mu      sync.Mutex
	stops   int
	resumes int
}

var _ Predecessor = (*fakePredecessor)(nil)

func newFake(stop func() ([]int, any, error)) *fakePredecessor {
	return &fakePredecessor{
		offer: Offer{
			Proto:      99, // the listener fills in the negotiated one
			Version:    "v1.0.0-old",
			Pid:        os.Getpid(),
			MountPoint: "/var/lib/lxcfs",
			Session:    json.RawMessage(`{"initIn":"AAECAw==","initOut":"BAUGBw==","maxWrite":131072}`),
		},
		status:  fakeStatus{Pid: os.Getpid(), Version: "v1.0.0-old", Mounted: true},
		stop:    stop,
		resumed: make(chan struct{}, 16),
	}
}

func (f *fakePredecessor) Offer() Offer { return f.offer }
func (f *fakePredecessor) Status() any  { return f.status }

func (f *fakePredecessor) Stop() ([]int, any, error) {
	f.mu.Lock()
	f.stops++
	f.mu.Unlock()
	return f.stop()
}

func (f *fakePredecessor) Resume() {
	f.mu.Lock()
	f.resumes++
	f.mu.Unlock()
	f.resumed <- struct{}{}
}

func (f *fakePredecessor) calls() (stops, resumes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stops, f.resumes
}

func (f *fakePredecessor) wantCalls(t *testing.T, stops, resumes int) {
	t.Helper()
	if s, r := f.calls(); s != stops || r != resumes {
		t.Errorf("predecessor got Stop %d times and Resume %d times; want %d and %d", s, r, stops, resumes)
	}
}

func (f *fakePredecessor) waitResumed(t *testing.T) {
	t.Helper()
	select {
	case <-f.resumed:
	case <-time.After(waitLimit):
		t.Fatal("predecessor did not resume")
	}
}

// standIns are the descriptors a fake predecessor hands over: write ends of
// pipes, standing in for /dev/fuse ("fuse"), the mount's root ("root") and
// whatever else a test wants to send. What a successor writes into a
// received descriptor comes out of the pipe's read end here: it received the
// very same open file. When the predecessor's own write end is closed, the
// read end reports EOF only once every copy was closed.
type standIns struct {
	r, w map[string]*os.File
}

func newStandIns(t *testing.T, names ...string) *standIns {
	t.Helper()
	if len(names) == 0 {
		names = Files
	}
	s := &standIns{r: map[string]*os.File{}, w: map[string]*os.File{}}
	for _, name := range names {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		s.r[name], s.w[name] = r, w
	}
	t.Cleanup(s.closeAll)
	return s
}

func (s *standIns) closeAll() {
	for _, f := range s.r {
		_ = f.Close() // test pipe; may be closed already
	}
	for _, f := range s.w {
		_ = f.Close() // test pipe; may be closed already
	}
}

func (s *standIns) fds(names ...string) []int {
	if len(names) == 0 {
		names = Files
	}
	fds := make([]int, len(names))
	for i, name := range names {
		fds[i] = int(s.w[name].Fd())
	}
	return fds
}

// stop returns a Predecessor.Stop that hands over the named descriptors
// (Files if none) and state.
func (s *standIns) stop(state any, names ...string) func() ([]int, any, error) {
	return func() ([]int, any, error) { return s.fds(names...), state, nil }
}

// sameFile checks that fd, received by a successor, is the predecessor's
// descriptor name: a dup of the same open file, close-on-exec.
func (s *standIns) sameFile(t *testing.T, name string, fd int) {
	t.Helper()
	orig := int(s.w[name].Fd())
	if fd == orig {
		t.Errorf("%s: received descriptor %d is the predecessor's own number; want a new one", name, fd)
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		t.Fatalf("%s: fstat received descriptor %d: %v", name, fd, err)
	}
	if err := unix.Fstat(orig, &want); err != nil {
		t.Fatal(err)
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		t.Errorf("%s: received dev/ino %d/%d; want %d/%d", name, got.Dev, got.Ino, want.Dev, want.Ino)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("%s: received descriptor flags %#x, %v; want FD_CLOEXEC", name, flags, err)
	}
	msg := "written by the successor into " + name
	if n, err := unix.Write(fd, []byte(msg)); err != nil || n != len(msg) {
		t.Fatalf("%s: write into received descriptor: %d, %v", name, n, err)
	}
	buf := make([]byte, len(msg))
	if err := s.r[name].SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(s.r[name], buf); err != nil {
		t.Fatalf("%s: read from the predecessor's pipe: %v", name, err)
	}
	if string(buf) != msg {
		t.Errorf("%s: predecessor's pipe gave %q; want %q", name, buf, msg)
	}
}

// onlyCopy closes the predecessor's write end of name and checks the read
// end then sees EOF: no other copy (say, one a successor received) is open.
func (s *standIns) onlyCopy(t *testing.T, name string) {
	t.Helper()
	if err := s.w[name].Close(); err != nil {
		t.Fatal(err)
	}
	eofOnly(t, name, s.r[name])
}

// eofOnly reads r to its end: EOF proves every write end is closed.
func eofOnly(t *testing.T, name string, r *os.File) {
	t.Helper()
	if err := r.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: a copy of the write end is still open (read: %v)", name, err)
	}
	if len(b) > 0 {
		t.Errorf("%s: unexpected data %q", name, b)
	}
}

// openFds returns this process's descriptors and what they refer to.
func openFds(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]string{}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the directory ReadDir read, closed by now
		}
		fds[e.Name()] = target
	}
	return fds
}

// wantFds fails the test if a descriptor is open that was not open before.
// It compares what they refer to, not their number: a descriptor closing
// meanwhile (a listener closed by Serve's context, which happens in a
// goroutine of its own) is no leak.
func wantFds(t *testing.T, before map[string]string) {
	t.Helper()
	var leaked []string
	for fd, target := range openFds(t) {
		if before[fd] != target {
			leaked = append(leaked, fd+" → "+target)
		}
	}
	if len(leaked) > 0 {
		sort.Strings(leaked)
		t.Errorf("descriptors leaked: %s", strings.Join(leaked, ", "))
	}
}

func closeFds(t *testing.T, fds map[string]int) {
	t.Helper()
	for name, fd := range fds {
		if err := unix.Close(fd); err != nil {
			t.Errorf("close received %s: %v", name, err)
		}
	}
}

func okCheck(Offer) error { return nil }

func errContains(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v; want one containing %q", err, want)
	}
}

// handover runs a whole handover against s and checks the descriptors.
func handover(t *testing.T, s *server, ins *standIns) {
	t.Helper()
	h, err := Adopt(context.Background(), s.sock, Hello{Version: "v1.1.0-new"}, okCheck)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	for _, name := range Files {
		ins.sameFile(t, name, h.Fds[name])
	}
	if err := h.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	closeFds(t, h.Fds)
	if done, err := s.wait(t); !done || err != nil {
		t.Fatalf("Serve returned (%v, %v); want (true, nil)", done, err)
	}
}

// setSpeaks makes this process speak protocols lo–hi until the test ends.
func setSpeaks(t *testing.T, lo, hi int) {
	t.Helper()
	old := speaks
	speaks = [2]int{lo, hi}
	t.Cleanup(func() { speaks = old })
}

// setTimeouts changes the deadlines until the test ends. Call it before
// serve, so that Serve has returned when they are restored.
func setTimeouts(t *testing.T, set func()) {
	t.Helper()
	old := timeouts
	set()
	t.Cleanup(func() { timeouts = old })
}

// noWaitForPredecessor drops h's pidfd. The predecessor of in-process tests
// is this very process, which never exits; with a pidfd, Commit and Adopt
// would poll it for 2 s before concluding so on their failure paths.
// Without one they conclude at once that it lives, which is the truth.
func noWaitForPredecessor(h *Handoff) {
	if h.pidfd >= 0 {
		unix.Close(h.pidfd) //nolint:errcheck // our pidfd of ourselves
		h.pidfd = -1
	}
}

// 1. A whole handover.

func TestHandover(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	// A state far larger than the socket buffer: the state frame is sent in
	// parts, with the descriptors on the first.
	state := testState{Version: "v1.0.0-old", Handles: []uint64{1, 7, 42}, Blob: strings.Repeat("0123456789abcdef", 1<<14)}
	p := newFake(ins.stop(state))
	s := serve(t, sockPath(t), p)

	var seen []Offer
	h, err := Adopt(context.Background(), s.sock, Hello{Version: "v1.1.0-new", Pid: os.Getpid()}, func(o Offer) error {
		seen = append(seen, o)
		if stops, _ := p.calls(); stops != 0 {
			return errors.New("predecessor stopped before check")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Adopt: %v (predecessor logged %v)", err, s.failures())
	}
	want := p.offer
	want.Proto = ProtoMax
	if len(seen) != 1 || !reflect.DeepEqual(seen[0], want) {
		t.Errorf("check saw %+v; want once %+v", seen, want)
	}
	if !reflect.DeepEqual(h.Offer, want) {
		t.Errorf("Handoff.Offer = %+v; want %+v", h.Offer, want)
	}
	if got := h.PredecessorPid(); got != os.Getpid() {
		t.Errorf("PredecessorPid() = %d; want %d", got, os.Getpid())
	}
	var got testState
	if err := json.Unmarshal(h.State, &got); err != nil {
		t.Fatalf("state %.100q: %v", h.State, err)
	}
	if !reflect.DeepEqual(got, state) {
		t.Errorf("state arrived changed (%d bytes of blob; want %d)", len(got.Blob), len(state.Blob))
	}
	names := make([]string, 0, len(h.Fds))
	for name := range h.Fds {
		names = append(names, name)
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"fuse", "root"}) {
		t.Fatalf("received descriptors %v; want fuse and root", h.Fds)
	}
	for _, name := range Files {
		ins.sameFile(t, name, h.Fds[name])
	}
	p.wantCalls(t, 1, 0)

	if err := h.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if done, err := s.wait(t); !done || err != nil {
		t.Fatalf("Serve returned (%v, %v); want (true, nil)", done, err)
	}
	p.wantCalls(t, 1, 0)
	// The descriptors are the successor's after Commit.
	for _, name := range Files {
		ins.sameFile(t, name, h.Fds[name])
	}
	closeFds(t, h.Fds)

	var offered, handed bool
	for _, e := range s.logged() {
		switch e.msg {
		case "Offered FUSE connection to successor":
			offered = e.value("successorVersion") == "v1.1.0-new" && e.value("protocol") == ProtoMax
		case "Handed over FUSE connection":
			handed = e.value("successorVersion") == "v1.1.0-new"
		case failedMsg:
			t.Errorf("Serve logged a failure: %v", e.err)
		}
	}
	if !offered || !handed {
		t.Errorf("Serve logged offer %v, handover %v; want both, with the successor's version", offered, handed)
	}
}

// A status query during serving changes nothing, and a handover follows.
func TestQueryThenHandover(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	p := newFake(ins.stop(testState{Version: "v1"}))
	s := serve(t, sockPath(t), p)
	for range 3 {
		var st fakeStatus
		if err := Query(context.Background(), s.sock, &st); err != nil {
			t.Fatalf("Query: %v", err)
		}
		if st != p.status {
			t.Errorf("Query gave %+v; want %+v", st, p.status)
		}
	}
	p.wantCalls(t, 0, 0)
	handover(t, s, ins)
	p.wantCalls(t, 1, 0)
}

// 2. Protocol negotiation.

func TestNegotiate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		min1, max1, min2, max2 int
		want                   int // 0: no common version
	}{
		{name: "same single version", min1: 1, max1: 1, min2: 1, max2: 1, want: 1},
		{name: "upgrade to adjacent release", min1: 1, max1: 2, min2: 2, max2: 3, want: 2},
		{name: "downgrade to adjacent release", min1: 2, max1: 3, min2: 1, max2: 2, want: 2},
		{name: "highest common", min1: 1, max1: 5, min2: 2, max2: 4, want: 4},
		{name: "ranges touch", min1: 1, max1: 3, min2: 3, max2: 9, want: 3},
		{name: "two releases apart", min1: 1, max1: 1, min2: 2, max2: 3},
		{name: "disjoint the other way", min1: 4, max1: 5, min2: 1, max2: 3},
		{name: "empty range", min1: 2, max1: 1, min2: 1, max2: 2},
		{name: "zero hello", min1: 1, max1: 1, min2: 0, max2: 0},
		{name: "no positive version", min1: -3, max1: 0, min2: -1, max2: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := negotiate(tc.min1, tc.max1, tc.min2, tc.max2)
			if tc.want == 0 {
				errContains(t, err, "no common handover protocol")
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("negotiate(%d, %d, %d, %d) = %d, %v; want %d", tc.min1, tc.max1, tc.min2, tc.max2, got, err, tc.want)
			}
		})
	}
}

// Both sides in this process speak 1–3: the highest, 3, is chosen.
func TestAdoptNegotiatesHighestCommon(t *testing.T) {
	setSpeaks(t, 1, 3)
	ins := newStandIns(t)
	p := newFake(ins.stop(nil))
	s := serve(t, sockPath(t), p)
	var proto int
	h, err := Adopt(context.Background(), s.sock, Hello{}, func(o Offer) error { proto = o.Proto; return nil })
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if proto != 3 || h.Offer.Proto != 3 {
		t.Errorf("check saw protocol %d, Handoff %d; want 3", proto, h.Offer.Proto)
	}
	if string(h.State) != "" {
		t.Errorf("state %q; want none for a nil state", h.State)
	}
	if err := h.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	closeFds(t, h.Fds)
	if done, err := s.wait(t); !done || err != nil {
		t.Fatalf("Serve returned (%v, %v); want (true, nil)", done, err)
	}
}

// A real predecessor and a real successor that speak different ranges: the
// predecessor runs in a child process (this test binary, run again) with
// its own speaks.
func TestHandoverAcrossReleases(t *testing.T) {
	skipWithoutPidfd(t)
	tests := []struct {
		name   string
		pred   [2]int // the child's range
		succ   [2]int // ours
		noneOf [2]int // a range the child has no version of
		want   int
	}{
		{name: "upgrade 1-2 to 2-3", pred: [2]int{1, 2}, succ: [2]int{2, 3}, noneOf: [2]int{3, 4}, want: 2},
		{name: "downgrade 2-3 to 1-2", pred: [2]int{2, 3}, succ: [2]int{1, 2}, noneOf: [2]int{1, 1}, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hp := startHelper(t, tc.pred)

			// No common version: refused before anything stopped.
			setSpeaks(t, tc.noneOf[0], tc.noneOf[1])
			checked := false
			_, err := Adopt(context.Background(), hp.sock, Hello{Version: "too-far"}, func(Offer) error { checked = true; return nil })
			errContains(t, err, "no common handover protocol")
			var pe *PeerError
			if !errors.As(err, &pe) || pe.Op != opRefuse {
				t.Errorf("error %v; want a refusal from the predecessor", err)
			}
			if errors.Is(err, ErrNoPredecessor) {
				t.Errorf("error %v wraps ErrNoPredecessor; the caller would mount afresh beside a live predecessor", err)
			}
			if checked {
				t.Error("check called without a common protocol")
			}

			// The predecessor serves on: an adjacent release takes over.
			speaks = tc.succ
			var proto int
			h, err := Adopt(context.Background(), hp.sock, Hello{Version: "adjacent"}, func(o Offer) error { proto = o.Proto; return nil })
			if err != nil {
				t.Fatalf("Adopt: %v", err)
			}
			if proto != tc.want {
				t.Errorf("negotiated protocol %d; want %d", proto, tc.want)
			}
			if h.Offer.MountPoint != "/helper" || h.PredecessorPid() != hp.cmd.Process.Pid {
				t.Errorf("offer %+v from pid %d; want the helper's (pid %d)", h.Offer, h.PredecessorPid(), hp.cmd.Process.Pid)
			}
			var st map[string]int
			if err := json.Unmarshal(h.State, &st); err != nil || st["speaksMax"] != tc.pred[1] {
				t.Errorf("state %s (%v); want the helper's", h.State, err)
			}
			if _, err := unix.Write(h.Fds["fuse"], []byte(helperPing)); err != nil {
				t.Fatal(err)
			}
			if err := h.Commit(context.Background()); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			closeFds(t, h.Fds)
			hp.expectOut(t, "fuse "+helperPing)
			hp.expectOut(t, "done handedOver=true err=<nil> stops=1 resumes=0")
			if err := hp.wait(t); err != nil {
				t.Errorf("helper: %v", err)
			}
		})
	}
}

// The predecessor refuses a successor without a common version before it
// stops anything, and serves on.
func TestServeRefusesWithoutCommonProtocol(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	p := newFake(ins.stop(nil))
	s := serve(t, sockPath(t), p)

	c := rawDial(t, s.sock)
	if err := c.send(time.Now().Add(waitLimit), opHello, Hello{ProtoMin: ProtoMax + 1, ProtoMax: ProtoMax + 2, Version: "future"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.recv(time.Now().Add(waitLimit))
	if err != nil {
		t.Fatal(err)
	}
	if m.Op != opRefuse || !strings.Contains(m.Error, "no common handover protocol") {
		t.Errorf("predecessor answered %+v; want a refusal naming the protocols", m)
	}
	c.close()
	errContains(t, s.waitFailed(t), "no common handover protocol")
	p.wantCalls(t, 0, 0)
	s.running(t)
	handover(t, s, ins)
	p.wantCalls(t, 1, 0)
}

// A predecessor that chooses a protocol the successor does not speak gets
// an abort, and check is never called.
func TestAdoptRejectsOfferOutsideRange(t *testing.T) {
	t.Parallel()
	sp := scripted(t, func(c *conn) error {
		m, err := c.recv(time.Now().Add(waitLimit))
		if err != nil {
			return err
		}
		var h Hello
		if err := decode(m, opHello, &h); err != nil {
			return err
		}
		if h.ProtoMin != ProtoMin || h.ProtoMax != ProtoMax || h.Version != "v2" {
			return fmt.Errorf("hello %+v; want protocols %d-%d and version v2", h, ProtoMin, ProtoMax)
		}
		if err := c.send(time.Now().Add(waitLimit), opOffer, Offer{Proto: ProtoMax + 1, MountPoint: "/m"}); err != nil {
			return err
		}
		m, err = c.recv(time.Now().Add(waitLimit))
		if err != nil {
			return err
		}
		if m.Op != opAbort || !strings.Contains(m.Error, "no common handover protocol") {
			return fmt.Errorf("successor answered %+v; want an abort naming the protocols", m)
		}
		return nil
	})
	checked := false
	_, err := Adopt(context.Background(), sp.sock, Hello{Version: "v2"}, func(Offer) error { checked = true; return nil })
	errContains(t, err, fmt.Sprintf("predecessor chose protocol %d", ProtoMax+1))
	errContains(t, err, "no common handover protocol")
	if checked {
		t.Error("check called with an offer of an unknown protocol")
	}
	if err := sp.wait(t); err != nil {
		t.Error(err)
	}
}

// 3. check refuses the offer.

func TestCheckErrorAborts(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	p := newFake(ins.stop(nil))
	s := serve(t, sockPath(t), p)

	errMismatch := errors.New("mount point /var/lib/lxcfs is not ours")
	_, err := Adopt(context.Background(), s.sock, Hello{}, func(Offer) error { return errMismatch })
	if !errors.Is(err, errMismatch) {
		t.Fatalf("Adopt: %v; want check's error", err)
	}
	var pe *PeerError
	if logged := s.waitFailed(t); !errors.As(logged, &pe) || pe.Op != opAbort || pe.Msg != errMismatch.Error() {
		t.Errorf("predecessor failed with %v; want the successor's abort carrying check's error", logged)
	}
	p.wantCalls(t, 0, 0)
	s.running(t)
	handover(t, s, ins)
	p.wantCalls(t, 1, 0)
}

// The predecessor fails to stop: the successor gets a refusal, and the
// predecessor, which must still serve, is not resumed.
func TestStopErrorRefuses(t *testing.T) {
	t.Parallel()
	errQuiesce := errors.New("requests still in flight after 2s")
	p := newFake(func() ([]int, any, error) { return nil, nil, errQuiesce })
	s := serve(t, sockPath(t), p)

	_, err := Adopt(context.Background(), s.sock, Hello{}, okCheck)
	var pe *PeerError
	if !errors.As(err, &pe) || pe.Op != opRefuse || pe.Msg != errQuiesce.Error() {
		t.Fatalf("Adopt: %v; want the predecessor's refusal with Stop's error", err)
	}
	if errors.Is(err, ErrNoPredecessor) {
		t.Errorf("Adopt: %v wraps ErrNoPredecessor; the predecessor lives", err)
	}
	if logged := s.waitFailed(t); !errors.Is(logged, errQuiesce) {
		t.Errorf("predecessor logged %v; want Stop's error", logged)
	}
	p.wantCalls(t, 1, 0)
	s.running(t)
	var st fakeStatus
	if err := Query(context.Background(), s.sock, &st); err != nil {
		t.Errorf("Query after a failed Stop: %v", err)
	}
}

// 4. The successor dies after receiving the state.

func TestSuccessorVanishesAfterState(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	p := newFake(ins.stop(testState{Version: "v1"}))
	s := serve(t, sockPath(t), p)

	h, err := Adopt(context.Background(), s.sock, Hello{}, okCheck)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	// What kill -9 does: the process's descriptors close, the socket with
	// them, and nothing more is said.
	closeFds(t, h.Fds)
	h.closeConn()

	p.waitResumed(t)
	errContains(t, s.waitFailed(t), "waiting for the successor to adopt")
	p.wantCalls(t, 1, 1)
	s.running(t)

	handover(t, s, ins)
	p.wantCalls(t, 2, 1)
}

// 5. The successor aborts after receiving the state, or commits too late.

func TestAbortResumes(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	p := newFake(ins.stop(testState{Version: "v1"}))
	s := serve(t, sockPath(t), p)

	h, err := Adopt(context.Background(), s.sock, Hello{}, okCheck)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	h.Abort(errors.New("import failed: unknown node 7"))
	if len(h.Fds) != 0 {
		t.Errorf("Abort left descriptors %v in the Handoff", h.Fds)
	}
	p.waitResumed(t)
	var pe *PeerError
	if logged := s.waitFailed(t); !errors.As(logged, &pe) || pe.Op != opAbort || pe.Msg != "import failed: unknown node 7" {
		t.Errorf("predecessor failed with %v; want the successor's abort", logged)
	}
	p.wantCalls(t, 1, 1)
	s.running(t)
	var st fakeStatus
	if err := Query(context.Background(), s.sock, &st); err != nil {
		t.Errorf("Query after an aborted handover: %v", err)
	}
	// Abort closed the successor's copies: the predecessor's are the only ones.
	for _, name := range Files {
		ins.onlyCopy(t, name)
	}
}

// The successor commits after the predecessor's adopt deadline: the
// predecessor has resumed, and Commit must say so.
func TestCommitAfterPredecessorResumed(t *testing.T) {
	setTimeouts(t, func() { timeouts.adopt = 100 * time.Millisecond })
	ins := newStandIns(t)
	p := newFake(ins.stop(testState{Version: "v1"}))
	s := serve(t, sockPath(t), p)

	h, err := Adopt(context.Background(), s.sock, Hello{}, okCheck)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	p.waitResumed(t) // the predecessor waited timeouts.adopt for "adopted"
	if logged := s.waitFailed(t); !errors.Is(logged, os.ErrDeadlineExceeded) {
		t.Errorf("predecessor failed with %v; want its adopt deadline", logged)
	}
	noWaitForPredecessor(h)
	err = h.Commit(context.Background())
	if !errors.Is(err, ErrPredecessorResumed) {
		t.Fatalf("Commit: %v; want ErrPredecessorResumed", err)
	}
	p.wantCalls(t, 1, 1)
	closeFds(t, h.Fds) // what the caller must do: the predecessor serves
	s.running(t)
	var st fakeStatus
	if err := Query(context.Background(), s.sock, &st); err != nil {
		t.Errorf("Query after resuming: %v", err)
	}
}

// A predecessor that answers "adopted" with "resumed" (it resumed just
// before) makes Commit fail even though the connection is still open.
func TestCommitSeesResumed(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	sp := scripted(t, func(c *conn) error {
		if _, err := c.recv(time.Now().Add(waitLimit)); err != nil {
			return err
		}
		if err := c.send(time.Now().Add(waitLimit), opOffer, Offer{Proto: ProtoMax}); err != nil {
			return err
		}
		if m, err := c.recv(time.Now().Add(waitLimit)); err != nil || m.Op != opTake {
			return fmt.Errorf("got %+v, %v; want take", m, err)
		}
		if err := c.send(time.Now().Add(waitLimit), opState, testState{Version: "v1"}, ins.fds()...); err != nil {
			return err
		}
		if m, err := c.recv(time.Now().Add(waitLimit)); err != nil || m.Op != opAdopted {
			return fmt.Errorf("got %+v, %v; want adopted", m, err)
		}
		if err := c.send(time.Now().Add(waitLimit), opResumed, errors.New("adopt deadline passed")); err != nil {
			return err
		}
		// Hold the connection until the successor hangs up.
		if _, err := c.recv(time.Now().Add(waitLimit)); err == nil {
			return errors.New("successor sent more after resumed")
		}
		return nil
	})
	h, err := Adopt(context.Background(), sp.sock, Hello{}, okCheck)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	noWaitForPredecessor(h)
	err = h.Commit(context.Background())
	var pe *PeerError
	if !errors.Is(err, ErrPredecessorResumed) || !errors.As(err, &pe) || pe.Op != opResumed || pe.Msg != "adopt deadline passed" {
		t.Fatalf("Commit: %v; want ErrPredecessorResumed with the predecessor's message", err)
	}
	closeFds(t, h.Fds)
	if err := sp.wait(t); err != nil {
		t.Error(err)
	}
}

// 6. Hostile peers.

// write is one sendmsg of a hostile peer: data, with fds pipe write ends
// attached; then, if reply is set, the peer reads the predecessor's answer,
// which must have that op.
type write struct {
	data  []byte
	fds   int
	reply string
}

func le32(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

func frame(body string) []byte { return append(le32(uint32(len(body))), body...) }

func helloFrame(lo, hi int) string {
	return fmt.Sprintf(`{"op":"hello","body":{"protoMin":%d,"protoMax":%d,"version":"hostile"}}`, lo, hi)
}

func rawDial(t *testing.T, sock string) *conn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	return &conn{c: c}
}

func TestServeSurvivesHostilePeers(t *testing.T) {
	ins := newStandIns(t)
	p := newFake(ins.stop(nil))
	s := serve(t, sockPath(t), p)
	hello := helloFrame(ProtoMin, ProtoMax)

	tests := []struct {
		name    string
		writes  []write
		wantErr string
	}{
		{name: "garbage", writes: []write{{data: []byte("GET / HTTP/1.1\r\nHost: k8s-lxcfs\r\n\r\n")}}, wantErr: "frame of 542393671 bytes"},
		{name: "binary garbage", writes: []write{{data: []byte{0xff, 0xfe, 0xfd, 0xfc, 0, 1, 2, 3}}}, wantErr: "frame of 4244504319 bytes"},
		{name: "frame length 0", writes: []write{{data: le32(0)}}, wantErr: "frame of 0 bytes"},
		{name: "frame length 2^31", writes: []write{{data: le32(1 << 31)}}, wantErr: "frame of 2147483648 bytes"},
		{name: "frame length one over the limit", writes: []write{{data: le32(maxFrame + 1)}}, wantErr: fmt.Sprintf("frame of %d bytes", maxFrame+1)},
		{name: "short header", writes: []write{{data: []byte{5, 0}}}, wantErr: ": EOF"},
		{name: "truncated frame", writes: []write{{data: append(le32(100), `{"op":"hel`...)}}, wantErr: ": EOF"},
		{name: "invalid JSON", writes: []write{{data: frame(`{"op":`)}}, wantErr: "malformed message"},
		{name: "JSON not an object", writes: []write{{data: frame(`["hello"]`)}}, wantErr: "malformed message"},
		{name: "message without op", writes: []write{{data: frame(`{"body":{"protoMin":1,"protoMax":1}}`)}}, wantErr: "message without op"},
		{name: "empty op", writes: []write{{data: frame(`{"op":""}`)}}, wantErr: "message without op"},
		{name: "take first", writes: []write{{data: frame(`{"op":"take"}`)}}, wantErr: `unexpected first message "take"`},
		{name: "adopted first", writes: []write{{data: frame(`{"op":"adopted"}`)}}, wantErr: `unexpected first message "adopted"`},
		{name: "hello without body", writes: []write{{data: frame(`{"op":"hello"}`)}}, wantErr: "malformed hello"},
		{name: "hello with wrong types", writes: []write{{data: frame(`{"op":"hello","body":{"protoMin":"1"}}`)}}, wantErr: "malformed hello"},
		{name: "hello of zeros", writes: []write{{data: frame(`{"op":"hello","body":{}}`), reply: opRefuse}}, wantErr: "no common handover protocol"},
		{name: "descriptors with hello", writes: []write{{data: frame(hello), fds: 3, reply: opOffer}}, wantErr: ": EOF"},
		{name: "descriptors with garbage", writes: []write{{data: le32(0), fds: 2}}, wantErr: "frame of 0 bytes"},
		{name: "too many descriptors", writes: []write{{data: frame(hello), fds: maxFds + 2}}, wantErr: "too many descriptors"},
		{name: "too many descriptors in two writes", writes: []write{{data: le32(uint32(len(hello))), fds: 5}, {data: []byte(hello), fds: 5}}, wantErr: "peer sent 10 descriptors"},
		{name: "descriptors with abort", writes: []write{{data: frame(hello), reply: opOffer}, {data: frame(`{"op":"abort","error":"changed my mind"}`), fds: 2}}, wantErr: "changed my mind"},
	}

	// Serve's first connection is handled before any descriptor is counted.
	c := rawDial(t, s.sock)
	c.close()
	s.waitFailed(t)
	before := openFds(t)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := rawDial(t, s.sock)
			var readEnds []*os.File
			for _, w := range tc.writes {
				var fds []int
				var writeEnds []*os.File
				for range w.fds {
					r, w, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = r.Close() }) // closed below, unless the test failed
					readEnds = append(readEnds, r)
					writeEnds = append(writeEnds, w)
					fds = append(fds, int(w.Fd()))
				}
				var oob []byte
				if len(fds) > 0 {
					oob = unix.UnixRights(fds...)
				}
				if _, _, err := c.c.WriteMsgUnix(w.data, oob, nil); err != nil {
					t.Fatalf("write: %v", err)
				}
				for _, w := range writeEnds {
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
				}
				if w.reply != "" {
					if m, err := c.recv(time.Now().Add(waitLimit)); err != nil || m.Op != w.reply {
						t.Fatalf("predecessor answered %+v, %v; want %s", m, err, w.reply)
					}
				}
			}
			c.close()

			errContains(t, s.waitFailed(t), tc.wantErr)
			// The predecessor closed the descriptors it was sent, and the
			// kernel those that did not fit.
			for i, r := range readEnds {
				eofOnly(t, fmt.Sprintf("descriptor %d", i), r)
				if err := r.Close(); err != nil {
					t.Fatal(err)
				}
			}
			wantFds(t, before)
			s.running(t)
		})
	}
	p.wantCalls(t, 0, 0)
	handover(t, s, ins)
}

// Peers that stall: the hello and check deadlines end them, nothing stops,
// and Serve goes on. Each case has its own listener, and all stall at once,
// so that their deadlines run together.
func TestServeDeadlines(t *testing.T) {
	setTimeouts(t, func() {
		timeouts.hello = 100 * time.Millisecond
		timeouts.check = 100 * time.Millisecond
	})
	tests := []struct {
		name  string
		send  []byte
		offer bool
	}{
		{name: "silent"},
		{name: "half a header", send: []byte{9, 0}},
		{name: "header only", send: le32(40)},
		{name: "half a frame", send: append(le32(40), `{"op":"hello"`...)},
		{name: "silent after offer", send: frame(helloFrame(ProtoMin, ProtoMax)), offer: true},
	}
	before := openFds(t)
	t.Run("group", func(t *testing.T) {
		type stalled struct {
			p *fakePredecessor
			s *server
			c *conn
		}
		peers := make([]stalled, len(tests))
		for i, tc := range tests {
			p := newFake(func() ([]int, any, error) { return nil, nil, errors.New("not here") })
			s := serve(t, sockPath(t), p)
			c := rawDial(t, s.sock)
			t.Cleanup(c.close)
			if len(tc.send) > 0 {
				if _, err := c.c.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			peers[i] = stalled{p, s, c}
		}
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				p, s, c := peers[i].p, peers[i].s, peers[i].c
				if tc.offer {
					if m, err := c.recv(time.Now().Add(waitLimit)); err != nil || m.Op != opOffer {
						t.Fatalf("predecessor answered %+v, %v; want an offer", m, err)
					}
				}
				// The peer keeps its connection open; the deadline ends it.
				if err := s.waitFailed(t); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("predecessor failed with %v; want a deadline", err)
				}
				p.wantCalls(t, 0, 0)
				s.running(t)
				// Serve goes on: the next peer is served.
				c2 := rawDial(t, s.sock)
				defer c2.close()
				if err := c2.send(time.Now().Add(waitLimit), opStatus, Hello{}); err != nil {
					t.Fatal(err)
				}
				if m, err := c2.recv(time.Now().Add(waitLimit)); err != nil || m.Op != opStatus {
					t.Errorf("status query after a stalled peer: %+v, %v", m, err)
				}
			})
		}
	})
	wantFds(t, before) // every connection, and what Serve holds, closed
}

// Peers that are not of the required uid: both sides refuse.
func TestPeerNotRoot(t *testing.T) {
	old := requiredUID
	requiredUID = uint32(os.Getuid()) + 1
	t.Cleanup(func() { requiredUID = old })
	ins := newStandIns(t)
	p := newFake(ins.stop(nil))
	s := serve(t, sockPath(t), p)
	c := rawDial(t, s.sock)
	c.close()
	s.waitFailed(t)
	before := openFds(t)

	checked := false
	_, err := Adopt(context.Background(), s.sock, Hello{}, func(Offer) error { checked = true; return nil })
	if !errors.Is(err, ErrNotRoot) {
		t.Errorf("Adopt: %v; want ErrNotRoot", err)
	}
	errContains(t, err, fmt.Sprintf("peer pid %d runs as uid %d", os.Getpid(), os.Getuid()))
	if checked {
		t.Error("check called for a predecessor of the wrong uid")
	}
	if logged := s.waitFailed(t); !errors.Is(logged, ErrNotRoot) {
		t.Errorf("predecessor failed with %v; want ErrNotRoot", logged)
	}

	var st fakeStatus
	if err := Query(context.Background(), s.sock, &st); !errors.Is(err, ErrNotRoot) {
		t.Errorf("Query: %v; want ErrNotRoot", err)
	}
	if logged := s.waitFailed(t); !errors.Is(logged, ErrNotRoot) {
		t.Errorf("predecessor failed with %v; want ErrNotRoot", logged)
	}

	// A peer that goes on regardless is refused before it is read.
	c = rawDial(t, s.sock)
	_, _ = c.c.Write(frame(helloFrame(ProtoMin, ProtoMax))) // EPIPE if refused already
	if logged := s.waitFailed(t); !errors.Is(logged, ErrNotRoot) {
		t.Errorf("predecessor failed with %v; want ErrNotRoot", logged)
	}
	if _, err := c.recv(time.Now().Add(waitLimit)); err == nil {
		t.Error("predecessor answered a peer of the wrong uid")
	}
	c.close()

	wantFds(t, before)
	p.wantCalls(t, 0, 0)
	s.running(t)
	s.cancel()
	if done, err := s.wait(t); done || err != nil {
		t.Errorf("Serve returned (%v, %v); want (false, nil)", done, err)
	}
}

// 7. Query, and nothing to query.

func TestQuery(t *testing.T) {
	t.Parallel()
	p := newFake(nil)
	s := serve(t, sockPath(t), p)
	var st fakeStatus
	if err := Query(context.Background(), s.sock, &st); err != nil {
		t.Fatalf("Query: %v", err)
	}
	if st != p.status {
		t.Errorf("Query gave %+v; want %+v", st, p.status)
	}
	var raw map[string]any
	if err := Query(context.Background(), s.sock, &raw); err != nil || raw["version"] != "v1.0.0-old" {
		t.Errorf("Query into a map: %v, %v", raw, err)
	}
	if err := Query(context.Background(), s.sock, nil); err != nil {
		t.Errorf("Query(nil): %v", err)
	}
	var wrong []int
	errContains(t, Query(context.Background(), s.sock, &wrong), "malformed status")
	p.wantCalls(t, 0, 0)
	for _, e := range s.logged() {
		if e.msg == failedMsg {
			t.Errorf("Serve logged a failure for a status query: %v", e.err)
		}
	}
}

func TestNoPredecessor(t *testing.T) {
	t.Parallel()
	dir := filepath.Dir(sockPath(t))

	stale := filepath.Join(dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false) // as after kill -9: the file stays
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	for name, sock := range map[string]string{
		"nothing there":     filepath.Join(dir, "absent.sock"),
		"no directory":      filepath.Join(dir, "absent", "handover.sock"),
		"stale socket file": stale,
		"regular file":      plain,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checked := false
			h, err := Adopt(context.Background(), sock, Hello{}, func(Offer) error { checked = true; return nil })
			if !errors.Is(err, ErrNoPredecessor) || h != nil {
				t.Errorf("Adopt: %v, %v; want ErrNoPredecessor", h, err)
			}
			if checked {
				t.Error("check called without a predecessor")
			}
			if err := Query(context.Background(), sock, nil); !errors.Is(err, ErrNoPredecessor) {
				t.Errorf("Query: %v; want ErrNoPredecessor", err)
			}
		})
	}
}

// Query maps its context's deadline onto the socket.
func TestQueryDeadline(t *testing.T) {
	t.Parallel()
	sp := scripted(t, func(c *conn) error {
		_, err := c.recv(time.Now().Add(waitLimit)) // the query
		if err != nil {
			return err
		}
		_, err = c.recv(time.Now().Add(waitLimit)) // never answers; waits for the hang-up
		if err == nil {
			return errors.New("querier sent a second message")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Query(ctx, sp.sock, nil)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Query: %v; want the context's deadline", err)
	}
	if d := time.Since(start); d >= timeouts.hello {
		t.Errorf("Query took %v; want the context's 100ms, not the %v hello timeout", d, timeouts.hello)
	}
	if err := sp.wait(t); err != nil {
		t.Error(err)
	}
}

// 8. Listen.

func TestListenReplacesSocket(t *testing.T) {
	t.Parallel()
	sock := sockPath(t)
	first, second := newFake(nil), newFake(nil)
	first.status = fakeStatus{Version: "first"}
	second.status = fakeStatus{Version: "second"}
	s1 := serve(t, sock, first)
	query := func() string {
		t.Helper()
		var st fakeStatus
		if err := Query(context.Background(), sock, &st); err != nil {
			t.Fatalf("Query: %v", err)
		}
		return st.Version
	}
	if got := query(); got != "first" {
		t.Fatalf("Query reached %q; want first", got)
	}

	s2 := serve(t, sock, second)
	if got := query(); got != "second" {
		t.Errorf("after the second Listen, Query reached %q; want second", got)
	}
	var st2 unix.Stat_t
	if err := unix.Stat(sock, &st2); err != nil {
		t.Fatal(err)
	}
	// The first listener still has its socket open, but only its Close
	// removes nothing that is not its own.
	s1.cancel()
	if done, err := s1.wait(t); done || err != nil {
		t.Errorf("first Serve returned (%v, %v); want (false, nil)", done, err)
	}
	_ = s1.l.Close() // Serve closed the listener; this only considers the file
	var st unix.Stat_t
	if err := unix.Stat(sock, &st); err != nil {
		t.Fatalf("first listener's Close removed the second's socket: %v", err)
	}
	if st.Ino != st2.Ino {
		t.Errorf("socket file changed (inode %d → %d)", st2.Ino, st.Ino)
	}
	if got := query(); got != "second" {
		t.Errorf("after the first Close, Query reached %q; want second", got)
	}
	if err := s2.l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after its Close, the second listener's socket remains: %v", err)
	}
	if done, err := s2.wait(t); done || err != nil {
		t.Errorf("second Serve returned (%v, %v) after Close; want (false, nil)", done, err)
	}
	entries(t, filepath.Dir(sock)) // no temporary sockets left behind
}

// After a handover the predecessor stops listening with Handed, which never
// touches the socket path: the successor renames its own socket over it.
func TestHandedKeepsSocketPath(t *testing.T) {
	t.Parallel()
	ins := newStandIns(t)
	p := newFake(ins.stop(nil))
	s := serve(t, sockPath(t), p)
	var ours unix.Stat_t
	if err := unix.Stat(s.sock, &ours); err != nil {
		t.Fatal(err)
	}
	handover(t, s, ins)

	// Serve left the listener open for Handed to close.
	if err := s.l.Handed(); err != nil {
		t.Fatalf("Handed: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(s.sock, &st); err != nil || st.Ino != ours.Ino {
		t.Fatalf("after Handed the socket path is %+v, %v; want our socket file left in place", st.Ino, err)
	}
	if err := Query(context.Background(), s.sock, nil); !errors.Is(err, ErrNoPredecessor) {
		t.Errorf("Query after Handed: %v; want ErrNoPredecessor", err)
	}

	// The successor's Listen takes the path over.
	next := newFake(nil)
	next.status = fakeStatus{Version: "successor"}
	s2 := serve(t, s.sock, next)
	var got fakeStatus
	if err := Query(context.Background(), s2.sock, &got); err != nil || got.Version != "successor" {
		t.Errorf("Query: %+v, %v; want the successor", got, err)
	}
}

// entries fails the test unless dir holds only want.
func entries(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q; want %q", dir, got, want)
	}
}

func TestListenModes(t *testing.T) {
	t.Parallel()
	base := filepath.Dir(sockPath(t))
	dir := filepath.Join(base, "run", "k8s-lxcfs")
	sock := filepath.Join(dir, "handover.sock")
	l, err := Listen(sock, logr.Discard())
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer l.Close() //nolint:errcheck // test listener
	for _, d := range []string{filepath.Join(base, "run"), dir} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v; want 0700", d, fi.Mode().Perm())
		}
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket has mode %v; want a socket with 0600", fi.Mode())
	}
	entries(t, dir, "handover.sock")
}

// pathOfLen returns a path of exactly n bytes ending in /base, in a fresh
// directory.
func pathOfLen(t *testing.T, n int, base string) string {
	t.Helper()
	dir := filepath.Dir(sockPath(t))
	pad := n - len(dir) - len("/") - len("/") - len(base)
	if pad < 1 {
		t.Fatalf("temporary directory %s too long for a %d-byte path", dir, n)
	}
	p := filepath.Join(dir, strings.Repeat("d", pad), base)
	if len(p) != n {
		t.Fatalf("built a %d-byte path; want %d", len(p), n)
	}
	return p
}

func TestListenPathLength(t *testing.T) {
	t.Parallel()
	t.Run("108 bytes", func(t *testing.T) {
		t.Parallel()
		sock := pathOfLen(t, 108, "handover.sock")
		_, err := Listen(sock, logr.Discard())
		errContains(t, err, "is 108 bytes; unix sockets allow 107")
		if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Listen created %s for a path it rejects", filepath.Dir(sock))
		}
	})
	t.Run("107 bytes", func(t *testing.T) {
		t.Parallel()
		// Too long for the usual temporary name beside it.
		sock := pathOfLen(t, 107, "handover.sock")
		p := newFake(nil)
		s := serve(t, sock, p)
		var st fakeStatus
		if err := Query(context.Background(), sock, &st); err != nil || st != p.status {
			t.Errorf("Query: %+v, %v", st, err)
		}
		entries(t, filepath.Dir(sock), "handover.sock")
		s.cancel()
		s.wait(t)
	})
	t.Run("107 bytes with a short name", func(t *testing.T) {
		t.Parallel()
		sock := pathOfLen(t, 107, "s")
		l, err := Listen(sock, logr.Discard())
		if err != nil {
			t.Fatalf("Listen of a %d-byte path: %v", len(sock), err)
		}
		_ = l.Close()
	})
}

func TestListenErrors(t *testing.T) {
	t.Parallel()
	dir := filepath.Dir(sockPath(t))
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Listen(filepath.Join(file, "handover.sock"), logr.Discard())
	errContains(t, err, "create socket directory")

	// A directory where the socket should go: the rename fails, and the
	// temporary socket is removed.
	busy := filepath.Join(dir, "busy")
	if err := os.MkdirAll(filepath.Join(busy, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = Listen(busy, logr.Discard())
	errContains(t, err, "install socket at "+busy)
	entries(t, dir, "busy", "file")
}

// Listen over a stale socket (the last daemon was killed) takes its place.
func TestListenOverStaleSocket(t *testing.T) {
	t.Parallel()
	sock := sockPath(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p := newFake(nil)
	serve(t, sock, p)
	var st fakeStatus
	if err := Query(context.Background(), sock, &st); err != nil || st != p.status {
		t.Errorf("Query: %+v, %v", st, err)
	}
}

func TestServeStops(t *testing.T) {
	t.Parallel()
	t.Run("context cancelled", func(t *testing.T) {
		t.Parallel()
		s := serve(t, sockPath(t), newFake(nil))
		s.cancel()
		if done, err := s.wait(t); done || err != nil {
			t.Errorf("Serve returned (%v, %v); want (false, nil)", done, err)
		}
		_ = s.l.Close() // Serve closed the listener; this removes the socket file
		if _, err := os.Lstat(s.sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Close left the socket file: %v", err)
		}
	})
	t.Run("context done before", func(t *testing.T) {
		t.Parallel()
		l, err := Listen(sockPath(t), logr.Discard())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() //nolint:errcheck // closed by Serve already
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if done, err := l.Serve(ctx, newFake(nil)); done || err != nil {
			t.Errorf("Serve returned (%v, %v); want (false, nil)", done, err)
		}
	})
	t.Run("listener closed", func(t *testing.T) {
		t.Parallel()
		s := serve(t, sockPath(t), newFake(nil))
		if err := s.l.Close(); err != nil {
			t.Fatal(err)
		}
		if done, err := s.wait(t); done || err != nil {
			t.Errorf("Serve returned (%v, %v); want (false, nil)", done, err)
		}
	})
}

// 9. The wrong number of descriptors.

func TestWrongDescriptorCount(t *testing.T) {
	tests := []struct {
		name  string
		sends []string // stand-ins the predecessor sends
	}{
		{name: "one", sends: []string{"fuse"}},
		{name: "none", sends: []string{}},
		{name: "three", sends: []string{"fuse", "root", "extra"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ins := newStandIns(t, "fuse", "root", "extra")
			p := newFake(func() ([]int, any, error) {
				fds := make([]int, len(tc.sends))
				for i, name := range tc.sends {
					fds[i] = int(ins.w[name].Fd())
				}
				return fds, testState{Version: "v1"}, nil
			})
			s := serve(t, sockPath(t), p)
			before := openFds(t)

			h, err := Adopt(context.Background(), s.sock, Hello{}, okCheck)
			if h != nil {
				t.Errorf("Adopt returned a Handoff with %v", h.Fds)
			}
			errContains(t, err, fmt.Sprintf("expected 2 descriptors, got %d", len(tc.sends)))
			p.waitResumed(t)
			errContains(t, s.waitFailed(t), "waiting for the successor to adopt")
			wantFds(t, before)
			p.wantCalls(t, 1, 1)
			s.running(t)
			for _, name := range tc.sends {
				ins.onlyCopy(t, name) // the successor closed what it got
			}
		})
	}
}

// Adopt against predecessors that answer wrongly.

func TestAdoptBadAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  func(c *conn) error
		wantErr string
	}{
		{
			name:    "refuse",
			answer:  func(c *conn) error { return c.send(time.Now().Add(waitLimit), opRefuse, errors.New("busy")) },
			wantErr: "upgrade: peer sent refuse: busy",
		},
		{
			name:    "state instead of offer",
			answer:  func(c *conn) error { return c.send(time.Now().Add(waitLimit), opState, testState{}) },
			wantErr: `expected "offer", got "state"`,
		},
		{
			name: "malformed offer",
			answer: func(c *conn) error {
				return c.send(time.Now().Add(waitLimit), opOffer, map[string]string{"proto": "one"})
			},
			wantErr: "malformed offer",
		},
		{
			name: "release instead of state",
			answer: func(c *conn) error {
				if err := c.send(time.Now().Add(waitLimit), opOffer, Offer{Proto: ProtoMax}); err != nil {
					return err
				}
				if m, err := c.recv(time.Now().Add(waitLimit)); err != nil || m.Op != opTake {
					return fmt.Errorf("got %+v, %v; want take", m, err)
				}
				return c.send(time.Now().Add(waitLimit), opRelease, nil)
			},
			wantErr: `expected "state", got "release"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sp := scripted(t, func(c *conn) error {
				if _, err := c.recv(time.Now().Add(waitLimit)); err != nil {
					return err
				}
				return tc.answer(c)
			})
			h, err := Adopt(context.Background(), sp.sock, Hello{}, okCheck)
			if h != nil {
				t.Error("Adopt returned a Handoff")
			}
			errContains(t, err, tc.wantErr)
			if errors.Is(err, ErrNoPredecessor) {
				t.Errorf("Adopt: %v wraps ErrNoPredecessor; the predecessor lives", err)
			}
			if err := sp.wait(t); err != nil {
				t.Error(err)
			}
		})
	}
}

// scriptedPeer is a hand-written predecessor: it accepts one connection and
// runs a script on it.
type scriptedPeer struct {
	sock string
	done chan struct{}
	err  error
}

func scripted(t *testing.T, script func(c *conn) error) *scriptedPeer {
	t.Helper()
	sp := &scriptedPeer{sock: sockPath(t), done: make(chan struct{})}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sp.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(sp.done)
		nc, err := l.AcceptUnix()
		if err != nil {
			sp.err = err
			return
		}
		c := &conn{c: nc}
		defer c.close()
		sp.err = script(c)
	}()
	t.Cleanup(func() {
		l.Close() //nolint:errcheck // unblocks Accept
		sp.wait(t)
	})
	return sp
}

func (sp *scriptedPeer) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-sp.done:
	case <-time.After(waitLimit):
		t.Fatal("scripted predecessor did not finish")
	}
	return sp.err
}

// Adopt's context deadline bounds the whole call.
func TestAdoptContextDeadline(t *testing.T) {
	t.Parallel()
	sp := scripted(t, func(c *conn) error {
		_, err := c.recv(time.Now().Add(waitLimit)) // hello; then never answers
		if err != nil {
			return err
		}
		_, _ = c.recv(time.Now().Add(waitLimit))
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Adopt(ctx, sp.sock, Hello{}, okCheck)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Adopt: %v; want the context's deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Adopt took %v with a 100ms context", d)
	}
}

// A predecessor whose Status is nil answers a status query.
func TestQueryNilStatus(t *testing.T) {
	t.Parallel()
	p := newFake(nil)
	p.status = nil
	s := serve(t, sockPath(t), p)
	st := fakeStatus{Version: "unchanged"}
	if err := Query(context.Background(), s.sock, &st); err != nil {
		t.Errorf("Query: %v", err)
	}
}

// Two processes: a predecessor that dies mid-handover.

// helperEnv makes the test binary run helperMain instead of the tests.
const helperEnv = "UPGRADE_TEST_HELPER"

// helperPing is what a successor writes into the helper's "fuse".
const helperPing = "ping through the fuse descriptor"

// helperMain is a predecessor in a child process, so that a test can hand
// over between two processes that speak different protocol ranges, or kill
// the predecessor mid-handover. UPGRADE_TEST_SPEAKS is its range ("1-2"),
// UPGRADE_TEST_SOCK its socket. It reports on stdout: "ready", "stopped",
// "fuse <what the successor wrote>" and "done …"; closing its stdin ends it.
func helperMain() int {
	requiredUID = uint32(os.Getuid())
	if _, err := fmt.Sscanf(os.Getenv("UPGRADE_TEST_SPEAKS"), "%d-%d", &speaks[0], &speaks[1]); err != nil {
		fmt.Println("bad UPGRADE_TEST_SPEAKS:", err)
		return 2
	}
	rFuse, wFuse, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return 2
	}
	_, wRoot, err := os.Pipe()
	if err != nil {
		fmt.Println(err)
		return 2
	}
	p := newFake(func() ([]int, any, error) {
		fmt.Println("stopped")
		return []int{int(wFuse.Fd()), int(wRoot.Fd())}, map[string]int{"speaksMax": speaks[1]}, nil
	})
	p.offer.MountPoint = "/helper"
	l, err := Listen(os.Getenv("UPGRADE_TEST_SOCK"), logr.Discard())
	if err != nil {
		fmt.Println(err)
		return 2
	}
	fmt.Println("ready")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	handedOver, err := l.Serve(ctx, p)
	if handedOver {
		buf := make([]byte, len(helperPing))
		if _, err := io.ReadFull(rFuse, buf); err != nil {
			fmt.Println("read fuse:", err)
		}
		fmt.Printf("fuse %s\n", buf)
	}
	_ = l.Close()
	stops, resumes := p.calls()
	fmt.Printf("done handedOver=%t err=%v stops=%d resumes=%d\n", handedOver, err, stops, resumes)
	return 0
}

type helperProc struct {
	cmd    *exec.Cmd
	sock   string
	stdin  io.WriteCloser
	out    chan string // stdout lines
	errOut chan string // stderr lines
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

func startHelper(t *testing.T, speaks [2]int, env ...string) *helperProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hp := &helperProc{
		cmd:    exec.Command(exe),
		sock:   sockPath(t),
		out:    make(chan string, 64),
		errOut: make(chan string, 64),
		exited: make(chan struct{}),
	}
	hp.cmd.Env = append(os.Environ(), helperEnv+"=1", "UPGRADE_TEST_SOCK="+hp.sock,
		fmt.Sprintf("UPGRADE_TEST_SPEAKS=%d-%d", speaks[0], speaks[1]),
		// With -race, a process sleeps a second at exit unless told not to.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	hp.cmd.Env = append(hp.cmd.Env, env...)
	if hp.stdin, err = hp.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := hp.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := hp.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for r, ch := range map[io.Reader]chan string{stdout: hp.out, stderr: hp.errOut} {
		wg.Go(func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				select {
				case ch <- sc.Text():
				default: // nobody listens for more
				}
			}
		})
	}
	go func() {
		wg.Wait()
		hp.err = hp.cmd.Wait()
		close(hp.exited)
	}()
	t.Cleanup(func() {
		hp.stdin.Close() //nolint:errcheck // asks the helper to exit
		select {
		case <-hp.exited:
		case <-time.After(waitLimit):
			hp.cmd.Process.Kill() //nolint:errcheck // stuck helper
			<-hp.exited
		}
	})
	hp.expectOut(t, "ready")
	return hp
}

func expectLine(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case line := <-ch:
			if strings.Contains(line, want) {
				return
			}
		case <-timeout:
			t.Fatalf("helper did not report %q", want)
		}
	}
}

func (hp *helperProc) expectOut(t *testing.T, want string) { t.Helper(); expectLine(t, hp.out, want) }
func (hp *helperProc) expectErr(t *testing.T, want string) {
	t.Helper()
	expectLine(t, hp.errOut, want)
}

// wait asks the helper to exit and returns how it did.
func (hp *helperProc) wait(t *testing.T) error {
	t.Helper()
	hp.stdin.Close() //nolint:errcheck // asks the helper to exit
	select {
	case <-hp.exited:
	case <-time.After(waitLimit):
		t.Fatal("helper did not exit")
	}
	return hp.err
}

// kill is kill -9, and waits until the helper is gone.
func (hp *helperProc) kill(t *testing.T) {
	t.Helper()
	if err := hp.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-hp.exited
}

func skipWithoutPidfd(t *testing.T) {
	t.Helper()
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		t.Skipf("no pidfd_open (%v): a successor cannot tell a dead predecessor", err)
	}
	unix.Close(fd) //nolint:errcheck // probe
}

// The predecessor dies after stopping, before it sent its state: Adopt says
// there is no predecessor, so the caller mounts afresh.
func TestAdoptPredecessorDiesBeforeState(t *testing.T) {
	t.Parallel()
	skipWithoutPidfd(t)
	hp := startHelper(t, speaks, PauseEnv+"=stopped=1m")
	type result struct {
		h   *Handoff
		err error
	}
	res := make(chan result, 1)
	go func() {
		h, err := Adopt(context.Background(), hp.sock, Hello{}, okCheck)
		res <- result{h, err}
	}()
	hp.expectErr(t, "test pause at handover step stopped")
	hp.kill(t)
	select {
	case r := <-res:
		if !errors.Is(r.err, ErrNoPredecessor) || r.h != nil {
			t.Errorf("Adopt: %v, %v; want ErrNoPredecessor", r.h, r.err)
		}
		errContains(t, r.err, "died during the handover")
	case <-time.After(waitLimit):
		t.Fatal("Adopt did not return")
	}
}

// The predecessor dies after sending its state: Commit lets the successor
// serve, whether the predecessor died before or after "adopted".
func TestCommitPredecessorDies(t *testing.T) {
	t.Parallel()
	skipWithoutPidfd(t)
	tests := []struct {
		name  string
		pause string // where the helper waits to be killed
	}{
		{name: "before adopted"},
		{name: "after adopted, before release", pause: "adopted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var env []string
			if tc.pause != "" {
				env = append(env, PauseEnv+"="+tc.pause+"=1m")
			}
			hp := startHelper(t, speaks, env...)
			h, err := Adopt(context.Background(), hp.sock, Hello{}, okCheck)
			if err != nil {
				t.Fatalf("Adopt: %v", err)
			}
			defer closeFds(t, h.Fds)
			var commitErr error
			if tc.pause == "" {
				hp.kill(t)
				commitErr = h.Commit(context.Background())
			} else {
				errc := make(chan error, 1)
				go func() { errc <- h.Commit(context.Background()) }()
				hp.expectErr(t, "test pause at handover step "+tc.pause)
				hp.kill(t)
				select {
				case commitErr = <-errc:
				case <-time.After(waitLimit):
					t.Fatal("Commit did not return")
				}
			}
			if commitErr != nil {
				t.Errorf("Commit: %v; want nil: the predecessor is dead and the successor must serve", commitErr)
			}
			for _, name := range Files {
				var st unix.Stat_t
				if err := unix.Fstat(h.Fds[name], &st); err != nil {
					t.Errorf("%s: %v; want the descriptor still the successor's", name, err)
				}
			}
		})
	}
}

// Wire format and internals.

// The JSON on the wire is the interface between releases: changing a name
// breaks handover in both directions.
func TestWireFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		v    any
		want string
	}{
		{name: "hello", v: Hello{ProtoMin: 1, ProtoMax: 2, Version: "v1", Pid: 7},
			want: `{"protoMin":1,"protoMax":2,"version":"v1","pid":7}`},
		{name: "offer", v: Offer{Proto: 2, Version: "v0", Pid: 3, MountPoint: "/m", Session: json.RawMessage(`{"a":1}`)},
			want: `{"proto":2,"version":"v0","pid":3,"mountPoint":"/m","session":{"a":1}}`},
		{name: "message", v: message{Op: opState, Body: json.RawMessage(`[1]`)}, want: `{"op":"state","body":[1]}`},
		{name: "error message", v: message{Op: opRefuse, Error: "no"}, want: `{"op":"refuse","error":"no"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.v)
			if err != nil || string(b) != tc.want {
				t.Errorf("marshal = %s, %v; want %s", b, err, tc.want)
			}
		})
	}
	if !slices.Equal(Files, []string{"fuse", "root"}) {
		t.Errorf("Files = %q; the order on the wire is fuse, root", Files)
	}
	ops := []string{opHello, opStatus, opOffer, opRefuse, opTake, opAbort, opState, opAdopted, opRelease, opResumed}
	want := []string{"hello", "status", "offer", "refuse", "take", "abort", "state", "adopted", "release", "resumed"}
	if !slices.Equal(ops, want) {
		t.Errorf("ops = %q; want %q", ops, want)
	}
}

// connPair returns the two ends of a connected socket pair.
func connPair(t *testing.T) (*conn, *conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]*conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		nc, err := net.FileConn(f)
		f.Close() //nolint:errcheck // FileConn holds a dup
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = &conn{c: nc.(*net.UnixConn)}
	}
	t.Cleanup(func() { cs[0].close(); cs[1].close() })
	return cs[0], cs[1]
}

func TestConnFrames(t *testing.T) {
	t.Parallel()
	a, b := connPair(t)
	ins := newStandIns(t)
	// Larger than the socket buffer: sent in parts.
	body := testState{Version: "big", Blob: strings.Repeat("x", 1<<19)}
	errc := make(chan error, 1)
	go func() {
		errc <- a.send(time.Now().Add(waitLimit), opState, body, ins.fds()...)
	}()
	m, err := b.recv(time.Now().Add(waitLimit))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
	var got testState
	if m.Op != opState || json.Unmarshal(m.Body, &got) != nil || !reflect.DeepEqual(got, body) {
		t.Errorf("received %s with %d bytes; want the state sent", m.Op, len(m.Body))
	}
	if _, err := b.takeFds(1); err == nil {
		t.Error("takeFds(1) of 2 descriptors succeeded")
	}
	if len(b.fds) != 0 {
		t.Errorf("takeFds kept %v after refusing them", b.fds)
	}
	for _, name := range Files {
		ins.onlyCopy(t, name) // the refused ones were closed
	}

	// An error travels as text.
	go func() { errc <- a.send(time.Now().Add(waitLimit), opAbort, errors.New("why")) }()
	if m, err := b.recv(time.Now().Add(waitLimit)); err != nil || m.Op != opAbort || m.Error != "why" || m.Body != nil {
		t.Errorf("received %+v, %v; want abort with error why", m, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// Deadlines.
	if _, err := b.recv(time.Now().Add(10 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("recv with nothing to read: %v; want a deadline", err)
	}

	// Encoding errors and a closed connection.
	errContains(t, a.send(time.Now().Add(waitLimit), opState, make(chan int)), "encode state")
	a.close()
	errContains(t, a.send(time.Now().Add(waitLimit), opHello, nil), "send hello")
	if _, err := b.recv(time.Now().Add(waitLimit)); !errors.Is(err, io.EOF) {
		t.Errorf("recv from a closed peer: %v; want EOF", err)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	var h Hello
	if err := decode(message{Op: opHello, Body: json.RawMessage(`{"protoMin":1,"protoMax":2}`)}, opHello, &h); err != nil || h.ProtoMax != 2 {
		t.Errorf("decode hello: %+v, %v", h, err)
	}
	for _, op := range []string{opRefuse, opAbort} {
		err := decode(message{Op: op, Error: "because"}, opOffer, &h)
		var pe *PeerError
		if !errors.As(err, &pe) || pe.Op != op || pe.Msg != "because" {
			t.Errorf("decode %s: %v; want a PeerError", op, err)
		}
		if want := "upgrade: peer sent " + op + ": because"; err.Error() != want {
			t.Errorf("error %q; want %q", err, want)
		}
	}
	errContains(t, decode(message{Op: opTake}, opAdopted, nil), `expected "adopted", got "take"`)
	if err := decode(message{Op: opTake}, opTake, nil); err != nil {
		t.Errorf("decode take without body: %v", err)
	}
	errContains(t, decode(message{Op: opOffer, Body: json.RawMessage(`[]`)}, opOffer, &Offer{}), "malformed offer")
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	before := time.Now()
	if got := deadline(context.Background(), time.Hour); got.Before(before.Add(time.Hour)) || got.After(time.Now().Add(time.Hour)) {
		t.Errorf("deadline without a context deadline = %v; want an hour from now", got)
	}
	ctx, cancel := context.WithDeadline(context.Background(), before.Add(time.Minute))
	defer cancel()
	if got := deadline(ctx, time.Hour); !got.Equal(before.Add(time.Minute)) {
		t.Errorf("deadline = %v; want the context's, %v", got, before.Add(time.Minute))
	}
	if got := deadline(ctx, time.Second); got.After(time.Now().Add(time.Second)) {
		t.Errorf("deadline = %v; want the step's, under the context's", got)
	}
}

func TestParsePause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		step string
		d    time.Duration
	}{
		{in: "stopped=3s", step: "stopped", d: 3 * time.Second},
		{in: "adopted=1m", step: "adopted", d: time.Minute},
		{in: ""},
		{in: "stopped"},
		{in: "stopped=soon"},
		{in: "stopped=0s"},
		{in: "stopped=-1s"},
	}
	for _, tc := range tests {
		if step, d := parsePause(tc.in); step != tc.step || d != tc.d {
			t.Errorf("parsePause(%q) = %q, %v; want %q, %v", tc.in, step, d, tc.step, tc.d)
		}
	}
}
