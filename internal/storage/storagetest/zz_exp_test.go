package storagetest

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/storage/victorialogs"
)

func TestZZLoadExperiment(t *testing.T) {
	u := os.Getenv("EXP_URL")
	if u == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("EXP_N"))
	acc, _ := strconv.Atoi(os.Getenv("EXP_ACCOUNT"))
	opts := victorialogs.Options{URL: u, AccountID: uint32(acc), DeadLetters: victorialogs.Account{AccountID: 999}}
	if v := os.Getenv("EXP_STREAMS"); v != "" {
		opts.StreamFields = strings.Split(v, ",")
	}
	st, err := victorialogs.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().Truncate(time.Second)
	start := now.Add(-time.Hour)
	const batch = 50000
	for off := 0; off < n; off += batch {
		p := int32(off / batch % 4)
		rows := benchRows(min(batch, n-off), p, int64(off), start.Add(time.Duration(int64(time.Hour)/int64(n)*int64(off))), time.Duration(int64(time.Hour)/int64(n)*int64(batch)))
		if _, err := st.Write(context.Background(), rows); err != nil {
			t.Fatal(err)
		}
	}
}
