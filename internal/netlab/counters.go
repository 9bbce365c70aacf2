package netlab

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc/stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

// cpuTimes is one core's line of /proc/stat.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal uint64
}

func readCPUTimes(cpu int) (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)[1:]
		v := make([]uint64, 8)
		for i := 0; i < len(v) && i < len(f); i++ {
			v[i], _ = strconv.ParseUint(f[i], 10, 64)
		}
		return cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
	}
	return cpuTimes{}, fmt.Errorf("/proc/stat has no line for cpu %d", cpu)
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// softnetDropped is the backlog drop count of one core (/proc/net/softnet_stat,
// second column): packets RPS or netif_rx could not queue because the
// core's backlog (net.core.netdev_max_backlog) was full.
func softnetDropped(cpu int) (uint64, error) {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0, fmt.Errorf("read /proc/net/softnet_stat: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		// Kernels since 5.10 print the CPU id in column 13; older ones
		// list online CPUs in order.
		id := i
		if len(f) >= 13 {
			if v, err := strconv.ParseUint(f[12], 16, 32); err == nil {
				id = int(v)
			}
		}
		if id == cpu {
			return strconv.ParseUint(f[1], 16, 64)
		}
	}
	return 0, fmt.Errorf("/proc/net/softnet_stat has no line for cpu %d", cpu)
}

// udpCounters are the Udp: line of /proc/net/snmp in one namespace.
type udpCounters struct {
	InDatagrams, NoPorts, InErrors, RcvbufErrors uint64
}

func parseSNMPUdp(b []byte) (udpCounters, error) {
	var names, values []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		if names == nil {
			names = strings.Fields(line)[1:]
		} else {
			values = strings.Fields(line)[1:]
			break
		}
	}
	if names == nil || len(values) != len(names) {
		return udpCounters{}, fmt.Errorf("no Udp counters in /proc/net/snmp")
	}
	var c udpCounters
	for i, n := range names {
		v, _ := strconv.ParseUint(values[i], 10, 64)
		switch n {
		case "InDatagrams":
			c.InDatagrams = v
		case "NoPorts":
			c.NoPorts = v
		case "InErrors":
			c.InErrors = v
		case "RcvbufErrors":
			c.RcvbufErrors = v
		}
	}
	return c, nil
}

func (n *namespace) udpCounters() (udpCounters, error) {
	b, err := n.readProcNet("snmp")
	if err != nil {
		return udpCounters{}, err
	}
	return parseSNMPUdp(b)
}

// linkDrops is the receive and transmit drop count of a link (a veth
// counts a datagram its peer's backlog refused as a transmit drop).
func (n *namespace) linkDrops(name string) (rx, tx uint64, err error) {
	l, err := n.nl.LinkByName(name)
	if err != nil {
		return 0, 0, fmt.Errorf("link %s in %s: %w", name, n.name, err)
	}
	st := l.Attrs().Statistics
	if st == nil {
		return 0, 0, nil
	}
	return st.RxDropped, st.TxDropped, nil
}

// ksoftirqd returns the pid of the softirq thread of cpu, 0 if not found.
func ksoftirqd(cpu int) int {
	want := fmt.Sprintf("ksoftirqd/%d\n", cpu)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && string(b) == want {
			return pid
		}
	}
	return 0
}
