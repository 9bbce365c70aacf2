package victorialogs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/storage"
	"github.com/wirelog/wirelog/internal/storage/storagetest"
	"github.com/wirelog/wirelog/internal/storage/victorialogs"
	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
	"github.com/wirelog/wirelog/internal/store"
	"github.com/wirelog/wirelog/internal/testproc"
)

// TestContract runs the store contract against a real VictoriaLogs cluster
// (two storage nodes behind a front node): the same assertions as DuckDB's.
func TestContract(t *testing.T) {
	vl := vltest.Start(t, true, "")
	storagetest.Run(t, storagetest.Harness{
		Open: func(t *testing.T) storage.Store {
			// Small export slices, so the contract walks many of them; a
			// small unsorted read, so searches take both paths (a few
			// matches: read whole, ordered here; more: sorted by VictoriaLogs).
			st, err := victorialogs.Open(victorialogs.Options{URL: vl.URL, ExportSliceRows: 7, SearchUnsortedRows: 50})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		Settle: func(t *testing.T, st storage.Store, want int64) {
			testproc.Eventually(t, 30*time.Second, func() error {
				vl.Flush()
				s, err := st.Stats(context.Background(), store.StatsRequest{NoPartial: true})
				if err != nil {
					return err
				}
				if s.Events != want {
					return fmt.Errorf("%d events visible, want %d", s.Events, want)
				}
				return nil
			})
		},
	})
}
