package ovs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// Interface is one row of the OVSDB Interface table, the columns the
// agent exports.
type Interface struct {
	Name string
	Type string // "" for a system (kernel) interface, "dpdk", "internal", ...
	// OFPort is the OpenFlow port number; nil while OVS has not assigned
	// one, -1 when the interface failed to be added.
	OFPort     *int64
	LinkState  string // "up", "down" or "" when unknown
	Statistics map[string]float64
}

// interfaceColumns are read in one select; the agent reads nothing else.
var interfaceColumns = []string{"name", "type", "ofport", "link_state", "statistics"}

// ListInterfaces reads the Interface table of the Open_vSwitch database
// over its unix socket (RFC 7047 "transact" with one "select").
// ovs-vswitchd refreshes the statistics column every 5 s by default
// (other_config:stats-update-interval).
func ListInterfaces(ctx context.Context, dbSock string) ([]Interface, error) {
	rc, err := dialRPC(ctx, dbSock)
	if err != nil {
		return nil, fmt.Errorf("connect to ovsdb %s (set --ovsdb-socket): %w", dbSock, err)
	}
	defer rc.Close()
	res, err := rc.call("transact", []any{"Open_vSwitch", map[string]any{
		"op": "select", "table": "Interface", "where": []any{}, "columns": interfaceColumns,
	}})
	if err != nil {
		return nil, err
	}
	return decodeInterfaces(res)
}

// decodeInterfaces reads a transact result holding one select's rows.
func decodeInterfaces(result json.RawMessage) ([]Interface, error) {
	var ops []struct {
		Rows    []map[string]json.RawMessage `json:"rows"`
		Error   string                       `json:"error"`
		Details string                       `json:"details"`
	}
	if err := json.Unmarshal(result, &ops); err != nil {
		return nil, fmt.Errorf("%w: transact result: %v", ErrProtocol, err)
	}
	if len(ops) != 1 {
		return nil, fmt.Errorf("%w: transact result has %d operations, want 1", ErrProtocol, len(ops))
	}
	if ops[0].Error != "" {
		return nil, fmt.Errorf("ovsdb select on Interface failed: %s: %s", ops[0].Error, ops[0].Details)
	}
	out := make([]Interface, 0, len(ops[0].Rows))
	for _, row := range ops[0].Rows {
		var it Interface
		if err := json.Unmarshal(row["name"], &it.Name); err != nil || it.Name == "" {
			return nil, fmt.Errorf("%w: Interface row without a name", ErrProtocol)
		}
		json.Unmarshal(row["type"], &it.Type)
		if v, ok := optionalInteger(row["ofport"]); ok {
			it.OFPort = &v
		}
		json.Unmarshal(row["link_state"], &it.LinkState) // a string, or an empty set
		stats, err := decodeIntegerMap(row["statistics"])
		if err != nil {
			return nil, fmt.Errorf("statistics of interface %s: %w", it.Name, err)
		}
		it.Statistics = stats
		out = append(out, it)
	}
	return out, nil
}

// optionalInteger reads a column of type {"key":"integer","min":0,"max":1}:
// an integer, or a set ["set",[]] / ["set",[n]].
func optionalInteger(raw json.RawMessage) (int64, bool) {
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return n, true
	}
	var set []json.RawMessage
	if json.Unmarshal(raw, &set) != nil || len(set) != 2 || string(set[0]) != `"set"` {
		return 0, false
	}
	var elems []int64
	if json.Unmarshal(set[1], &elems) != nil || len(elems) != 1 {
		return 0, false
	}
	return elems[0], true
}

// decodeIntegerMap reads an OVSDB map of string to integer:
// ["map", [["rx_packets", 10], ...]].
func decodeIntegerMap(raw json.RawMessage) (map[string]float64, error) {
	out := map[string]float64{}
	if len(raw) == 0 {
		return out, nil
	}
	var m []json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 2 || string(m[0]) != `"map"` {
		return nil, fmt.Errorf("%w: not an OVSDB map: %.80s", ErrProtocol, raw)
	}
	var pairs [][2]json.RawMessage
	if err := json.Unmarshal(m[1], &pairs); err != nil {
		return nil, fmt.Errorf("%w: OVSDB map pairs: %v", ErrProtocol, err)
	}
	for _, p := range pairs {
		var k string
		var v json.Number
		if json.Unmarshal(p[0], &k) != nil || json.Unmarshal(p[1], &v) != nil {
			return nil, fmt.Errorf("%w: OVSDB map pair %s: %s is not string: integer", ErrProtocol, p[0], p[1])
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, fmt.Errorf("%w: statistic %s = %s", ErrProtocol, k, v)
		}
		out[k] = f
	}
	return out, nil
}
