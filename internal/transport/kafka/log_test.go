package kafka

import (
	"log/slog"
	"os"
)

// Tests log warnings and errors only (topic creation and rebalances are
// logged at info); WIRELOG_TEST_DEBUG=1 shows everything, franz-go's
// internals included.
func init() {
	level := slog.LevelWarn
	if os.Getenv("WIRELOG_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}
