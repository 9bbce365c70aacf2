package ingest

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/event"
)

// otlpScan walks an OTLP ExportLogsServiceRequest in protobuf wire format
// before it is decoded, without allocating per field: it counts the log
// records and messages (what decoding will cost in memory) and finds the
// records over the record limits, so a 7 KB request holding one record with
// a million attributes, or eight million empty records, is refused for what
// it is before anything of it is materialised.
type otlpScan struct {
	lim Limits

	records  int // log records in the request
	messages int // messages of any kind: what pdata will allocate
	bad      []badRecord
}

// badRecord is a log record over a limit, by its place in the body.
type badRecord struct {
	start, end int // bytes of the LogRecord field (tag included) in the body
	err        *event.LimitError
}

// otlpMessageCost is the memory pdata spends on one decoded message
// (LogRecord, KeyValue, AnyValue …) beyond its strings, measured roughly
// with the 8M-empty-records request of issue 19 (5.2 GB / 8M ≈ 650 B for
// a record with its wrappers).
const otlpMessageCost = 160

var errMalformed = errors.New("malformed protobuf")

// Field numbers of opentelemetry/proto/logs/v1 and common/v1.
const (
	fReqResourceLogs   = 1
	fRLResource        = 1
	fRLScopeLogs       = 2
	fResAttributes     = 1
	fSLScope           = 1
	fSLLogRecords      = 2
	fScopeAttributes   = 3
	fLRBody            = 5
	fLRAttributes      = 6
	fKVValue           = 2
	fAnyArray          = 5
	fAnyKVList         = 6
	fArrayValues       = 1
	fKVListValues      = 1
	protoMaxDepthGuard = 100 // stops recursion on hostile nesting regardless of MaxDepth
)

// scan measures body; it returns errMalformed wrapped for unreadable input
// (which pdata would refuse too).
func (s *otlpScan) scan(body []byte) error {
	return eachField(body, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
		s.messages++
		if num == fReqResourceLogs && typ == protowire.BytesType {
			return s.resourceLogs(body, v)
		}
		return nil
	})
}

func (s *otlpScan) resourceLogs(body, b []byte) error {
	resAttrs, resDepth := 0, 0
	// The resource comes first in practice but not by rule: measure it
	// before the records that inherit its attributes.
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
		if num == fRLResource && typ == protowire.BytesType {
			s.messages++
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
				if num == fResAttributes && typ == protowire.BytesType {
					return s.keyValue(v, 1, &resAttrs, &resDepth)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
		if num != fRLScopeLogs || typ != protowire.BytesType {
			return nil
		}
		s.messages++
		scopeAttrs, scopeDepth := 0, 0
		if err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
			if num == fSLScope && typ == protowire.BytesType {
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
					if num == fScopeAttributes && typ == protowire.BytesType {
						return s.keyValue(v, 1, &scopeAttrs, &scopeDepth)
					}
					return nil
				})
			}
			return nil
		}); err != nil {
			return err
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, lr []byte, fstart, fend int) error {
			if num != fSLLogRecords || typ != protowire.BytesType {
				return nil
			}
			s.records++
			s.messages++
			attrs, depth := resAttrs+scopeAttrs, max(resDepth, scopeDepth)
			if err := eachField(lr, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
				switch {
				case num == fLRAttributes && typ == protowire.BytesType:
					return s.keyValue(v, 1, &attrs, &depth)
				case num == fLRBody && typ == protowire.BytesType:
					return s.anyValue(v, 1, &attrs, &depth)
				}
				return nil
			}); err != nil {
				return err
			}
			// fstart/fend are relative to v; turn them into body offsets.
			off := offsetIn(body, v)
			var le *event.LimitError
			switch {
			case attrs > s.lim.MaxAttributes:
				le = &event.LimitError{What: "attributes (resource and scope attributes included)", Got: attrs, Limit: s.lim.MaxAttributes, Flag: "--max-attributes"}
			case depth > s.lim.MaxDepth:
				le = &event.LimitError{What: "levels of nesting", Got: depth, Limit: s.lim.MaxDepth, Flag: "--max-depth"}
			case len(lr) > s.lim.MaxLineBytes:
				le = &event.LimitError{What: "bytes", Got: len(lr), Limit: s.lim.MaxLineBytes, Flag: "--max-line-bytes"}
			}
			if le != nil {
				s.bad = append(s.bad, badRecord{start: off + fstart, end: off + fend, err: le})
			}
			return nil
		})
	})
}

