package api

import (
	"slices"
	"strings"
	"testing"
)

// TestEveryReadRouteTakesTenant: the authorization middleware scopes a
// tenant token's reads by setting the `tenant` parameter, so a data route
// that does not take it would either refuse every tenant token (unknown
// parameter) or, worse, ignore the scope. A new read route must take
// `tenant` and filter by it.
func TestEveryReadRouteTakesTenant(t *testing.T) {
	for _, r := range routes {
		method, path, _ := strings.Cut(r.pattern, " ")
		if method != "GET" || !strings.HasPrefix(path, "/api/") {
			continue
		}
		if !slices.Contains(queryParams[path], "tenant") {
			t.Errorf("%s does not take the tenant parameter; tenant tokens could not be scoped on it", r.pattern)
		}
	}
}
