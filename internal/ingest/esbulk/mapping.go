package esbulk

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Defaults of the field mapping, chosen for ECS (Filebeat, Elastic Agent,
// Fluent Bit's es output, Logstash's ecs_compatibility) and for the shippers
// that write their own names (Vector writes "timestamp", Fluent Bit's tail
// input "log"). A request overrides each list with a query argument or a
// header of the same name, as VictoriaLogs does.
const (
	// DefaultMsgFields are the fields whose value becomes the message; the
	// first present wins. Query arg or header _msg_field.
	DefaultMsgFields = "message,msg,log"
	// DefaultTimeFields are the fields holding the event time (RFC 3339 or
	// epoch s/ms/us/ns); the first present wins; none means arrival time.
	// Query arg or header _time_field.
	DefaultTimeFields = "@timestamp,timestamp"
	// DefaultStreamFields name the event's stream: their values form the
	// partition key, so one stream's events stay in order. Query arg or
	// header _stream_fields.
	DefaultStreamFields = "service.name,host.name"
	// maxMappingFields bounds each list so a request cannot make the
	// per-field lookup slow.
	maxMappingFields = 16
)

// Mapping says which fields of a document carry the message, the time and
// the stream. The other named fields are fixed, by ECS name first and then
// wirelog's native names: service.name/service → service,
// host.name/host.hostname/host/hostname → host, log.level/level/severity →
// level, trace.id/trace_id/traceId → trace_id, span.id/span_id/spanId →
// span_id. Everything else is kept as an attribute, nested objects
// flattened to dotted names ("kubernetes.pod.name").
type Mapping struct {
	MsgFields    []string
	TimeFields   []string
	StreamFields []string
}

// DefaultMapping is the mapping when a request names none.
var DefaultMapping = Mapping{
	MsgFields:    strings.Split(DefaultMsgFields, ","),
	TimeFields:   strings.Split(DefaultTimeFields, ","),
	StreamFields: strings.Split(DefaultStreamFields, ","),
}

// MappingFrom reads _msg_field, _time_field and _stream_fields from the
// query string, then from headers, falling back to base for each one
// neither gives.
func MappingFrom(q url.Values, h http.Header, base Mapping) (Mapping, error) {
	m := base
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"_msg_field", &m.MsgFields}, {"_time_field", &m.TimeFields}, {"_stream_fields", &m.StreamFields}} {
		v := q.Get(f.name)
		if v == "" {
			v = h.Get(f.name)
		}
		if v == "" {
			continue
		}
		var list []string
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				list = append(list, s)
			}
		}
		if len(list) > maxMappingFields {
			return m, fmt.Errorf("%s lists %d fields; at most %d", f.name, len(list), maxMappingFields)
		}
		*f.dst = list
	}
	return m, nil
}
