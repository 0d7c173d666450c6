// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// MaxFileSize bounds how much of a kernel file ReadFile reads. Host /proc/stat
// on very large machines is the biggest input we take (about 1 MiB for 1024
// CPUs with interrupt counts); anything larger is refused rather than grown into.
const MaxFileSize = 4 << 20

// ReadFile reads a /proc, /sys or cgroupfs file completely, in as few
// system calls as it can: open, read, close. It does not trust st_size (0 on
// those filesystems) and doesn't stat at all; a read that leaves more than a
// page of the buffer empty is taken as the end of the file, which holds for
// the kernel's seq_file, as it fills the buffer while records remain. On
// virtual machines where each system call costs microseconds, that is a third
// fewer than os.ReadFile's open, fstat, read, read, close.
// The total is bounded at MaxFileSize.
func ReadFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd) //nolint:errcheck // read-only file
	buf := make([]byte, 0, 8192)
	for {
		if len(buf) > MaxFileSize {
			return nil, fmt.Errorf("read %s: larger than %d bytes", path, MaxFileSize)
		}
		if cap(buf)-len(buf) < 4096 {
			// One byte of room past the bound, so an oversized file is seen.
			grown := make([]byte, len(buf), min(2*cap(buf), MaxFileSize+4097))
			copy(grown, buf)
			buf = grown
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		room := cap(buf) - len(buf)
		buf = buf[:len(buf)+n]
		if len(buf) > MaxFileSize {
			return nil, fmt.Errorf("read %s: larger than %d bytes", path, MaxFileSize)
		}
		if n == 0 || room-n > 4096 {
			return buf, nil
		}
	}
}

// IsNotExist reports whether err means the file, process or cgroup is gone:
// ENOENT, ESRCH (a process exiting under /proc/PID) or ENODEV (a cgroup removed
// while open).
func IsNotExist(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENODEV)
}
