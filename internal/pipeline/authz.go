package pipeline

import (
	"net/http"

	"github.com/wirelog/wirelog/internal/authz"
)

// routeScopes are the scopes of the node's routes that differ from the
// default (GET/HEAD: tenant-scoped read; anything else: operator). A route
// added without a line here is protected by that default; add a line only
// to open a route (Public) or to let tenant tokens write to it (Ingest).
var routeScopes = []authz.Route{
	{Pattern: "GET /healthz", Scope: authz.Public},
	{Pattern: "GET /readyz", Scope: authz.Public},
	{Pattern: "GET /{$}", Scope: authz.Public}, // the status page's HTML; its data comes from the API
	{Pattern: "POST /api/v1/logs", Scope: authz.Ingest},
	{Pattern: "POST /v1/logs", Scope: authz.Ingest},
	{Pattern: "GET /metrics", Scope: authz.Admin},
	{Pattern: "GET /debug/", Scope: authz.Admin},
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
		Routes:         append(append([]authz.Route(nil), routeScopes...), cfg.Routes...),
		IngestOpen:     cfg.Ingest.Tenants == nil,
	})
	n.reg.MustRegister(m.Collector())
	return m, nil
}
