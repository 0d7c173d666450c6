// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// DefaultSocket is where the serving daemon listens for a successor.
const DefaultSocket = "/run/k8s-lxcfs/handover.sock"

// Timeouts of the steps. The predecessor stops serving between take and
// release, so those steps are short; the successor's checks before take
// may take longer (it builds its filesystem first).
const (
	HelloTimeout   = 5 * time.Second  // connect, hello, offer
	CheckTimeout   = 10 * time.Second // the successor's checks, until take
	QuiesceTimeout = 2 * time.Second  // in-flight requests to finish
	AdoptTimeout   = 5 * time.Second  // state sent until adopted
	ReleaseTimeout = 5 * time.Second  // adopted until release
)

// timeouts are the step deadlines in use; tests shorten them.
var timeouts = struct{ hello, check, quiesce, adopt, release time.Duration }{
	HelloTimeout, CheckTimeout, QuiesceTimeout, AdoptTimeout, ReleaseTimeout}

// ErrNoPredecessor means nothing serves on the socket: mount afresh.
var ErrNoPredecessor = errors.New("upgrade: no predecessor listening")

// ErrPredecessorResumed means the predecessor took the connection back
// before releasing it; the successor must not serve.
var ErrPredecessorResumed = errors.New("upgrade: predecessor resumed serving")

// Hello is what a successor (or a status query) says first.
type Hello struct {
	ProtoMin int    `json:"protoMin"`
	ProtoMax int    `json:"protoMax"`
	Version  string `json:"version"`
	Pid      int    `json:"pid"`
}

// Offer is what the predecessor tells a successor before anything stops.
type Offer struct {
	Proto      int    `json:"proto"`
	Version    string `json:"version"`
	Pid        int    `json:"pid"`
	MountPoint string `json:"mountPoint"`
	// Session is the FUSE connection's negotiated settings (fs.Session).
	Session json.RawMessage `json:"session"`
}

// Files names the descriptors of a handover, in the order they are sent.
var Files = []string{"fuse", "root"}

// Handoff is a predecessor's connection as received: the descriptors by
// name ("fuse": /dev/fuse, "root": an O_PATH descriptor of the mount's root)
// and the state. The caller owns the descriptors.
type Handoff struct {
	Offer Offer
	Fds   map[string]int
	State json.RawMessage

	c       *conn
	predPid int
	pidfd   int // the predecessor's pidfd, or -1
}

// Predecessor is the serving daemon, as the listener drives it.
type Predecessor interface {
	// Offer describes the connection (Proto is filled in by the listener).
	Offer() Offer
	// Status answers a status query.
	Status() any
	// Stop stops serving and returns the descriptors to send, in Files
	// order, and the state. On error the predecessor must still serve.
	Stop() (fds []int, state any, err error)
	// Resume serves again after Stop, when the handover failed.
	Resume()
}

// Listener is the predecessor's socket.
type Listener struct {
	l    *net.UnixListener
	path string
	ino  uint64 // of the socket file we bound, to remove only ours
	log  logr.Logger
}

// Listen creates the socket at path (its directory mode 0700, the socket
// 0600) and replaces whatever was there atomically: a predecessor that
// handed over to us still has its old socket open, but is reachable no more.
func Listen(path string, log logr.Logger) (*Listener, error) {
	if len(path) >= 108 {
		return nil, fmt.Errorf("upgrade: socket path %q is %d bytes; unix sockets allow 107", path, len(path))
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upgrade: create socket directory: %w", err)
	}
	tmp, err := tempName(path)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(tmp); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(tmp) // a socket of ours left by a crash
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("upgrade: listen on %s: %w", tmp, err)
	}
	l.SetUnlinkOnClose(false) // we remove the path ourselves, if still ours
	fail := func(err error) (*Listener, error) {
		l.Close() //nolint:errcheck // failing anyway
		_ = os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(fmt.Errorf("upgrade: chmod socket: %w", err))
	}
	var st unix.Stat_t
	if err := unix.Stat(tmp, &st); err != nil {
		return fail(fmt.Errorf("upgrade: stat socket: %w", err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("upgrade: install socket at %s: %w", path, err))
	}
	return &Listener{l: l, path: path, ino: st.Ino, log: log}, nil
}

