// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "v2 bytes", in: "536870912\n", want: 536870912},
		{name: "v2 max", in: "max\n", want: Unlimited},
		{name: "v1 no limit sentinel", in: "9223372036854771712\n", want: 9223372036854771712},
		{name: "minus one", in: "-1", want: Unlimited},
		{name: "zero", in: "0", want: 0},
		{name: "host file", in: string(hostFile(t, "memory.limit_in_bytes")), want: 9223372036854771712},
		{name: "human suffix", in: "512Mi\n", wantErr: true},
		{name: "Max is not max", in: "Max", wantErr: true},
		{name: "other negative", in: "-2", wantErr: true},
		{name: "overflow", in: "18446744073709551616", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "two values", in: "1 2", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLimit([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseLimit(%q) = %d, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseLimit(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseLimit(f *testing.F) {
	f.Add([]byte("max\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseLimit(b)
		if err != nil {
			return
		}
		text := strconv.FormatUint(v, 10)
		if v == Unlimited {
			text = "max"
		}
		again, err := ParseLimit([]byte(text))
		if err != nil || again != v {
			t.Fatalf("round trip %d → %q → %d, %v", v, text, again, err)
		}
	})
}

func TestParseInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "cfs quota none", in: "-1\n", want: -1},
		{name: "host file", in: string(hostFile(t, "cpu.cfs_quota_us")), want: -1},
		{name: "quota", in: "150000\n", want: 150000},
		{name: "max is not an int", in: "max", wantErr: true},
		{name: "overflow", in: "9223372036854775808", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseInt([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseInt(%q) = %d, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseInt(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseInt(f *testing.F) {
	f.Add([]byte("-1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseInt(b)
		if err != nil {
			return
		}
		again, err := ParseInt([]byte(strconv.FormatInt(v, 10)))
		if err != nil || again != v {
			t.Fatalf("round trip %d → %d, %v", v, again, err)
		}
	})
}

type kv struct {
	k string
	v uint64
}

func flatKeyed(b []byte) ([]kv, error) {
	var out []kv
	err := ParseFlatKeyed(b, func(k string, v uint64) { out = append(out, kv{k, v}) })
	return out, err
}

func TestParseFlatKeyed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []kv
		wantErr bool
	}{
		{name: "cpu.stat v2", in: string(hostFile(t, "cpu.stat-v2")), want: []kv{{"usage_usec", 889544000}, {"user_usec", 468396000}, {"system_usec", 421148000}, {"nice_usec", 0}}},
		{name: "empty", in: "", want: nil},
		{name: "blank lines", in: "\na 1\n\nb 2\n", want: []kv{{"a", 1}, {"b", 2}}},
		{name: "no trailing newline", in: "a 1", want: []kv{{"a", 1}}},
		{name: "extra spaces in value", in: "a  7 \n", want: []kv{{"a", 7}}},
		{name: "no value", in: "populated\n", wantErr: true},
		{name: "tab separator", in: "a\t1\n", wantErr: true},
		{name: "not a number", in: "a b\n", wantErr: true},
		{name: "colon form", in: "kernel_stack: 393216\n", wantErr: false, want: []kv{{"kernel_stack:", 393216}}},
		{name: "negative", in: "a -1\n", wantErr: true},
		{name: "two values", in: "a 1 2\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := flatKeyed([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseFlatKeyed(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseFlatKeyed(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseFlatKeyedHostMemoryStat(t *testing.T) {
	t.Parallel()
	got, err := flatKeyed(hostFile(t, "memory.stat-v1"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, e := range got {
		m[e.k] = e.v
	}
	if m["hierarchical_memory_limit"] != 9223372036854771712 || len(got) != 42 {
		t.Errorf("memory.stat-v1: %d keys, hierarchical_memory_limit %d", len(got), m["hierarchical_memory_limit"])
	}
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("usage_usec 889544000\nuser_usec 468396000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := flatKeyed(b)
		if err != nil {
			return
		}
		var out []byte
		for _, e := range got {
			if strings.Contains(e.k, " ") || strings.Contains(e.k, "\n") {
				t.Fatalf("key %q holds a separator", e.k)
			}
			out = fmt.Appendf(out, "%s %d\n", e.k, e.v)
		}
		again, err := flatKeyed(out)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip %v → %q → %v, %v", got, out, again, err)
		}
	})
}

func TestParseCPUMax(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		wantQuota  uint64
		wantPeriod uint64
		wantErr    bool
	}{
		{name: "quota and period", in: "150000 100000\n", wantQuota: 150000, wantPeriod: 100000},
		{name: "max", in: "max 100000\n", wantQuota: Unlimited, wantPeriod: 100000},
		{name: "quota only", in: "50000", wantQuota: 50000, wantPeriod: 100000},
		{name: "max only", in: "max", wantQuota: Unlimited, wantPeriod: 100000},
		{name: "zero period", in: "1000 0", wantErr: true},
		{name: "three fields", in: "150000 100000 7\n", wantErr: true},
		{name: "empty", in: "\n", wantErr: true},
		{name: "bad quota", in: "lots 100000", wantErr: true},
		{name: "bad period", in: "1000 max", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, p, err := ParseCPUMax([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseCPUMax(%q) = %d, %d; want an error", tc.in, q, p)
				}
				return
			}
			if err != nil || q != tc.wantQuota || p != tc.wantPeriod {
				t.Errorf("ParseCPUMax(%q) = %d, %d, %v; want %d, %d", tc.in, q, p, err, tc.wantQuota, tc.wantPeriod)
			}
		})
	}
}

func FuzzParseCPUMax(f *testing.F) {
	f.Add([]byte("max 100000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, p, err := ParseCPUMax(b)
		if err != nil {
			return
		}
		if p == 0 {
			t.Fatal("period 0 accepted")
		}
		qs := strconv.FormatUint(q, 10)
		if q == Unlimited {
			qs = "max"
		}
		text := qs + " " + strconv.FormatUint(p, 10) + "\n"
		q2, p2, err := ParseCPUMax([]byte(text))
		if err != nil || q2 != q || p2 != p {
			t.Fatalf("round trip %d %d → %q → %d %d, %v", q, p, text, q2, p2, err)
		}
	})
}

func TestParseIOStatV2(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []IOStat
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{
			name: "two devices",
			in:   "259:0 rbytes=38281216 wbytes=157286400 rios=1187 wios=9876 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n",
			want: []IOStat{
				{Major: 259, ReadBytes: 38281216, WriteBytes: 157286400, ReadIOs: 1187, WriteIOs: 9876},
				{Major: 8, Minor: 16, ReadBytes: 1, WriteBytes: 2, ReadIOs: 3, WriteIOs: 4, DiscardBytes: 5, DiscardIOs: 6},
			},
		},
		{
			name: "iocost and iolatency keys ignored",
			in:   "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0 cost.usage=12 cost.wait=0 cost.indebt=0 cost.indelay=0 use_delay=0 delay_nsec=0\n",
			want: []IOStat{{Major: 8, ReadBytes: 1, WriteBytes: 2, ReadIOs: 3, WriteIOs: 4}},
		},
		{name: "device only", in: "8:0\n", want: []IOStat{{Major: 8}}},
		{name: "no device", in: "rbytes=1\n", wantErr: true},
		{name: "field without value", in: "8:0 rbytes\n", wantErr: true},
		{name: "bad value", in: "259:0 rbytes=1 wbytes=two\n", wantErr: true},
		{name: "bad minor", in: "8:x rbytes=1\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseIOStatV2([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseIOStatV2(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseIOStatV2(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseIOStatV2IOCostRoot(t *testing.T) {
	t.Parallel()
	in := "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=12\n"
	got, err := ParseIOStatV2([]byte(in))
	want := []IOStat{{Major: 8, ReadBytes: 1, WriteBytes: 2, ReadIOs: 3, WriteIOs: 4}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseIOStatV2(%q) = %+v, %v; want %+v", in, got, err, want)
	}
}

func formatIOStatV2(s []IOStat) []byte {
	var out []byte
	for _, d := range s {
		out = fmt.Appendf(out, "%d:%d rbytes=%d wbytes=%d rios=%d wios=%d dbytes=%d dios=%d\n",
			d.Major, d.Minor, d.ReadBytes, d.WriteBytes, d.ReadIOs, d.WriteIOs, d.DiscardBytes, d.DiscardIOs)
	}
	return out
}

func FuzzParseIOStatV2(f *testing.F) {
	f.Add([]byte("259:0 rbytes=38281216 wbytes=157286400 rios=1187 wios=9876 dbytes=0 dios=0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseIOStatV2(b)
		if err != nil {
			return
		}
		text := formatIOStatV2(got)
		again, err := ParseIOStatV2(text)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip %+v → %q → %+v, %v", got, text, again, err)
		}
	})
}

func TestParseBlkioV1(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		bytes, ops string
		want       []IOStat
		wantErr    bool
	}{
		{name: "root without io", bytes: "Total 0\n", ops: "Total 0\n", want: nil},
		{
			name:  "host files",
			bytes: string(hostFile(t, "blkio.throttle.io_service_bytes_recursive")),
			ops:   string(hostFile(t, "blkio.throttle.io_serviced_recursive")),
			want:  []IOStat{{Major: 254, ReadBytes: 263151616, WriteBytes: 234045440, DiscardBytes: 193249280, ReadIOs: 24815, WriteIOs: 14125, DiscardIOs: 12216}},
		},
		{
			name:  "device only in ops",
			bytes: "8:0 Read 4096\nTotal 4096\n",
			ops:   "8:16 Write 3\nTotal 3\n",
			want:  []IOStat{{Major: 8, ReadBytes: 4096}, {Major: 8, Minor: 16, WriteIOs: 3}},
		},
		{name: "missing value", bytes: "8:0 Read\n", wantErr: true},
		{name: "bad device", bytes: "sda Read 1\n", wantErr: true},
		{name: "bad number in ops", ops: "8:0 Read x\n", wantErr: true},
		{name: "Total with device is a device op", bytes: "8:0 Total 5\n", want: []IOStat{{Major: 8}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBlkioV1([]byte(tc.bytes), []byte(tc.ops))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseBlkioV1 = %+v, want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseBlkioV1 = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func formatBlkioV1(s []IOStat) (bytesFile, opsFile []byte) {
	for _, d := range s {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		bytesFile = fmt.Appendf(bytesFile, "%s Read %d\n%s Write %d\n%s Sync 0\n%s Async 0\n%s Discard %d\n%s Total 0\n",
			dev, d.ReadBytes, dev, d.WriteBytes, dev, dev, dev, d.DiscardBytes, dev)
		opsFile = fmt.Appendf(opsFile, "%s Read %d\n%s Write %d\n%s Discard %d\n", dev, d.ReadIOs, dev, d.WriteIOs, dev, d.DiscardIOs)
	}
	bytesFile = append(bytesFile, "Total 0\n"...)
	opsFile = append(opsFile, "Total 0\n"...)
	return bytesFile, opsFile
}

func FuzzParseBlkioV1(f *testing.F) {
	f.Add([]byte("254:0 Read 263151616\n254:0 Write 234045440\nTotal 497197056\n"), []byte("254:0 Read 8637\nTotal 8637\n"))
	f.Fuzz(func(t *testing.T, bytesFile, opsFile []byte) {
		got, err := ParseBlkioV1(bytesFile, opsFile)
		if err != nil {
			return
		}
		seen := map[[2]uint32]bool{}
		for _, d := range got {
			k := [2]uint32{d.Major, d.Minor}
			if seen[k] {
				t.Fatalf("device %v listed twice", k)
			}
			seen[k] = true
		}
		b, o := formatBlkioV1(got)
		again, err := ParseBlkioV1(b, o)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip %+v → %+v, %v", got, again, err)
		}
	})
}

func TestParseCpuacctUsageAll(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[int]CPUUsage
		wantErr bool
	}{
		{name: "host file", in: string(hostFile(t, "cpuacct.usage_all")), want: map[int]CPUUsage{0: {231020000000, 208044000000}, 1: {237356000000, 213048000000}}},
		{name: "without header", in: "0 1 2\n3 4 5\n", want: map[int]CPUUsage{0: {1, 2}, 3: {4, 5}}},
		{name: "header only", in: "cpu user system\n", want: map[int]CPUUsage{}},
		{name: "empty", in: "", want: map[int]CPUUsage{}},
		{name: "short line", in: "cpu user system\n0 1\n", wantErr: true},
		{name: "negative cpu", in: "-1 1 2\n", wantErr: true},
		{name: "cpu past MaxCPUs", in: "8192 1 2\n", wantErr: true},
		{name: "bad counter", in: "0 1 x\n", wantErr: true},
		{name: "header later is an error", in: "0 1 2\ncpu user system\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCpuacctUsageAll([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseCpuacctUsageAll(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseCpuacctUsageAll(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseCpuacctUsageAll(f *testing.F) {
	f.Add([]byte("cpu user system\n0 231020000000 208044000000\n1 237356000000 213048000000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseCpuacctUsageAll(b)
		if err != nil {
			return
		}
		out := []byte("cpu user system\n")
		for _, id := range slices.Sorted(maps.Keys(got)) {
			if id < 0 || id >= MaxCPUs {
				t.Fatalf("cpu %d out of range", id)
			}
			out = fmt.Appendf(out, "%d %d %d\n", id, got[id].User, got[id].System)
		}
		again, err := ParseCpuacctUsageAll(out)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip %v → %q → %v, %v", got, out, again, err)
		}
	})
}

func TestParseUints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []uint64
		wantErr bool
	}{
		{name: "usage_percpu", in: string(hostFile(t, "cpuacct.usage_percpu")), want: []uint64{443780604449, 454079592162}},
		{name: "tasks", in: "1\n2\n3\n", want: []uint64{1, 2, 3}},
		{name: "empty", in: "", want: []uint64{}},
		{name: "garbage", in: "1\nfive\n", wantErr: true},
		{name: "negative", in: "-1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseUints([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseUints(%q) = %v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseUints(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseUints(f *testing.F) {
	f.Add([]byte("221248908626 224791251534 \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseUints(b)
		if err != nil {
			return
		}
		parts := make([]string, len(got))
		for i, v := range got {
			parts[i] = strconv.FormatUint(v, 10)
		}
		again, err := ParseUints([]byte(strings.Join(parts, "\n")))
		if err != nil || !slices.Equal(again, got) {
			t.Fatalf("round trip %v → %v, %v", got, again, err)
		}
	})
}
