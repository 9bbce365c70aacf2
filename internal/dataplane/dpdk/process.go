package dpdk

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
)

// Process is what one scrape of a DPDK process's telemetry socket found.
type Process struct {
	Socket   Socket
	Greeting Greeting
	Ports    []Port
	Heaps    []Heap
	// Lcores is empty before DPDK 23.03 (no /eal/lcore/usage) and when the
	// application registered no lcore usage callback.
	Lcores []Lcore
	// Partial lists the replies that were valid telemetry but not in the
	// shape this agent expects; the rest of the process was still read.
	Partial []error
}

// Port is one ethdev port.
type Port struct {
	ID     int
	Info   *PortInfo // nil if /ethdev/info answered null
	Stats  *PortStats
	Xstats map[string]float64
	Link   *LinkStatus
}

// Name is the port's device name (net_null0, 0000:3b:00.0), or "" if the
// process did not answer /ethdev/info.
func (p Port) Name() string {
	if p.Info == nil {
		return ""
	}
	return p.Info.Name
}

// PortStats is the reply to /ethdev/stats,N (struct rte_eth_stats).
type PortStats struct {
	IPackets uint64 `json:"ipackets"`
	OPackets uint64 `json:"opackets"`
	IBytes   uint64 `json:"ibytes"`
	OBytes   uint64 `json:"obytes"`
	IMissed  uint64 `json:"imissed"`
	IErrors  uint64 `json:"ierrors"`
	OErrors  uint64 `json:"oerrors"`
	RxNoMbuf uint64 `json:"rx_nombuf"`
}

// PortInfo is the part of /ethdev/info,N the agent exports. Pointers are
// nil when a DPDK version leaves the field out.
type PortInfo struct {
	Name        string  `json:"name"`
	MAC         string  `json:"mac_addr"`
	MTU         *uint64 `json:"mtu"`
	NUMANode    *int    `json:"numa_node"`
	RxQueues    *uint64 `json:"nb_rx_queues"`
	TxQueues    *uint64 `json:"nb_tx_queues"`
	Started     *uint64 `json:"dev_started"`
	Promiscuous *uint64 `json:"promiscuous"`
}

// LinkStatus is the reply to /ethdev/link_status,N; a down link has only
// Status.
type LinkStatus struct {
	Status string  `json:"status"`
	Speed  *uint64 `json:"speed"` // Mbit/s
	Duplex string  `json:"duplex"`
}

// Heap is the reply to /eal/heap_info,N (one malloc heap per NUMA socket
// plus external heaps).
type Heap struct {
	ID              int    `json:"Head_id"` // sic: DPDK's key
	Name            string `json:"Name"`
	Size            uint64 `json:"Heap_size"`
	Free            uint64 `json:"Free_size"`
	Allocated       uint64 `json:"Alloc_size"`
	GreatestFree    uint64 `json:"Greatest_free_size"`
	AllocatedBlocks uint64 `json:"Alloc_count"`
	FreeBlocks      uint64 `json:"Free_count"`
}

// Lcore is one lcore's cycle accounting from /eal/lcore/usage.
type Lcore struct {
	ID          int
	BusyCycles  uint64
	TotalCycles uint64
}

type lcoreUsage struct {
	IDs   []int    `json:"lcore_ids"`
	Total []uint64 `json:"total_cycles"`
	Busy  []uint64 `json:"busy_cycles"`
}