// keyValue measures one KeyValue at depth.
func (s *otlpScan) keyValue(b []byte, depth int, attrs, maxDepth *int) error {
	s.messages++
	*attrs++
	*maxDepth = max(*maxDepth, depth)
	if depth > protoMaxDepthGuard {
		return nil // already far over any MaxDepth; stop recursing
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
		if num == fKVValue && typ == protowire.BytesType {
			return s.anyValue(v, depth, attrs, maxDepth)
		}
		return nil
	})
}

// anyValue measures an AnyValue whose container is at depth.
func (s *otlpScan) anyValue(b []byte, depth int, attrs, maxDepth *int) error {
	s.messages++
	if depth > protoMaxDepthGuard {
		return nil
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fAnyArray:
			s.messages++
			*maxDepth = max(*maxDepth, depth+1)
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
				if num == fArrayValues && typ == protowire.BytesType {
					return s.anyValue(v, depth+1, attrs, maxDepth)
				}
				return nil
			})
		case fAnyKVList:
			s.messages++
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _, _ int) error {
				if num == fKVListValues && typ == protowire.BytesType {
					return s.keyValue(v, depth+1, attrs, maxDepth)
				}
				return nil
			})
		}
		return nil
	})
}

// eachField calls f for every field of the message b, with the field's
// payload (the bytes of a length-delimited field) and the offsets of the
// whole field, tag included, within b.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, start, end int) error) error {
	for off := 0; off < len(b); {
		num, typ, n := protowire.ConsumeTag(b[off:])
		if n < 0 {
			return fmt.Errorf("%w: %v at byte %d", errMalformed, protowire.ParseError(n), off)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[off+n:])
		if m < 0 {
			return fmt.Errorf("%w: field %d: %v", errMalformed, num, protowire.ParseError(m))
		}
		var v []byte
		if typ == protowire.BytesType {
			v, _ = protowire.ConsumeBytes(b[off+n:])
		}
		if err := f(num, typ, v, off, off+n+m); err != nil {
			return err
		}
		off += n + m
	}
	return nil
}

// offsetIn is where sub starts within body (sub is a subslice of body).
func offsetIn(body, sub []byte) int {
	if len(sub) == 0 {
		return 0
	}
	return cap(body) - cap(sub)
}

// without returns body with the fields of the bad records removed and the
// lengths of the ResourceLogs and ScopeLogs around them re-encoded.
func (s *otlpScan) without(body []byte) []byte {
	out := make([]byte, 0, len(body))
	next := 0 // index into s.bad, which is in body order
	var copyMsg func(b []byte, level int) []byte
	// level 0: request, 1: ResourceLogs, 2: ScopeLogs.
	copyMsg = func(b []byte, level int) []byte {
		var dst []byte
		eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, start, end int) error {
			abs := offsetIn(body, b) + start
			if level == 2 && num == fSLLogRecords && next < len(s.bad) && s.bad[next].start == abs {
				next++
				return nil
			}
			if (level == 0 && num == fReqResourceLogs || level == 1 && num == fRLScopeLogs) && typ == protowire.BytesType {
				inner := copyMsg(v, level+1)
				dst = protowire.AppendTag(dst, num, typ)
				dst = protowire.AppendBytes(dst, inner)
				return nil
			}
			dst = append(dst, b[start:end]...)
			return nil
		})
		return dst
	}
	out = append(out, copyMsg(body, 0)...)
	return out
}
