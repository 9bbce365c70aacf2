package ingest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/protobuf/encoding/protowire"
)

// shape describes an OTLP request for the structure-aware fuzzers: how
// many resources, records per resource and attributes per record, how deep
// the record bodies nest, and records with nothing in them.
type shape struct {
	resources, records, attrs, resAttrs, depth, bodyLen int
	empty                                               bool
}

func bytesField(dst []byte, num protowire.Number, v []byte) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	return protowire.AppendBytes(dst, v)
}

func strAny(s string) []byte { return bytesField(nil, 1, []byte(s)) }

func kv(key string, val []byte) []byte {
	b := bytesField(nil, 1, []byte(key))
	if val != nil {
		b = bytesField(b, 2, val)
	}
	return b
}

// nested is an AnyValue of depth levels of kvlist around a string.
func nested(depth int) []byte {
	v := strAny("leaf")
	for i := 0; i < depth; i++ {
		list := bytesField(nil, 1, kv("n", v))
		v = bytesField(nil, 6, list)
	}
	return v
}

func (s shape) record() []byte {
	var lr []byte
	if !s.empty {
		lr = protowire.AppendTag(lr, 2, protowire.VarintType)
		lr = protowire.AppendVarint(lr, 9)
		lr = bytesField(lr, 5, nested(s.depth))
		if s.bodyLen > 0 {
			lr = bytesField(lr, 6, kv("big", strAny(strings.Repeat("x", s.bodyLen))))
		}
		for a := 0; a < s.attrs; a++ {
			lr = bytesField(lr, 6, kv("k", nil))
		}
	}
	return lr
}

func (s shape) build() []byte {
	var req []byte
	for r := 0; r < s.resources; r++ {
		var res []byte
		for a := 0; a < s.resAttrs; a++ {
			res = bytesField(res, 1, kv("res", strAny("v")))
		}
		var sl []byte
		lr := s.record()
		for i := 0; i < s.records; i++ {
			sl = bytesField(sl, 2, lr)
		}
		rl := bytesField(nil, 1, res)
		rl = bytesField(rl, 2, sl)
		req = bytesField(req, 1, rl)
	}
	return req
}

var fuzzLimits = Options{MaxRecords: 500, MaxAttributes: 50, MaxDepth: 6, MaxLineBytes: 2048}

// FuzzOTLPStructure posts OTLP requests of fuzzed shape (huge repeated
// fields, empty records, deep bodies, big resources) and checks the
// answer against what the shape must get: 413 over --max-records, each
// record over a record limit rejected, the rest produced.
func FuzzOTLPStructure(f *testing.F) {
	f.Add(uint8(1), uint16(3), uint16(2), uint8(0), uint8(2), uint16(0), false)
	f.Add(uint8(1), uint16(1), uint16(60000), uint8(0), uint8(0), uint16(0), false) // the 1M-attributes record, scaled
	f.Add(uint8(2), uint16(400), uint16(0), uint8(0), uint8(0), uint16(0), true)    // 800 empty records: over --max-records
	f.Add(uint8(1), uint16(5), uint16(0), uint8(0), uint8(20), uint16(0), false)    // deep bodies
	f.Add(uint8(1), uint16(2), uint16(0), uint8(60), uint8(0), uint16(0), false)    // a resource over the attribute limit
	f.Add(uint8(1), uint16(3), uint16(0), uint8(0), uint8(0), uint16(4000), false)  // records over --max-line-bytes
	f.Add(uint8(0), uint16(0), uint16(0), uint8(0), uint8(0), uint16(0), false)
	f.Fuzz(func(t *testing.T, resources uint8, records, attrs uint16, resAttrs, depth uint8, bodyLen uint16, empty bool) {
		s := shape{resources: int(resources % 4), records: int(records % 1024), attrs: int(attrs), resAttrs: int(resAttrs),
			depth: int(depth % 40), bodyLen: int(bodyLen % 8192), empty: empty}
		body := s.build()
		rec := &recorder{}
		h := NewHandler(rec, fuzzLimits)
		req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		w := httptest.NewRecorder()
		h.OTLP().ServeHTTP(w, req)

		total := s.resources * s.records
		// A record's attributes: the resource's, and unless empty the
		// record's, the body's nested keys and "big". Every record of a
		// shape is the same, so either all are over a limit or none.
		n, d := s.resAttrs, min(s.resAttrs, 1)
		if !s.empty {
			n += s.attrs + s.depth
			if s.bodyLen > 0 {
				n++
			}
			d = s.depth + 1
		}
		bad := 0
		if n > fuzzLimits.MaxAttributes || d > fuzzLimits.MaxDepth || len(s.record()) > fuzzLimits.MaxLineBytes {
			bad = total
		}
		switch {
		case total > fuzzLimits.MaxRecords:
			if w.Code != 413 {
				t.Fatalf("%+v: %d records, status %d, want 413", s, total, w.Code)
			}
		case total == 0:
			if w.Code != 200 || len(rec.vals) != 0 {
				t.Fatalf("%+v: empty request: %d, %d produced", s, w.Code, len(rec.vals))
			}
		case bad == total:
			if w.Code != 413 && w.Code != 400 {
				t.Fatalf("%+v: every record over a limit, status %d %q", s, w.Code, w.Body.String())
			}
			if len(rec.vals) != 0 {
				t.Fatalf("%+v: produced %d records over the limits", s, len(rec.vals))
			}
		default:
			if w.Code != 200 || len(rec.vals) != total {
				t.Fatalf("%+v: status %d, %d of %d produced: %q", s, w.Code, len(rec.vals), total, w.Body.String())
			}
		}
		if h.adm.InUse() != 0 {
			t.Fatalf("%d bytes of the memory budget still held after the answer", h.adm.InUse())
		}
	})
}

