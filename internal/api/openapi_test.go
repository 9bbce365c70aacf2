package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/wirelog/wirelog/internal/ingest/esbulk"
	"github.com/wirelog/wirelog/internal/ingest/loki"
)

// callerRoutes are the routes `wirelog run` adds to the mux New returns
// (internal/pipeline); they are documented in the same file.
var callerRoutes = []string{
	"POST /api/v1/logs",
	"POST /v1/logs",
	"GET /metrics",
	"POST /api/v1/processor/pause",
	"POST /api/v1/processor/resume",
}

func init() {
	// The shipper-compatible endpoints (internal/pipeline mountShippers).
	for _, r := range esbulk.New(nil, nil).Routes() {
		callerRoutes = append(callerRoutes, r.Pattern)
	}
	callerRoutes = append(callerRoutes, "POST "+loki.Path)
}

type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Parameters []struct {
			Ref  string `json:"$ref"`
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"paths"`
	Components struct {
		Parameters map[string]struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
	} `json:"components"`
}

func loadOpenAPI(t *testing.T) (openAPIDoc, []byte) {
	t.Helper()
	raw, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("read the OpenAPI file: %v", err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		t.Fatalf("docs/openapi.yaml is not valid YAML: %v", err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatalf("docs/openapi.yaml does not have the OpenAPI shape: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %q, want 3.x", doc.OpenAPI)
	}
	return doc, js
}

// splitPattern turns "GET /{$}" into ("get", "/").
func splitPattern(p string) (method, path string) {
	m, path, _ := strings.Cut(p, " ")
	return strings.ToLower(m), strings.TrimSuffix(path, "{$}")
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	mux := New(Options{})
	var served []string
	for _, r := range routes {
		method, path := splitPattern(r.pattern)
		// The mux really serves the pattern (not shadowed by another).
		req := httptest.NewRequest(strings.ToUpper(method), path, nil)
		if _, pattern := mux.Handler(req); pattern != r.pattern {
			t.Errorf("%s %s is served by %q, want %q", method, path, pattern, r.pattern)
		}
		served = append(served, r.pattern)
	}
	all := append(served, callerRoutes...)
	for _, p := range all {
		method, path := splitPattern(p)
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("route %q is not documented in docs/openapi.yaml (paths.%s.%s)", p, path, method)
		}
	}
	// And nothing is documented that nobody serves.
	for path, ops := range doc.Paths {
		for method := range ops {
			p := strings.ToUpper(method) + " " + path
			if strings.HasSuffix(path, "/") && !slices.Contains(all, p) {
				p += "{$}"
			}
			if !slices.Contains(all, p) {
				t.Errorf("docs/openapi.yaml documents %s %s, which no route serves", method, path)
			}
		}
	}
}

func TestOpenAPIQueryParametersMatchTheCode(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	for path, want := range queryParams {
		op, ok := doc.Paths[path]["get"]
		if !ok {
			t.Errorf("GET %s is not documented", path)
			continue
		}
		var got []string
		for _, p := range op.Parameters {
			if p.Ref != "" {
				c, ok := doc.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
				if !ok {
					t.Errorf("GET %s: parameter %s does not resolve", path, p.Ref)
					continue
				}
				p.Name, p.In = c.Name, c.In
			}
			if p.In == "query" {
				got = append(got, p.Name)
			}
		}
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("GET %s documents query parameters %v; the handler takes %v", path, got, w)
		}
		if _, ok := op.Responses["400"]; !ok {
			t.Errorf("GET %s does not document its 400 answer", path)
		}
	}
}

func TestOpenAPIRefsResolve(t *testing.T) {
	_, js := loadOpenAPI(t)
	var root any
	json.Unmarshal(js, &root)
	for _, m := range regexp.MustCompile(`"\$ref":"([^"]+)"`).FindAllStringSubmatch(string(js), -1) {
		node := root
		for _, part := range strings.Split(strings.TrimPrefix(m[1], "#/"), "/") {
			obj, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = obj[part]
		}
		if node == nil {
			t.Errorf("$ref %s does not resolve", m[1])
		}
	}
}

// The status code of an unknown method on a documented path is 405, not a
// silent 200 or 404.
func TestUndocumentedMethodIs405(t *testing.T) {
	rec := httptest.NewRecorder()
	New(Options{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/stats", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/stats: %d, want 405", rec.Code)
	}
}
