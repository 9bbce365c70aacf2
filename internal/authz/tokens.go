package authz

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// TenantTokens resolves a tenant token (the --auth-tokens file, loaded by
// package ingest with its rate limits) to its tenant.
type TenantTokens interface {
	TenantOf(token string) (tenant string, ok bool)
}

// Tokens authenticates bearer tokens: tenant tokens and operator tokens.
type Tokens struct {
	Tenants TenantTokens // nil: no tenant tokens
	admin   map[[32]byte]struct{}
}

// LoadAdminTokens reads an --admin-tokens file: one token per line, blank
// lines and lines starting with # ignored. Tokens are kept as SHA-256
// digests so a lookup's time does not depend on how much of a guess is right.
func LoadAdminTokens(path string) (map[[32]byte]struct{}, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read --admin-tokens file: %w", err)
	}
	defer f.Close()
	out := make(map[[32]byte]struct{})
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) < 16 {
			return nil, fmt.Errorf("--admin-tokens file %s: line %d: operator token shorter than 16 characters", path, line)
		}
		out[sha256.Sum256([]byte(t))] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read --admin-tokens file %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--admin-tokens file %s lists no tokens; remove the flag or add a token", path)
	}
	return out, nil
}

// NewTokens returns the token authenticator; admin may be nil.
func NewTokens(tenants TenantTokens, admin map[[32]byte]struct{}) *Tokens {
	return &Tokens{Tenants: tenants, admin: admin}
}

// Authenticate implements Authenticator.
func (t *Tokens) Authenticate(r *http.Request) (Principal, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, false, nil
	}
	tok, ok := Credential(r)
	if !ok {
		return Principal{}, false, fmt.Errorf("unreadable Authorization header: want \"Bearer <token>\"")
	}
	if _, ok := t.admin[sha256.Sum256([]byte(tok))]; ok {
		return Principal{Admin: true, Via: "admin-token"}, true, nil
	}
	if t.Tenants != nil {
		if tn, ok := t.Tenants.TenantOf(tok); ok {
			return Principal{Tenant: tn, Via: "token"}, true, nil
		}
	}
	return Principal{}, false, fmt.Errorf("unknown bearer token: use a token of the --auth-tokens file (tenant) or the --admin-tokens file (operator)")
}

// Credential returns the token of a request's Authorization header:
// "Bearer <token>", or the forms shippers that speak other APIs can send —
// HTTP Basic with the token as the password (or as the user when the
// password is empty: Fluent Bit's es output, rsyslog omelasticsearch) and
// Elasticsearch's "ApiKey base64(id:token)" (Filebeat, Logstash). Schemes
// are case-insensitive (RFC 7235).
func Credential(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if tok, ok := BearerToken(h); ok {
		return tok, true
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return "", false
		}
		if pass == "" {
			pass = user
		}
		return pass, pass != ""
	case "apikey":
		if raw, err := base64.StdEncoding.DecodeString(cred); err == nil {
			if _, key, ok := strings.Cut(string(raw), ":"); ok && key != "" {
				return key, true
			}
		}
		return cred, cred != ""
	}
	return "", false
}