// FuzzOTLPScan checks the wire-format scan against pdata on arbitrary
// bytes: when pdata decodes a request, the scan counts the same records,
// and the request without the records it rejects still decodes, with
// exactly those records gone.
func FuzzOTLPScan(f *testing.F) {
	f.Add(shape{resources: 2, records: 3, attrs: 2, depth: 2}.build())
	f.Add(shape{resources: 1, records: 2, attrs: 80}.build())
	f.Add(shape{resources: 1, records: 4, empty: true}.build())
	f.Add(shape{resources: 1, records: 2, depth: 12}.build())
	f.Add([]byte{0x0a, 0x05, 0x12, 0x03, 0x12, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		sc := otlpScan{lim: fuzzLimits.limits()}
		sc.lim.setDefaults()
		serr := sc.scan(body)
		ex := plogotlp.NewExportRequest()
		perr := ex.UnmarshalProto(body)
		if perr != nil || serr != nil {
			return // both may refuse; the handler answers 400 either way
		}
		if got := ex.Logs().LogRecordCount(); got != sc.records {
			t.Fatalf("scan counted %d records, pdata %d", sc.records, got)
		}
		if len(sc.bad) == 0 {
			return
		}
		cut := sc.without(body)
		ex2 := plogotlp.NewExportRequest()
		if err := ex2.UnmarshalProto(cut); err != nil {
			t.Fatalf("the request without its rejected records does not decode: %v", err)
		}
		if got := ex2.Logs().LogRecordCount(); got != sc.records-len(sc.bad) {
			t.Fatalf("%d records left, want %d - %d", got, sc.records, len(sc.bad))
		}
	})
}

func TestOTLPScanHugeRepeatedField(t *testing.T) {
	// One record with a million attributes, as issue 19 sent it: 7 MB of
	// protobuf is measured without decoding and the record is cut out.
	body := shape{resources: 1, records: 1, attrs: 1_000_000}.build()
	sc := otlpScan{lim: Limits{}}
	sc.lim.setDefaults()
	if err := sc.scan(body); err != nil {
		t.Fatal(err)
	}
	if len(sc.bad) != 1 || !strings.Contains(sc.bad[0].err.Error(), "--max-attributes") {
		t.Fatalf("bad records %+v", sc.bad)
	}
	allocs := testing.AllocsPerRun(3, func() {
		s := otlpScan{lim: sc.lim}
		s.scan(body)
	})
	if allocs > 10 {
		t.Errorf("scan of a 1M-attribute record allocates %v times; it must not materialise anything", allocs)
	}
}

// TestOTLPJSONEmptyRecordsBomb: OTLP/JSON has no wire-format scan; its
// objects are counted before decoding, so 16 MiB of `{}` records is a 413
// without materialising millions of LogRecords.
func TestOTLPJSONEmptyRecordsBomb(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}`)
	for b.Len() < 15<<20 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`]}]}]}`)
	h := NewHandler(&recorder{}, Options{})
	req := httptest.NewRequest(http.MethodPost, "/v1/logs", bytes.NewReader(b.Bytes()))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.OTLP().ServeHTTP(w, req)
	if w.Code != 413 {
		t.Fatalf("%d %.200s, want 413", w.Code, w.Body.String())
	}
	if h.adm.InUse() != 0 {
		t.Fatalf("%d bytes still held", h.adm.InUse())
	}
}
