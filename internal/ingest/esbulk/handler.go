// Package esbulk makes wirelog a target for shippers configured for
// Elasticsearch (Filebeat, Logstash, Fluent Bit's es output, Vector's
// elasticsearch sink, rsyslog's omelasticsearch, syslog-ng's
// elasticsearch-http, the official clients' bulk helpers): the bulk API
// (POST /_bulk, /{index}/_bulk, /insert/elasticsearch/_bulk) decoded here
// and produced through the native gateway (ingest.Batch), and the handshake
// requests those shippers make before sending, answered as Elasticsearch
// Version would.
package esbulk

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wirelog/wirelog/internal/event"
	"github.com/wirelog/wirelog/internal/ingest"
)

// Version is the Elasticsearch version wirelog claims in GET /. 8.19 is the
// last 8.x minor, and Elastic lets both 8.x and 9.x clients talk to it (it is
// the 8→9 upgrade bridge): Filebeat and Logstash refuse a server older than
// their own major (or minor, for Beats without allow_older_versions), Vector
// picks its request shape from the major (≥7: no _type), and the 8.x Python
// and Go clients check only the X-Elastic-Product header. Claiming 9.x would
// turn away 8.x Beats; claiming 7.x would make Vector and 8.x Beats ask for
// mapping types and legacy templates.
const Version = "8.19.0"

// lucene is the Lucene version Elasticsearch 8.19 reports; some clients
// print it, none depend on it.
const lucene = "9.12.2"

// Prefix is VictoriaLogs' path for its Elasticsearch-compatible API; the
// same routes are served under it so configs written for VictoriaLogs work
// by changing the host.
const Prefix = "/insert/elasticsearch"

// Handler serves the bulk API and the handshake.
type Handler struct {
	gw   *ingest.Handler
	log  *slog.Logger
	pool sync.Pool // *state
}

type state struct {
	dec  Decoder
	resp []byte
}

// New returns the Elasticsearch-compatible handler producing through gw.
// log may be nil (slog.Default()).
func New(gw *ingest.Handler, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{gw: gw, log: log.With("component", "esbulk")}
	h.pool.New = func() any { return new(state) }
	return h
}

// Route is one pattern the handler serves. Ingest routes carry events and
// go through the gateway's admission; the others are the handshake.
type Route struct {
	Pattern string
	Handler http.Handler
	Ingest  bool
}

// Routes lists every pattern, under / and under Prefix. GET / itself is
// not among them: it is the status page for browsers, so the caller
// mounts Root for the others (see Root).
func (h *Handler) Routes() []Route {
	bulk := http.HandlerFunc(h.bulk)
	ack := http.HandlerFunc(acknowledged)
	var rs []Route
	// PUT /{index}/_bulk is left out: it would collide with PUT
	// /_index_template/{name} and its kin, and no shipper sends it.
	for _, p := range []string{"", Prefix} {
		rs = append(rs,
			Route{"POST " + p + "/_bulk", bulk, true},
			Route{"PUT " + p + "/_bulk", bulk, true},
			Route{"POST " + p + "/{index}/_bulk", bulk, true},
			Route{"GET " + p + "/_license", http.HandlerFunc(license), false},
			Route{"GET " + p + "/_xpack", http.HandlerFunc(xpack), false},
			Route{"GET " + p + "/_nodes/http", http.HandlerFunc(nodesHTTP), false},
			Route{"GET " + p + "/_cluster/health", http.HandlerFunc(clusterHealth), false},
			Route{"GET " + p + "/_cat/health", http.HandlerFunc(catHealth), false},
		)
		// Index templates, ILM policies, ingest pipelines and data streams
		// Filebeat and Logstash check (HEAD/GET) and install (PUT) at
		// startup: they exist as far as a shipper can tell, and installing
		// one is acknowledged and ignored, because wirelog has one schema.
		for _, res := range []string{"_index_template", "_template", "_component_template", "_ilm/policy", "_ingest/pipeline", "_data_stream"} {
			rs = append(rs,
				Route{"GET " + p + "/" + res + "/{name}", ack, false},
				Route{"PUT " + p + "/" + res + "/{name}", ack, false},
			)
		}
	}
	rs = append(rs, Route{"GET " + Prefix + "/{$}", http.HandlerFunc(info), false}, Route{"GET " + Prefix, http.HandlerFunc(info), false})
	return rs
}

// Root serves GET and HEAD / for an Elasticsearch client: any request that
// does not ask for HTML. Browsers (Accept: text/html) get page.
func Root(page http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if page != nil && strings.Contains(r.Header.Get("Accept"), "text/html") {
			page.ServeHTTP(w, r)
			return
		}
		info(w, r)
	})
}

