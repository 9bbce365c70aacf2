// Package loki makes wirelog a target for shippers configured for Grafana
// Loki (Promtail, Alloy, Fluent Bit's loki output, Vector's loki sink, the
// logging libraries' Loki handlers): POST /loki/api/v1/push with either body
// Loki accepts, protobuf + snappy or JSON, decoded here and produced through
// the native gateway (ingest.Batch). Stream labels become fields
// (service_name/service/app/job → service, host → host, level/detected_level
// → level) or attributes; structured metadata becomes attributes (trace_id
// and span_id their fields). No Loki code is imported (Loki is AGPL): the
// protobuf is read with protowire from the Apache-2.0 schema.
package loki

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/snappy"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/ingest"
)

// Path is the push endpoint Promtail, Alloy and the Loki clients post to.
const Path = "/loki/api/v1/push"

// Handler serves POST /loki/api/v1/push.
type Handler struct {
	gw   *ingest.Handler
	pool sync.Pool // *state
}

type state struct {
	dec  Decoder
	raw  []byte // snappy-decoded body
	sink batchSink
}

// New returns the Loki push handler producing through gw.
func New(gw *ingest.Handler) *Handler {
	h := &Handler{gw: gw}
	h.pool.New = func() any { return new(state) }
	return h
}

// batchSink adapts an ingest.Batch to the decoder's Sink.
type batchSink struct{ b *ingest.Batch }

func (s batchSink) Event() *event.Event { return s.b.Event() }

func (s batchSink) Add(key []byte) (string, error) {
	msg, ref := s.b.Add(key)
	if ref != nil {
		return msg, ref
	}
	return msg, nil
}

func (s batchSink) Reject(reason string) error {
	if ref := s.b.Reject(reason); ref != nil {
		return ref
	}
	return nil
}

// ServeHTTP answers as Loki does, in plain text: 204 when every entry is
// durable; 400 with the reasons when some entries were unusable (the
// others are stored, and Promtail does not retry a 400); 429 or 503 with
// Retry-After when pushing back (retried).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	asJSON := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			text(w, http.StatusUnsupportedMediaType, fmt.Sprintf("unreadable Content-Type %q: send application/x-protobuf (snappy) or application/json", ct))
			return
		}
		switch mt {
		case "application/json":
			asJSON = true
		case "application/x-protobuf", "application/octet-stream":
		default:
			text(w, http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Type %q: send application/x-protobuf (snappy) or application/json", mt))
			return
		}
	}
	b, ref := h.gw.Begin(w, r, "loki")
	if ref != nil {
		refuse(w, ref)
		return
	}
	defer b.End()
	st := h.pool.Get().(*state)
	defer h.put(st)
	body := b.Body()
	if len(body) == 0 {
		b.SetCode(text(w, http.StatusBadRequest, "error parsing push request: empty body"))
		return
	}
	st.sink.b = b
	st.dec.Tenant = r.Header.Get("X-Scope-OrgID")
	st.dec.MaxAttributes = b.MaxAttributes()
	var err error
	if asJSON {
		err = st.dec.DecodeJSON(body, b.Arrival(), st.sink)
	} else {
		n, derr := snappy.DecodedLen(body)
		if derr != nil {
			b.SetCode(text(w, http.StatusBadRequest, "error parsing push request: body is not snappy-compressed protobuf: "+derr.Error()))
			return
		}
		if int64(n) > b.MaxBodyBytes() {
			b.SetCode(text(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("decompressed body of %d bytes is over the limit of %d bytes (--max-body-bytes); send smaller batches", n, b.MaxBodyBytes())))
			return
		}
		if cap(st.raw) < n {
			st.raw = make([]byte, n)
		}
		raw, derr := snappy.Decode(st.raw[:n], body)
		if derr != nil {
			b.SetCode(text(w, http.StatusBadRequest, "error parsing push request: body is not snappy-compressed protobuf: "+derr.Error()))
			return
		}
		err = st.dec.DecodeProto(raw, b.Arrival(), st.sink)
	}
	var over *ingest.Refusal
	if errors.As(err, &over) {
		// Over a request limit (413) or the memory budget (503): nothing
		// of the request is acknowledged.
		refuse(w, over)
		b.SetCode(over.Code)
		return
	}
	if err != nil {
		// Nothing of a body that does not parse is kept: the sender learns
		// it is broken rather than that half of it was.
		b.SetCode(text(w, http.StatusBadRequest, err.Error()))
		return
	}
	if ref := b.Commit(r.Context()); ref != nil {
		refuse(w, ref)
		b.SetCode(ref.Code)
		return
	}
	if errs, n := st.dec.Errors(); n > 0 {
		msg := strings.Join(errs, "\n")
		if n > len(errs) {
			msg += fmt.Sprintf("\n… and %d more", n-len(errs))
		}
		b.SetCode(text(w, http.StatusBadRequest, msg))
		return
	}
	w.WriteHeader(http.StatusNoContent)
	b.SetCode(http.StatusNoContent)
}

func (h *Handler) put(st *state) {
	st.sink.b = nil
	if cap(st.raw) > 4<<20 {
		st.raw = nil
	}
	h.pool.Put(st)
}

func refuse(w http.ResponseWriter, ref *ingest.Refusal) {
	if ref.RetryAfter > 0 {
		w.Header().Set("Retry-After", ingest.RetryAfterSeconds(ref.RetryAfter))
	}
	msg := ref.Message
	if ref.Code == http.StatusTooManyRequests {
		// Loki's wording, which operators grep for in Promtail's logs.
		msg = "Ingestion rate limit exceeded: " + msg
	}
	text(w, ref.Code, msg)
}

func text(w http.ResponseWriter, code int, msg string) int {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
	return code
}
