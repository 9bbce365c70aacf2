// Package e2e tests wirelog's observability with the real tools at both
// ends: `wirelog run` exporting traces to a real Jaeger, and a real
// Prometheus scraping wirelog and the data-plane agent, evaluating every
// dashboard panel and rule, and storing exemplars that lead to Jaeger.
package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/testproc"
)

var wirelogBin string

func TestMain(m *testing.M) {
	bin, dir, err := testproc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wirelogBin = bin
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newTraceparent returns a sampled W3C traceparent with fresh ids, and its
// trace and span id.
func newTraceparent() (tp, traceID, spanID string) {
	var b [24]byte
	rand.Read(b[:])
	traceID, spanID = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + spanID + "-01", traceID, spanID
}

func post(t *testing.T, base, body string, hdr map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/logs", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type storedEvent struct {
	Message string          `json:"message"`
	TraceID string          `json:"trace_id"`
	SpanID  string          `json:"span_id"`
	Attrs   json.RawMessage `json:"attrs"`
}

// searchTrace returns the stored events with traceID.
func searchTrace(base, traceID string) ([]storedEvent, error) {
	var r struct {
		Events []storedEvent `json:"events"`
	}
	err := getJSON(base+"/api/v1/logs/search?trace_id="+traceID+"&from=2000-01-01T00:00:00Z", &r)
	return r.Events, err
}
