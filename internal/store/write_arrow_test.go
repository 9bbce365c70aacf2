//go:build duckdb_arrow

package store

import (
	"strings"
	"testing"
)

// TestArrowInsertReadsEveryColumn guards against a DuckDB crash: a
// registered Arrow view scanned for only some of its columns can read the
// wrong buffers and segfault (duckdb/duckdb-go#28; reproduced here with a
// SELECT that left out topic). insertArrow must name every field of
// arrowSchema.
func TestArrowInsertReadsEveryColumn(t *testing.T) {
	sel, _, ok := strings.Cut(insertArrow, " FROM ")
	if !ok {
		t.Fatalf("insertArrow has no FROM: %s", insertArrow)
	}
	for _, f := range arrowSchema.Fields() {
		if !strings.Contains(sel, f.Name) {
			t.Errorf("insertArrow does not read column %q of the Arrow batch; every column must be scanned", f.Name)
		}
	}
}
