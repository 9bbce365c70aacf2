package api

import (
	"testing"
	"time"
)

func TestParseTimeForms(t *testing.T) {
	want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, out := range map[string]time.Time{
		"2026-03-01T12:00:00Z":      want,
		"2026-03-01T13:00:00+01:00": want,
		"2026-03-01T12:00:00.25Z":   want.Add(250 * time.Millisecond),
		"1772366400":                want,
		"1772366400250":             want.Add(250 * time.Millisecond),
		"1772366400250000":          want.Add(250 * time.Millisecond),
		"1772366400250000001":       want.Add(250*time.Millisecond + 1),
		"now":                       now,
		"-15m":                      now.Add(-15 * time.Minute),
		"now-1h30m":                 now.Add(-90 * time.Minute),
		"now+5m":                    now.Add(5 * time.Minute),
		"-7d":                       now.Add(-7 * 24 * time.Hour),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(out) {
			t.Errorf("ParseTime(%q) = %s, %v; want %s", in, got, err, out)
		}
	}
	for _, bad := range []string{"", "yesterday", "-15", "--15m", "-m", "2026-03-01", "12:00", "now-", "1.5e9", "-1000000d", "99999999999999999999"} {
		if got, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) = %s, want an error", bad, got)
		}
	}
}

func TestParseStep(t *testing.T) {
	for in, out := range map[string]time.Duration{"1s": time.Second, "10s": 10 * time.Second, "60": time.Minute, "1h": time.Hour, "1d": 24 * time.Hour} {
		if got, err := ParseStep(in); err != nil || got != out {
			t.Errorf("ParseStep(%q) = %s, %v; want %s", in, got, err, out)
		}
	}
	for _, bad := range []string{"", "0", "0s", "500ms", "1.5s", "-1m", "x", "99999999999"} {
		if got, err := ParseStep(bad); err == nil {
			t.Errorf("ParseStep(%q) = %s, want an error", bad, got)
		}
	}
}

func TestAutoStepStaysUnderTheBucketBudget(t *testing.T) {
	for _, w := range []time.Duration{time.Second, time.Minute, 15 * time.Minute, time.Hour, 24 * time.Hour, 30 * 24 * time.Hour, 10 * 365 * 24 * time.Hour} {
		s := autoStep(w)
		if s < time.Second || s%time.Second != 0 || w/s > maxAutoBuckets {
			t.Errorf("autoStep(%s) = %s: %d buckets", w, s, w/s)
		}
	}
}

// FuzzParseTime checks the time parser never panics and that whatever it
// accepts as RFC 3339 means the same instant when printed and read back.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2026-03-01T12:00:00Z", "1772366400", "1772366400250", "-15m", "now-1h", "-7d", "now", "+5m", "9223372036854775807", "-9999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			return
		}
		back, err := ParseTime(got.Format(time.RFC3339Nano), now)
		if got.Year() > 0 && got.Year() < 10000 && (err != nil || !back.Equal(got)) {
			t.Fatalf("ParseTime(%q) = %s, which reads back as %s, %v", s, got, back, err)
		}
	})
}
