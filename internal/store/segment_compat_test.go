package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
)

// mainSegmentProps are the Parquet settings segment files were written
// with before issue 12's fifth session (main at 504d70f): 1 MB pages, a
// dictionary on partition, statistics on every dictionary column (and
// golang/snappy's encoder: useGolangSnappy).
func mainSegmentProps() *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(segmentRowGroup),
		parquet.WithDataPageSize(1 << 20),
		parquet.WithEncodingFor("ts", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithEncodingFor("offset", parquet.Encodings.DeltaBinaryPacked),
		parquet.WithStats(true),
		parquet.WithStatsFor("message", false),
		parquet.WithStatsFor("attrs", false),
		parquet.WithStatsFor("span_id", false),
	}
	for _, c := range []string{"topic", "partition", "service", "level", "host", "tenant"} {
		opts = append(opts, parquet.WithDictionaryFor(c, true))
	}
	return parquet.NewWriterProperties(opts...)
}

// useGolangSnappy makes the SNAPPY codec github.com/golang/snappy's again
// until the returned func runs.
func useGolangSnappy() (restore func()) {
	c, _ := compress.GetCodec(compress.Codecs.Snappy)
	compress.RegisterCodec(compress.Codecs.Snappy, c.(s2SnappyCodec).Codec)
	return func() { compress.RegisterCodec(compress.Codecs.Snappy, c) }
}

// A store whose segment files were written by the earlier writer settings
// opens, and every query answers from those files and the new ones alike,
// as the table does for the same rows.
func TestSegmentFilesOfTheEarlierWriterStayReadable(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	rows := genRows(2400, "logs", 0, 0, t0, 7*time.Millisecond)
	rows = append(rows, genRows(600, "logs", 1, 0, t0.Add(time.Second), 11*time.Millisecond)...)

	restoreCodec := useGolangSnappy()
	segmentProps = mainSegmentProps
	restore := func() { restoreCodec(); segmentProps = defaultSegmentProps }
	t.Cleanup(restore)
	old, err := Open(path, Options{Format: FormatParquet, DisableMaintenance: true, Retention: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1500; i += 500 {
		mustWrite(t, old, append([]Row(nil), rows[i:i+500]...))
		if err := old.FlushSegments(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	restore()

	seg := openSegmentStore(t, path, Options{})
	for i := 1500; i < len(rows); i += 500 {
		mustWrite(t, seg, append([]Row(nil), rows[i:min(i+500, len(rows))]...))
	}
	if err := seg.FlushSegments(ctx); err != nil {
		t.Fatal(err)
	}
	// Both kinds of file are in the store: the earlier one's partition
	// column is dictionary-encoded, the new one's delta-encoded.
	kinds := map[bool]bool{}
	for _, f := range segmentFiles(t, seg.path) {
		var enc string
		err := seg.db.QueryRowContext(ctx, `SELECT encodings FROM parquet_metadata(?) WHERE path_in_schema = 'partition' LIMIT 1`, f).Scan(&enc)
		if err != nil {
			t.Fatalf("read the metadata of %s: %v", filepath.Base(f), err)
		}
		kinds[strings.Contains(enc, "DICTIONARY")] = true
	}
	if !kinds[true] || !kinds[false] {
		t.Fatalf("segment files with a dictionary-encoded partition: %v; want both kinds", kinds)
	}

	table := openTest(t, tempDB(t))
	mustWrite(t, table, append([]Row(nil), rows...))
	if got, want := countEvents(t, seg), int64(len(rows)); got != want {
		t.Fatalf("the store holds %d events, want %d", got, want)
	}
	same := sameAnswer(t, table, seg)
	oldProbe, newProbe := rows[321].Event, rows[2345].Event
	same("stats", func(st *Store) (any, error) { return st.Stats(ctx, StatsRequest{}) })
	for _, req := range []SearchRequest{
		{Limit: 1000},
		{Service: oldProbe.Service, Level: oldProbe.Level.String(), Limit: 1000},
		{Host: newProbe.Host, Tenant: newProbe.Tenant, Limit: 1000},
		{TraceID: oldProbe.TraceID},
		{TraceID: newProbe.TraceID},
		{Query: "orders/321 "},
		{Query: "orders/2345 "},
	} {
		same("search", func(st *Store) (any, error) { return st.Search(ctx, req) })
	}
	same("context", func(st *Store) (any, error) {
		return st.Context(ctx, ContextRequest{Topic: "logs", Partition: 0, Offset: 1499, N: 5})
	})
}
