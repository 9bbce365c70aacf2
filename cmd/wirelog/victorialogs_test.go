//go:build !agent

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wirelog/wirelog/internal/storage/victorialogs/vltest"
	"github.com/wirelog/wirelog/internal/testproc"
)

// vlQuery runs a LogsQL query in one VictoriaLogs account, straight at the
// server, and returns the answered rows.
func vlQuery(t *testing.T, base, account, q string) []map[string]any {
	t.Helper()
	acc, proj, _ := strings.Cut(account, ":")
	req, _ := http.NewRequest(http.MethodPost, base+"/select/logsql/query", strings.NewReader(url.Values{"query": {q}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("AccountID", acc)
	req.Header.Set("ProjectID", proj)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("VictoriaLogs query: %v", err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	dec := json.NewDecoder(resp.Body)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("VictoriaLogs answer: %v", err)
		}
		out = append(out, m)
	}
	return out
}

// adminMetric reads one metric's value with the operator token.
func adminMetric(t *testing.T, base, name string) float64 {
	t.Helper()
	_, body := do(t, "GET", base+"/metrics", "Bearer "+adminToken, nil, nil)
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// TestVictoriaLogsRunTenantsAndDeadLetters: `wirelog run --store
// victorialogs` (ingest, embedded log, processor and API in one process)
// writes each tenant to its own VictoriaLogs account (--store-tenants), a
// record VictoriaLogs would skip silently goes to the dead-letter account
// and the partition moves on, and `wirelog serve` over the same cluster
// lets tenant alpha read alpha only: its account, its answers, its export.
func TestVictoriaLogsRunTenantsAndDeadLetters(t *testing.T) {
	vl := vltest.Start(t, false, "1s")
	dir := t.TempDir()
	tenants := filepath.Join(dir, "tenants.txt")
	os.WriteFile(tenants, []byte("# tenant  AccountID:ProjectID\nalpha 10:0\nbeta 20:3\n"), 0o600)
	vlFlags := []string{"--store", "victorialogs", "--store-url", vl.URL, "--store-tenants", tenants, "--store-durable-after", "4s"}
	n := startAuthNode(t, append(vlFlags, "--max-write-tries", "2")...)

	nd := map[string]string{"Content-Type": "application/x-ndjson"}
	post := func(token, body string) {
		t.Helper()
		if code, resp := do(t, "POST", n.URL+"/api/v1/logs", "Bearer "+token, nd, []byte(body)); code != 202 {
			t.Fatalf("ingest: %d %s", code, resp)
		}
	}
	huge := strings.Repeat("x", 300<<10) // over VictoriaLogs' 256 KiB line limit, under ingest's 1 MiB
	post(alphaToken, `{"service":"a-svc","level":"info","message":"alpha one"}`+"\n"+
		`{"service":"a-svc","level":"error","message":"`+huge+`"}`+"\n"+
		`{"service":"a-svc","level":"warn","message":"alpha two","attrs":{"path":"/a"}}`+"\n")
	post(betaToken, `{"service":"b-svc","level":"info","message":"beta secret one"}`+"\n"+`{"service":"b-svc","level":"error","message":"beta secret two"}`+"\n")

	// Everything but the huge record is stored and durable, the huge one
	// is a dead letter, and nothing is left pending: the partition moved on.
	testproc.Eventually(t, 90*time.Second, func() error {
		code, body := do(t, "GET", n.URL+"/api/v1/stats?partial=false", "Bearer "+adminToken, nil, nil)
		if code != 200 || !strings.Contains(body, `"events":4`) {
			return fmt.Errorf("operator stats: %d %s", code, body)
		}
		if d := adminMetric(t, n.URL, "wirelog_processor_dead_letters_total"); d != 1 {
			return fmt.Errorf("%v dead letters", d)
		}
		if d, p := adminMetric(t, n.URL, "wirelog_vl_rows_durable_total"), adminMetric(t, n.URL, "wirelog_vl_rows_pending"); d != 5 || p != 0 {
			return fmt.Errorf("%v rows durable (want 4 events and 1 dead letter), %v pending", d, p)
		}
		return nil
	})
	if code, body := do(t, "GET", n.URL+"/readyz", "", nil, nil); code != 200 {
		t.Errorf("readyz after the dead letter: %d %s", code, body)
	}
	dead := vlQuery(t, vl.URL, "4294967295:0", "*")
	if len(dead) != 1 || !strings.Contains(fmt.Sprint(dead[0]["_msg"]), "maxLineSizeBytes") || !strings.Contains(fmt.Sprint(dead[0]["wl_raw"]), "xxxxxxxx") {
		t.Errorf("dead-letter account holds %d rows %.300v; want the huge record with the reason", len(dead), dead)
	}

	// Each tenant's rows are in its own account and nowhere else.
	for acct, want := range map[string]string{"10:0": "alpha", "20:3": "beta", "0:0": ""} {
		rows := vlQuery(t, vl.URL, acct, "* | fields tenant, _msg")
		wantN := map[string]int{"alpha": 2, "beta": 2, "": 0}[want]
		if len(rows) != wantN {
			t.Errorf("account %s holds %d rows, want %d of %q", acct, len(rows), wantN, want)
		}
		for _, r := range rows {
			if r["tenant"] != want {
				t.Errorf("account %s holds a row of tenant %v: %v", acct, r["tenant"], r)
			}
		}
	}

	// serve over the same cluster, with the same tokens and mapping.
	tokens, admins := filepath.Join(dir, "tokens.json"), filepath.Join(dir, "admins.txt")
	os.WriteFile(tokens, []byte(`{"tokens":[{"token":"`+alphaToken+`","tenant":"alpha"},{"token":"`+betaToken+`","tenant":"beta"}]}`), 0o600)
	os.WriteFile(admins, []byte(adminToken+"\n"), 0o600)
	srv := testproc.Start(t, wirelogBin, "wirelog serve", append([]string{"serve", "--http", "127.0.0.1:0", "--auth-tokens", tokens, "--admin-tokens", admins}, vlFlags...)...)
	alpha := "Bearer " + alphaToken
	for _, path := range []string{"/api/v1/stats", "/api/v1/logs/search", "/api/v1/logs/histogram", "/api/v1/logs/fields", "/api/v1/logs/export", "/api/v1/rollups?step=60s&from=-1h"} {
		code, body := do(t, "GET", srv.URL+path, alpha, nil, nil)
		if code != 200 || strings.Contains(body, "beta") || strings.Contains(body, "b-svc") {
			t.Errorf("alpha GET %s through serve: %d %.400s; want 200 without beta's events", path, code, body)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		if code, body := do(t, "GET", srv.URL+path+sep+"tenant=beta", alpha, nil, nil); code != 403 {
			t.Errorf("alpha GET %s?tenant=beta through serve: %d %.200s, want 403", path, code, body)
		}
	}
	if code, body := do(t, "GET", srv.URL+"/api/v1/stats", alpha, nil, nil); code != 200 || !strings.Contains(body, `"events":2`) {
		t.Errorf("alpha stats through serve: %d %s, want its 2 events", code, body)
	}
	if code, body := do(t, "GET", srv.URL+"/api/v1/logs/export", alpha, nil, nil); code != 200 || !strings.Contains(body, "alpha one") || !strings.Contains(body, "alpha two") {
		t.Errorf("alpha export through serve: %d %.400s, want both alpha events", code, body)
	}
	// The operator reads every account, merged.
	if code, body := do(t, "GET", srv.URL+"/api/v1/logs/search?partial=false", "Bearer "+adminToken, nil, nil); code != 200 || strings.Count(body, `"message"`) != 4 {
		t.Errorf("operator search through serve: %d %.600s, want the 4 events of both accounts", code, body)
	}
	// Beta's event cannot be opened as context by alpha, even by its id.
	var page struct {
		Events []struct {
			Topic     string `json:"topic"`
			Partition int    `json:"partition"`
			Offset    int    `json:"offset"`
		} `json:"events"`
	}
	_, body := do(t, "GET", srv.URL+"/api/v1/logs/search", "Bearer "+betaToken, nil, nil)
	if err := json.Unmarshal([]byte(body), &page); err != nil || len(page.Events) != 2 {
		t.Fatalf("beta search: %v %.300s", err, body)
	}
	e := page.Events[0]
	ctxPath := fmt.Sprintf("/api/v1/logs/context?topic=%s&partition=%d&offset=%d", e.Topic, e.Partition, e.Offset)
	if code, body := do(t, "GET", srv.URL+ctxPath, "Bearer "+betaToken, nil, nil); code != 200 {
		t.Errorf("beta context of its own event: %d %.300s", code, body)
	}
	if code, body := do(t, "GET", srv.URL+ctxPath, alpha, nil, nil); code != 400 || strings.Contains(body, "secret") {
		t.Errorf("alpha context of beta's event: %d %.300s, want 400 (no such event)", code, body)
	}
	// Patterns: a documented 501, naming the limit.
	if code, body := do(t, "GET", srv.URL+"/api/v1/patterns", alpha, nil, nil); code != 501 || !strings.Contains(body, "DuckDB") {
		t.Errorf("patterns on the VictoriaLogs store: %d %s, want 501 saying why", code, body)
	}
}
