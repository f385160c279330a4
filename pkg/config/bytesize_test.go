package config_test

import (
	"testing"

	"github.com/poller-dev/poller/pkg/config"
)

func TestByteSizeReadsIntegersAndUnits(t *testing.T) {
	tests := []struct {
		in   string
		want config.ByteSize
		ok   bool
	}{
		{in: "67108864", want: 64 << 20, ok: true},
		{in: "64MiB", want: 64 << 20, ok: true},
		{in: "512Mi", want: 512 << 20, ok: true},
		{in: "64 MiB", want: 64 << 20, ok: true},
		{in: "2GB", want: 2_000_000_000, ok: true},
		{in: "1TiB", want: 1 << 40, ok: true},
		{in: "100B", want: 100, ok: true},
		{in: "64mb"},       // units are case-sensitive, as Kubernetes'
		{in: "MiB"},        // no number
		{in: "1.5GiB"},     // whole numbers only
		{in: "-1MiB"},      // no sign
		{in: "9000000TiB"}, // overflows int64
		{in: "64 megabytes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got config.ByteSize
			err := got.UnmarshalText([]byte(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("UnmarshalText(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestByteSizeShowsTheLargestUnitThatDividesIt(t *testing.T) {
	for in, want := range map[config.ByteSize]string{64 << 20: "64MiB", 3072: "3KiB", 1536: "1536B", 1000: "1000B", 2 << 30: "2GiB", 0: "0B"} {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(in), got, want)
		}
	}
}
