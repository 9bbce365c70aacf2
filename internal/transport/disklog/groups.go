package disklog

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

const groupFileSuffix = ".offsets.json"

// group is what the log knows about one consumer group. Retention and the
// backlog bound protect every offset a known group has not committed past.
type group struct {
	name      string
	committed []int64 // next offset to read per partition; -1 = never committed
	floor     []int64 // where the open consumer started, until it commits; -1 = none
	active    bool    // a Consumer of this group is open
	stored    bool    // has a file on disk

	wmu sync.Mutex // orders file writes of this group
}

// groupFile is the JSON kept in groups/<escaped name>.offsets.json.
type groupFile struct {
	Version int             `json:"version"`
	Group   string          `json:"group"`
	Topic   string          `json:"topic"`
	Offsets map[int32]int64 `json:"offsets"` // partition -> next offset to read
}

func (l *Log) newGroup(name string) *group {
	g := &group{name: name, committed: make([]int64, len(l.parts)), floor: make([]int64, len(l.parts))}
	for i := range g.committed {
		g.committed[i], g.floor[i] = -1, -1
	}
	return g
}

func (l *Log) groupPath(name string) string {
	return filepath.Join(l.groupsDir, url.PathEscape(name)+groupFileSuffix)
}

// loadGroups reads every group file and removes leftovers of interrupted writes.
func (l *Log) loadGroups() error {
	ents, err := os.ReadDir(l.groupsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disklog: list consumer groups in %s: %w", l.groupsDir, err)
	}
	for _, e := range ents {
		path := filepath.Join(l.groupsDir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			os.Remove(path)
			continue
		}
		if !strings.HasSuffix(e.Name(), groupFileSuffix) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("disklog: read consumer group offsets %s: %w", path, err)
		}
		var gf groupFile
		if err := json.Unmarshal(data, &gf); err != nil || gf.Group == "" {
			return fmt.Errorf("disklog: consumer group offsets %s are unreadable (%v); delete the file to forget that group", path, err)
		}
		g := l.newGroup(gf.Group)
		g.stored = true
		for p, off := range gf.Offsets {
			if p < 0 || int(p) >= len(l.parts) || off < 0 {
				continue
			}
			if hw := l.parts[p].hw; off > hw {
				// The group saw offsets the log no longer has (a torn tail was
				// cut); it resumes at the end rather than waiting for offsets
				// that will be reassigned to new records.
				l.log.Warn("consumer group committed past the end of the log; clamping",
					"group", gf.Group, "partition", p, "committed", off, "end", hw)
				off = hw
			}
			g.committed[p] = off
		}
		l.groups[gf.Group] = g
	}
	return nil
}

// groupOffset returns the committed next offset of group for partition p.
func (l *Log) groupOffset(name string, p int) (int64, bool) {
	l.gmu.Lock()
	defer l.gmu.Unlock()
	if g := l.groups[name]; g != nil && g.committed[p] >= 0 {
		return g.committed[p], true
	}
	return 0, false
}

// storeGroup writes the group's offsets atomically: temp file, fsync,
// rename, fsync of the directory.
func (l *Log) storeGroup(gf groupFile) error {
	if _, err := os.Stat(l.groupsDir); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(l.groupsDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("disklog: create %s: %w", l.groupsDir, err)
		}
		if !l.opts.NoSync {
			if err := syncDir(l.dir); err != nil {
				return fmt.Errorf("disklog: %w", err)
			}
		}
	}
	data, err := json.Marshal(gf)
	if err != nil {
		return fmt.Errorf("disklog: encode offsets of group %q: %w", gf.Group, err)
	}
	path := l.groupPath(gf.Group)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("disklog: write offsets of group %q: %w", gf.Group, err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil && !l.opts.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil && !l.opts.NoSync {
		err = syncDir(l.groupsDir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("disklog: write offsets of group %q to %s: %w", gf.Group, path, err)
	}
	return nil
}

// DeleteGroup forgets a consumer group: its offsets file goes and it no
// longer holds back retention or the backlog bound. Use it for a group that
// will never come back; a group with an open consumer cannot be deleted.
func (l *Log) DeleteGroup(name string) error {
	l.gmu.Lock()
	g := l.groups[name]
	if g == nil {
		l.gmu.Unlock()
		return fmt.Errorf("disklog: no consumer group %q", name)
	}
	if g.active {
		l.gmu.Unlock()
		return fmt.Errorf("disklog: consumer group %q has an open consumer; close it first", name)
	}
	delete(l.groups, name)
	l.gmu.Unlock()
	if err := os.Remove(l.groupPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disklog: delete offsets of group %q: %w", name, err)
	}
	l.updateBacklog()
	return nil
}

// protectedOffsets returns per partition the lowest offset some known group
// still needs. With no group known yet, nothing has been consumed, so
// everything is protected (offset 0).
func (l *Log) protectedOffsets(buf []int64) []int64 {
	out := append(buf[:0], make([]int64, len(l.parts))...)
	l.gmu.Lock()
	defer l.gmu.Unlock()
	if len(l.groups) == 0 {
		return out
	}
	for p := range out {
		min := int64(-1)
		for _, g := range l.groups {
			off := g.committed[p]
			if f := g.floor[p]; g.active && f >= 0 && (off < 0 || f < off) {
				off = f // the open consumer started below its committed offset
			}
			if off < 0 {
				off = 0
			}
			if min < 0 || off < min {
				min = off
			}
		}
		out[p] = min
	}
	return out
}
