// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// VersionPackage is the package whose Version variable the linker stamps.
const VersionPackage = "github.com/k8s-lxcfs/k8s-lxcfs/internal/version"

// BuildVersion builds cmd/k8s-lxcfs with its version stamped to version (as
// the Makefile does: -ldflags -X VersionPackage.Version=version) into a
// directory of t's, and returns the binary's path. Tests that need two
// distinguishable builds, such as upgrade tests, call it twice; the Go build
// cache makes the second build a link.
//
// Without a Go toolchain (the test VM), K8S_LXCFS_BIN names a prebuilt
// binary and is returned for every version; callers must then learn the
// version with `k8s-lxcfs version` instead of assuming it.
func BuildVersion(t testing.TB, version string) string {
	t.Helper()
	goBin := goTool()
	if p := os.Getenv("K8S_LXCFS_BIN"); p != "" && goBin == "" {
		t.Logf("no Go toolchain: using K8S_LXCFS_BIN=%s for version %q", p, version)
		return p
	}
	if goBin == "" {
		t.Fatal("no Go toolchain to build k8s-lxcfs (and no K8S_LXCFS_BIN)")
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("not inside the k8s-lxcfs module")
	}
	bin := filepath.Join(t.TempDir(), "k8s-lxcfs")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-X "+VersionPackage+".Version="+version, "-o", bin, "./cmd/k8s-lxcfs")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build k8s-lxcfs version %q: %v\n%s", version, err, out)
	}
	return bin
}

// goTool returns the go command in PATH, or "" if there is none.
func goTool() string {
	p, err := exec.LookPath("go")
	if err != nil {
		return ""
	}
	return p
}
