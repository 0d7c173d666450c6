// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package upgrade

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// PauseEnv names a test hook: "STEP=DURATION" makes this process sleep at
// STEP of a handover, so a test can kill -9 one side at a precise point.
// STEP is one of
//
//	stopped   predecessor: quiesced, state not sent yet
//	received  successor: state and descriptors received, adopted not sent
//	adopted   predecessor: adopted received, release not sent
//
// It exists for the privileged tests; nothing sets it in production.
const PauseEnv = "K8S_LXCFS_TEST_HANDOVER_PAUSE"

var pauseStep, pauseFor = parsePause(os.Getenv(PauseEnv))

func parsePause(v string) (string, time.Duration) {
	step, d, ok := strings.Cut(v, "=")
	if !ok {
		return "", 0
	}
	dur, err := time.ParseDuration(d)
	if err != nil || dur <= 0 {
		return "", 0
	}
	return step, dur
}

// pause sleeps if the test hook names step.
func pause(step string) {
	if pauseStep == step {
		fmt.Fprintf(os.Stderr, "k8s-lxcfs: test pause at handover step %s for %s\n", step, pauseFor)
		time.Sleep(pauseFor)
	}
}
