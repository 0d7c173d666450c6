// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// floorCmd is the argv[1] that turns the bench binary into the floor server:
// the least work a FUSE daemon can do per request. It answers straight from
// /dev/fuse with fixed copies of the host's files, two threads blocked in
// read(2), no dispatch, no allocation, nothing looked up. Its throughput is
// the ceiling for any /dev/fuse daemon on this machine, ours and lxcfs
// included: what it measures is the kernel's cost of the synchronous round
// trips (OPEN, READ, READ at EOF) in one open+read+close.
const floorCmd = "floor-serve"

// Node IDs of the floor's tree: / and /proc, then one per floorFiles entry.
const (
	floorRoot = fuse.FUSE_ROOT_ID
	floorProc = 2
	floorFile = 3
)

// floorFiles are what the floor server serves below proc/.
var floorFiles = []string{"meminfo", "stat", "cpuinfo", "uptime", "loadavg", "diskstats"}

// FUSE opcodes the floor answers (include/uapi/linux/fuse.h).
const (
	opLookup      = 1
	opForget      = 2
	opGetattr     = 3
	opOpen        = 14
	opRead        = 15
	opRelease     = 18
	opFlush       = 25
	opInit        = 26
	opInterrupt   = 36
	opDestroy     = 38
	opBatchForget = 42
)

const inHeaderSize = int(unsafe.Sizeof(fuse.InHeader{}))

type floorServer struct {
	fd   int
	data [][]byte
}

// bytesOf views a protocol struct as the bytes the kernel expects.
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func (s *floorServer) attr(ino uint64, a *fuse.Attr) {
	a.Ino = ino
	a.Nlink = 1
	if ino < floorFile {
		a.Mode = unix.S_IFDIR | 0o555
		a.Nlink = 2
		return
	}
	a.Mode = unix.S_IFREG | 0o444
}

func (s *floorServer) lookup(parent uint64, name []byte) uint64 {
	switch {
	case parent == floorRoot && string(name) == "proc":
		return floorProc
	case parent == floorProc:
		for i, n := range floorFiles {
			if n == string(name) {
				return floorFile + uint64(i)
			}
		}
	}
	return 0
}

// reply writes one answer: header, then payload.
func (s *floorServer) reply(out []byte, unique uint64, errno unix.Errno, payload []byte) error {
	n := int(unsafe.Sizeof(fuse.OutHeader{}))
	h := (*fuse.OutHeader)(unsafe.Pointer(&out[0]))
	*h = fuse.OutHeader{Length: uint32(n + len(payload)), Status: -int32(errno), Unique: unique}
	n += copy(out[n:], payload)
	_, err := unix.Write(s.fd, out[:n])
	if errors.Is(err, unix.ENOENT) { // the request was interrupted
		err = nil
	}
	return err
}

