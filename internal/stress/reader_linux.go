// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package stress

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ReaderCmd names the reader: the bench's hidden subcommand, and the value of
// the daemon tests' helper environment variable.
const ReaderCmd = "stress-reader"

// Read outcomes, as stored in a [Record].
const (
	ReadOK     = 0 // read to EOF, MemTotal as expected
	ReadFailed = 1 // open, read or close returned an error
	ReadWrong  = 2 // read fine, but MemTotal was not the reader's limit
)

// Record is one read: open, read to EOF, close.
type Record struct {
	StartNS int64 // CLOCK_MONOTONIC at open
	DurNS   int64 // open to close returning
	Status  uint32
}

const recordSize = 8 + 8 + 4

// ReaderSummary is what a reader prints to stdout as one JSON object when it
// stops. Its per-read records are in the file named by Records.
type ReaderSummary struct {
	Reads        uint64 `json:"reads"`
	Failed       uint64 `json:"failed"`
	Wrong        uint64 `json:"wrong"`
	FirstFailure string `json:"firstFailure,omitempty"`
	FirstWrong   string `json:"firstWrong,omitempty"`
	// HeldReads and HeldFailed count the preads on the file held open
	// across handovers (-poke); failures include wrong content.
	HeldReads  uint64 `json:"heldReads,omitempty"`
	HeldFailed uint64 `json:"heldFailed,omitempty"`
	Records    string `json:"records"`
}

// readerFlags is the reader's command line.
type readerFlags struct {
	path         string
	wantKB       uint64
	ready, start string
	stop         string
	out          string
	poke, ack    string
	gap          time.Duration
}

