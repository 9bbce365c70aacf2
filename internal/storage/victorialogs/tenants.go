package victorialogs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Account is a VictoriaLogs tenant: the AccountID and ProjectID headers of
// every insert and query. VictoriaLogs keeps each account's data apart on
// disk and a query reads one account only.
type Account struct {
	AccountID, ProjectID uint32
}

func (a Account) String() string { return fmt.Sprintf("%d:%d", a.AccountID, a.ProjectID) }

// ParseAccount reads "AccountID:ProjectID" (--store-tenant, and the
// right-hand side of a --store-tenants line).
func ParseAccount(v string) (Account, error) {
	a, p, ok := strings.Cut(strings.TrimSpace(v), ":")
	acc, err1 := strconv.ParseUint(a, 10, 32)
	proj, err2 := strconv.ParseUint(p, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return Account{}, fmt.Errorf("%q is not AccountID:ProjectID, two numbers such as 12:0", v)
	}
	return Account{uint32(acc), uint32(proj)}, nil
}

// LoadTenants reads a --store-tenants file: one wirelog tenant and its
// VictoriaLogs account a line, "tenant AccountID:ProjectID"; blank lines
// and lines starting with # are skipped; "*" sets the account of every
// tenant not listed (and of events with no tenant), as --store-tenant does.
// Why a file and not a hash of the name: an operator query fans out over
// every account, so the accounts must be a known, finite list; and the
// mapping is what VictoriaLogs' own users write in vmauth/vlagent configs,
// an explicit tenant → AccountID:ProjectID table.
func LoadTenants(path string) (map[string]Account, *Account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--store-tenants: %w", err)
	}
	defer f.Close()
	m := map[string]Account{}
	var def *Account
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, nil, fmt.Errorf("--store-tenants %s line %d: %q is not \"tenant AccountID:ProjectID\"", path, n, line)
		}
		a, err := ParseAccount(fields[1])
		if err != nil {
			return nil, nil, fmt.Errorf("--store-tenants %s line %d: %w", path, n, err)
		}
		if fields[0] == "*" {
			if def != nil {
				return nil, nil, fmt.Errorf("--store-tenants %s line %d: a second \"*\" line", path, n)
			}
			def = &a
			continue
		}
		if _, dup := m[fields[0]]; dup {
			return nil, nil, fmt.Errorf("--store-tenants %s line %d: tenant %q is listed twice", path, n, fields[0])
		}
		m[fields[0]] = a
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("--store-tenants %s: %w", path, err)
	}
	return m, def, nil
}

// accountOf is the account a wirelog tenant's rows are written to and read
// from: its line in Tenants, else the default (--store-tenant).
func (s *Store) accountOf(tenant string) Account {
	if a, ok := s.opts.Tenants[tenant]; ok {
		return a
	}
	return s.defaultAccount()
}

func (s *Store) defaultAccount() Account {
	return Account{s.opts.AccountID, s.opts.ProjectID}
}

// accounts is every account rows may be in: the default and each mapped
// one, once each, in a fixed order.
func (s *Store) accounts() []Account {
	out := []Account{s.defaultAccount()}
	for _, a := range s.opts.Tenants {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out[1:], func(x, y Account) int {
		if x.AccountID != y.AccountID {
			return int(int64(x.AccountID) - int64(y.AccountID))
		}
		return int(int64(x.ProjectID) - int64(y.ProjectID))
	})
	return out
}

// scope is the accounts a query for tenant reads: its own account for a
// tenant (a tenant token's query never touches another account), every
// account for an operator's query across tenants (tenant ""), merged.
func (s *Store) scope(tenant string) []Account {
	if tenant != "" {
		return []Account{s.accountOf(tenant)}
	}
	return s.accounts()
}

type accountKey struct{}

// inAccount makes the queries run with ctx go to account a.
func inAccount(ctx context.Context, a Account) context.Context {
	return context.WithValue(ctx, accountKey{}, a)
}

// accountIn is the account ctx names, the default when none.
func (s *Store) accountIn(ctx context.Context) Account {
	if a, ok := ctx.Value(accountKey{}).(Account); ok {
		return a
	}
	return s.defaultAccount()
}
