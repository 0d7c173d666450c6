// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/version"
)

const usage = `Usage: k8s-lxcfs COMMAND [flags]

Commands:
  serve MOUNTPOINT   serve the cgroup-aware /proc filesystem (see serve --help)
  status [MOUNTPOINT] is it live, who serves it, how many containers bind it
  webhook            admission webhook injecting the lxcfs mounts into pods (see webhook --help)
  version            print the version

Called with lxcfs-style arguments (k8s-lxcfs -l --enable-cfs /var/lib/lxcfs)
it behaves as serve.
`

// Main runs the command line args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 {
		cmd = args[0]
	}
	switch {
	case cmd == "serve":
		return serve(ctx, args[1:], stderr)
	case cmd == "status":
		return status(ctx, args[1:], stdout, stderr)
	case cmd == "webhook":
		return runWebhookCmd(ctx, args[1:], stderr)
	case cmd == "version":
		fmt.Fprintln(stdout, version.Version)
		return 0
	case cmd == "help" || cmd == "-h" || cmd == "--help" || cmd == "-help":
		fmt.Fprint(stdout, usage)
		return 0
	case strings.HasPrefix(cmd, "-") || strings.HasPrefix(cmd, "/"):
		return serve(ctx, args, stderr) // an lxcfs command line
	case cmd == "":
		fmt.Fprint(stderr, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "k8s-lxcfs: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := ParseServe(args, stderr)
	if errors.Is(err, ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "k8s-lxcfs:", err)
		return 2
	}
	log := logr.FromSlogHandler(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.Level(-cfg.Verbosity)}))
	if err := Run(logr.NewContext(ctx, log), cfg); err != nil {
		log.Error(err, "Daemon stopped with error")
		return 1
	}
	return 0
}
