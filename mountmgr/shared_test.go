// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package mountmgr

import (
	"strings"
	"testing"
)

func TestMakeSharedBadInput(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"", "var/lib/lxcfs", "./lxcfs"} {
		if err := MakeShared(dir); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
			t.Errorf("MakeShared(%q) = %v; want an error saying it is not absolute", dir, err)
		}
	}
}
