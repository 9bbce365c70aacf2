package store

import (
	"errors"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// IsOutOfMemory reports whether err is DuckDB running out of its memory
// limit (--store-memory). It is pressure, not a bug: the same query
// succeeds once concurrent work finishes, so the API answers it 503 with
// Retry-After rather than 500.
func IsOutOfMemory(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeOutOfMemory
}
