// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

//go:build linux

package daemon_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/k8s-lxcfs/k8s-lxcfs/internal/testenv"
)

// TestPrivMetrics scrapes a real daemon: readiness after the mount, per-file
// counters that follow reads through the mount, and a handover that moves
// readiness to the successor.
func TestPrivMetrics(t *testing.T) {
	testenv.RequirePrivileged(t)
	mp := testenv.MountDir(t)
	d := testenv.StartDaemon(t, mp, "-http-address=127.0.0.1:0")
	base := httpBase(t, d)

	if err := testenv.Eventually(t.Context(), 5*time.Second, func() error { return wantStatus(base+"/readyz", 200) }); err != nil {
		t.Fatalf("/readyz after mounting: %v", err)
	}
	if err := wantStatus(base+"/healthz", 200); err != nil {
		t.Error(err)
	}
	before := scrape(t, base)
	for range 5 {
		if _, err := os.ReadFile(filepath.Join(mp, "proc/meminfo")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.ReadFile(filepath.Join(mp, "sys/devices/system/cpu/online")); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, base)
	for _, c := range []struct {
		series string
		delta  float64
	}{
		{`lxcfs_reads_total{file="proc/meminfo"}`, 5},
		{`lxcfs_read_duration_seconds_count{file="proc/meminfo"}`, 5},
		{`lxcfs_reads_total{file="sys/devices/system/cpu/online"}`, 1},
		{`lxcfs_reads_total{file="proc/stat"}`, 0},
	} {
		if got := after[c.series] - before[c.series]; got < c.delta || (c.delta == 0 && got != 0) {
			t.Errorf("%s went from %v to %v, want +%v", c.series, before[c.series], after[c.series], c.delta)
		}
	}
	// The binary under test says its own version (the VM's is stamped).
	v, err := exec.Command(testenv.Binary(t), "version").Output()
	if err != nil {
		t.Fatalf("k8s-lxcfs version: %v", err)
	}
	buildInfo := `lxcfs_build_info{version="` + strings.TrimSpace(string(v)) + `"}`
	for _, s := range []string{buildInfo, "lxcfs_containers", `lxcfs_errors_total{op="render"}`,
		"lxcfs_heal_repaired_total", "lxcfs_stale_mounts_found", "go_goroutines", "process_open_fds"} {
		if _, ok := after[s]; !ok {
			t.Errorf("no %s in /metrics", s)
		}
	}

	// Hand over: the successor becomes ready, the predecessor stops
	// answering (it exits), and the successor counts the adoption.
	next := testenv.StartDaemonWith(t, testenv.DaemonOptions{NoWait: true}, mp, "-http-address=127.0.0.1:0")
	if err := next.WaitLog("Adopted FUSE connection", 10*time.Second); err != nil {
		t.Fatalf("handover: %v\npredecessor:\n%s\nsuccessor:\n%s", err, d.Log(), next.Log())
	}
	nextBase := httpBase(t, next)
	if err := testenv.Eventually(t.Context(), 5*time.Second, func() error { return wantStatus(nextBase+"/readyz", 200) }); err != nil {
		t.Errorf("successor /readyz: %v", err)
	}
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("predecessor still running 5s after handing over")
	}
	if err := wantStatus(base+"/readyz", 200); err == nil {
		t.Error("predecessor still ready after handing over")
	}
	if got := scrape(t, nextBase)[`lxcfs_handovers_total{result="adopted",role="successor"}`]; got != 1 {
		t.Errorf("successor's adopted handovers = %v, want 1", got)
	}
	if !strings.Contains(d.Log(), "Serving HTTP metrics and probes") {
		t.Errorf("predecessor did not log its HTTP address")
	}
}

// httpBase finds the address the daemon logged for its HTTP endpoint.
func httpBase(t *testing.T, d *testenv.Daemon) string {
	t.Helper()
	const msg = "Serving HTTP metrics and probes"
	if err := d.WaitLog(msg, 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, d.Log())
	}
	for _, line := range strings.Split(d.Log(), "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"httpAddress"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
			return "http://" + rec.Addr
		}
	}
	t.Fatalf("no httpAddress in the log:\n%s", d.Log())
	return ""
}

func wantStatus(url string, want int) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url) //nolint:noctx // bounded by the client
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d %q, want %d", url, resp.StatusCode, b, want)
	}
	return nil
}

// scrape returns /metrics as series → value (text format, no timestamps).
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(base + "/metrics") //nolint:noctx // bounded by the client
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
