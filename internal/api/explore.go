package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/wirelog/wirelog/internal/store"
)

// Explore defaults.
const (
	// DefaultExploreWindow is the histogram and fields window when from is
	// not given.
	DefaultExploreWindow = time.Hour
	// exportFlushRows is how many exported rows are written between flushes,
	// so a slow export still shows progress in the client.
	exportFlushRows = 1000
)

// filterParams select events in every Explore endpoint, as in search.
var filterParams = []string{"service", "level", "host", "tenant", "trace_id", "q", "attr", "exclude", "from", "to"}

func filterParamsAnd(extra ...string) []string { return append(slices.Clip(filterParams), extra...) }

// Explorer answers the Explore page's queries; *store.Store implements it.
type Explorer interface {
	Histogram(context.Context, store.HistogramRequest) (*store.Histogram, error)
	Fields(context.Context, store.FieldsRequest) (*store.FieldsResult, error)
	Context(context.Context, store.ContextRequest) (*store.ContextResult, error)
	Export(context.Context, store.Filter, func(*store.StoredEvent) error) error
}

// PatternQuerier answers GET /api/v1/patterns; *store.Store implements it.
type PatternQuerier interface {
	Patterns(context.Context, store.PatternsRequest) (*store.PatternsResult, error)
}

// DataPlaneSource answers GET /api/v1/dataplane/series from the agent's
// metrics (a Prometheus server, or the agent scraped by this node).
type DataPlaneSource interface {
	// Kind is "prometheus" or "scrape"; URL is where the data comes from.
	Kind() string
	URL() string
	Series(ctx context.Context, from, to time.Time, step time.Duration) (*DataPlaneSeries, error)
}

// DataPlaneSeries is the columnar answer of GET /api/v1/dataplane/series.
type DataPlaneSeries struct {
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	StepSeconds int64            `json:"step_seconds"`
	Times       []int64          `json:"times"`
	Series      []DataPlaneTrace `json:"series"`
	// VFs are the SR-IOV VFs the agent exported in the window, each with
	// the container the kubelet had given it at the VF's last sample; a
	// VF series in Series carries the same pod labels for the steps that
	// container held it.
	VFs []DataPlaneVF `json:"vfs"`
	// Errors are queries that failed; the others are still answered.
	Errors []string `json:"errors"`
}

// DataPlaneVF is one SR-IOV VF (the agent's sriov_vf_info) and the
// container it belongs to (its podresources_pod_device_info, joined on the
// agent and the VF's PCI address). Namespace, Pod, Container and Resource
// are empty when no container holds the VF: it is unassigned.
type DataPlaneVF struct {
	Node       string `json:"node"`
	PF         string `json:"pf"`
	VF         int    `json:"vf"`
	PCIAddress string `json:"pci_address"`
	NUMANode   string `json:"numa_node"`
	Driver     string `json:"driver"`
	Namespace  string `json:"namespace"`
	Pod        string `json:"pod"`
	Container  string `json:"container"`
	Resource   string `json:"resource_name"`
}

// DataPlaneTrace is one series: Values[i] belongs to Times[i]; null where
// the source had no sample.
type DataPlaneTrace struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Unit   string            `json:"unit"`
	Values []*float64        `json:"values"`
}

// DashboardOptions are the parts of Options the dashboard uses.
type DashboardOptions struct {
	// Explore answers the Explore endpoints; nil = Store, when it implements them.
	Explore Explorer
	// Patterns answers /api/v1/patterns; nil = Store, when it implements it.
	Patterns PatternQuerier
	// DataPlane answers /api/v1/dataplane/series; nil = not configured
	// (the page then shows how to set it up).
	DataPlane DataPlaneSource
	// JaegerURL, when set, turns trace ids into links to {JaegerURL}/trace/{id}.
	JaegerURL string
	// UI serves the dashboard at every GET path no API route takes; nil
	// answers 404.
	UI http.Handler
}

func (o *DashboardOptions) setDefaults(st Querier) {
	if o.Explore == nil {
		o.Explore, _ = st.(Explorer)
	}
	if o.Patterns == nil {
		o.Patterns, _ = st.(PatternQuerier)
	}
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) {
	if s.opts.UI == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no such route; the dashboard is not served by this node"})
		return
	}
	s.opts.UI.ServeHTTP(w, r)
}

// notServed answers a route whose backend this node lacks.
func notServed(w http.ResponseWriter, what string) {
	writeJSON(w, http.StatusNotImplemented, apiError{Error: what + " is not available on this node's store"})
}

