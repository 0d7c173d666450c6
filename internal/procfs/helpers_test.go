// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"os"
	"path/filepath"
	"testing"
)

// hostDir holds files copied from a real host; see testdata/README.md.
const hostDir = "testdata/epyc-6.18-hybrid"

// hostFile returns a file of hostDir.
func hostFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(hostDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
