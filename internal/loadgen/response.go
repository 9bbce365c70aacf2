package loadgen

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"
)

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3: delay in
// seconds, or an HTTP date). ok is false when the header is missing or
// unusable; the delay is clamped to [0, maxRetryAfter].
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter), true
	}
	return 0, false
}

// ackResponse is the part of the 202 body loadgen needs:
// {"accepted":N,"rejected":M,"errors":[{"line":i,"error":"…"}]}.
type ackResponse struct {
	Accepted *int64 `json:"accepted"`
	Rejected int64  `json:"rejected"`
	Errors   []struct {
		Line int64 `json:"line"`
	} `json:"errors"`
}

// ackOutcome says which events of an n-event batch a 2xx acknowledged.
type ackOutcome struct {
	acked    int64 // events the server says it accepted
	rejected int64 // events it rejected one by one
	// idsKnown is false when the body said fewer were accepted than sent
	// but not which lines failed: then no id of the batch goes to the ack
	// log, because the log must hold only ids that were stored.
	idsKnown bool
	// skip holds batch indexes whose ids must stay out of the ack log.
	skip map[int64]bool
}

// parseAck interprets a 2xx body. A body that is not the documented
// object (an empty 202 from another server) acknowledges the whole batch.
// "line" counts from 1: the NDJSON line or the JSON array element, as
// wirelog's ingest handler (internal/ingest.LineError) numbers them.
func parseAck(body []byte, n int, f Format) ackOutcome {
	switch f {
	case FormatESBulk:
		return parseBulkAck(body, n)
	case FormatLokiJSON, FormatLokiProto:
		// Loki answers 204 only when every entry is stored.
		return ackOutcome{acked: int64(n), idsKnown: true}
	}
	var r ackResponse
	if len(body) == 0 || json.Unmarshal(body, &r) != nil || r.Accepted == nil {
		return ackOutcome{acked: int64(n), idsKnown: true}
	}
	out := ackOutcome{
		acked:    min(max(*r.Accepted, 0), int64(n)),
		rejected: max(r.Rejected, 0),
		idsKnown: true,
	}
	if out.acked == int64(n) {
		return out
	}
	if int64(len(r.Errors)) < int64(n)-out.acked {
		// Servers may cap the error list; unlisted failures are unknown.
		out.idsKnown = false
		return out
	}
	out.skip = make(map[int64]bool, len(r.Errors))
	for _, e := range r.Errors {
		out.skip[e.Line-1] = true
	}
	return out
}

// bulkParsers reuse fastjson's parse cache: a fresh Parser allocates it
// again for every answer (230 kB per 100 items).
var bulkParsers = sync.Pool{New: func() any { return new(fastjson.Parser) }}

// parseBulkAck reads an Elasticsearch bulk answer: one item per create
// action, in order; an item whose status is not 2xx was not stored. An
// answer that does not list every item acknowledges none of their ids.
// fastjson, not encoding/json: the answer is ~190 bytes per event and its
// parse runs on the machine being measured.
func parseBulkAck(body []byte, n int) ackOutcome {
	p := bulkParsers.Get().(*fastjson.Parser)
	defer bulkParsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return ackOutcome{}
	}
	items := v.GetArray("items")
	if len(items) != n {
		return ackOutcome{}
	}
	out := ackOutcome{acked: int64(n), idsKnown: true}
	if !v.GetBool("errors") {
		return out
	}
	out.skip = make(map[int64]bool)
	for i, it := range items {
		o, err := it.Object()
		if err != nil {
			continue
		}
		o.Visit(func(_ []byte, a *fastjson.Value) {
			if st := a.GetInt("status"); (st < 200 || st > 299) && !out.skip[int64(i)] {
				out.skip[int64(i)] = true
				out.acked--
				out.rejected++
			}
		})
	}
	return out
}
