package storagetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/store"
)

// TestDuckDB runs the store contract against the embedded DuckDB store.
func TestDuckDB(t *testing.T) {
	Run(t, Harness{Open: func(t *testing.T) storage.Store {
		st, err := store.Open("", store.Options{DisableMaintenance: true})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}})
}

// TestDuckDBSegments runs the contract against the DuckDB store keeping
// events in Parquet segment files (--store-format parquet); Settle writes
// the buffered events as a segment, as the store does within
// store.DefaultSegmentInterval.
func TestDuckDBSegments(t *testing.T) {
	Run(t, Harness{
		Open: func(t *testing.T) storage.Store {
			st, err := store.Open(filepath.Join(t.TempDir(), "wirelog.duckdb"), store.Options{DisableMaintenance: true, Format: store.FormatParquet})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		Settle: func(t *testing.T, st storage.Store, want int64) {
			if err := st.(*store.Store).FlushSegments(context.Background()); err != nil {
				t.Fatal(err)
			}
		},
	})
}
