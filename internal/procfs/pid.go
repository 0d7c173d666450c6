// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"bytes"
	"fmt"
	"strconv"
)

// PidStat holds the fields of /proc/PID/stat that k8s-lxcfs uses.
type PidStat struct {
	State     byte
	PPid      int
	StartTime uint64 // clock ticks after boot
}

// ParsePidStat parses /proc/PID/stat. The command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func ParsePidStat(b []byte) (PidStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return PidStat{}, fmt.Errorf("pid stat %.40q: no command name", b)
	}
	f := bytes.Fields(b[i+1:])
	// After the name: state(3) ppid(4) ... starttime(22) → index 19 here.
	if len(f) < 20 || len(f[0]) != 1 {
		return PidStat{}, fmt.Errorf("pid stat %.40q: too few fields", b)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return PidStat{}, fmt.Errorf("pid stat ppid %q: %w", f[1], err)
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return PidStat{}, fmt.Errorf("pid stat starttime %q: %w", f[19], err)
	}
	return PidStat{State: f[0][0], PPid: ppid, StartTime: start}, nil
}

// ParseNSpid returns the "NSpid:" ids of /proc/PID/status, outermost first:
// the last one is the pid inside the process's own pid namespace.
func ParseNSpid(status []byte) ([]int, error) {
	for len(status) > 0 {
		var line []byte
		line, status, _ = bytes.Cut(status, []byte{'\n'})
		rest, ok := bytes.CutPrefix(line, []byte("NSpid:"))
		if !ok {
			continue
		}
		var ids []int
		for _, f := range bytes.Fields(rest) {
			v, err := strconv.Atoi(string(f))
			if err != nil {
				return nil, fmt.Errorf("status NSpid %q: %w", rest, err)
			}
			ids = append(ids, v)
		}
		if len(ids) == 0 {
			return nil, fmt.Errorf("status NSpid: empty")
		}
		return ids, nil
	}
	return nil, fmt.Errorf("status: no NSpid line")
}

// ParseUptime parses /proc/uptime into seconds of uptime and of idle
// (summed over CPUs), both in hundredths.
func ParseUptime(b []byte) (up, idle uint64, err error) {
	f := bytes.Fields(b)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("uptime %q: want two fields", b)
	}
	if up, err = parseCentis(f[0]); err != nil {
		return 0, 0, fmt.Errorf("uptime %q: %w", b, err)
	}
	if idle, err = parseCentis(f[1]); err != nil {
		return 0, 0, fmt.Errorf("uptime %q: %w", b, err)
	}
	return up, idle, nil
}

// parseCentis parses "123.45" into 12345 without going through floats.
func parseCentis(b []byte) (uint64, error) {
	ip, fp, _ := bytes.Cut(b, []byte{'.'})
	i, err := strconv.ParseUint(string(ip), 10, 64)
	if err != nil {
		return 0, err
	}
	var f uint64
	for k := 0; k < 2; k++ {
		f *= 10
		if k < len(fp) {
			if fp[k] < '0' || fp[k] > '9' {
				return 0, fmt.Errorf("bad fraction %q", fp)
			}
			f += uint64(fp[k] - '0')
		}
	}
	if i > (1<<63)/100 {
		return 0, fmt.Errorf("value %q out of range", b)
	}
	return i*100 + f, nil
}