// ReaderMain runs a reader and returns its exit code:
//
//	stress-reader -path /proc/meminfo -want-kb N -ready FIFO -go FIFO -stop FIFO -out FILE [-poke FIFO -ack FIFO] [-gap D]
//
// It writes one byte to -ready once set up, starts reading when -go reaches
// EOF, and stops when -stop does. Each round opens -path, reads it to EOF,
// checks that MemTotal is -want-kb and closes it. With -poke it opens -path
// once before announcing readiness and keeps that file open: for every byte
// arriving on -poke it preads it at offset 0, checks it the same way and
// answers one line on -ack ("ok KB", "fail ERROR" or "wrong LINE").
func ReaderMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(ReaderCmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f readerFlags
	fs.StringVar(&f.path, "path", "/proc/meminfo", "File to read, as the container sees it.")
	fs.Uint64Var(&f.wantKB, "want-kb", 0, "MemTotal the file must show, in kB: the reader's cgroup memory limit.")
	fs.StringVar(&f.ready, "ready", "", "FIFO to write one byte to once set up.")
	fs.StringVar(&f.start, "go", "", "FIFO whose EOF starts the loop.")
	fs.StringVar(&f.stop, "stop", "", "FIFO whose EOF stops the loop.")
	fs.StringVar(&f.out, "out", "", "File to write the per-read records to.")
	fs.StringVar(&f.poke, "poke", "", "FIFO: each byte asks for a pread of the held file.")
	fs.StringVar(&f.ack, "ack", "", "FIFO to answer each poke on, one line each.")
	fs.DurationVar(&f.gap, "gap", 0, "Pause between reads (0: a tight loop).")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 || f.wantKB == 0 || f.ready == "" || f.start == "" || f.stop == "" || f.out == "" || (f.poke == "") != (f.ack == "") {
		fmt.Fprintln(stderr, ReaderCmd+": need -want-kb, -ready, -go, -stop and -out (and -poke with -ack), and no arguments")
		return 2
	}
	sum, err := runReader(f)
	if err != nil {
		fmt.Fprintln(stderr, ReaderCmd+":", err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(sum); err != nil {
		fmt.Fprintln(stderr, ReaderCmd+": write summary:", err)
		return 1
	}
	return 0
}

// clock converts time.Now readings into CLOCK_MONOTONIC nanoseconds without
// a system call per read: Go's monotonic clock is CLOCK_MONOTONIC, so the
// offset taken once stays exact.
type clock struct {
	base   time.Time
	baseNS int64
}

func newClock() clock {
	return clock{base: time.Now(), baseNS: monoNow()}
}

func (c clock) ns(t time.Time) int64 { return c.baseNS + int64(t.Sub(c.base)) }

// monoNow reads CLOCK_MONOTONIC, the clock the readers stamp reads with.
func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // cannot fail for CLOCK_MONOTONIC
	return ts.Nano()
}

func runReader(f readerFlags) (*ReaderSummary, error) {
	// One thread does the reads: no migration between rounds.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	heldFd := -1
	var pokeFd, ackFd int
	if f.poke != "" {
		// Opened before readiness, so before the first handover.
		fd, err := unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open held %s: %w", f.path, err)
		}
		heldFd = fd
		defer unix.Close(heldFd) //nolint:errcheck // read-only
		if pokeFd, err = unix.Open(f.poke, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("open poke fifo %s: %w", f.poke, err)
		}
		defer unix.Close(pokeFd) //nolint:errcheck // fifo
		if ackFd, err = unix.Open(f.ack, unix.O_WRONLY|unix.O_CLOEXEC, 0); err != nil {
			return nil, fmt.Errorf("open ack fifo %s: %w", f.ack, err)
		}
		defer unix.Close(ackFd) //nolint:errcheck // fifo
	}
	// The orchestrator holds both FIFOs open read-write, so these opens do
	// not block, and reads return EOF once it closes its end.
	goFd, err := unix.Open(f.start, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open start fifo %s: %w", f.start, err)
	}
	defer unix.Close(goFd) //nolint:errcheck // fifo
	stopFd, err := unix.Open(f.stop, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open stop fifo %s: %w", f.stop, err)
	}
	defer unix.Close(stopFd) //nolint:errcheck // fifo
	if err := writeByte(f.ready); err != nil {
		return nil, err
	}
	if err := waitEOF(goFd); err != nil {
		return nil, fmt.Errorf("wait on start fifo %s: %w", f.start, err)
	}

	var stopped atomic.Bool
	stopErr := make(chan error, 1)
	go func() {
		err := waitEOF(stopFd)
		stopped.Store(true)
		stopErr <- err
	}()
	sum := &ReaderSummary{Records: f.out}
	var held heldCounts
	heldDone := make(chan struct{})
	if heldFd >= 0 {
		go func() {
			defer close(heldDone)
			serveHeld(heldFd, pokeFd, ackFd, f.wantKB, &held)
		}()
	} else {
		close(heldDone)
	}

	clk := newClock()
	buf := make([]byte, 64<<10)
	recs := make([]Record, 0, 1<<16)
	for !stopped.Load() {
		t0 := time.Now()
		n, err := readAll(f.path, buf)
		t1 := time.Now()
		r := Record{StartNS: clk.ns(t0), DurNS: int64(t1.Sub(t0))}
		switch {
		case err != nil:
			r.Status = ReadFailed
			sum.Failed++
			if sum.FirstFailure == "" {
				sum.FirstFailure = fmt.Sprintf("%s at +%s", err, time.Duration(r.StartNS-clk.baseNS))
			}
		default:
			if msg := checkMemTotal(buf[:n], f.wantKB); msg != "" {
				r.Status = ReadWrong
				sum.Wrong++
				if sum.FirstWrong == "" {
					sum.FirstWrong = msg
				}
			}
		}
		sum.Reads++
		recs = append(recs, r)
		if f.gap > 0 {
			time.Sleep(f.gap)
		}
	}
	if err := <-stopErr; err != nil {
		return nil, fmt.Errorf("wait on stop fifo %s: %w", f.stop, err)
	}
	if heldFd >= 0 {
		// The orchestrator closes the poke FIFO before the stop FIFO, so
		// serveHeld sees EOF and returns.
		<-heldDone
		sum.HeldReads, sum.HeldFailed = held.reads.Load(), held.failed.Load()
	}
	if err := writeRecords(f.out, recs); err != nil {
		return nil, err
	}
	return sum, nil
}