// Handed stops listening after a handover without touching the socket
// path: the successor renames its own socket over it. Removing it, even
// after checking that it is still ours, races with that rename and could
// delete the successor's socket.
func (l *Listener) Handed() error { return l.l.Close() }

// tempName returns where to bind before renaming onto path: in the same
// directory (rename is atomic only within a filesystem), and no longer
// than path, which fits a socket address.
func tempName(path string) (string, error) {
	dir, base := filepath.Split(path)
	tmp := path + ".new" + strconv.Itoa(os.Getpid())
	if len(tmp) < 108 {
		return tmp, nil
	}
	if len(base) == 1 {
		for _, c := range []string{"_", "-", "~"} {
			if c == base {
				continue
			}
			if _, err := os.Lstat(dir + c); errors.Is(err, os.ErrNotExist) {
				return dir + c, nil
			}
		}
		return "", fmt.Errorf("upgrade: socket path %q: no free one-byte temporary name next to it", path)
	}
	// "." plus as many digits of the pid (base 36) and time as fit.
	id := strconv.FormatInt(int64(os.Getpid()), 36) + strconv.FormatInt(time.Now().UnixNano(), 36)
	name := "." + id
	if len(name) > len(base) {
		name = name[:len(base)]
	}
	if name == base {
		name = "_" + name[1:]
	}
	return dir + name, nil
}

// Close stops listening and removes the socket file if it is still ours.
// Use it when stopping for good, not after a handover (see Handed).
func (l *Listener) Close() error {
	var st unix.Stat_t
	if err := unix.Stat(l.path, &st); err == nil && st.Ino == l.ino {
		_ = os.Remove(l.path)
	}
	return l.l.Close()
}

// Serve answers connections until ctx ends (nil) or a successor has taken
// the connection over (true, nil): then the caller closes its descriptors
// without unmounting and exits. Failed handovers are logged and serving
// goes on.
func (l *Listener) Serve(ctx context.Context, p Predecessor) (handedOver bool, err error) {
	stop := context.AfterFunc(ctx, func() { l.l.Close() }) //nolint:errcheck // unblocks Accept
	defer stop()
	for {
		c, err := l.l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			if errors.Is(err, net.ErrClosed) {
				return false, nil
			}
			l.log.Error(err, "Could not accept handover connection", "socket", l.path)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		done, err := l.handle(&conn{c: c}, p)
		if err != nil {
			l.log.Error(err, "Handover failed; serving on", "socket", l.path)
		}
		if done {
			return true, nil
		}
	}
}

// handle runs one connection. It returns true once the connection has been
// released to a successor.
func (l *Listener) handle(c *conn, p Predecessor) (bool, error) {
	defer c.close()
	cred, err := c.peer()
	if err != nil {
		return false, err
	}
	log := l.log.WithValues("peerPid", cred.Pid)
	m, err := c.recv(time.Now().Add(timeouts.hello))
	if err != nil {
		return false, err
	}
	var h Hello
	switch m.Op {
	case opStatus:
		return false, c.send(time.Now().Add(timeouts.hello), opStatus, p.Status())
	case opHello:
		if err := decode(m, opHello, &h); err != nil {
			return false, err
		}
	default:
		return false, fmt.Errorf("upgrade: unexpected first message %q", m.Op)
	}
	proto, err := negotiate(speaks[0], speaks[1], h.ProtoMin, h.ProtoMax)
	if err != nil {
		return false, errors.Join(err, c.send(time.Now().Add(timeouts.hello), opRefuse, err))
	}
	offer := p.Offer()
	offer.Proto = proto
	if err := c.send(time.Now().Add(timeouts.hello), opOffer, offer); err != nil {
		return false, err
	}
	log.V(2).Info("Offered FUSE connection to successor", "successorVersion", h.Version, "protocol", proto)
	m, err = c.recv(time.Now().Add(timeouts.check))
	if err != nil {
		return false, err
	}
	if err := decode(m, opTake, nil); err != nil {
		return false, err
	}

	// From here on requests queue in the kernel until someone serves.
	start := time.Now()
	fds, state, err := p.Stop()
	if err != nil {
		return false, errors.Join(err, c.send(time.Now().Add(timeouts.hello), opRefuse, err))
	}
	resume := func(err error) (bool, error) {
		p.Resume()
		// Tell a successor that is still there, so it does not wait for
		// release; best effort.
		_ = c.send(time.Now().Add(time.Second), opResumed, err)
		log.Info("Resumed serving after a failed handover", "err", err.Error(), "paused", time.Since(start).String())
		return false, err
	}
	pause("stopped")
	if err := c.send(time.Now().Add(timeouts.adopt), opState, state, fds...); err != nil {
		return resume(err)
	}
	m, err = c.recv(time.Now().Add(timeouts.adopt))
	if err != nil {
		return resume(fmt.Errorf("waiting for the successor to adopt: %w", err))
	}
	if err := decode(m, opAdopted, nil); err != nil {
		return resume(err)
	}
	// Committed: even if release is lost, the successor serves once it sees
	// us gone.
	pause("adopted")
	if err := c.send(time.Now().Add(timeouts.release), opRelease, nil); err != nil {
		log.Error(err, "Could not send release; the successor serves once this process exits")
	}
	log.Info("Handed over FUSE connection", "successorPid", cred.Pid, "successorVersion", h.Version,
		"paused", time.Since(start).String())
	return true, nil
}

