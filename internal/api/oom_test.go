package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/wirelog/wirelog/internal/store"
)

// oomStore answers every query as DuckDB does when its memory limit is
// reached (issue 19: searches answered 500 while a poison batch held it).
type oomStore struct{}

var errOOM = &duckdb.Error{Type: duckdb.ErrorTypeOutOfMemory, Msg: "Out of Memory Error: failed to allocate data of size 16.0 MiB (112.0 MiB/128.0 MiB used)"}

func (oomStore) Stats(context.Context, store.StatsRequest) (*store.Stats, error) { return nil, errOOM }
func (oomStore) Rollups(context.Context, store.RollupsRequest) (*store.Rollups, error) {
	return nil, errOOM
}
func (oomStore) Search(context.Context, store.SearchRequest) (*store.SearchResult, error) {
	return nil, errOOM
}

func TestStoreOutOfMemoryIs503(t *testing.T) {
	srv := httptest.NewServer(New(Options{Store: oomStore{}}))
	defer srv.Close()
	for _, path := range []string{"/api/v1/stats", "/api/v1/rollups", "/api/v1/logs/search"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d (Retry-After %q), want 503 with Retry-After", path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}
