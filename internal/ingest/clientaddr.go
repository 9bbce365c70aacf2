package ingest

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ParseTrustedProxies parses --trusted-proxies: comma-separated addresses
// or CIDR prefixes of the proxies and load balancers whose
// X-Forwarded-For is believed.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies %q: not an address or CIDR prefix (like 10.0.0.0/8 or 127.0.0.1)", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func trusted(a netip.Addr, proxies []netip.Prefix) bool {
	for _, p := range proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address of the client that sent r: the TCP peer, or,
// when the peer is a trusted proxy, the rightmost X-Forwarded-For entry
// that is not itself a trusted proxy (entries left of it could be forged
// by the client). A forwarded address has no port.
func ClientAddr(r *http.Request, proxies []netip.Prefix) netip.AddrPort {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}
	}
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if len(proxies) == 0 || !trusted(peer.Addr(), proxies) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			h := strings.TrimSpace(hops[j])
			a, err := netip.ParseAddr(h)
			if err != nil {
				if host, _, herr := net.SplitHostPort(h); herr == nil {
					a, err = netip.ParseAddr(host)
				}
			}
			if err != nil {
				return peer // garbage in the chain: trust nothing beyond the proxy
			}
			if a = a.Unmap(); !trusted(a, proxies) {
				return netip.AddrPortFrom(a, 0)
			}
		}
	}
	return peer
}
