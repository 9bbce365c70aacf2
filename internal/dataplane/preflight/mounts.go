package preflight

import (
	"strconv"
	"strings"
)

// Mount is one line of /proc/mounts.
type Mount struct {
	Device, Point, FSType string
	Options               []string
}

// Option returns the value of a key=value mount option, "" if absent.
func (m Mount) Option(key string) string {
	for _, o := range m.Options {
		if k, v, ok := strings.Cut(o, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// ParseMounts parses /proc/mounts (fstab format: device, mount point, type,
// options, dump, pass), undoing the kernel's octal escapes of blanks and
// backslashes in paths (\040, \011, \012, \134). Lines with fewer than four
// fields are skipped: the kernel never writes them, and a partial read of a
// changing file may end in one.
func ParseMounts(data []byte) []Mount {
	var out []Mount
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		out = append(out, Mount{Device: unescape(f[0]), Point: unescape(f[1]), FSType: f[2], Options: strings.Split(f[3], ",")})
	}
	return out
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
