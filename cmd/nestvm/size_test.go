package main

import "testing"

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		bad  bool
	}{
		{in: "4096", want: 4096},
		{in: "64K", want: 64 << 10},
		{in: "256M", want: 256 << 20},
		{in: "256MiB", want: 256 << 20},
		{in: "1g", want: 1 << 30},
		{in: "2GB", want: 2 << 30},
		{in: "0", bad: true},
		{in: "", bad: true},
		{in: "-1M", bad: true},
		{in: "12Q", bad: true},
		{in: "99999999999999G", bad: true},
	} {
		got, err := parseSize(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if back, err := parseSize(formatSize(got)); err != nil || back != got {
			t.Errorf("formatSize(%d) = %q does not parse back", got, formatSize(got))
		}
	}
}