// handle answers one request; it returns false at DESTROY.
func (s *floorServer) handle(req, out []byte) (bool, error) {
	if len(req) < inHeaderSize {
		return true, fmt.Errorf("short request (%d bytes)", len(req))
	}
	h := (*fuse.InHeader)(unsafe.Pointer(&req[0]))
	body := req[inHeaderSize:]
	nfiles := uint64(len(s.data))
	switch h.Opcode {
	case opForget, opBatchForget, opInterrupt:
		return true, nil
	case opDestroy:
		return false, nil
	case opInit:
		in := (*fuse.InitIn)(unsafe.Pointer(&req[0]))
		o := fuse.InitOut{Major: 7, Minor: min(in.Minor, 31),
			MaxReadAhead: in.MaxReadAhead, MaxBackground: 64, CongestionThreshold: 48, MaxWrite: 64 << 10, TimeGran: 1}
		return true, s.reply(out, h.Unique, 0, bytesOf(&o))
	case opLookup:
		name, _, _ := bytes.Cut(body, []byte{0})
		ino := s.lookup(h.NodeId, name)
		if ino == 0 {
			return true, s.reply(out, h.Unique, unix.ENOENT, nil)
		}
		e := fuse.EntryOut{NodeId: ino}
		e.SetEntryTimeout(10e9)
		e.SetAttrTimeout(10e9)
		s.attr(ino, &e.Attr)
		return true, s.reply(out, h.Unique, 0, bytesOf(&e))
	case opGetattr:
		if h.NodeId >= floorFile+nfiles {
			return true, s.reply(out, h.Unique, unix.ENOENT, nil)
		}
		a := fuse.AttrOut{}
		a.SetTimeout(10e9)
		s.attr(h.NodeId, &a.Attr)
		return true, s.reply(out, h.Unique, 0, bytesOf(&a))
	case opOpen:
		if h.NodeId < floorFile || h.NodeId >= floorFile+nfiles {
			return true, s.reply(out, h.Unique, unix.EISDIR, nil)
		}
		o := fuse.OpenOut{Fh: h.NodeId, OpenFlags: fuse.FOPEN_DIRECT_IO}
		return true, s.reply(out, h.Unique, 0, bytesOf(&o))
	case opRead:
		if len(body) < 24 {
			return true, s.reply(out, h.Unique, unix.EINVAL, nil)
		}
		fh := binary.NativeEndian.Uint64(body)
		off := binary.NativeEndian.Uint64(body[8:])
		size := uint64(binary.NativeEndian.Uint32(body[16:]))
		if fh < floorFile || fh >= floorFile+nfiles {
			return true, s.reply(out, h.Unique, unix.EBADF, nil)
		}
		d := s.data[fh-floorFile]
		if off >= uint64(len(d)) {
			return true, s.reply(out, h.Unique, 0, nil)
		}
		d = d[off:]
		return true, s.reply(out, h.Unique, 0, d[:min(uint64(len(d)), size)])
	case opRelease, opFlush:
		return true, s.reply(out, h.Unique, 0, nil)
	}
	return true, s.reply(out, h.Unique, unix.ENOSYS, nil)
}

// worker serves requests on a locked thread until the connection ends.
func (s *floorServer) worker(errc chan<- error) {
	runtime.LockOSThread()
	req := make([]byte, 64<<10+4096)
	out := make([]byte, 128<<10+4096)
	for {
		n, err := unix.Read(s.fd, req)
		switch {
		case err == unix.EINTR || err == unix.ENOENT || err == unix.EAGAIN:
			continue
		case err == unix.ENODEV: // unmounted
			errc <- nil
			return
		case err != nil:
			errc <- fmt.Errorf("read /dev/fuse: %w", err)
			return
		}
		more, err := s.handle(req[:n], out)
		if err != nil {
			errc <- err
			return
		}
		if !more {
			errc <- nil
			return
		}
	}
}

// floorMain mounts the floor at args[0] and serves until SIGTERM or SIGINT,
// then unmounts.
func floorMain(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: bench %s MOUNTPOINT\n", floorCmd)
		return 2
	}
	mnt := args[0]
	s := &floorServer{}
	for _, n := range floorFiles {
		b, err := os.ReadFile(filepath.Join("/proc", n))
		if err != nil {
			fmt.Fprintln(stderr, "floor:", err)
			return 1
		}
		s.data = append(s.data, b)
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(stderr, "floor: open /dev/fuse:", err)
		return 1
	}
	s.fd = fd
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,max_read=%d", fd, 128<<10)
	if err := unix.Mount("floor", mnt, "fuse.floor", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		fmt.Fprintf(stderr, "floor: mount %s: %v\n", mnt, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGTERM, unix.SIGINT)
	const workers = 2
	errc := make(chan error, workers)
	for range workers {
		go s.worker(errc)
	}
	code := 0
	select {
	case <-sig:
	case err := <-errc:
		if err != nil {
			fmt.Fprintln(stderr, "floor:", err)
			code = 1
		}
	}
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		fmt.Fprintf(stderr, "floor: unmount %s: %v\n", mnt, err)
		code = 1
	}
	return code
}
