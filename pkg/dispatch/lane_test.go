package dispatch

import (
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
)

func TestKeyHash(t *testing.T) {
	tests := []struct {
		name string
		a, b events.DynamoDBAttributeValue
		same bool
	}{
		{"the same string", events.NewStringAttribute("user-1"), events.NewStringAttribute("user-1"), true},
		{"two strings", events.NewStringAttribute("user-1"), events.NewStringAttribute("user-2"), false},
		{"the same number", events.NewNumberAttribute("42"), events.NewNumberAttribute("42"), true},
		{"a string and a number of the same text", events.NewStringAttribute("42"), events.NewNumberAttribute("42"), false},
		{"the same binary", events.NewBinaryAttribute([]byte{0, 1}), events.NewBinaryAttribute([]byte{0, 1}), true},
		{"a string and a binary of the same bytes", events.NewStringAttribute("ab"), events.NewBinaryAttribute([]byte("ab")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.same, keyHash(tt.a) == keyHash(tt.b))
		})
	}
	t.Run("keys spread over the lanes", func(t *testing.T) {
		var perLane [10]int
		for i := range 1000 {
			perLane[keyHash(events.NewStringAttribute(fmt.Sprint("user-", i)))%10]++
		}
		for lane, n := range perLane {
			assert.InDelta(t, 100, n, 40, "lane %d", lane)
		}
	})
}

func BenchmarkLaneOf(b *testing.B) {
	d := &Dispatcher{HashKey: "pk"}
	r := events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{
		Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute("item-000042")}}}
	b.ReportAllocs()
	for b.Loop() {
		d.laneOf(&r, 10)
	}
}

func TestArenaCopiesStayPut(t *testing.T) {
	var a arena
	var copies [][]byte
	var want []string
	for i := range 300 { // several chunks
		b := []byte(fmt.Sprintf("%0*d", 1+i*13%keepJSONMax, i))
		c := a.copy(b)
		b[0] = 'x' // the copy does not share the source
		copies, want = append(copies, c), append(want, fmt.Sprintf("%0*d", 1+i*13%keepJSONMax, i))
	}
	for i, c := range copies {
		assert.Equal(t, want[i], string(c), "copy %d", i)
		assert.Equal(t, len(c), cap(c), "copy %d: appending to it cannot overwrite the next", i)
	}
}