// filter reads the event filter shared by search and the Explore endpoints;
// a missing from defaults to defFrom before to (zero: open).
func (p *params) filter(now time.Time, defWindow time.Duration) store.Filter {
	f := store.Filter{
		Service: p.str("service"),
		Level:   p.level("level"),
		Host:    p.str("host"),
		Tenant:  p.str("tenant"),
		TraceID: p.str("trace_id"),
		Query:   p.str("q"),
		Attrs:   p.matches("attr"),
		Exclude: p.matches("exclude"),
	}
	if defWindow > 0 {
		f.To = p.time("to", now)
		f.From = p.time("from", f.To.Add(-defWindow))
		if p.err == nil && !f.To.After(f.From) {
			p.err = badParam("to", "%s must be after from %s", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
		}
	} else {
		f.From = p.time("from", time.Time{})
		f.To = p.time("to", time.Time{})
		p.window(f.From, f.To)
	}
	return f
}

func (s *server) histogram(w http.ResponseWriter, r *http.Request) {
	if s.opts.Explore == nil {
		notServed(w, "the histogram")
		return
	}
	now := s.opts.Now()
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/logs/histogram"], now)
	req := store.HistogramRequest{Filter: p.filter(now, DefaultExploreWindow), Step: p.step("step"), NoPartial: !p.partial("partial")}
	if p.err == nil && req.Step == 0 {
		req.Step = autoStep(req.To.Sub(req.From))
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	res, err := s.opts.Explore.Histogram(r.Context(), req)
	s.answer(w, r, "histogram", res, err)
}

func (s *server) fields(w http.ResponseWriter, r *http.Request) {
	if s.opts.Explore == nil {
		notServed(w, "field statistics")
		return
	}
	now := s.opts.Now()
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/logs/fields"], now)
	req := store.FieldsRequest{Filter: p.filter(now, DefaultExploreWindow), NoPartial: !p.partial("partial")}
	if v := p.str("limit"); v != "" && p.err == nil {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxTopValues {
			p.err = badParam("limit", "%q is not a number from 1 to %d", v, store.MaxTopValues)
		}
		req.Limit = n
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	res, err := s.opts.Explore.Fields(r.Context(), req)
	s.answer(w, r, "fields", res, err)
}

func (s *server) logContext(w http.ResponseWriter, r *http.Request) {
	if s.opts.Explore == nil {
		notServed(w, "context")
		return
	}
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/logs/context"], s.opts.Now())
	req := store.ContextRequest{Topic: p.str("topic"), Tenant: p.str("tenant")}
	num := func(name string, bits int, required bool) int64 {
		v := p.str(name)
		if p.err != nil {
			return 0
		}
		if v == "" {
			if required {
				p.err = badParam(name, "is required (the hit's %s, from a search result)", name)
			}
			return 0
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil || n < 0 {
			p.err = badParam(name, "%q is not a non-negative integer", v)
		}
		return n
	}
	if p.err == nil && req.Topic == "" {
		p.err = badParam("topic", "is required (the hit's topic, from a search result)")
	}
	req.Partition = int32(num("partition", 32, true))
	req.Offset = num("offset", 64, true)
	if n := num("n", 32, false); p.err == nil && (n > store.MaxContextLines) {
		p.err = badParam("n", "%d is more than %d lines", n, store.MaxContextLines)
	} else {
		req.N = int(n)
	}
	switch by := p.str("by"); by {
	case "", "service":
	case "host":
		req.ByHost = true
	default:
		if p.err == nil {
			p.err = badParam("by", "%q is not service or host", by)
		}
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	res, err := s.opts.Explore.Context(r.Context(), req)
	s.answer(w, r, "context", res, err)
}

var csvHeader = []string{"ts", "service", "level", "host", "tenant", "trace_id", "span_id", "message", "attrs", "topic", "partition", "offset"}

// export streams every matching event, newest first, as NDJSON or CSV, with
// no row cap. A failure after the first row cannot change the status code:
// it ends the body with an error line ({"error":…} in NDJSON, "# error: …"
// in CSV) so a truncated export is never mistaken for a whole one.
func (s *server) export(w http.ResponseWriter, r *http.Request) {
	if s.opts.Explore == nil {
		notServed(w, "export")
		return
	}
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/logs/export"], s.opts.Now())
	f := p.filter(s.opts.Now(), 0)
	format := p.str("format")
	if format == "" {
		format = "ndjson"
	}
	if p.err == nil && format != "ndjson" && format != "csv" {
		p.err = badParam("format", "%q is not ndjson or csv", format)
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a long export outlives a server write timeout
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	name := "wirelog-" + s.opts.Now().UTC().Format("20060102T150405Z") + "." + format
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	var cw *csv.Writer
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	rows := 0
	started := false
	start := func() {
		if !started {
			started = true
			w.WriteHeader(http.StatusOK)
			if format == "csv" {
				cw = csv.NewWriter(w)
				cw.Write(csvHeader)
			}
		}
	}
	err := s.opts.Explore.Export(r.Context(), f, func(e *store.StoredEvent) error {
		start()
		if cw != nil {
			attrs := string(e.Attrs)
			cw.Write([]string{e.Time.Format(time.RFC3339Nano), e.Service, e.Level, e.Host, e.Tenant, e.TraceID, e.SpanID,
				e.Message, attrs, e.Topic, strconv.Itoa(int(e.Partition)), strconv.FormatInt(e.Offset, 10)})
		} else if err := enc.Encode(e); err != nil {
			return err
		}
		if rows++; rows%exportFlushRows == 0 {
			if cw != nil {
				cw.Flush()
			}
			return rc.Flush()
		}
		return nil
	})
	if err != nil && !started {
		s.answer(w, r, "export", nil, err)
		return
	}
	start()
	if cw != nil {
		if err != nil && r.Context().Err() == nil {
			cw.Flush()
			w.Write([]byte("# error: export stopped early: " + err.Error() + "\n"))
		}
		cw.Flush()
	} else if err != nil && r.Context().Err() == nil {
		enc.Encode(apiError{Error: "export stopped early: " + err.Error()})
	}
	if err != nil && r.Context().Err() == nil && !errors.Is(err, context.Canceled) {
		s.opts.Logger.Warn("api: export stopped early", "rows", rows, "err", err)
	}
}

func (s *server) patterns(w http.ResponseWriter, r *http.Request) {
	if s.opts.Patterns == nil {
		notServed(w, "patterns")
		return
	}
	now := s.opts.Now()
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/patterns"], now)
	req := store.PatternsRequest{Service: p.str("service"), Tenant: p.str("tenant")}
	req.To = p.time("to", now)
	req.From = p.time("from", req.To.Add(-DefaultExploreWindow))
	if p.err == nil && !req.To.After(req.From) {
		p.err = badParam("to", "%s must be after from %s", req.To.Format(time.RFC3339), req.From.Format(time.RFC3339))
	}
	if v := p.str("limit"); v != "" && p.err == nil {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxPatternsLimit {
			p.err = badParam("limit", "%q is not a number from 1 to %d", v, store.MaxPatternsLimit)
		}
		req.Limit = n
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	res, err := s.opts.Patterns.Patterns(r.Context(), req)
	s.answer(w, r, "patterns", res, err)
}

// UIConfig is what the dashboard needs to know about this node.
type UIConfig struct {
	JaegerURL string `json:"jaeger_url"`
	DataPlane struct {
		Source string `json:"source"` // prometheus, scrape or none
		URL    string `json:"url"`
	} `json:"dataplane"`
}

// uiConfig takes tenant only because the authorization middleware pins it
// on every read; the answer is the same for every tenant.
func (s *server) uiConfig(w http.ResponseWriter, r *http.Request) {
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/ui/config"], s.opts.Now())
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	var c UIConfig
	c.JaegerURL = s.opts.JaegerURL
	c.DataPlane.Source = "none"
	if d := s.opts.DataPlane; d != nil {
		c.DataPlane.Source, c.DataPlane.URL = d.Kind(), d.URL()
	}
	writeJSON(w, http.StatusOK, c)
}

// dataplaneSeries: the data-plane metrics are the node's, not a tenant's;
// tenant is accepted (the middleware pins it) and does not filter.
func (s *server) dataplaneSeries(w http.ResponseWriter, r *http.Request) {
	now := s.opts.Now()
	p := newParams(r.URL.RawQuery, queryParams["/api/v1/dataplane/series"], now)
	to := p.time("to", now)
	from := p.time("from", to.Add(-15*time.Minute))
	step := p.step("step")
	if p.err == nil && !to.After(from) {
		p.err = badParam("to", "%s must be after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if p.err == nil && step == 0 {
		step = autoStep(to.Sub(from))
	}
	if p.err == nil && to.Sub(from)/step > store.MaxRollupBuckets {
		p.err = badParam("step", "%s gives more than %d points over the window; use a larger step", step, store.MaxRollupBuckets)
	}
	if p.err != nil {
		writeParamError(w, p.err)
		return
	}
	if s.opts.DataPlane == nil {
		writeJSON(w, http.StatusNotFound, apiError{Error: "no data-plane source: start this node with --prometheus URL or --dataplane-scrape URL"})
		return
	}
	res, err := s.opts.DataPlane.Series(r.Context(), from, to, step)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusBadGateway, apiError{Error: "data-plane source " + s.opts.DataPlane.URL() + ": " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
