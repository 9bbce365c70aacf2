package store

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends r as JSON to b, byte for byte what json.Marshal(r)
// writes, or returns json.Marshal's error. A 1 h rollup by service and
// level at step 10 s is ~50-65k points (~3.5 MB of JSON); encoding/json
// spends most of its time there on reflection and on time.Time's
// MarshalJSON output, which it allocates and then re-scans point by point
// (docs/bench/store.md, issue 12). The API writes rollups with this
// (api.writeJSON takes any value with an AppendJSON method).
func (r *Rollups) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"from":`...)
	if b, err = appendTime(b, r.From); err != nil {
		return nil, err
	}
	b = append(b, `,"to":`...)
	if b, err = appendTime(b, r.To); err != nil {
		return nil, err
	}
	b = append(b, `,"step_seconds":`...)
	b = strconv.AppendInt(b, r.StepSeconds, 10)
	b = append(b, `,"by":`...)
	if b, err = appendJSONValue(b, r.By); err != nil {
		return nil, err
	}
	b = append(b, `,"series":`...)
	if r.Series == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range r.Series {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = r.Series[i].appendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if r.Partial {
		b = append(b, `,"partial":true`...)
	}
	if len(r.Missing) > 0 {
		b = append(b, `,"missing":`...)
		if b, err = appendJSONValue(b, r.Missing); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (s *Series) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	for _, d := range []struct {
		key string
		v   *string
	}{{`"service":`, s.Service}, {`"level":`, s.Level}, {`"tenant":`, s.Tenant}} {
		if d.v == nil {
			continue
		}
		b = append(b, d.key...)
		if b, err = appendJSONValue(b, *d.v); err != nil {
			return nil, err
		}
		b = append(b, ',')
	}
	b = append(b, `"points":`...)
	if s.Points == nil {
		return append(b, "null}"...), nil
	}
	b = append(b, '[')
	for i, p := range s.Points {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ts":`...)
		if b, err = appendTime(b, p.Time); err != nil {
			return nil, err
		}
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, p.Count, 10)
		b = append(b, `,"bytes":`...)
		b = strconv.AppendInt(b, p.Bytes, 10)
		b = append(b, '}')
	}
	return append(b, "]}"...), nil
}

// appendTime appends t as time.Time's MarshalJSON writes it.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

// appendJSONValue appends json.Marshal(v): for the few strings and lists
// of a rollup, where encoding/json's escaping must be kept exactly.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}
