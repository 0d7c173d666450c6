// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package upgrade

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Protocol versions this build speaks. A release that changes the messages
// raises ProtoMax and keeps speaking the previous version for one release,
// so adjacent releases hand over in both directions.
const (
	ProtoMin = 1
	ProtoMax = 1
)

// speaks is the protocol range this process offers; tests change it to play
// other releases.
var speaks = [2]int{ProtoMin, ProtoMax}

// requiredUID is the uid a peer must have: root. Tests run as whoever runs
// them.
var requiredUID uint32

// maxFrame bounds one message. The state frame carries every open file's
// snapshot (a few KiB each); 64 MiB is tens of thousands of open files.
const maxFrame = 64 << 20

// maxFds bounds the descriptors accepted with one read.
const maxFds = 8

// Message types.
const (
	opHello   = "hello"
	opStatus  = "status"
	opOffer   = "offer"
	opRefuse  = "refuse"
	opTake    = "take"
	opAbort   = "abort"
	opState   = "state"
	opAdopted = "adopted"
	opRelease = "release"
	opResumed = "resumed"
)

// message is every frame's envelope; Body depends on Op.
type message struct {
	Op    string          `json:"op"`
	Error string          `json:"error,omitempty"`
	Body  json.RawMessage `json:"body,omitempty"`
}

// conn is one side of a handover connection.
type conn struct {
	c   *net.UnixConn
	fds []int // received and not yet claimed; closed by close
}

func (c *conn) close() {
	for _, fd := range c.fds {
		unix.Close(fd) //nolint:errcheck // unclaimed descriptor from the peer
	}
	c.fds = nil
	c.c.Close() //nolint:errcheck // nothing buffered to lose
}

// send writes one frame with fds (may be nil) attached, before deadline.
func (c *conn) send(deadline time.Time, op string, body any, fds ...int) error {
	m := message{Op: op}
	if e, ok := body.(error); ok {
		m.Error = e.Error()
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("upgrade: encode %s: %w", op, err)
		}
		m.Body = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("upgrade: encode %s: %w", op, err)
	}
	if len(b) > maxFrame {
		return fmt.Errorf("upgrade: %s message of %d bytes exceeds %d", op, len(b), maxFrame)
	}
	frame := make([]byte, 4+len(b))
	binary.LittleEndian.PutUint32(frame, uint32(len(b)))
	copy(frame[4:], b)
	if err := c.c.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("upgrade: send %s: %w", op, err)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.c.WriteMsgUnix(frame, oob, nil)
	if err == nil && (n != len(frame) || oobn != len(oob)) {
		// A stream socket may take part of a large frame; the rest follows
		// without descriptors.
		if oobn != len(oob) {
			return fmt.Errorf("upgrade: send %s: descriptors not sent", op)
		}
		_, err = c.c.Write(frame[n:])
	}
	if err != nil {
		return fmt.Errorf("upgrade: send %s: %w", op, err)
	}
	return nil
}

// recv reads one frame before deadline. Descriptors that arrive with it are
// kept in c.fds.
func (c *conn) recv(deadline time.Time) (message, error) {
	if err := c.c.SetReadDeadline(deadline); err != nil {
		return message{}, fmt.Errorf("upgrade: receive: %w", err)
	}
	var hdr [4]byte
	if err := c.readFull(hdr[:]); err != nil {
		return message{}, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n == 0 || n > maxFrame {
		return message{}, fmt.Errorf("upgrade: receive: frame of %d bytes (limit %d)", n, maxFrame)
	}
	b := make([]byte, n)
	if err := c.readFull(b); err != nil {
		return message{}, err
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return message{}, fmt.Errorf("upgrade: receive: malformed message: %w", err)
	}
	if m.Op == "" {
		return message{}, errors.New("upgrade: receive: message without op")
	}
	return m, nil
}

// readFull fills b, collecting any descriptors sent along.
func (c *conn) readFull(b []byte) error {
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	for len(b) > 0 {
		n, oobn, flags, _, err := c.c.ReadMsgUnix(b, oob)
		if oobn > 0 {
			if perr := c.keepFds(oob[:oobn]); perr != nil && err == nil {
				err = perr
			}
		}
		if err == nil && flags&unix.MSG_CTRUNC != 0 {
			err = errors.New("upgrade: receive: too many descriptors (control data truncated)")
		}
		if err != nil {
			return fmt.Errorf("upgrade: receive: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("upgrade: receive: %w", io.ErrUnexpectedEOF)
		}
		b = b[n:]
	}
	return nil
}

func (c *conn) keepFds(oob []byte) error {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("parse control message: %w", err)
	}
	for _, m := range cmsgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue // not SCM_RIGHTS
		}
		c.fds = append(c.fds, fds...)
	}
	if len(c.fds) > maxFds {
		return fmt.Errorf("peer sent %d descriptors", len(c.fds))
	}
	return nil
}

// takeFds claims exactly n received descriptors; with any other count all
// are closed and it fails.
func (c *conn) takeFds(n int) ([]int, error) {
	if len(c.fds) != n {
		got := len(c.fds)
		for _, fd := range c.fds {
			unix.Close(fd) //nolint:errcheck // refusing them
		}
		c.fds = nil
		return nil, fmt.Errorf("upgrade: expected %d descriptors, got %d", n, got)
	}
	fds := c.fds
	c.fds = nil
	return fds, nil
}

// peer returns the other side's credentials and refuses a peer that is not
// root: only root may take over the node's filesystem or look at it.
func (c *conn) peer() (*unix.Ucred, error) {
	raw, err := c.c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("upgrade: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, fmt.Errorf("upgrade: peer credentials: %w", err)
	}
	if gerr != nil {
		return nil, fmt.Errorf("upgrade: peer credentials: %w", gerr)
	}
	if cred.Uid != requiredUID {
		return cred, fmt.Errorf("upgrade: %w: peer pid %d runs as uid %d", ErrNotRoot, cred.Pid, cred.Uid)
	}
	return cred, nil
}

// ErrNotRoot is a peer that is not root.
var ErrNotRoot = errors.New("peer is not root")

// decode unmarshals m's body into v, or returns the error the peer sent.
func decode(m message, want string, v any) error {
	if m.Op == opRefuse || m.Op == opAbort {
		return &PeerError{Op: m.Op, Msg: m.Error}
	}
	if m.Op != want {
		return fmt.Errorf("upgrade: expected %q, got %q", want, m.Op)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(m.Body, v); err != nil {
		return fmt.Errorf("upgrade: malformed %s: %w", want, err)
	}
	return nil
}

// PeerError is a refusal or abort sent by the other side.
type PeerError struct {
	Op  string // refuse or abort
	Msg string
}

func (e *PeerError) Error() string { return "upgrade: peer sent " + e.Op + ": " + e.Msg }

// negotiate returns the highest protocol version both ranges contain.
func negotiate(min1, max1, min2, max2 int) (int, error) {
	lo, hi := max(min1, min2), min(max1, max2)
	if lo > hi || hi < 1 {
		return 0, fmt.Errorf("no common handover protocol: this side speaks %d–%d, the other %d–%d", min1, max1, min2, max2)
	}
	return hi, nil
}