// Scrape connects to s and reads everything the agent exports. ctx bounds
// the whole exchange. Connection and protocol failures return an error and
// no Process; a reply in an unexpected shape only drops that part (see
// Process.Partial).
func Scrape(ctx context.Context, s Socket) (*Process, error) {
	c, err := Dial(ctx, s.Path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return read(c, s, c.Greeting())
}

// querier is what read needs of a connection.
type querier interface {
	QueryBatch(cmds []string) ([]json.RawMessage, error)
}

// read asks in three pipelined rounds: the command list, then the port,
// heap and lcore lists, then everything per port and heap. On a node whose
// cores are busy polling, each round costs a wait for the telemetry thread
// to be scheduled; one round per command would cost a dozen per process.
func read(c querier, s Socket, g Greeting) (*Process, error) {
	p := &Process{Socket: s, Greeting: g}

	// "/" lists the commands this process registered, so optional ones
	// (lcore usage arrived in 23.03) are asked only where they exist.
	res, err := c.QueryBatch([]string{"/"})
	if err != nil {
		return nil, err
	}
	var cmdList []string
	if err := json.Unmarshal(res[0], &cmdList); err != nil {
		return nil, fmt.Errorf("command list from %s: %w: %v", s.Path, ErrProtocol, err)
	}
	cmds := make(map[string]bool, len(cmdList))
	for _, name := range cmdList {
		cmds[name] = true
	}

	// decode puts a reply into v; a null reply (ErrNoData) or one in an
	// unexpected shape (recorded in p.Partial) leaves it out.
	decode := func(cmd string, raw json.RawMessage, v any) bool {
		if raw == nil {
			return false
		}
		if err := json.Unmarshal(raw, v); err != nil {
			p.Partial = append(p.Partial, fmt.Errorf("reply to %q from %s: %w: %v", cmd, s.Path, ErrProtocol, err))
			return false
		}
		return true
	}

	var lists []string
	for _, cmd := range []string{"/ethdev/list", "/eal/heap_list", "/eal/lcore/usage"} {
		if cmds[cmd] {
			lists = append(lists, cmd)
		}
	}
	res, err = c.QueryBatch(lists)
	if err != nil {
		return nil, err
	}
	var portIDs, heapIDs []int
	for i, cmd := range lists {
		switch cmd {
		case "/ethdev/list":
			decode(cmd, res[i], &portIDs)
		case "/eal/heap_list":
			if cmds["/eal/heap_info"] {
				decode(cmd, res[i], &heapIDs)
			}
		case "/eal/lcore/usage":
			var u lcoreUsage
			if !decode(cmd, res[i], &u) {
				break
			}
			if len(u.Busy) != len(u.IDs) || len(u.Total) != len(u.IDs) {
				p.Partial = append(p.Partial, fmt.Errorf("reply to /eal/lcore/usage from %s: %w: %d lcore ids but %d busy and %d total values",
					s.Path, ErrProtocol, len(u.IDs), len(u.Busy), len(u.Total)))
				break
			}
			for j, id := range u.IDs {
				p.Lcores = append(p.Lcores, Lcore{ID: id, BusyCycles: u.Busy[j], TotalCycles: u.Total[j]})
			}
		}
	}
	sort.Ints(portIDs)
	portIDs = slices.Compact(portIDs)
	sort.Ints(heapIDs)
	heapIDs = slices.Compact(heapIDs)

	var perPort []string
	for _, cmd := range []string{"/ethdev/info", "/ethdev/stats", "/ethdev/xstats", "/ethdev/link_status"} {
		if cmds[cmd] {
			perPort = append(perPort, cmd)
		}
	}
	var batch []string
	for _, id := range portIDs {
		for _, cmd := range perPort {
			batch = append(batch, cmd+","+strconv.Itoa(id))
		}
	}
	for _, id := range heapIDs {
		batch = append(batch, "/eal/heap_info,"+strconv.Itoa(id))
	}
	res, err = c.QueryBatch(batch)
	if err != nil {
		return nil, err
	}
	i := 0
	for _, id := range portIDs {
		port := Port{ID: id}
		for _, cmd := range perPort {
			raw := res[i]
			full := batch[i]
			i++
			switch cmd {
			case "/ethdev/info":
				var info PortInfo
				if decode(full, raw, &info) {
					port.Info = &info
				}
			case "/ethdev/stats":
				var st PortStats
				if decode(full, raw, &st) {
					port.Stats = &st
				}
			case "/ethdev/xstats":
				// Values are decoded as numbers of any size; DPDK sends uint64.
				var xs map[string]json.Number
				if decode(full, raw, &xs) {
					port.Xstats = make(map[string]float64, len(xs))
					for name, v := range xs {
						if f, err := strconv.ParseFloat(string(v), 64); err == nil {
							port.Xstats[name] = f
						}
					}
				}
			case "/ethdev/link_status":
				var ls LinkStatus
				if decode(full, raw, &ls) {
					port.Link = &ls
				}
			}
		}
		p.Ports = append(p.Ports, port)
	}
	for _, id := range heapIDs {
		var h Heap
		if decode(batch[i], res[i], &h) {
			h.ID = id
			p.Heaps = append(p.Heaps, h)
		}
		i++
	}
	return p, nil
}
