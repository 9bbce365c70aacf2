package store

import (
	"context"
	"database/sql"
	"fmt"
)

// MemoryTag is one line of DuckDB's duckdb_memory(): what its buffer
// manager holds for one purpose (BASE_TABLE, HASH_TABLE, ART_INDEX,
// COLUMN_DATA, ...), in memory and spilled to the temp directory.
type MemoryTag struct {
	Tag         string `json:"tag"`
	MemoryBytes int64  `json:"memory_usage_bytes"`
	TempBytes   int64  `json:"temporary_storage_bytes"`
}

// Memory is what DuckDB accounts for against --store-memory.
type Memory struct {
	Limit string      `json:"memory_limit"`
	Tags  []MemoryTag `json:"tags"`
	Total int64       `json:"memory_usage_bytes"`
	Temp  int64       `json:"temporary_storage_bytes"`
}

// MemoryUsage reads duckdb_memory() (for /debug/store/memory): what of the
// process's RSS is DuckDB's buffer pool, by purpose. Memory DuckDB
// allocates outside its buffer manager is not in it.
func (s *Store) MemoryUsage(ctx context.Context) (*Memory, error) {
	m := &Memory{Limit: s.opts.MemoryLimit}
	err := s.query(ctx, "memory", `SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() ORDER BY tag`, nil,
		func(rows *sql.Rows) error {
			var t MemoryTag
			if err := rows.Scan(&t.Tag, &t.MemoryBytes, &t.TempBytes); err != nil {
				return err
			}
			m.Tags = append(m.Tags, t)
			m.Total += t.MemoryBytes
			m.Temp += t.TempBytes
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read DuckDB memory: %w", err)
	}
	return m, nil
}
