package sinks

import (
	"fmt"

	"github.com/poller-dev/poller/pkg/event"
)

// encodeLines returns the batch's records as JSON Lines: one record object (Lambda's record shape,
// not the {"Records": ...} envelope) per line.
func encodeLines(b Batch) ([]byte, error) {
	buf := make([]byte, 0, 1024*len(b.Records))
	var err error
	for i := range b.Records {
		if buf, err = event.AppendJSON(buf, &b.Records[i]); err != nil {
			return nil, fmt.Errorf("encode record %d (%s) of %s: %w", i, b.Records[i].Change.SequenceNumber, b.ShardID, err)
		}
		buf = append(buf, '\n')
	}
	return buf, nil
}
