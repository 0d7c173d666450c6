// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseServe(t *testing.T) {
	t.Parallel()
	defaults := Config{
		MountPoint: "/var/lib/lxcfs", ProcRoot: "/proc", SysRoot: "/sys", CgroupRoot: "/sys/fs/cgroup",
		CFS: true, Loadavg: true, LoadavgInterval: 5 * time.Second, Swap: true,
		EntryTimeout: 10 * time.Second, CacheTTL: 100 * time.Millisecond, HandoverSocket: "/run/k8s-lxcfs/handover.sock",
		Heal: true, HealInterval: 10 * time.Second, ExitAfterHandover: true, NodeName: os.Getenv("NODE_NAME"), HTTPAddress: ":9742",
	}
	with := func(f func(*Config)) Config { c := defaults; f(&c); return c }
	cases := []struct {
		name    string
		args    []string
		want    Config
		wantErr string
	}{
		{name: "defaults", args: []string{"/var/lib/lxcfs"}, want: defaults},
		{name: "lxcfs command line", args: []string{"-f", "-l", "--enable-cfs", "-u", "-p", "/run/lxcfs.pid", "/var/lib/lxcfs"},
			want: with(func(c *Config) { c.Swap = false; c.PidFile = "/run/lxcfs.pid" })},
		{name: "lxcfs long spellings", args: []string{"--enable-loadavg", "--disable-swap", "/var/lib/lxcfs"},
			want: with(func(c *Config) { c.Swap = false })},
		{name: "go flags turn features off", args: []string{"-cfs=false", "-loadavg=false", "-cache-ttl=0", "/var/lib/lxcfs"},
			want: with(func(c *Config) { c.CFS, c.Loadavg, c.CacheTTL = false, false, 0 })},
		{name: "debug", args: []string{"-d", "/var/lib/lxcfs"}, want: with(func(c *Config) { c.Verbosity = 6 })},
		{name: "lxcfs -o ignored", args: []string{"-o", "allow_other,direct_io", "/var/lib/lxcfs"}, want: defaults},
		{name: "http disabled", args: []string{"-http-address=", "/var/lib/lxcfs"}, want: with(func(c *Config) { c.HTTPAddress = "" })},
		{name: "http port 0", args: []string{"-http-address=127.0.0.1:0", "/var/lib/lxcfs"},
			want: with(func(c *Config) { c.HTTPAddress = "127.0.0.1:0" })},
		{name: "http without port", args: []string{"-http-address=localhost", "/x"}, wantErr: "-http-address must be host:port"},
		{name: "http port not a number", args: []string{"-http-address=:metrics", "/x"}, wantErr: "numeric port"},
		{name: "http port out of range", args: []string{"-http-address=[::1]:70000", "/x"}, wantErr: "numeric port"},
		{name: "no mount point", args: nil, wantErr: "MOUNTPOINT is required"},
		{name: "two mount points", args: []string{"/a", "/b"}, wantErr: "one MOUNTPOINT expected"},
		{name: "relative mount point", args: []string{"lxcfs"}, wantErr: "MOUNTPOINT must be an absolute path"},
		{name: "all problems at once", args: []string{"-proc-root=proc", "-loadavg-interval=1ms", "-cache-ttl=1h", "/x"},
			wantErr: "-proc-root must be an absolute path"},
		{name: "unknown flag", args: []string{"--bogus", "/x"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			got, err := ParseServe(tc.args, &stderr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got != tc.want {
				t.Errorf("config\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	t.Parallel()
	c := Config{MountPoint: "rel", ProcRoot: "/proc", SysRoot: "", CgroupRoot: "/sys/fs/cgroup",
		LoadavgInterval: time.Millisecond, CacheTTL: -1, HandoverSocket: "/run/" + strings.Repeat("x", 120), HostMountNS: "proc/1/ns/mnt"}
	err := c.Validate()
	for _, want := range []string{"MOUNTPOINT", "-sys-root", "-loadavg-interval", "-cache-ttl", "-handover-socket", "-host-mount-ns"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a complaint about %s", err, want)
		}
	}
}

func TestMainCommand(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr string
	}{
		{name: "help", args: []string{"--help"}, code: 0, inStdout: "serve MOUNTPOINT"},
		{name: "serve help", args: []string{"serve", "--help"}, code: 0, inStderr: "-enable-cfs"},
		{name: "version", args: []string{"version"}, code: 0, inStdout: "dev"},
		{name: "status help", args: []string{"status", "--help"}, code: 0, inStderr: "stale"},
		{name: "status bad output", args: []string{"status", "-o", "yaml"}, code: 2, inStderr: "-o must be text or json"},
		{name: "status relative", args: []string{"status", "var/lib/lxcfs"}, code: 2, inStderr: "absolute"},
		{name: "nothing", args: nil, code: 2, inStderr: "Usage"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, inStderr: `unknown command "frobnicate"`},
		{name: "bad serve flags", args: []string{"serve", "-loadavg-interval=1ns", "/x"}, code: 2, inStderr: "-loadavg-interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.inStdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.inStdout)
			}
			if !strings.Contains(stderr.String(), tc.inStderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.inStderr)
			}
		})
	}
}

func TestHelpIsErrHelp(t *testing.T) {
	t.Parallel()
	_, err := ParseServe([]string{"-h"}, &bytes.Buffer{})
	if !errors.Is(err, ErrHelp) {
		t.Errorf("ParseServe(-h) = %v, want ErrHelp", err)
	}
}
