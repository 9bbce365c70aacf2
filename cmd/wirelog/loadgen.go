//go:build !agent

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

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

	var soak *loadgen.Soak
	if f.Soak {
		csvFile, err := os.Create(f.SoakCSV)
		if err != nil {
			return fmt.Errorf("soak: %w (check --soak-csv)", err)
		}
		defer csvFile.Close()
		sc := f.SoakConfig
		sc.CSV, sc.Progress = csvFile, os.Stderr
		if soak, err = loadgen.StartSoak(ctx, sc); err != nil {
			return err
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
	if soak != nil {
		if err := finishSoak(soak, rep, f, cfg); err != nil && runErr == nil {
			runErr = err
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

// finishSoak stops the sampler, writes the CSV and the chart, and prints
// the summary and its verdict to stderr (stdout keeps the --json report).
func finishSoak(soak *loadgen.Soak, rep loadgen.Report, f loadgen.Flags, cfg loadgen.Config) error {
	samples := soak.Stop()
	sum := soak.Summarize(samples)
	sum.AddReport(rep)
	write := func(path string, fn func(*os.File) error) error {
		out, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("soak: %w (check --soak-csv / --soak-html)", err)
		}
		if err := fn(out); err != nil {
			out.Close()
			return fmt.Errorf("soak: write %s: %w", path, err)
		}
		return out.Close()
	}
	title := fmt.Sprintf("wirelog soak: %s, rate %.0f/s, %d connections, batch %d", cfg.Target, cfg.Rate, cfg.Concurrency, cfg.Batch)
	err := errors.Join(
		write(f.SoakHTML, func(o *os.File) error { return loadgen.WriteSoakHTML(o, title, sum, samples) }),
		sum.WriteText(os.Stderr))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "soak samples: %s, chart: %s\n", f.SoakCSV, f.SoakHTML)
	if !sum.Pass {
		return fmt.Errorf("soak verdict failed: %s", strings.Join(sum.Problems, "; "))
	}
	return nil
}
