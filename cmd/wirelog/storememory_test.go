package main

import (
	"testing"
)

// TestStoreMemoryEndpoint: with --pprof, /debug/store/memory says what DuckDB
// holds against --store-memory (by duckdb_memory() tag) beside the Go heap,
// the two parts of RSS an operator weighs (docs/OPERATIONS.md).
func TestStoreMemoryEndpoint(t *testing.T) {
	n := startNode(t, t.TempDir(), "--pprof", "--store-memory", "96MB")
	if code, _, _ := n.post("application/x-ndjson", "", []byte(`{"message":"one","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)); code != 202 {
		t.Fatalf("post: %d", code)
	}
	var m struct {
		DuckDB struct {
			Limit string `json:"memory_limit"`
			Tags  []struct {
				Tag string `json:"tag"`
			} `json:"tags"`
		} `json:"duckdb"`
		Go map[string]uint64 `json:"go"`
	}
	if code := n.getJSON("/debug/store/memory", &m); code != 200 {
		t.Fatalf("GET /debug/store/memory: %d", code)
	}
	if m.DuckDB.Limit != "96MB" || len(m.DuckDB.Tags) == 0 || m.Go["heap_inuse_bytes"] == 0 {
		t.Fatalf("/debug/store/memory = %+v; want the 96MB limit, duckdb_memory() tags and the Go heap", m)
	}
	found := false
	for _, tg := range m.DuckDB.Tags {
		found = found || tg.Tag == "BASE_TABLE"
	}
	if !found {
		t.Fatalf("no BASE_TABLE tag in %+v", m.DuckDB.Tags)
	}
}
