// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package fs

import (
	"hash/fnv"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// kind is what a path is for a given reader.
type kind uint8

const (
	kindNone kind = iota
	kindDir
	kindFile    // rendered by us
	kindHost    // a host file passed through (sysfs cpu tree)
	kindHostDir // a host directory passed through
	kindLink    // a host symlink passed through
)

// procFiles are the /proc files we render, in listing order.
var procFiles = []string{"meminfo", "cpuinfo", "stat", "uptime", "loadavg", "diskstats", "swaps", "slabinfo"}

// pressureFiles are the PSI files under proc/pressure.
var pressureFiles = []string{"cpu", "memory", "io"}

// cpuListFiles are the files of sys/devices/system/cpu we render.
var cpuListFiles = []string{"online", "possible", "present", "offline"}

const cpuDir = "sys/devices/system/cpu"

// staticDirs maps each fixed directory to its fixed children.
func (f *FS) staticDirs() map[string][]string {
	proc := append([]string{}, procFiles...)
	if f.hasPressure {
		proc = append(proc, "pressure")
	}
	return map[string][]string{
		"":                   {"proc", "sys"},
		"proc":               proc,
		"proc/pressure":      pressureFiles,
		"sys":                {"devices"},
		"sys/devices":        {"system"},
		"sys/devices/system": {"cpu"},
	}
}

// nodeID maps a path to its node ID: FNV-1a of the path, never 0 or 1 (the
// root). Every version of the daemon computes the same ID for the same path,
// which is what lets a successor serve the IDs the kernel already holds.
func nodeID(p string) uint64 {
	if p == "" {
		return 1
	}
	h := fnv.New64a()
	h.Write([]byte(p)) //nolint:errcheck // hash writes don't fail
	id := h.Sum64()
	if id <= 1 || id == ^uint64(0) {
		id ^= 0x5bd1e995
	}
	return id
}

// entry is what a path is for one reader.
type entry struct {
	kind kind
	// host is the host path for kindHost, kindHostDir and kindLink.
	host string
	// dynamic entries differ between readers, so the kernel must not cache them.
	dynamic bool
}

// lookupPath says what p is for the reader whose visible CPU count is given by
// vis (called lazily: only paths under the cpu directory need it).
func (f *FS) lookupPath(p string, vis func() cpuView) entry {
	if kids, ok := f.dirs[p]; ok && kids != nil {
		if p == "proc/pressure" && !f.hasPressure {
			return entry{}
		}
		return entry{kind: kindDir}
	}
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch dir {
	case "proc":
		if contains(procFiles, name) {
			return entry{kind: kindFile}
		}
		return entry{}
	case "proc/pressure":
		if f.hasPressure && contains(pressureFiles, name) {
			return entry{kind: kindFile}
		}
		return entry{}
	}
	if p == cpuDir {
		return entry{kind: kindDir, dynamic: true}
	}
	rest, ok := strings.CutPrefix(p, cpuDir+"/")
	if !ok {
		return entry{}
	}
	first, sub, _ := strings.Cut(rest, "/")
	if sub == "" && contains(cpuListFiles, first) {
		return entry{kind: kindFile, dynamic: true}
	}
	hostFirst := first
	if n, isCPU := cpuIndex(first); isCPU {
		v := vis().visible
		if n >= len(v) {
			return entry{}
		}
		hostFirst = "cpu" + strconv.Itoa(v[n])
	}
	hp := f.opts.SysRoot + "/devices/system/cpu/" + hostFirst
	if sub != "" {
		hp += "/" + sub
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(hp, &st); err != nil {
		return entry{}
	}
	e := entry{host: hp, dynamic: true}
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		e.kind = kindHostDir
	case syscall.S_IFLNK:
		e.kind = kindLink
	case syscall.S_IFREG:
		e.kind = kindHost
	default:
		return entry{}
	}
	return e
}

// cpuIndex reports whether name is "cpuN" and returns N.
func cpuIndex(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "cpu")
	if !ok || s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// dirent is one directory listing entry.
type dirent struct {
	name string
	mode uint32
	id   uint64
}

// listDir returns the children of directory p for a reader.
func (f *FS) listDir(p string, vis func() cpuView) []dirent {
	var out []dirent
	add := func(name string, mode uint32) {
		child := name
		if p != "" {
			child = p + "/" + name
		}
		out = append(out, dirent{name: name, mode: mode, id: nodeID(child)})
	}
	if kids, ok := f.dirs[p]; ok {
		for _, k := range kids {
			if _, isDir := f.dirs[joinPath(p, k)]; isDir || joinPath(p, k) == cpuDir {
				add(k, syscall.S_IFDIR)
			} else {
				add(k, syscall.S_IFREG)
			}
		}
		return out
	}
	if p == cpuDir {
		for _, k := range cpuListFiles {
			add(k, syscall.S_IFREG)
		}
		for i := range vis().visible {
			add("cpu"+strconv.Itoa(i), syscall.S_IFDIR)
		}
		ents, _ := os.ReadDir(f.opts.SysRoot + "/devices/system/cpu")
		for _, e := range ents {
			if _, isCPU := cpuIndex(e.Name()); isCPU || contains(cpuListFiles, e.Name()) {
				continue
			}
			add(e.Name(), modeOf(e.Type()))
		}
		return out
	}
	e := f.lookupPath(p, vis)
	if e.kind != kindHostDir {
		return nil
	}
	ents, _ := os.ReadDir(e.host)
	for _, de := range ents {
		add(de.Name(), modeOf(de.Type()))
	}
	return out
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func modeOf(t os.FileMode) uint32 {
	switch {
	case t.IsDir():
		return syscall.S_IFDIR
	case t&os.ModeSymlink != 0:
		return syscall.S_IFLNK
	}
	return syscall.S_IFREG
}

// Files returns the paths, relative to the mount point, of the files
// containers bind over their own: every /proc file and the CPU list files.
// While the daemon is down a container runtime may create missing ones as
// empty directories; the daemon removes those before mounting.
func Files() []string {
	var out []string
	for _, n := range procFiles {
		out = append(out, "proc/"+n)
	}
	for _, n := range pressureFiles {
		out = append(out, "proc/pressure/"+n)
	}
	for _, n := range cpuListFiles {
		out = append(out, "sys/devices/system/cpu/"+n)
	}
	return out
}
