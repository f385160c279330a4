package sinks

import (
	"encoding/json"
	"fmt"
)

// encodeLines returns the batch's records as JSON Lines: one record object (Lambda's record shape,
// not the {"Records": ...} envelope) per line.
func encodeLines(b Batch) ([]byte, error) {
	var buf []byte
	for i, r := range b.Records {
		line, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode record %d (%s) of %s: %w", i, r.Change.SequenceNumber, b.ShardID, err)
		}
		buf = append(buf, line...)
		buf = append(buf, '\n')
	}
	return buf, nil
}
