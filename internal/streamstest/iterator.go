package streamstest

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// iterator is what a shard iterator stands for. Iterators are stateless: the position and issue time
// are encoded in the opaque string, so pollers that never come back cost no memory, and expiry is a
// comparison with the clock when the iterator is used.
type iterator struct {
	streamARN string
	shardID   string
	pos       int // logical index of the next record in the shard, trimmed records included
	issued    time.Time
}

const iteratorVersion = "sti1"

// encode renders it as an opaque string bound to this server (nonce).
func (it iterator) encode(nonce string) string {
	raw := strings.Join([]string{
		iteratorVersion, nonce, it.streamARN, it.shardID,
		strconv.Itoa(it.pos), strconv.FormatInt(it.issued.UnixNano(), 10),
	}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeIterator parses s, which must come from a server with this nonce.
func decodeIterator(s, nonce string) (iterator, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return iterator{}, false
	}
	f := strings.Split(string(raw), "\x00")
	if len(f) != 6 || f[0] != iteratorVersion || f[1] != nonce {
		return iterator{}, false
	}
	pos, err := strconv.Atoi(f[4])
	if err != nil || pos < 0 {
		return iterator{}, false
	}
	ns, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil {
		return iterator{}, false
	}
	return iterator{streamARN: f[2], shardID: f[3], pos: pos, issued: time.Unix(0, ns)}, true
}
