//go:build !agent

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/wirelog/wirelog/internal/loadgen"
)

// runLoadgen posts synthetic events to a wirelog and prints what it
// acknowledged. The progress line goes to stderr, the report to stdout, so
// `wirelog loadgen --json > report.json` keeps the report clean.
func runLoadgen(ctx context.Context, args []string) error {
	fs := newFlagSet("loadgen", "Post realistic synthetic log events to a wirelog (POST /api/v1/logs) at a chosen rate\n"+
		"and report acknowledged events/s, MB/s, ack latency p50/p99/p999 and errors by status code.\n"+
		"Exits non-zero when no event was acknowledged. Ctrl-C stops the run and still prints the report.")
	var f loadgen.Flags
	f.Register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.Resolve()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if f.AckLogPath != "" {
		ackLog, err := os.OpenFile(f.AckLogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("open --ack-log file: %w", err)
		}
		defer ackLog.Close()
		cfg.AckLog = ackLog
	}
	if !f.Quiet {
		cfg.Progress = os.Stderr
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			cfg.ProgressTTY = true
		}
	}

	rep, runErr := loadgen.Run(ctx, cfg)
	if errors.Is(runErr, loadgen.ErrInvalidConfig) {
		return fmt.Errorf("%w: %v", errUsage, runErr)
	}
	if runErr == nil || errors.Is(runErr, loadgen.ErrNoneAcknowledged) || rep.Requests > 0 {
		if f.JSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rep); err != nil {
				return fmt.Errorf("write report: %w", err)
			}
		} else if err := rep.WriteText(os.Stdout); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if runErr != nil {
		if errors.Is(runErr, loadgen.ErrNoneAcknowledged) {
			return fmt.Errorf("no event was acknowledged by %s (see the errors in the report): is wirelog running there, and is --target right?", rep.Target)
		}
		return runErr
	}
	return nil
}
