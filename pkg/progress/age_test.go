package progress

import (
	"testing"
	"time"
)

func TestAgeMark(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	older, newer := t0, t0.Add(time.Hour)
	tests := []struct {
		name     string
		oldest   time.Time
		pending  bool
		newest   time.Time
		caughtUp bool
		want     time.Time
	}{
		{"a record not done gives the age, not the newest read", older, true, newer, false, older},
		{"an empty page does not reset the age while a record is not done", older, true, newer, true, older},
		{"with every record done the newest read gives the age", time.Time{}, false, newer, false, newer},
		{"with every record done an empty page means caught up", time.Time{}, false, newer, true, time.Time{}},
		{"nothing read yet is age 0", time.Time{}, false, time.Time{}, false, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ageMark(tt.oldest, tt.pending, tt.newest, tt.caughtUp); !got.Equal(tt.want) {
				t.Errorf("ageMark() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestAgeMarkReportsTheFirstPage: nothing is reported before a page was read; the first page's mark
// is, even age 0 (a shard caught up from the start says so), and a mark that did not change is not.
func TestAgeMarkReportsTheFirstPage(t *testing.T) {
	var (
		a  Age
		tr Tracker
	)
	if _, changed := a.Mark(&tr); changed {
		t.Fatal("Mark() before any page reported a change")
	}
	a.Page(0)
	if m, changed := a.Mark(&tr); !changed || !m.IsZero() {
		t.Fatalf("Mark() after an empty first page = %v, %v; want the zero time, changed", m, changed)
	}
	a.Page(0)
	if _, changed := a.Mark(&tr); changed {
		t.Fatal("Mark() after a second empty page reported a change")
	}
}
