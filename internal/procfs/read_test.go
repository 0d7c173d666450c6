// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// pattern returns n bytes that differ from page to page, so a read that
// skips or repeats a chunk shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/4096)
	}
	return b
}

func TestReadFileSizes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sizes := []int{0, 1, 100, 4095, 4096, 4097, 8191, 8192, 8193, 12287, 12288, 16384, 100000, 1 << 20, MaxFileSize/2 + 1}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			want := pattern(n)
			p := filepath.Join(dir, fmt.Sprint(n))
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(p)
			if err != nil {
				t.Fatalf("ReadFile(%d bytes) = %v", n, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ReadFile(%d bytes) returned %d bytes that differ", n, len(got))
			}
		})
	}
}

func TestReadFileTooLarge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		size int
	}{
		{name: "twice the bound", size: 2 * MaxFileSize},
		{name: "a MiB over", size: MaxFileSize + 1<<20},
		{name: "one byte over", size: MaxFileSize + 1},
		{name: "a page over", size: MaxFileSize + 4096},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "big")
			if err := os.WriteFile(p, pattern(tc.size), 0o644); err != nil {
				t.Fatal(err)
			}
			if b, err := ReadFile(p); err == nil {
				t.Fatalf("ReadFile(%d bytes) = %d bytes, want an error", tc.size, len(b))
			}
		})
	}
}

func TestReadFileAtMaxFileSize(t *testing.T) {
	t.Parallel()
	for _, n := range []int{MaxFileSize - 4097, MaxFileSize - 100, MaxFileSize} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "max")
			want := pattern(n)
			if err := os.WriteFile(p, want, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadFile(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("ReadFile(%d bytes) = %d bytes, %v; want the file", n, len(got), err)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name         string
		path         string
		wantNotExist bool
	}{
		{name: "missing", path: filepath.Join(dir, "nope"), wantNotExist: true},
		{name: "missing parent", path: filepath.Join(dir, "nope", "file"), wantNotExist: true},
		{name: "directory", path: dir, wantNotExist: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := ReadFile(tc.path)
			if err == nil {
				t.Fatalf("ReadFile(%s) = %q, want an error", tc.path, b)
			}
			if IsNotExist(err) != tc.wantNotExist {
				t.Errorf("IsNotExist(%v) = %v, want %v", err, !tc.wantNotExist, tc.wantNotExist)
			}
			var pe *os.PathError
			if !errors.As(err, &pe) || pe.Path != tc.path {
				t.Errorf("ReadFile error %v is not a PathError naming the file", err)
			}
		})
	}
}

func TestReadFileProc(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"/proc/self/stat", "/proc/self/status", "/proc/meminfo", "/proc/stat", "/proc/self/cgroup"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := ReadFile(name)
			if err != nil {
				if os.IsNotExist(err) {
					t.Skipf("no %s here", name)
				}
				t.Fatal(err)
			}
			if len(b) == 0 || b[len(b)-1] != '\n' {
				t.Errorf("ReadFile(%s) = %d bytes without a final newline: a short read was taken for the end?", name, len(b))
			}
		})
	}
}

func TestIsNotExist(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "nil", err: nil, want: false},
		{name: "ENOENT", err: syscall.ENOENT, want: true},
		{name: "wrapped ENOENT", err: fmt.Errorf("read x: %w", &os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}), want: true},
		{name: "ESRCH", err: &os.PathError{Op: "read", Path: "/proc/1/stat", Err: syscall.ESRCH}, want: true},
		{name: "ENODEV", err: syscall.ENODEV, want: true},
		{name: "os.ErrNotExist", err: os.ErrNotExist, want: true},
		{name: "EACCES", err: syscall.EACCES, want: false},
		{name: "other", err: errors.New("boom"), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := IsNotExist(tc.err); got != tc.want {
				t.Errorf("IsNotExist(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// FuzzReadFile writes arbitrary content to a regular file and checks that
// ReadFile returns it unchanged.
func FuzzReadFile(f *testing.F) {
	f.Add([]byte("MemTotal:       24683620 kB\n"))
	f.Add(bytes.Repeat([]byte{'x'}, 4097))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("ReadFile of %d bytes = %d bytes, %v", len(b), len(got), err)
		}
	})
}
