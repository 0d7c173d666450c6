// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package testenv

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// CopyTree copies the fixture tree src (directories and regular files) into
// a fresh temporary directory and returns it, for tests that change files.
func CopyTree(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close() //nolint:errcheck // read-only
		out, err := os.Create(to)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close() //nolint:errcheck,gosec // already failing
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatalf("copy fixture tree %s: %v", src, err)
	}
	return dst
}