// Adopt connects to the predecessor listening on sock and takes over its
// live FUSE connection. check is called with the predecessor's offer before
// anything stops; an error from it aborts the handover (the predecessor
// serves on) and is returned. Adopt returns an error wrapping
// ErrNoPredecessor if nothing listens, or if the predecessor died before
// sending its connection: then the caller mounts afresh.
//
// On success the caller imports the state and then calls Commit (or Abort).
func Adopt(ctx context.Context, sock string, hello Hello, check func(Offer) error) (*Handoff, error) {
	d := net.Dialer{Timeout: timeouts.hello}
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("%w on %s: %w", ErrNoPredecessor, sock, err)
		}
		return nil, fmt.Errorf("upgrade: connect to %s: %w", sock, err)
	}
	c := &conn{c: nc.(*net.UnixConn)}
	ok := false
	h := &Handoff{c: c, pidfd: -1}
	defer func() {
		if !ok {
			h.closeAll()
		}
	}()
	cred, err := c.peer()
	if err != nil {
		return nil, err
	}
	h.predPid = int(cred.Pid)
	if fd, err := unix.PidfdOpen(h.predPid, 0); err == nil {
		h.pidfd = fd
	}
	gone := func(err error) error {
		// A dying process closes its sockets before its pidfd turns
		// readable: give it a moment.
		if h.predecessorGone(waitGone(ctx)) {
			return fmt.Errorf("%w: predecessor pid %d died during the handover: %w", ErrNoPredecessor, h.predPid, err)
		}
		return err
	}
	hello.ProtoMin, hello.ProtoMax = speaks[0], speaks[1]
	if err := c.send(deadline(ctx, timeouts.hello), opHello, hello); err != nil {
		return nil, gone(err)
	}
	m, err := c.recv(deadline(ctx, timeouts.hello))
	if err != nil {
		return nil, gone(err)
	}
	if err := decode(m, opOffer, &h.Offer); err != nil {
		return nil, err
	}
	if _, err := negotiate(speaks[0], speaks[1], h.Offer.Proto, h.Offer.Proto); err != nil {
		err = fmt.Errorf("upgrade: predecessor chose protocol %d: %w", h.Offer.Proto, err)
		return nil, errors.Join(err, c.send(deadline(ctx, timeouts.hello), opAbort, err))
	}
	if err := check(h.Offer); err != nil {
		return nil, errors.Join(err, c.send(deadline(ctx, timeouts.hello), opAbort, err))
	}
	if err := c.send(deadline(ctx, timeouts.hello), opTake, nil); err != nil {
		return nil, gone(err)
	}
	m, err = c.recv(deadline(ctx, timeouts.quiesce+timeouts.adopt))
	if err != nil {
		return nil, gone(err)
	}
	if err := decode(m, opState, nil); err != nil {
		return nil, err
	}
	fds, err := c.takeFds(len(Files))
	if err != nil {
		return nil, err
	}
	h.Fds = map[string]int{}
	for i, name := range Files {
		h.Fds[name] = fds[i]
	}
	h.State = m.Body
	ok = true
	pause("received")
	return h, nil
}

