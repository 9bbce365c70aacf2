package sriov

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/wirelog/wirelog/internal/dataplane/sysfs"
)

// layoutMaxAge bounds how long a discovered layout is reused while nothing
// that says "changed" changed: a VF's driver binding (iavf ↔ vfio-pci, as a
// device plugin or an operator rebinds it) is the one fact no cheap check
// sees, so the binding label lags a rebind by at most this long.
const layoutMaxAge = time.Minute

// layout is what Discover found, kept between scrapes with the VFs' stats
// files held open. A scrape re-discovers when the interfaces under
// class/net or a PF's sriov_numvfs changed, or when the layout is older
// than layoutMaxAge; otherwise it costs one directory listing, one read per
// PF and one pread per VF counter, instead of ~50 syscalls per VF.
type layout struct {
	names  []string // class/net entries, sorted
	numVFs []uint64 // per PF, in pfs order
	pfs    []PF
	err    error // Discover's error for this layout, reported every scrape
	at     time.Time
	stats  [][]*vfStats // per PF, per VF (index in PF.VFs); nil until first read
}

// vfStats is one VF's stats source as found the first time it was read.
type vfStats struct {
	files *sysfs.UintFiles // the per-counter directory form, held open
	// file: the one-file form (mlx5), read whole each scrape; none: the
	// driver has no sysfs stats for this VF.
	file, none bool
}

func (v *vfStats) close() {
	if v != nil && v.files != nil {
		v.files.Close()
	}
}

// layoutCache hands out the current layout.
type layoutCache struct {
	sys string
	mu  sync.Mutex
	cur *layout
	now func() time.Time
}

// get returns the layout to scrape with, re-discovering when it changed.
func (c *layoutCache) get() *layout {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	names := classNetNames(c.sys)
	if l := c.cur; l != nil && now.Sub(l.at) < layoutMaxAge && slices.Equal(names, l.names) && sameNumVFs(l) {
		return l
	}
	c.closeLocked()
	pfs, err := Discover(c.sys)
	l := &layout{names: names, pfs: pfs, err: err, at: now, stats: make([][]*vfStats, len(pfs))}
	for i := range pfs {
		l.numVFs = append(l.numVFs, pfs[i].NumVFs)
		l.stats[i] = make([]*vfStats, len(pfs[i].VFs))
	}
	c.cur = l
	return l
}

// close releases every held stats file.
func (c *layoutCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
}

func (c *layoutCache) closeLocked() {
	if c.cur == nil {
		return
	}
	for _, pf := range c.cur.stats {
		for _, v := range pf {
			v.close()
		}
	}
	c.cur = nil
}

func classNetNames(sys string) []string {
	f, err := os.Open(filepath.Join(sys, "class", "net"))
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	slices.Sort(names)
	return names
}

func sameNumVFs(l *layout) bool {
	for i := range l.pfs {
		n, err := sysfs.ReadUint(filepath.Join(l.pfs[i].DevicePath, "sriov_numvfs"))
		if err != nil || n != l.numVFs[i] {
			return false
		}
	}
	return true
}

// readStats reads VF vf (index i of pf's VFs) through the held source,
// opening it on first use. A read that fails drops the held files, so the
// next scrape opens them again (a VF that went away, a driver reloaded).
func (l *layout) readStats(p, i int) (map[string]uint64, bool, error) {
	pf := &l.pfs[p]
	vf := pf.VFs[i].ID
	s := l.stats[p][i]
	if s == nil {
		s = &vfStats{}
		files, err := sysfs.OpenUintsAt(sysfsStatsPath(*pf, vf), statsFileNames)
		switch {
		case err == nil && files.Len() > 0:
			s.files = files
		case err == nil:
			files.Close()
			s.none = true
		case sysfs.IsNotExist(err):
			s.none = true
		case errors.Is(err, syscall.ENOTDIR):
			s.file = true
		default:
			return nil, false, fmt.Errorf("VF %d stats: %w", vf, err)
		}
		l.stats[p][i] = s
	}
	switch {
	case s.none:
		return nil, false, nil
	case s.file:
		return ReadSysfsStats(*pf, vf)
	}
	out := make(map[string]uint64, s.files.Len())
	if err := s.files.Read(out); err != nil {
		s.close()
		l.stats[p][i] = nil
		return nil, false, fmt.Errorf("VF %d stats: %w", vf, err)
	}
	return out, true, nil
}