func (h *Handler) bulk(w http.ResponseWriter, r *http.Request) {
	b, ref := h.gw.Begin(w, r, "elasticsearch")
	if ref != nil {
		refuse(w, ref)
		return
	}
	defer b.End()
	m, err := MappingFrom(r.URL.Query(), r.Header, DefaultMapping)
	if err != nil {
		b.SetCode(writeError(w, http.StatusBadRequest, "illegal_argument_exception", err.Error()))
		return
	}
	body := b.Body()
	if len(body) == 0 {
		b.SetCode(writeError(w, http.StatusBadRequest, "parse_exception", "request body is required"))
		return
	}
	st := h.pool.Get().(*state)
	defer h.pool.Put(st)
	d := &st.dec
	d.Mapping, d.DefaultIndex, d.MaxDocBytes = m, r.PathValue("index"), b.MaxLineBytes()
	d.MaxAttributes, d.MaxDepth = b.MaxAttributes(), b.MaxDepth()
	d.Reset(body)
	start := time.Now()
	arrival := b.Arrival()
	idBase := strconv.FormatInt(arrival.UnixNano(), 36)
	resp := st.resp[:0]
	resp = append(resp, `{"errors":false,"items":[`...)
	errs, n := false, 0
	for ; ; n++ {
		it, key, done, err := d.Next(arrival, b.Event())
		if err != nil {
			b.SetCode(writeError(w, http.StatusBadRequest, "illegal_argument_exception", err.Error()))
			return
		}
		if done {
			break
		}
		var ref *ingest.Refusal
		if it.Status == 0 {
			var msg string
			if msg, ref = b.Add(key); msg != "" {
				it.fail(400, "document_parsing_exception", msg, "too_large")
			}
		} else {
			ref = b.Reject(it.Reject)
		}
		if ref != nil {
			refuse(w, ref)
			b.SetCode(ref.Code)
			return
		}
		if it.Status != 0 {
			errs = true
		}
		if n > 0 {
			resp = append(resp, ',')
		}
		resp = appendItem(resp, &it, idBase, n)
	}
	if n == 0 {
		b.SetCode(writeError(w, http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: no requests added;"))
		return
	}
	if ref := b.Commit(r.Context()); ref != nil {
		refuse(w, ref)
		b.SetCode(ref.Code)
		return
	}
	// "errors" is known only now; its value is patched in place, both
	// spellings being the same length once padded.
	if errs {
		copy(resp[len(`{"errors":`):], "true ")
	}
	resp = append(resp, `],"took":`...)
	resp = strconv.AppendInt(resp, time.Since(start).Milliseconds(), 10)
	resp = append(resp, "}\n"...)
	header(w)
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	w.Write(resp)
	b.SetCode(http.StatusOK)
	if cap(resp) <= 1<<20 {
		st.resp = resp
	}
}

// appendItem writes one entry of "items" as Elasticsearch does: keyed by
// the action, 201 "created" for a stored document, the error otherwise.
// rsyslog, the Python client's helpers and Filebeat/Logstash/Fluent Bit/
// Vector read "status" and "error" per item, and "errors" to skip the walk.
func appendItem(dst []byte, it *Item, idBase string, n int) []byte {
	dst = append(dst, `{"`...)
	dst = append(dst, it.Op...)
	dst = append(dst, `":{"_index":`...)
	dst = event.AppendString(dst, it.Index)
	dst = append(dst, `,"_id":`...)
	if it.ID != "" {
		dst = event.AppendString(dst, it.ID)
	} else {
		// Elasticsearch generates an id; shippers only echo it in logs.
		dst = append(dst, '"')
		dst = append(dst, idBase...)
		dst = append(dst, '-')
		dst = strconv.AppendInt(dst, int64(n), 36)
		dst = append(dst, '"')
	}
	if it.Status == 0 {
		// What shippers read of a success is the status (and result);
		// _shards, _seq_no and _primary_term are left out: nothing a shipper
		// does depends on them, and they would double the answer's size.
		return append(dst, `,"_version":1,"result":"created","status":201}}`...)
	}
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(it.Status), 10)
	dst = append(dst, `,"error":{"type":`...)
	dst = event.AppendString(dst, it.ErrType)
	dst = append(dst, `,"reason":`...)
	dst = event.AppendString(dst, it.Reason)
	return append(dst, `}}}`...)
}

// header marks an answer as coming from Elasticsearch: the 8.x clients
// refuse any 2xx answer without X-Elastic-Product.
func header(w http.ResponseWriter) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
}

// errorTypes name the Elasticsearch exception shippers see for a status.
var errorTypes = map[int]string{
	http.StatusBadRequest:            "illegal_argument_exception",
	http.StatusUnauthorized:          "security_exception",
	http.StatusRequestEntityTooLarge: "content_too_long_exception",
	http.StatusUnsupportedMediaType:  "media_type_header_exception",
	http.StatusTooManyRequests:       "es_rejected_execution_exception",
	http.StatusServiceUnavailable:    "unavailable_shards_exception",
}

// refuse answers a whole-request refusal in Elasticsearch's error shape;
// 429 is what Beats, Logstash, Fluent Bit and Vector back off and retry on.
func refuse(w http.ResponseWriter, ref *ingest.Refusal) {
	if ref.RetryAfter > 0 {
		w.Header().Set("Retry-After", ingest.RetryAfterSeconds(ref.RetryAfter))
	}
	if ref.Code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="wirelog"`)
	}
	typ := errorTypes[ref.Code]
	if typ == "" {
		typ = "exception"
	}
	writeError(w, ref.Code, typ, ref.Message)
}

func writeError(w http.ResponseWriter, code int, typ, reason string) int {
	b := make([]byte, 0, 128+2*len(reason))
	cause := append(append(append(append([]byte(`{"type":`), event.AppendString(nil, typ)...), `,"reason":`...), event.AppendString(nil, reason)...), '}')
	b = append(b, `{"error":{"root_cause":[`...)
	b = append(b, cause...)
	b = append(b, `],`...)
	b = append(b, cause[1:len(cause)-1]...)
	b = append(b, `},"status":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, "}\n"...)
	header(w)
	w.WriteHeader(code)
	w.Write(b)
	return code
}
