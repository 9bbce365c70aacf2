package pipeline

import (
	"net/http"
	"strings"

	"github.com/wirelog/wirelog/internal/authz"
	"github.com/wirelog/wirelog/internal/ingest/esbulk"
	"github.com/wirelog/wirelog/internal/ingest/loki"
)

// routeScopes are the scopes of the node's routes that differ from the
// default (GET/HEAD: tenant-scoped read; anything else: operator). A route
// added without a line here is protected by that default; add a line only
// to open a route (Public) or to let tenant tokens write to it (Ingest).
var routeScopes = []authz.Route{
	{Pattern: "GET /healthz", Scope: authz.Public},
	{Pattern: "GET /readyz", Scope: authz.Public},
	// The dashboard's static shell (index.html at its page paths, hashed
	// assets) holds no data; its data comes from the API with the token.
	// Listed one by one: "GET /" would make every unlisted GET public.
	{Pattern: "GET /{$}", Scope: authz.Public},
	{Pattern: "GET /assets/", Scope: authz.Public},
	{Pattern: "GET /explore", Scope: authz.Public},
	{Pattern: "GET /tail", Scope: authz.Public},
	{Pattern: "GET /patterns", Scope: authz.Public},
	{Pattern: "GET /dataplane", Scope: authz.Public},
	{Pattern: "GET /overview", Scope: authz.Public},
	{Pattern: "POST /api/v1/logs", Scope: authz.Ingest},
	{Pattern: "POST /v1/logs", Scope: authz.Ingest},
	{Pattern: "GET /metrics", Scope: authz.Admin},
	{Pattern: "GET /debug/", Scope: authz.Admin},
}

// shipperScopes: the Elasticsearch bulk and Loki push routes write events
// (Ingest), and so do, harmlessly, the template/ILM/pipeline PUTs Filebeat
// and Logstash make at startup with the same tenant credential (they are
// acknowledged and ignored). The handshake GETs keep the Read default:
// any valid credential.
func shipperScopes() []authz.Route {
	var rs []authz.Route
	for _, r := range esbulk.New(nil, nil).Routes() {
		if r.Ingest || strings.HasPrefix(r.Pattern, http.MethodPut+" ") {
			rs = append(rs, authz.Route{Pattern: r.Pattern, Scope: authz.Ingest})
		}
	}
	return append(rs, authz.Route{Pattern: http.MethodPost + " " + loki.Path, Scope: authz.Ingest})
}

// authorize puts the authorization middleware in front of the whole mux.
func (n *node) authorize(mux http.Handler) (http.Handler, error) {
	cfg := &n.cfg
	var auths []authz.Authenticator
	var admin map[[32]byte]struct{}
	if cfg.AdminTokens != "" {
		var err error
		if admin, err = authz.LoadAdminTokens(cfg.AdminTokens); err != nil {
			return nil, err
		}
	}
	if cfg.Ingest.Tenants != nil || admin != nil {
		var tt authz.TenantTokens
		if cfg.Ingest.Tenants != nil {
			tt = cfg.Ingest.Tenants
		}
		auths = append(auths, authz.NewTokens(tt, admin))
	}
	m := authz.Wrap(mux, authz.Options{
		Authenticators: append(auths, cfg.Authenticators...),
		Routes:         append(append(append([]authz.Route(nil), routeScopes...), shipperScopes()...), cfg.Routes...),
		IngestOpen:     cfg.Ingest.Tenants == nil,
	})
	n.reg.MustRegister(m.Collector())
	return m, nil
}
