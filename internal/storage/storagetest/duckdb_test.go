package storagetest

import (
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
