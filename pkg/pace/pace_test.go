package pace

import (
	"testing"
	"time"
)

func TestGovernorRounds(t *testing.T) {
	tests := []struct {
		name   string
		limit  float64
		rounds []string // "behind", "behind-not-starved" or "fine"
		want   float64
	}{
		{"keeps the cadence while no round is behind", 8, []string{"fine", "fine"}, 1},
		{"doubles after each round behind", 8, []string{"behind", "behind"}, 4},
		{"stops at its limit", 8, []string{"behind", "behind", "behind", "behind", "behind"}, 8},
		{"a limit of 1 never stretches", 1, []string{"behind"}, 1},
		{"a limit below 1 is 1", 0, []string{"behind"}, 1},
		{"a round behind with CPU to spare holds the pace", 8, []string{"behind", "behind", "behind-not-starved"}, 4},
		{"eases by a tenth after a round not behind", 8, []string{"behind", "behind", "fine"}, 3.6},
		{"eases back to the cadence exactly", 8, []string{"behind", "fine", "fine", "fine", "fine", "fine", "fine", "fine"}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var told []float64
			starved := true
			g := New(tc.limit, func(f float64) { told = append(told, f) }, func() bool { return starved })
			for _, r := range tc.rounds {
				starved = r != "behind-not-starved"
				g.Round(r == "behind" || r == "behind-not-starved")
			}
			if got := g.Factor(); got < tc.want-1e-9 || got > tc.want+1e-9 {
				t.Fatalf("Factor() = %v, want %v", got, tc.want)
			}
			if last := told[len(told)-1]; last != g.Factor() {
				t.Errorf("changed was last told %v, want the factor %v", last, g.Factor())
			}
			if got, want := g.Stretch(250*time.Millisecond), time.Duration(float64(250*time.Millisecond)*g.Factor()); got != want {
				t.Errorf("Stretch(250ms) = %v, want %v", got, want)
			}
		})
	}
}

func TestStretchedWaitsAreBounded(t *testing.T) {
	g := New(32, nil, func() bool { return true })
	for range 5 {
		g.Round(true)
	}
	tests := []struct{ wait, want time.Duration }{
		{100 * time.Millisecond, 3200 * time.Millisecond},
		{250 * time.Millisecond, MaxStretchedWait},
		{time.Second, MaxStretchedWait},
		{10 * time.Second, 10 * time.Second}, // a wait over the bound is not stretched, nor cut
	}
	for _, tc := range tests {
		if got := g.Stretch(tc.wait); got != tc.want {
			t.Errorf("Stretch(%v) at %vx = %v, want %v", tc.wait, g.Factor(), got, tc.want)
		}
	}
}

func TestNilGovernorKeepsTheWait(t *testing.T) {
	var g *Governor
	g.Round(true) // ignored
	if got := g.Stretch(time.Second); got != time.Second {
		t.Fatalf("Stretch(1s) on a nil Governor = %v, want 1s", got)
	}
}
