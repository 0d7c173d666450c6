// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CleanMtab removes the lines for our filesystem at or below mountPoint from
// a legacy, userspace-maintained mtab file such as /etc/mtab, and returns how
// many it removed. Tools that still write such a file (old mount(8),
// fusermount) leave a line behind when the daemon dies without unmounting,
// and df or mount then list a filesystem that is gone.
//
// A line is ours when its type is fuse.lxcfs, or fuse with source lxcfs (how
// older FUSE tools recorded lxcfs). Its mount point matches when it equals
// mountPoint or lies below it; fields are compared after decoding the octal
// escapes getmntent(3) uses (\040 for a space). All other lines are kept
// byte for byte.
//
// When mtabPath is a symlink (on current systems /etc/mtab links to
// /proc/self/mounts, which the kernel maintains) or does not exist, it does
// nothing. Otherwise mtabPath must be a regular file, and it is rewritten
// atomically: a temporary file in the same directory, with the same mode and
// owner, renamed over it. It does not take the legacy /etc/mtab~ lock.
func CleanMtab(mtabPath, mountPoint string) (removed int, err error) {
	if mtabPath == "" {
		return 0, errors.New("mountmgr: clean mtab: empty mtab path")
	}
	if !filepath.IsAbs(mountPoint) {
		return 0, fmt.Errorf("mountmgr: clean mtab %s: mount point %q is not an absolute path", mtabPath, mountPoint)
	}
	mountPoint = filepath.Clean(mountPoint)
	fi, err := os.Lstat(mtabPath)
	if errors.Is(err, iofs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("clean mtab: %w", err)
	}
	if fi.Mode()&iofs.ModeSymlink != 0 {
		return 0, nil // the kernel's table; nothing stale can be in it
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("clean mtab %s: not a regular file (mode %s)", mtabPath, fi.Mode())
	}
	data, err := os.ReadFile(mtabPath)
	if err != nil {
		return 0, fmt.Errorf("clean mtab: %w", err)
	}
	kept, removed := filterMtab(data, mountPoint)
	if removed == 0 {
		return 0, nil
	}
	if err := replaceFile(mtabPath, kept, fi); err != nil {
		return 0, fmt.Errorf("clean mtab: %w", err)
	}
	return removed, nil
}

// filterMtab returns data without the lines [CleanMtab] removes, and how many
// it removed. mountPoint is clean and absolute.
func filterMtab(data []byte, mountPoint string) ([]byte, int) {
	var kept bytes.Buffer
	kept.Grow(len(data))
	removed := 0
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if isOurMtabLine(string(line), mountPoint) {
			removed++
			continue
		}
		kept.Write(line)
	}
	return kept.Bytes(), removed
}

// isOurMtabLine reports whether an fstab(5)-format line records our
// filesystem at or below mountPoint.
func isOurMtabLine(line, mountPoint string) bool {
	f := strings.Fields(line)
	if len(f) < 3 || strings.HasPrefix(f[0], "#") {
		return false
	}
	source, target, fsType := unescapeOctal(f[0]), filepath.Clean(unescapeOctal(f[1])), unescapeOctal(f[2])
	if fsType != "fuse.lxcfs" && (fsType != "fuse" || source != "lxcfs") {
		return false
	}
	return target == mountPoint || strings.HasPrefix(target, mountPoint+"/") || mountPoint == "/"
}

// unescapeOctal decodes the \ooo escapes (three octal digits) that
// getmntent(3) and the kernel's mount tables use for space, tab, newline and
// backslash. Anything else is kept as is.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			if s[i+1] <= '3' { // \400 and above do not fit a byte
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// replaceFile atomically replaces path, whose current state is fi, with
// data: it writes a temporary file beside it with fi's mode and owner,
// syncs it and renames it over path.
func replaceFile(path string, data []byte, fi iofs.FileInfo) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file beside %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()           // already failed; the write error is the one to report
			_ = os.Remove(tmp.Name()) // best effort: do not leave a half-written copy
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
		if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", tmp.Name(), err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}