type heldCounts struct {
	reads, failed atomic.Uint64
}

// serveHeld answers pokes until the poke FIFO reaches EOF.
func serveHeld(heldFd, pokeFd, ackFd int, wantKB uint64, c *heldCounts) {
	runtime.LockOSThread() // the pread is a FUSE request; keep it off the reading thread
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64<<10)
	var b [1]byte
	for {
		n, err := unix.Read(pokeFd, b[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		c.reads.Add(1)
		var line string
		m, err := unix.Pread(heldFd, buf, 0)
		switch {
		case err != nil:
			line = "fail pread: " + err.Error()
		case m == 0:
			line = "fail pread: empty"
		default:
			if msg := checkMemTotal(buf[:m], wantKB); msg != "" {
				line = "wrong " + msg
			} else {
				line = "ok " + strconv.FormatUint(wantKB, 10)
			}
		}
		if line[:2] != "ok" {
			c.failed.Add(1)
		}
		if _, err := unix.Write(ackFd, []byte(line+"\n")); err != nil {
			return
		}
	}
}

// readAll opens path, reads it to EOF into buf and closes it.
func readAll(path string, buf []byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	total := 0
	for {
		if total == len(buf) {
			_ = unix.Close(fd) // the size problem is the one to report
			return total, fmt.Errorf("read %s: more than %d bytes", path, len(buf))
		}
		n, err := unix.Read(fd, buf[total:])
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
	}
	if err := unix.Close(fd); err != nil {
		return total, fmt.Errorf("close %s: %w", path, err)
	}
	return total, nil
}

// checkMemTotal returns "" if b's MemTotal line shows wantKB, else what it
// shows instead.
func checkMemTotal(b []byte, wantKB uint64) string {
	kb, ok := memTotalKB(b)
	switch {
	case !ok:
		line, _, _ := bytes.Cut(b, []byte("\n"))
		return fmt.Sprintf("no MemTotal line; first line %q (%d bytes)", line, len(b))
	case kb != wantKB:
		return fmt.Sprintf("MemTotal %d kB, want %d kB", kb, wantKB)
	}
	return ""
}

// memTotalKB parses "MemTotal:   N kB" in meminfo text.
func memTotalKB(b []byte) (uint64, bool) {
	const key = "MemTotal:"
	i := bytes.Index(b, []byte(key))
	if i < 0 || (i > 0 && b[i-1] != '\n') {
		return 0, false
	}
	rest := b[i+len(key):]
	if j := bytes.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	f := bytes.Fields(rest)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, false
	}
	kb, err := strconv.ParseUint(string(f[0]), 10, 64)
	return kb, err == nil
}

func waitEOF(fd int) error {
	var b [1]byte
	for {
		n, err := unix.Read(fd, b[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
	}
}

// writeByte writes one byte to a FIFO the orchestrator holds open.
func writeByte(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	_, werr := unix.Write(fd, []byte{'r'})
	cerr := unix.Close(fd)
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeRecords writes recs to path, little-endian, recordSize bytes each.
func writeRecords(path string, recs []Record) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create records file: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var b [recordSize]byte
	for _, r := range recs {
		binary.LittleEndian.PutUint64(b[0:], uint64(r.StartNS))
		binary.LittleEndian.PutUint64(b[8:], uint64(r.DurNS))
		binary.LittleEndian.PutUint32(b[16:], r.Status)
		if _, err := w.Write(b[:]); err != nil {
			_ = f.Close() // already failing
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadRecords reads a file written by a reader.
func ReadRecords(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	if len(b)%recordSize != 0 {
		return nil, fmt.Errorf("records file %s: %d bytes is not a multiple of %d", path, len(b), recordSize)
	}
	recs := make([]Record, len(b)/recordSize)
	for i := range recs {
		p := b[i*recordSize:]
		recs[i] = Record{
			StartNS: int64(binary.LittleEndian.Uint64(p[0:])),
			DurNS:   int64(binary.LittleEndian.Uint64(p[8:])),
			Status:  binary.LittleEndian.Uint32(p[16:]),
		}
	}
	return recs, nil
}
