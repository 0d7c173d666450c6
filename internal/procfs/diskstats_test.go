// SPDX-License-Identifier: Apache-2.0
// Copyright 2026 The k8s-lxcfs Authors.

package procfs

import (
	"reflect"
	"strconv"
	"testing"
)

func TestParseDiskstatsHost(t *testing.T) {
	t.Parallel()
	got, err := ParseDiskstats(hostFile(t, "diskstats"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("parsed %d devices, want 10", len(got))
	}
	vda := got[8]
	want := DiskstatsLine{Major: 254, Minor: 0, Name: "vda", Fields: []uint64{66878, 8199, 2240978, 16161, 3906, 16240, 1221032, 3060, 0, 6976, 20431, 9468, 116, 575136, 1163, 96, 45}}
	if !reflect.DeepEqual(vda, want) {
		t.Errorf("vda = %+v, want %+v", vda, want)
	}
}

func TestParseDiskstats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []DiskstatsLine
		wantErr bool
	}{
		{name: "empty", in: "", want: nil},
		{name: "kernel 4.x eleven fields", in: "   8       0 sda 1 2 3 4 5 6 7 8 9 10 11\n",
			want: []DiskstatsLine{{Major: 8, Name: "sda", Fields: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}}},
		{name: "kernel 4.18 fifteen fields", in: " 259       1 nvme0n1p1 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n",
			want: []DiskstatsLine{{Major: 259, Minor: 1, Name: "nvme0n1p1", Fields: []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}}},
		{name: "one counter", in: "1 2 ram0 0\n", want: []DiskstatsLine{{Major: 1, Minor: 2, Name: "ram0", Fields: []uint64{0}}}},
		{name: "blank lines", in: "\n7 0 loop0 1\n\n", want: []DiskstatsLine{{Major: 7, Name: "loop0", Fields: []uint64{1}}}},
		{name: "too few fields", in: "7 0 loop0\n", wantErr: true},
		{name: "bad major", in: "x 0 loop0 1\n", wantErr: true},
		{name: "major past 32 bits", in: "4294967296 0 loop0 1\n", wantErr: true},
		{name: "bad counter", in: "7 0 loop0 1 -2\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDiskstats([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseDiskstats(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseDiskstats(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseDiskstats(f *testing.F) {
	f.Add([]byte(" 254       0 vda 45985 7793 1856898 10792 3377 15120 1060064 2777 0 6124 14630 8083 116 449032 1014 96 45\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := ParseDiskstats(b)
		if err != nil {
			return
		}
		var out []byte
		for _, d := range lines {
			if len(d.Fields) == 0 {
				t.Fatalf("device %q without counters", d.Name)
			}
			out = strconv.AppendUint(out, uint64(d.Major), 10)
			out = append(out, ' ')
			out = strconv.AppendUint(out, uint64(d.Minor), 10)
			out = append(out, ' ')
			out = append(out, d.Name...)
			for _, v := range d.Fields {
				out = append(out, ' ')
				out = strconv.AppendUint(out, v, 10)
			}
			out = append(out, '\n')
		}
		again, err := ParseDiskstats(out)
		if err != nil || !reflect.DeepEqual(again, lines) {
			t.Fatalf("round trip %+v → %q → %+v, %v", lines, out, again, err)
		}
	})
}
