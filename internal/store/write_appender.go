//go:build !duckdb_arrow

package store

// Without the duckdb_arrow build tag, Write uses the query Appender
// (appendEvents in write.go); write_arrow.go has the faster Arrow path.
var defaultAppendEvents = appendEvents
