package ovs

import (
	"strconv"
	"strings"
)

// Stat names one per-thread figure of pmd-stats-show or pmd-perf-show.
type Stat string

// The figures the parsers recognise. Counters count since the thread
// started or since the last dpif-netdev/pmd-stats-clear.
const (
	StatRxPackets           Stat = "rx_packets"
	StatRecirculations      Stat = "recirculations"
	StatPassesPerPacket     Stat = "passes_per_packet"
	StatPHWOLHits           Stat = "phwol_hits"
	StatMFEXOptHits         Stat = "mfex_opt_hits"
	StatSimpleMatchHits     Stat = "simple_match_hits"
	StatEMCHits             Stat = "emc_hits"
	StatSMCHits             Stat = "smc_hits"
	StatMegaflowHits        Stat = "megaflow_hits"
	StatLookupsPerMegaflow  Stat = "lookups_per_megaflow_hit"
	StatUpcalls             Stat = "upcalls"
	StatLostUpcalls         Stat = "lost_upcalls"
	StatPacketsPerBatch     Stat = "packets_per_output_batch"
	StatIdleCycles          Stat = "idle_cycles"
	StatProcessingCycles    Stat = "processing_cycles"
	StatCyclesPerPacket     Stat = "cycles_per_packet"
	StatProcCyclesPerPacket Stat = "processing_cycles_per_packet"
	StatIterations          Stat = "iterations"
	StatUsedCycles          Stat = "used_cycles"
	StatIdleIterations      Stat = "idle_iterations"
	StatBusyIterations      Stat = "busy_iterations"
	StatSleepIterations     Stat = "sleep_iterations"
	StatSleepSeconds        Stat = "sleep_seconds"
	StatDatapathPasses      Stat = "datapath_passes"
	StatTxPackets           Stat = "tx_packets"
	StatTxBatches           Stat = "tx_batches"
	StatSecondsPerUpcall    Stat = "seconds_per_upcall"
)

// PMDThread is one thread's block of pmd-stats-show or pmd-perf-show.
type PMDThread struct {
	// Main is true for the "main thread" block, which polls the ports
	// that no PMD does (internal ports, taps); it has no NUMA or core.
	Main   bool
	NUMAID string
	CoreID string
	Stats  map[Stat]float64
}

// PMDReport is a parsed pmd-stats-show or pmd-perf-show reply.
type PMDReport struct {
	Threads []PMDThread
	// MeasurementSeconds is pmd-perf-show's "Measurement duration", the
	// time since the last pmd-stats-clear; 0 when absent.
	MeasurementSeconds float64
	// Unknown counts lines that were neither recognised nor blank: a
	// newer OVS adds lines before this parser learns them, and the number
	// tells the operator that something is being left out.
	Unknown int
}

// lineStat says how to read one "label: value" line.
type lineStat struct {
	stat Stat
	// paren, if set, is read from the parenthesised part after the
	// number, e.g. "212 cycles/pkt" in "35386208  (5604 Kpps, 212 cycles/pkt)".
	paren      Stat
	parenUnit  string
	scale      float64 // multiplies the value; 0 means 1
	parenScale float64
}

// pmdLines maps a line's label, lower-cased and without the leading "- "
// of pmd-perf-show's sub-items, to what it holds. Labels from OVS 3.1's
// pmd-stats-show, its pmd-perf-show, and the older (2.x) pmd-stats-show
// ("polling cycles", "miss", "lost") are all here, so one parser reads
// whichever format the running OVS prints.
var pmdLines = map[string]lineStat{
	// pmd-stats-show, OVS 2.9+ and 3.x.
	"packets received":                       {stat: StatRxPackets},
	"packet recirculations":                  {stat: StatRecirculations},
	"avg. datapath passes per packet":        {stat: StatPassesPerPacket},
	"phwol hits":                             {stat: StatPHWOLHits},
	"mfex opt hits":                          {stat: StatMFEXOptHits},
	"simple match hits":                      {stat: StatSimpleMatchHits},
	"emc hits":                               {stat: StatEMCHits},
	"smc hits":                               {stat: StatSMCHits},
	"megaflow hits":                          {stat: StatMegaflowHits, paren: StatLookupsPerMegaflow, parenUnit: "subtbl lookups/hit"},
	"avg. subtable lookups per megaflow hit": {stat: StatLookupsPerMegaflow},
	"miss with success upcall":               {stat: StatUpcalls},
	"miss with failed upcall":                {stat: StatLostUpcalls},
	"avg. packets per output batch":          {stat: StatPacketsPerBatch},
	"idle cycles":                            {stat: StatIdleCycles},
	"processing cycles":                      {stat: StatProcessingCycles},
	"avg cycles per packet":                  {stat: StatCyclesPerPacket},
	"avg processing cycles per packet":       {stat: StatProcCyclesPerPacket},
	// pmd-stats-show before OVS 2.9.
	"polling cycles":                {stat: StatIdleCycles},
	"miss":                          {stat: StatUpcalls},
	"lost":                          {stat: StatLostUpcalls},
	"avg. subtable lookups per hit": {stat: StatLookupsPerMegaflow},
	// pmd-perf-show.
	"iterations":       {stat: StatIterations},
	"used tsc cycles":  {stat: StatUsedCycles},
	"idle iterations":  {stat: StatIdleIterations},
	"busy iterations":  {stat: StatBusyIterations},
	"sleep iterations": {stat: StatSleepIterations},
	"sleep time (us)":  {stat: StatSleepSeconds, scale: 1e-6},
	"rx packets":       {stat: StatRxPackets, paren: StatCyclesPerPacket, parenUnit: "cycles/pkt"},
	"datapath passes":  {stat: StatDatapathPasses, paren: StatPassesPerPacket, parenUnit: "passes/pkt"},
	"upcalls":          {stat: StatUpcalls, paren: StatSecondsPerUpcall, parenUnit: "us/upcall", parenScale: 1e-6},
	"lost upcalls":     {stat: StatLostUpcalls},
	"tx packets":       {stat: StatTxPackets},
	"tx batches":       {stat: StatTxBatches, paren: StatPacketsPerBatch, parenUnit: "pkts/batch"},
}

