// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// legacyMtab is an /etc/mtab as old mount(8) and fusermount wrote it, with
// our lines among others, getmntent(3) escapes and odd whitespace.
const legacyMtab = `/dev/sda1 / ext4 rw,errors=remount-ro 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
lxcfs /var/lib/lxcfs fuse.lxcfs rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other 0 0
lxcfs /var/lib/lxcfs/proc/meminfo fuse.lxcfs rw,nosuid,nodev 0 0
lxcfs /var/lib/lxcfs2 fuse.lxcfs rw,nosuid,nodev 0 0
lxcfs /var/lib/lxc\040fs fuse.lxcfs rw,nosuid,nodev 0 0
lxcfs	/var/lib/lxcfs	fuse	rw,nosuid,nodev,allow_other	0	0
sshfs#me@host: /var/lib/lxcfs/remote fuse rw,nosuid,nodev 0 0
tmpfs /var/lib/lxcfs tmpfs rw,size=1024k  0 0
/dev/sdb1 /mnt/back\134slash\011tab ext4 rw 0 0
lxcfs /var/lib/lxcfs/sys fuse.lxcfs rw 0 0`

func TestFilterMtab(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		mountPoint string
		want       string
		removed    int
	}{
		{
			name:       "mount point and below",
			mountPoint: "/var/lib/lxcfs",
			want: `/dev/sda1 / ext4 rw,errors=remount-ro 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
lxcfs /var/lib/lxcfs2 fuse.lxcfs rw,nosuid,nodev 0 0
lxcfs /var/lib/lxc\040fs fuse.lxcfs rw,nosuid,nodev 0 0
sshfs#me@host: /var/lib/lxcfs/remote fuse rw,nosuid,nodev 0 0
tmpfs /var/lib/lxcfs tmpfs rw,size=1024k  0 0
/dev/sdb1 /mnt/back\134slash\011tab ext4 rw 0 0
`,
			removed: 4,
		},
		{
			name:       "escaped space",
			mountPoint: "/var/lib/lxc fs/",
			want:       strings.Replace(legacyMtab, "lxcfs /var/lib/lxc\\040fs fuse.lxcfs rw,nosuid,nodev 0 0\n", "", 1),
			removed:    1,
		},
		{
			name:       "nothing of ours",
			mountPoint: "/srv/lxcfs",
			want:       legacyMtab,
			removed:    0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, removed := filterMtab([]byte(legacyMtab), filepath.Clean(tc.mountPoint))
			if string(got) != tc.want || removed != tc.removed {
				t.Errorf("filterMtab(%q) removed %d (want %d):\n%s\nwant:\n%s", tc.mountPoint, removed, tc.removed, got, tc.want)
			}
		})
	}
}

func TestUnescapeOctal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/plain`:           "/plain",
		`/a\040b`:          "/a b",
		`/a\011b\012c`:     "/a\tb\nc",
		`/back\134slash`:   `/back\slash`,
		`/short\04`:        `/short\04`,
		`/not\08octal`:     `/not\08octal`,
		`/big\477`:         `/big\477`,
		`/end\`:            `/end\`,
		`\040lead\040tail`: " lead tail",
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanMtab(t *testing.T) {
	t.Parallel()
	t.Run("regular file rewritten atomically", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		mtab := filepath.Join(dir, "mtab")
		if err := os.WriteFile(mtab, []byte(legacyMtab), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(mtab, 0o640); err != nil { // umask-proof
			t.Fatal(err)
		}
		before := inode(t, mtab)
		n, err := CleanMtab(mtab, "/var/lib/lxcfs")
		if err != nil || n != 4 {
			t.Fatalf("CleanMtab = %d, %v; want 4, nil", n, err)
		}
		got, err := os.ReadFile(mtab)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := filterMtab([]byte(legacyMtab), "/var/lib/lxcfs"); string(got) != string(want) {
			t.Errorf("mtab after cleaning:\n%s\nwant:\n%s", got, want)
		}
		fi, err := os.Stat(mtab)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o640 {
			t.Errorf("mode after cleaning = %v, want -rw-r-----", fi.Mode())
		}
		if inode(t, mtab) == before {
			t.Error("mtab rewritten in place; want a new file renamed over it")
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("directory holds %d entries after cleaning, want only mtab (temporary file left?)", len(ents))
		}
		if n, err := CleanMtab(mtab, "/var/lib/lxcfs"); err != nil || n != 0 {
			t.Errorf("CleanMtab again = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("untouched when nothing matches", func(t *testing.T) {
		t.Parallel()
		mtab := filepath.Join(t.TempDir(), "mtab")
		if err := os.WriteFile(mtab, []byte(legacyMtab), 0o644); err != nil {
			t.Fatal(err)
		}
		before := inode(t, mtab)
		if n, err := CleanMtab(mtab, "/srv/other"); err != nil || n != 0 {
			t.Fatalf("CleanMtab = %d, %v; want 0, nil", n, err)
		}
		if inode(t, mtab) != before {
			t.Error("mtab replaced although nothing was removed")
		}
	})
	t.Run("symlink left alone", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		target := filepath.Join(dir, "mounts")
		if err := os.WriteFile(target, []byte(legacyMtab), 0o644); err != nil {
			t.Fatal(err)
		}
		mtab := filepath.Join(dir, "mtab")
		if err := os.Symlink(target, mtab); err != nil {
			t.Fatal(err)
		}
		if n, err := CleanMtab(mtab, "/var/lib/lxcfs"); err != nil || n != 0 {
			t.Fatalf("CleanMtab(symlink) = %d, %v; want 0, nil", n, err)
		}
		if got, _ := os.ReadFile(target); string(got) != legacyMtab {
			t.Error("symlink target changed")
		}
		if l, err := os.Readlink(mtab); err != nil || l != target {
			t.Errorf("symlink now %q, %v; want it kept", l, err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		if n, err := CleanMtab(filepath.Join(t.TempDir(), "mtab"), "/var/lib/lxcfs"); err != nil || n != 0 {
			t.Errorf("CleanMtab(missing) = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		for _, tc := range []struct{ mtab, mountPoint, wantErr string }{
			{mtab: dir, mountPoint: "/var/lib/lxcfs", wantErr: "not a regular file"},
			{mtab: filepath.Join(dir, "mtab"), mountPoint: "var/lib/lxcfs", wantErr: "not an absolute path"},
			{mtab: filepath.Join(dir, "mtab"), mountPoint: "", wantErr: "not an absolute path"},
			{mtab: "", mountPoint: "/var/lib/lxcfs", wantErr: "empty mtab path"},
		} {
			if _, err := CleanMtab(tc.mtab, tc.mountPoint); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("CleanMtab(%q, %q) error = %v; want it to say %q", tc.mtab, tc.mountPoint, err, tc.wantErr)
			}
		}
	})
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
