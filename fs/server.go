// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const (
	// maxRead bounds one READ's size (the max_read mount option); replies
	// must fit a worker's buffer.
	maxRead = 128 << 10
	// maxWrite is what we accept in INIT; nothing is writable, but the kernel
	// sizes request buffers from it, so it stays small.
	maxWrite = 64 << 10
	// reqBufSize holds any request: headers plus maxWrite (the kernel's
	// FUSE_MIN_READ_BUFFER is 8 KiB).
	reqBufSize = maxWrite + 4096
	outBufSize = maxRead + 4096
	// initTimeout bounds the wait for the kernel's INIT after mount(2).
	initTimeout = 10 * time.Second
)

// Server connects an FS to a FUSE connection and serves it.
type Server struct {
	fs         *FS
	ps         *fuse.ProtocolServer
	fd         int // /dev/fuse, blocking; owned by the Server until Unmount
	rootFd     int // O_PATH descriptor of the filesystem's root; see Quiesce
	mountPoint string
	initReq    []byte // the kernel's INIT request, replayed by a successor
	initOut    []byte // our reply to it, which a successor must reproduce
	inNS       InNS   // runs path operations on the mount point
	log        logr.Logger

	stopping atomic.Bool
	active   atomic.Int32 // workers running

	mu      sync.Mutex
	wg      sync.WaitGroup
	running bool
	errc    chan error // the end of the connection; see Wait
}

// MountFlags are the flags of our mounts: read-only, no devices, no set-id
// programs, nothing executable.
const MountFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// FSType is the mount's type as /proc/self/mountinfo shows it; existing
// scripts and monitoring look for lxcfs's name.
const FSType = "fuse.lxcfs"

// wakeName is looked up to wake workers blocked in read(2); it never exists.
const wakeName = ".k8s-lxcfs-wake"

func protocolServer(f *FS, log logr.Logger) *fuse.ProtocolServer {
	return fuse.NewProtocolServer(f, &fuse.MountOptions{
		MaxWrite:           maxWrite,
		MaxBackground:      64,
		DisableReadDirPlus: true, // listings are tiny; plain READDIR keeps one code path
		Logger:             slog.NewLogLogger(logr.ToSlogHandler(log.WithName("go-fuse")), slog.Level(-2)),
	})
}

// InNS runs fn where the mount point's path means what it should: in the
// mount namespace the filesystem is mounted in. Nil runs fn directly.
type InNS func(fn func() error) error

// Do runs fn in the namespace (directly when ns is nil).
func (ns InNS) Do(fn func() error) error {
	if ns == nil {
		return fn()
	}
	return ns(fn)
}

// Mount mounts f at mountPoint with mount(2) (no fusermount), completes the
// INIT exchange and returns a Server ready to Start. ns, if not nil, runs
// the path operations (mount, opening the root, unmount) in another mount
// namespace.
func Mount(mountPoint string, f *FS, ns InNS, log logr.Logger) (*Server, error) {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/fuse: %w", err)
	}
	data := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,max_read=%d", fd, maxRead)
	err = ns.Do(func() error { return unix.Mount("lxcfs", mountPoint, FSType, MountFlags, data) })
	if err != nil {
		unix.Close(fd) //nolint:errcheck // nothing mounted on it yet
		return nil, &MountError{Op: "mount", Target: mountPoint, Err: err}
	}
	s := &Server{fs: f, ps: protocolServer(f, log), fd: fd, rootFd: -1, mountPoint: mountPoint, inNS: ns, log: log,
		errc: make(chan error, 1)}
	if err := s.handshake(); err != nil {
		unix.Close(fd) //nolint:errcheck // aborting: the connection dies with it
		_ = ns.Do(func() error { return unix.Unmount(mountPoint, unix.MNT_DETACH) })
		return nil, err
	}
	return s, nil
}

// MountError is a failed mount(2) or umount(2).
type MountError struct {
	Op, Target string
	Err        error
}

func (e *MountError) Error() string { return e.Op + " " + e.Target + ": " + e.Err.Error() }
func (e *MountError) Unwrap() error { return e.Err }

