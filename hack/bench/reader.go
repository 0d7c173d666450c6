// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// readerCmd is the hidden subcommand the benchmark runs inside containers:
// `bench reader -path P -duration D [-ready FIFO -go FIFO]`.
const readerCmd = "reader"

// readerResult is what a reader prints to stdout as one JSON object.
type readerResult struct {
	Ops        uint64      `json:"ops"`
	Errors     uint64      `json:"errors"`
	FirstError string      `json:"firstError,omitempty"`
	ElapsedNS  int64       `json:"elapsedNs"`
	Bytes      int         `json:"bytes"`             // size of the last complete read
	Content    string      `json:"content,omitempty"` // first successful read, with -content
	Hist       [][2]uint64 `json:"hist"`              // sparse latency histogram, see hist
}

// readerMain runs the reader subcommand and returns the exit code.
func readerMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(readerCmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("path", "", "File to read, as the container sees it (e.g. /proc/meminfo).")
	duration := fs.Duration("duration", 3*time.Second, "How long to loop after the start signal.")
	count := fs.Int("count", 0, "Stop after this many reads (0: run for -duration).")
	ready := fs.String("ready", "", "FIFO to write one byte to once set up; with -go, the start barrier.")
	goFifo := fs.String("go", "", "FIFO whose EOF (all writers closed) starts the loop.")
	content := fs.Bool("content", false, "Include the text of the first successful read in the result.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "reader: -path is required and takes no arguments")
		return 2
	}
	res, err := readLoop(*path, *duration, *count, *ready, *goFifo, *content)
	if err != nil {
		fmt.Fprintln(stderr, "reader:", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "reader: write result:", err)
		return 1
	}
	return 0
}

// readLoop waits for the start barrier, then repeats open + read to EOF +
// close of path with raw syscalls and a 64 KiB buffer, timing each round.
func readLoop(path string, duration time.Duration, count int, ready, goFifo string, content bool) (*readerResult, error) {
	// One thread does every syscall: no thread migration between rounds.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64<<10)
	h := &hist{counts: make([]uint64, 40*subCount)} // room up to ~70 ms without growing
	res := &readerResult{}

	if goFifo != "" {
		// Open the start FIFO before announcing readiness: the benchmark
		// holds it open read-write, so this open does not block, and our
		// read below returns EOF once the benchmark closes it.
		gfd, err := unix.Open(goFifo, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open start fifo %s: %w", goFifo, err)
		}
		defer unix.Close(gfd) //nolint:errcheck // read-only fifo
		if ready != "" {
			if err := signalReady(ready); err != nil {
				return nil, err
			}
		}
		var b [1]byte
		for {
			n, err := unix.Read(gfd, b[:])
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("wait on start fifo %s: %w", goFifo, err)
			}
			if n == 0 {
				break
			}
		}
	} else if ready != "" {
		if err := signalReady(ready); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	deadline := start.Add(duration)
	prev := start
	for {
		var keep *[]byte
		if content && res.Content == "" {
			keep = new([]byte)
		}
		n, err := readOnce(path, buf, keep)
		now := time.Now()
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
		} else {
			h.record(int64(now.Sub(prev)))
			res.Ops++
			res.Bytes = n
			if keep != nil {
				res.Content = string(*keep)
			}
		}
		prev = now
		if count > 0 {
			if res.Ops+res.Errors >= uint64(count) {
				break
			}
		} else if !now.Before(deadline) {
			break
		}
	}
	res.ElapsedNS = int64(prev.Sub(start))
	res.Hist = h.sparse()
	return res, nil
}

// readOnce opens path, reads it to EOF into buf and closes it. It returns
// the number of bytes read. With keep non-nil, the file's text (up to
// len(buf) bytes per read call) is appended to *keep.
func readOnce(path string, buf []byte, keep *[]byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	total := 0
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			_ = unix.Close(fd) // the read error is the one to report
			return total, fmt.Errorf("read %s: %w", path, err)
		}
		if n == 0 {
			break
		}
		total += n
		if keep != nil {
			*keep = append(*keep, buf[:n]...)
		}
	}
	if err := unix.Close(fd); err != nil {
		return total, fmt.Errorf("close %s: %w", path, err)
	}
	return total, nil
}

// signalReady writes one byte to the ready FIFO, which the benchmark holds
// open for reading.
func signalReady(ready string) error {
	fd, err := unix.Open(ready, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open ready fifo %s: %w", ready, err)
	}
	_, werr := unix.Write(fd, []byte{'r'})
	cerr := unix.Close(fd)
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("signal ready on %s: %w", ready, err)
	}
	return nil
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
