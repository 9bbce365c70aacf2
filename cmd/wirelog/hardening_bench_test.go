//go:build !agent

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/wirelog/wirelog/internal/testproc"
)

// attack is one of issue 19's tiny-but-huge requests, sent to a node.
type attack struct {
	name string
	run  func(tb testing.TB, url string) string // returns the statuses seen
}

func emptyRecords(k int) []byte {
	empty := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), nil)
	var rl []byte
	rl = protowire.AppendTag(rl, 2, protowire.BytesType)
	rl = protowire.AppendBytes(rl, bytes.Repeat(empty, k))
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rl)
}

func sendN(tb testing.TB, url string, n int, ct, ce string, body []byte) string {
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			hdr := map[string]string{"Content-Type": ct}
			if ce != "" {
				hdr["Content-Encoding"] = ce
			}
			codes[i], _ = do(tb, "POST", url, "", hdr, body)
		}(i)
	}
	wg.Wait()
	return fmt.Sprint(codes)
}

func issue19Attacks() []attack {
	pb, nd := "application/x-protobuf", "application/x-ndjson"
	million := gzipBytes(otlpRequest(logRecord("poison", 1_000_000)))
	eightM := gzipBytes(emptyRecords(8_000_000))
	oneM := gzipBytes(emptyRecords(1_000_000))
	curly := gzipBytes(bytes.Repeat([]byte("{}\n"), 5_000_000))
	lines := bytes.Repeat([]byte(`{"msg":"a"}`+"\n"), 1_398_091)
	var legit bytes.Buffer
	for legit.Len() < 15<<20 {
		fmt.Fprintf(&legit, `{"ts":"2026-11-27T10:00:00Z","service":"payments-api","level":"info","message":"charge captured for order %d in 42ms","host":"web-7","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","duration_ms":42}`+"\n", legit.Len())
	}
	return []attack{
		{"idle (baseline)", func(tb testing.TB, url string) string { return "-" }},
		{fmt.Sprintf("15 MiB of real-looking NDJSON, 4 at once (legitimate, at the body limit)"), func(tb testing.TB, url string) string {
			return sendN(tb, url+"/api/v1/logs", 4, nd, "", legit.Bytes())
		}},
		{fmt.Sprintf("OTLP 1 record x 1M attributes (%d KB gzip)", len(million)>>10), func(tb testing.TB, url string) string {
			return sendN(tb, url+"/v1/logs", 1, pb, "gzip", million)
		}},
		{fmt.Sprintf("OTLP 8M empty records (%d KB gzip)", len(eightM)>>10), func(tb testing.TB, url string) string {
			return sendN(tb, url+"/v1/logs", 1, pb, "gzip", eightM)
		}},
		{fmt.Sprintf("OTLP 4 x 1M empty records at once (%d KB gzip each)", len(oneM)>>10), func(tb testing.TB, url string) string {
			return sendN(tb, url+"/v1/logs", 4, pb, "gzip", oneM)
		}},
		{fmt.Sprintf("NDJSON {} lines (%d KB gzip)", len(curly)>>10), func(tb testing.TB, url string) string {
			return sendN(tb, url+"/api/v1/logs", 1, nd, "gzip", curly)
		}},
		{"NDJSON 1,398,091 lines of {\"msg\":\"a\"} (16 MB)", func(tb testing.TB, url string) string {
			return sendN(tb, url+"/api/v1/logs", 1, nd, "", lines)
		}},
		{"300 stalled bodies (Content-Length 100000)", func(tb testing.TB, url string) string {
			host := strings.TrimPrefix(url, "http://")
			var conns []net.Conn
			for i := 0; i < 300; i++ {
				c, err := net.Dial("tcp", host)
				if err != nil {
					break
				}
				conns = append(conns, c)
				fmt.Fprintf(c, "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{\"message\":\"par")
			}
			time.Sleep(2 * time.Second)
			for _, c := range conns {
				c.Close()
			}
			return fmt.Sprintf("%d connections held 2s", len(conns))
		}},
	}
}

// BenchmarkIssue19AdversarialRSS starts a fresh `wirelog run` for each of
// issue 19's attacks (and all of them at once), sends it, and reports the
// process's peak RSS (VmHWM). WIRELOG_BENCH_BIN runs another build (main)
// for a same-run baseline. Not a timing; run with -benchtime 1x:
//
//	go test -run XXX -bench Issue19AdversarialRSS -benchtime 1x ./cmd/wirelog
func BenchmarkIssue19AdversarialRSS(b *testing.B) {
	bin := wirelogBin
	if v := os.Getenv("WIRELOG_BENCH_BIN"); v != "" {
		bin = v
	}
	attacks := issue19Attacks()
	all := attack{"all of the above at once", func(tb testing.TB, url string) string {
		var wg sync.WaitGroup
		out := make([]string, len(attacks))
		for i, a := range attacks {
			wg.Add(1)
			go func(i int, a attack) { defer wg.Done(); out[i] = a.run(tb, url) }(i, a)
		}
		wg.Wait()
		return strings.Join(out, " ")
	}}
	for _, a := range append(attacks, all) {
		b.Run(strings.NewReplacer(" ", "_", ",", "").Replace(a.name), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				p := testproc.Start(b, bin, "wirelog run", "run", "--http", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--syslog-udp", "", "--syslog-tcp", "")
				start := time.Now()
				codes := a.run(b, p.URL)
				took := time.Since(start)
				time.Sleep(time.Second) // let the processor pick up what was accepted
				hwm := peakRSS(b, p.Pid())
				b.ReportMetric(float64(hwm>>20), "peakRSS_MB")
				b.Logf("%-70s peak RSS %4d MB  answers %s  in %v", a.name, hwm>>20, codes, took.Round(time.Millisecond))
				p.Kill9()
				_ = http.DefaultClient
			}
		})
	}
}
