package sinks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ParseBatchItemFailures reads an answer as Lambda's partial batch response,
// {"batchItemFailures": [{"itemIdentifier": "<SequenceNumber>"}]}, and returns the reported sequence
// numbers, in the order given, without repeats. As Lambda does:
//   - an empty answer, null, {}, or a null or empty batchItemFailures list is complete success
//     (nil, nil); other top-level keys (such as a tumbling window's state) are ignored;
//   - an answer that is not a JSON object, a batchItemFailures that is not a list, an entry that is
//     not an object, an itemIdentifier that is missing (a bad key name), null, empty or not a string,
//     is an error: the whole batch failed;
//   - an itemIdentifier that is not the sequence number of a record of b is an error too (Lambda
//     leaves it undocumented; LocalStack fails the batch, and so do we).
//
// The keys may be written camelCase, as Lambda documents, or capitalised (BatchItemFailures,
// ItemIdentifier), as AWS's Go sample marshals them; any other spelling is not recognised.
func ParseBatchItemFailures(answer []byte, b Batch) ([]string, error) {
	answer = bytes.TrimSpace(answer)
	if len(answer) == 0 || string(answer) == "null" {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(answer, &top); err != nil {
		return nil, fmt.Errorf("partial batch response is not a JSON object: %w", err)
	}
	list, err := member(top, "batchItemFailures", "BatchItemFailures")
	if err != nil || list == nil {
		return nil, err
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, fmt.Errorf("batchItemFailures is not a list: %s", snippet(list))
	}
	if len(items) == 0 {
		return nil, nil
	}
	inBatch := make(map[string]bool, len(b.Records))
	for _, r := range b.Records {
		inBatch[r.Change.SequenceNumber] = true
	}
	failed := make([]string, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i, raw := range items {
		var item map[string]json.RawMessage
		if err := json.Unmarshal(raw, &item); err != nil || item == nil {
			return nil, fmt.Errorf("batchItemFailures[%d] is not an object: %s", i, snippet(raw))
		}
		idRaw, err := member(item, "itemIdentifier", "ItemIdentifier")
		if err != nil {
			return nil, fmt.Errorf("batchItemFailures[%d]: %w", i, err)
		}
		if idRaw == nil {
			return nil, fmt.Errorf("batchItemFailures[%d] has no itemIdentifier (null or missing): %s", i, snippet(raw))
		}
		var id string
		if err := json.Unmarshal(idRaw, &id); err != nil {
			return nil, fmt.Errorf("batchItemFailures[%d].itemIdentifier is not a string: %s", i, snippet(idRaw))
		}
		if id == "" {
			return nil, fmt.Errorf("batchItemFailures[%d].itemIdentifier is empty", i)
		}
		if !inBatch[id] {
			return nil, fmt.Errorf("batchItemFailures[%d].itemIdentifier %q is not the sequence number of a record in the batch", i, id)
		}
		if !seen[id] {
			seen[id] = true
			failed = append(failed, id)
		}
	}
	return failed, nil
}

// member returns the value of whichever of the two spellings of a key is present; nil when neither
// is, or the value is null. Both at once is ambiguous, hence an error.
func member(m map[string]json.RawMessage, camel, capitalised string) (json.RawMessage, error) {
	v1, ok1 := m[camel]
	v2, ok2 := m[capitalised]
	if ok1 && ok2 {
		return nil, errors.New("both " + camel + " and " + capitalised + " are set")
	}
	v := v1
	if ok2 {
		v = v2
	}
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return nil, nil
	}
	return v, nil
}