// handshake answers the kernel's INIT, the first request on a new connection.
func (s *Server) handshake() error {
	pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, int(initTimeout/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll /dev/fuse for INIT: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("no FUSE INIT from the kernel within %s", initTimeout)
		}
		break
	}
	buf := make([]byte, reqBufSize)
	out := make([]byte, outBufSize)
	n, err := s.read(buf)
	if err != nil {
		return fmt.Errorf("read FUSE INIT: %w", err)
	}
	if n < 40 || binary.NativeEndian.Uint32(buf[4:8]) != opInit {
		return fmt.Errorf("first FUSE request is not INIT (%d bytes)", n)
	}
	s.initReq = append([]byte(nil), buf[:n]...)
	m, st := s.ps.HandleRequest([][]byte{buf[:n]}, [][]byte{out})
	if !st.Ok() || m == 0 {
		return fmt.Errorf("FUSE INIT: %v", st)
	}
	if _, err := unix.Write(s.fd, out[:m]); err != nil {
		return fmt.Errorf("reply FUSE INIT: %w", err)
	}
	s.initOut = append([]byte(nil), out[:m]...)
	return nil
}

const opInit = 26 // FUSE_INIT

// Start starts the workers reading requests. Serving stops at Quiesce,
// Unmount, or when the kernel ends the connection.
//
// There is one worker per CPU (at least two). Each blocks in read(2) on its
// own OS thread while idle; handlers never wait on anything but local files.
// Measured here, more workers than CPUs only cost wake-ups: the woken thread
// then often finds no free P and waits for one.
func (s *Server) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping.Store(false)
	s.running = true
	// After a Quiesce that timed out, some workers are still busy; they
	// carry on now, and only the missing ones are started.
	for n := int(s.active.Load()); n < max(2, runtime.GOMAXPROCS(0)); n++ {
		s.wg.Add(1)
		s.active.Add(1)
		go s.worker()
	}
	if s.rootFd < 0 {
		// Taken once serving, in case opening the root asks the server anything.
		var fd int
		err := s.inNS.Do(func() (err error) {
			fd, err = unix.Open(s.mountPoint, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			return err
		})
		if err == nil {
			s.rootFd = fd
		} else {
			s.log.Error(err, "Could not open the filesystem root; quiescing will wait for the kernel", "mountPoint", s.mountPoint)
		}
	}
}

// ErrUnmounted means the kernel ended the connection: the filesystem was
// unmounted (and no bind of it remains) or the connection was aborted.
var ErrUnmounted = errors.New("fs: FUSE connection ended")

// Wait blocks until the connection fails and returns why (ErrUnmounted when
// the kernel ended it), or until ctx ends. Quiesce does not end it.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case err := <-s.errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) worker() {
	defer s.wg.Done()
	defer s.active.Add(-1)
	buf := make([]byte, reqBufSize)
	out := make([]byte, outBufSize)
	for !s.stopping.Load() {
		n, err := s.read(buf)
		if err != nil {
			switch {
			case errors.Is(err, unix.ENOENT), errors.Is(err, unix.EAGAIN):
				continue // the request was interrupted before we read it
			case errors.Is(err, unix.ENODEV):
				s.report(ErrUnmounted)
			default:
				s.report(fmt.Errorf("read /dev/fuse: %w", err))
			}
			return
		}
		s.handle(buf[:n], out)
	}
}

