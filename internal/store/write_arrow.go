//go:build duckdb_arrow

package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// With the duckdb_arrow build tag, Write hands DuckDB each batch as one
// Arrow record: Go fills plain column buffers and DuckDB scans them in one
// call, instead of one cgo call per text value through the Appender
// (docs/bench/store.md). Without the tag, write_appender.go keeps the
// query Appender.
var defaultAppendEvents = appendEventsArrow

// arrowView is the name the batch is registered under on the writer's
// connection, for the length of one INSERT.
const arrowView = "wirelog_batch"

var arrowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "topic", Type: arrow.BinaryTypes.String},
	{Name: "partition", Type: arrow.PrimitiveTypes.Int32},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond}},
	{Name: "service", Type: arrow.BinaryTypes.String},
	{Name: "level", Type: arrow.BinaryTypes.String},
	{Name: "message", Type: arrow.BinaryTypes.String},
	{Name: "host", Type: arrow.BinaryTypes.String},
	{Name: "trace_id", Type: arrow.BinaryTypes.String},
	{Name: "span_id", Type: arrow.BinaryTypes.String},
	{Name: "tenant", Type: arrow.BinaryTypes.String},
	{Name: "attrs", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "bytes", Type: arrow.PrimitiveTypes.Int32},
}, nil)

// insertArrow turns the registered batch into events rows; attrs are
// validated as JSON in C++ exactly as on the Appender path. It must read
// every column of arrowSchema: DuckDB scanning a registered view for a
// subset of its columns can segfault (duckdb/duckdb-go#28; seen here with
// topic left out). TestArrowInsertReadsEveryColumn checks it.
const insertArrow = `INSERT INTO events SELECT topic, "partition", "offset", ts, service, level, message, host,
	trace_id, span_id, tenant,
	CASE WHEN attrs IS NULL THEN NULL WHEN json_valid(attrs) THEN attrs::JSON ELSE to_json(attrs) END,
	bytes FROM ` + arrowView

// appendEventsArrow writes the kept rows as one Arrow record in the open
// transaction, so a ROLLBACK discards them with the rollups and offsets.
func appendEventsArrow(conn driver.Conn, rows []Row, keep []bool) error {
	rec := buildArrowRecord(rows, keep)
	defer rec.Release()
	ar, err := duckdb.NewArrowFromConn(conn)
	if err != nil {
		return fmt.Errorf("open Arrow interface: %w", err)
	}
	rr, err := array.NewRecordReader(arrowSchema, []arrow.RecordBatch{rec})
	if err != nil {
		return fmt.Errorf("events batch as Arrow: %w", err)
	}
	defer rr.Release()
	release, err := ar.RegisterView(rr, arrowView)
	if err != nil {
		return fmt.Errorf("register events batch with DuckDB: %w", err)
	}
	defer release()
	ex := conn.(driver.ExecerContext)
	if _, err := ex.ExecContext(context.Background(), insertArrow, nil); err != nil {
		return fmt.Errorf("insert events batch: %w", err)
	}
	// The view points at memory release frees; drop it in the same
	// transaction so nothing can scan it afterwards.
	if _, err := ex.ExecContext(context.Background(), `DROP VIEW IF EXISTS `+arrowView, nil); err != nil {
		return fmt.Errorf("drop events batch view: %w", err)
	}
	return nil
}

// buildArrowRecord copies the kept rows into Arrow column builders sized
// up front, so a batch costs a handful of allocations, not several per row.
func buildArrowRecord(rows []Row, keep []bool) arrow.RecordBatch {
	n := 0
	var textLen [8]int // topic, service, message, host, trace_id, span_id, tenant, attrs
	for i := range rows {
		if !keep[i] {
			continue
		}
		n++
		r := &rows[i]
		e := &r.Event
		textLen[0] += len(r.Topic)
		textLen[1] += len(e.Service)
		textLen[2] += len(e.Message)
		textLen[3] += len(e.Host)
		textLen[4] += len(e.TraceID)
		textLen[5] += len(e.SpanID)
		textLen[6] += len(e.Tenant)
		textLen[7] += len(e.Attrs)
	}
	mem := memory.DefaultAllocator
	str := func(dataLen int) *array.BinaryBuilder {
		b := array.NewBinaryBuilder(mem, arrow.BinaryTypes.String)
		b.Reserve(n)
		b.ReserveData(dataLen + 16) // room for a repaired byte or two
		return b
	}
	topic, service, message, host := str(textLen[0]), str(textLen[1]), str(textLen[2]), str(textLen[3])
	traceID, spanID, tenant, attrs := str(textLen[4]), str(textLen[5]), str(textLen[6]), str(textLen[7])
	level := str(n * 5)
	partition := array.NewInt32Builder(mem)
	partition.Reserve(n)
	offset := array.NewInt64Builder(mem)
	offset.Reserve(n)
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond})
	ts.Reserve(n)
	size := array.NewInt32Builder(mem)
	size.Reserve(n)

	for i := range rows {
		if !keep[i] {
			continue
		}
		r := &rows[i]
		e := &r.Event
		appendText(topic, r.Topic)
		partition.UnsafeAppend(r.Partition)
		offset.UnsafeAppend(r.Offset)
		ts.UnsafeAppend(arrow.Timestamp(e.Time.UnixMicro()))
		appendText(service, e.Service)
		appendText(level, e.Level.String())
		appendText(message, e.Message)
		appendText(host, e.Host)
		appendText(traceID, e.TraceID)
		appendText(spanID, e.SpanID)
		appendText(tenant, e.Tenant)
		if len(e.Attrs) == 0 {
			attrs.AppendNull()
		} else {
			attrs.Append(validBytes(e.Attrs))
		}
		size.UnsafeAppend(int32(r.Bytes))
	}
	builders := []array.Builder{topic, partition, offset, ts, service, level, message, host, traceID, spanID, tenant, attrs, size}
	cols := make([]arrow.Array, len(builders))
	for i, b := range builders {
		cols[i] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecordBatch(arrowSchema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// appendText appends s without the []byte copy of StringBuilder.Append
// (the builder copies the bytes into its own buffer and keeps nothing),
// repairing invalid UTF-8 as the Appender path does.
func appendText(b *array.BinaryBuilder, s string) {
	if !utf8.ValidString(s) {
		s = validString(s)
	}
	b.Append(unsafe.Slice(unsafe.StringData(s), len(s)))
}