// Commit tells the predecessor the state is imported and waits for it to
// release the connection. It returns nil when the caller may serve: the
// predecessor released it, or died after sending it. ErrPredecessorResumed
// means the predecessor serves again: the caller must close the descriptors
// and not serve. The descriptors stay the caller's in every case.
func (h *Handoff) Commit(ctx context.Context) error {
	defer h.closeConn()
	if err := h.c.send(deadline(ctx, timeouts.adopt), opAdopted, nil); err != nil {
		if h.predecessorGone(waitGone(ctx)) {
			return nil
		}
		return fmt.Errorf("%w: %w", ErrPredecessorResumed, err)
	}
	m, err := h.c.recv(deadline(ctx, timeouts.release))
	if err == nil && m.Op == opRelease {
		return nil
	}
	// No release: serve only if the predecessor is gone. A live one either
	// resumed or is about to exit after a lost release; wait a moment for
	// the latter.
	wait := waitGone(ctx)
	if err == nil && m.Op == opResumed {
		wait = 0 // it said so
	}
	if h.predecessorGone(wait) {
		return nil
	}
	if err == nil {
		err = &PeerError{Op: m.Op, Msg: m.Error}
	}
	return fmt.Errorf("%w: %w", ErrPredecessorResumed, err)
}

// Abort tells the predecessor to serve on, and closes the descriptors.
func (h *Handoff) Abort(reason error) {
	_ = h.c.send(time.Now().Add(time.Second), opAbort, reason)
	h.closeAll()
}

// PredecessorPid is the predecessor's pid, as the socket reported it.
func (h *Handoff) PredecessorPid() int { return h.predPid }

// predecessorGone waits up to wait for the predecessor to exit and reports
// whether it did.
func (h *Handoff) predecessorGone(wait time.Duration) bool {
	if h.pidfd < 0 {
		return false // can't tell: assume alive, never serve twice
	}
	deadline := time.Now().Add(wait)
	for {
		pfd := []unix.PollFd{{Fd: int32(h.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, int(max(0, time.Until(deadline).Milliseconds())))
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

func (h *Handoff) closeConn() {
	if h.c != nil {
		h.c.close()
		h.c = nil
	}
	if h.pidfd >= 0 {
		unix.Close(h.pidfd) //nolint:errcheck // pidfd
		h.pidfd = -1
	}
}

func (h *Handoff) closeAll() {
	for name, fd := range h.Fds {
		unix.Close(fd) //nolint:errcheck // abandoning the handover
		delete(h.Fds, name)
	}
	h.closeConn()
}

// Query asks the daemon listening on sock for its status and decodes it
// into v.
func Query(ctx context.Context, sock string, v any) error {
	d := net.Dialer{Timeout: timeouts.hello}
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return fmt.Errorf("%w on %s: %w", ErrNoPredecessor, sock, err)
		}
		return fmt.Errorf("upgrade: connect to %s: %w", sock, err)
	}
	c := &conn{c: nc.(*net.UnixConn)}
	defer c.close()
	if _, err := c.peer(); err != nil {
		return err
	}
	if err := c.send(deadline(ctx, timeouts.hello), opStatus, Hello{ProtoMin: speaks[0], ProtoMax: speaks[1], Pid: os.Getpid()}); err != nil {
		return err
	}
	m, err := c.recv(deadline(ctx, timeouts.hello))
	if err != nil {
		return err
	}
	if m.Op == opStatus && len(m.Body) == 0 {
		return nil // a daemon with nothing to say: v keeps its zero value
	}
	return decode(m, opStatus, v)
}

// waitGone is how long to wait for a predecessor that stopped talking to
// turn out dead: a dying process closes its sockets a moment before its
// pidfd turns readable. Bounded by ctx's deadline.
func waitGone(ctx context.Context) time.Duration {
	return max(0, time.Until(deadline(ctx, 2*time.Second)))
}

func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}