// read reads one request, blocking in read(2): the kernel wakes exactly one
// waiting worker per request, directly. On this project's reference VM that
// made a READ round trip about twice as fast as parking in Go's netpoller.
func (s *Server) read(buf []byte) (int, error) {
	for {
		n, err := unix.Read(s.fd, buf)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

func (s *Server) report(err error) {
	select {
	case s.errc <- err:
	default:
	}
}

// handle answers one request. Requests the protocol server can't parse get
// an error reply rather than none, so no caller waits forever.
func (s *Server) handle(req, out []byte) {
	m, st := s.ps.HandleRequest([][]byte{req}, [][]byte{out})
	if m == 0 {
		if st.Ok() || len(req) < 16 {
			return // FORGET and INTERRUPT take no reply
		}
		binary.NativeEndian.PutUint32(out[0:4], 16)
		binary.NativeEndian.PutUint32(out[4:8], uint32(-int32(st)))
		copy(out[8:16], req[8:16]) // unique
		m = 16
	}
	if _, err := unix.Write(s.fd, out[:m]); err != nil && !errors.Is(err, unix.ENOENT) {
		// ENOENT: the caller was interrupted and the kernel dropped the request.
		s.log.V(2).Info("Could not reply to FUSE request", "err", err.Error())
	}
}

// Quiesce stops reading new requests and returns once every request read has
// been answered. The connection stays up: requests queue in the kernel until
// Start is called again, here or in a process this connection is handed to.
//
// Workers block in read(2), which nothing but a request ends, so Quiesce
// sends requests of its own: lookups of a name that never exists, through an
// O_PATH descriptor of the filesystem's root taken at Start (valid in any
// mount namespace, even after a lazy unmount). Each wakes one worker, which
// answers it, sees the stop flag and exits. It gives up after timeout and
// returns an error, leaving the stop flag set.
func (s *Server) Quiesce(timeout time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.stopping.Store(true)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poke := time.NewTicker(5 * time.Millisecond)
	defer poke.Stop()
	for {
		if s.rootFd >= 0 {
			// Each lookup wakes one blocked worker, so send one per worker
			// still running, at once: a worker busy with a request exits
			// after it without one, and a lookup that finds no worker stays
			// queued and is answered by whoever serves next.
			for range s.active.Load() {
				go func() {
					var st unix.Stat_t
					_ = unix.Fstatat(s.rootFd, wakeName, &st, unix.AT_SYMLINK_NOFOLLOW)
				}()
			}
		} // else: no way to poke; wait for ENODEV or the deadline
		select {
		case <-done:
			s.running = false
			return nil
		case <-deadline.C:
			return fmt.Errorf("quiesce FUSE workers: %d still running after %s", s.active.Load(), timeout)
		case <-poke.C:
		}
	}
}

// Unmount quiesces, unmounts the mount point (lazily if busy) and closes
// the connection. Containers still binding our files see ENOTCONN afterwards.
// If the workers can't be stopped, the connection is aborted through the
// fusectl filesystem, which ends every pending request with ENOTCONN.
func (s *Server) Unmount() error {
	var errs []error
	if err := s.Quiesce(5 * time.Second); err != nil {
		errs = append(errs, err)
		if aerr := s.abort(); aerr != nil {
			errs = append(errs, aerr)
		}
	}
	uerr := s.inNS.Do(func() error {
		if err := unix.Unmount(s.mountPoint, 0); err == nil || errors.Is(err, unix.EINVAL) {
			return nil
		}
		if err := unix.Unmount(s.mountPoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return err
		}
		return nil
	})
	if uerr != nil {
		errs = append(errs, &MountError{Op: "umount", Target: s.mountPoint, Err: uerr})
	}
	if s.rootFd >= 0 {
		unix.Close(s.rootFd) //nolint:errcheck // O_PATH descriptor
		s.rootFd = -1
	}
	// Closing the last /dev/fuse descriptor ends the connection.
	if cerr := unix.Close(s.fd); cerr != nil {
		errs = append(errs, fmt.Errorf("close /dev/fuse: %w", cerr))
	}
	return errors.Join(errs...)
}

// abort aborts the connection via /sys/fs/fuse/connections/<dev>/abort.
func (s *Server) abort() error {
	if s.rootFd < 0 {
		return errors.New("abort FUSE connection: no root descriptor")
	}
	var st unix.Stat_t
	if err := unix.Fstat(s.rootFd, &st); err != nil {
		return fmt.Errorf("abort FUSE connection: stat root: %w", err)
	}
	p := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("abort FUSE connection: %w", err)
	}
	defer unix.Close(fd) //nolint:errcheck // write-only control file
	if _, err := unix.Write(fd, []byte("1")); err != nil {
		return fmt.Errorf("abort FUSE connection: write %s: %w", p, err)
	}
	return nil
}

// MountPoint returns where the filesystem is mounted.
func (s *Server) MountPoint() string { return s.mountPoint }

// Session is what identifies a live FUSE connection to a process that
// takes it over: the kernel's INIT request and the reply that was sent.
type Session struct {
	InitReq []byte `json:"initReq"`
	InitOut []byte `json:"initOut"`
}

// Session returns the connection's INIT exchange.
func (s *Server) Session() Session {
	return Session{InitReq: s.initReq, InitOut: s.initOut}
}

// Files returns the /dev/fuse descriptor and the O_PATH descriptor of the
// root, for handing to a successor (-1 if the root was never opened). They
// stay owned by the Server.
func (s *Server) Files() (fuseFd, rootFd int) { return s.fd, s.rootFd }

// CheckSession replays sess's INIT request into a protocol server built the
// way this version builds them and reports whether it answers the kernel
// exactly as the predecessor did. A successor must: the kernel negotiated
// once, with the predecessor's reply, and will not negotiate again.
func CheckSession(sess Session, f *FS, log logr.Logger) error {
	_, err := replayInit(protocolServer(f, log), sess)
	return err
}

func replayInit(ps *fuse.ProtocolServer, sess Session) ([]byte, error) {
	if len(sess.InitReq) < 40 || binary.NativeEndian.Uint32(sess.InitReq[4:8]) != opInit {
		return nil, fmt.Errorf("fs: handed-over INIT request is malformed (%d bytes)", len(sess.InitReq))
	}
	out := make([]byte, outBufSize)
	req := append([]byte(nil), sess.InitReq...) // the protocol server may write to it
	m, st := ps.HandleRequest([][]byte{req}, [][]byte{out})
	if !st.Ok() || m == 0 {
		return nil, fmt.Errorf("fs: replay FUSE INIT: %v", st)
	}
	// The reply's unique (bytes 8-16) is the INIT's, the same on both sides.
	if string(out[:m]) != string(sess.InitOut) {
		return nil, fmt.Errorf("fs: this version would answer FUSE INIT differently from the running one "+
			"(%d vs %d bytes); a handover would break the negotiated protocol", m, len(sess.InitOut))
	}
	return out[:m], nil
}

// Adopt returns a Server for a FUSE connection another process set up and
// handed over: fd is its /dev/fuse descriptor, rootFd an O_PATH descriptor
// of the mount's root (or -1), sess its INIT exchange. The INIT request is
// replayed into a new protocol server so it knows what the kernel
// negotiated; nothing is written to the kernel. The Server owns both
// descriptors from here on, also on error (they are closed). Call Start to
// serve.
func Adopt(fd, rootFd int, mountPoint string, sess Session, f *FS, ns InNS, log logr.Logger) (*Server, error) {
	ps := protocolServer(f, log)
	if _, err := replayInit(ps, sess); err != nil {
		unix.Close(fd) //nolint:errcheck // refusing the handover
		if rootFd >= 0 {
			unix.Close(rootFd) //nolint:errcheck // O_PATH descriptor
		}
		return nil, err
	}
	return &Server{fs: f, ps: ps, fd: fd, rootFd: rootFd, mountPoint: mountPoint, inNS: ns, log: log,
		initReq: sess.InitReq, initOut: sess.InitOut, errc: make(chan error, 1)}, nil
}

// Detach quiesces and closes this process's descriptors of the connection
// without unmounting: after a handover the successor holds the connection
// and the mount stays live.
func (s *Server) Detach(timeout time.Duration) error {
	err := s.Quiesce(timeout)
	if s.rootFd >= 0 {
		unix.Close(s.rootFd) //nolint:errcheck // O_PATH descriptor
		s.rootFd = -1
	}
	if cerr := unix.Close(s.fd); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close /dev/fuse: %w", cerr))
	}
	return err
}
