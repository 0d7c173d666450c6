// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package daemon_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/stress"
)

// helperEnv makes the test binary a helper process instead of running
// tests: "alloc:MiB" allocates and touches that much memory, says so on
// stdout, and sleeps until killed. Containers run it to put their cgroup
// under memory pressure. stress.ReaderCmd runs a reader of the handover
// test (stress.ReaderMain with the remaining arguments).
const helperEnv = "K8S_LXCFS_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		if h == stress.ReaderCmd { // a reader of TestPrivHandoverUnderLoad
			os.Exit(stress.ReaderMain(os.Args[1:], os.Stdout, os.Stderr))
		}
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

var sink [][]byte

func helper(h string) int {
	var mib int
	if _, err := fmt.Sscanf(h, "alloc:%d", &mib); err != nil {
		fmt.Fprintln(os.Stderr, "unknown helper", h)
		return 2
	}
	for i := 0; i < mib; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = byte(i + j) // touch every page so it is charged
		}
		sink = append(sink, b)
		if i%8 == 7 {
			// Give reclaim time to write pages out: on slow (emulated)
			// disks a burst past the limit ends in the OOM killer instead.
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Println("allocated " + strconv.Itoa(mib))
	time.Sleep(time.Hour)
	return 0
}