// ParsePMDStats parses the text of dpif-netdev/pmd-stats-show or
// dpif-netdev/pmd-perf-show (run with -nh; histograms are not read). It
// never fails: what it cannot read is counted in Unknown.
func ParsePMDStats(text string) PMDReport {
	var r PMDReport
	var cur *PMDThread
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if t, ok := parseThreadHeader(line); ok {
			r.Threads = append(r.Threads, t)
			cur = &r.Threads[len(r.Threads)-1]
			continue
		}
		if strings.HasSuffix(line, ":") && strings.Contains(line, "thread") {
			// A thread header this parser cannot read: the lines under it
			// belong to a thread it cannot name, so none are attributed.
			r.Unknown++
			cur = nil
			continue
		}
		label, rest, ok := strings.Cut(line, ":")
		if !ok {
			r.Unknown++
			continue
		}
		label = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(label, "- ")))
		rest = strings.TrimSpace(rest)
		if cur == nil {
			switch label {
			case "time":
				// Wall-clock time of the report; nothing to export.
			case "measurement duration":
				if v, ok := leadingNumber(rest); ok {
					r.MeasurementSeconds = v
				} else {
					r.Unknown++
				}
			default:
				r.Unknown++
			}
			continue
		}
		ls, ok := pmdLines[label]
		if !ok {
			r.Unknown++
			continue
		}
		v, ok := leadingNumber(rest)
		if !ok {
			r.Unknown++
			continue
		}
		cur.Stats[ls.stat] = v * orOne(ls.scale)
		if ls.paren != "" {
			if pv, ok := parenValue(rest, ls.parenUnit); ok {
				cur.Stats[ls.paren] = pv * orOne(ls.parenScale)
			}
		}
	}
	for i := range r.Threads {
		t := &r.Threads[i]
		// pmd-perf-show has no recirculation line; it counts datapath
		// passes, and every pass after a packet's first is a recirculation.
		if _, ok := t.Stats[StatRecirculations]; !ok {
			passes, ok1 := t.Stats[StatDatapathPasses]
			rx, ok2 := t.Stats[StatRxPackets]
			if ok1 && ok2 && passes >= rx {
				t.Stats[StatRecirculations] = passes - rx
			}
		}
	}
	return r
}

func orOne(f float64) float64 {
	if f == 0 {
		return 1
	}
	return f
}

// parseThreadHeader reads "pmd thread numa_id 0 core_id 1:" and
// "main thread:".
func parseThreadHeader(line string) (PMDThread, bool) {
	body, ok := strings.CutSuffix(line, ":")
	if !ok {
		return PMDThread{}, false
	}
	if body == "main thread" {
		return PMDThread{Main: true, Stats: map[Stat]float64{}}, true
	}
	rest, ok := strings.CutPrefix(body, "pmd thread ")
	if !ok {
		return PMDThread{}, false
	}
	t := PMDThread{Stats: map[Stat]float64{}}
	f := strings.Fields(rest)
	for i := 0; i+1 < len(f); i += 2 {
		switch f[i] {
		case "numa_id":
			t.NUMAID = f[i+1]
		case "core_id":
			t.CoreID = f[i+1]
		}
	}
	if t.CoreID == "" || !isInt(t.CoreID) || (t.NUMAID != "" && !isInt(t.NUMAID)) {
		return PMDThread{}, false
	}
	return t, true
}

func isInt(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// leadingNumber reads the number that starts s ("7476545807 (100.00%)").
func leadingNumber(s string) (float64, bool) {
	end := strings.IndexAny(s, " \t(")
	if end < 0 {
		end = len(s)
	}
	s = strings.TrimSuffix(s[:end], "%")
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// parenValue finds "<number> <unit>" inside the parentheses of s, e.g.
// unit "cycles/pkt" in "(5604 Kpps, 212 cycles/pkt)".
func parenValue(s, unit string) (float64, bool) {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return 0, false
	}
	inner := s[open+1:]
	if end := strings.IndexByte(inner, ')'); end >= 0 {
		inner = inner[:end]
	}
	for part := range strings.SplitSeq(inner, ",") {
		num, u, ok := strings.Cut(strings.TrimSpace(part), " ")
		if ok && strings.TrimSpace(u) == unit {
			if v, err := strconv.ParseFloat(num, 64); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}
