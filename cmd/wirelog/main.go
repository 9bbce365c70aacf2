// Command wirelog is the single binary of the wirelog platform. main is a
// wiring diagram: each subcommand lives in its own file and parses its own
// flags; the work happens in internal/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: its one-line summary and its entry point, which
// gets the arguments after the subcommand name.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

type namedCommand struct {
	name string
	command
}

// The subcommand table, in the order --help lists them, is `commands`:
// commands_full.go lists every subcommand; with `-tags agent`,
// commands_agent.go lists only the node agent's (dataplane, preflight), so
// the DaemonSet binary leaves out DuckDB, Kafka and the pipeline and stays
// small in memory (`make agent`).

// errUsage marks an error the user fixes by changing the command line; main
// exits 2 for it, like the flag package.
var errUsage = errors.New("usage error")

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stdout)
		return
	}
	name := os.Args[1]
	for _, c := range commands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := c.run(ctx, os.Args[2:])
		stop()
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return
		case errors.Is(err, errUsage):
			fmt.Fprintf(os.Stderr, "wirelog %s: %v\n", name, err)
			os.Exit(2)
		default:
			fmt.Fprintf(os.Stderr, "wirelog %s: %v\n", name, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "wirelog: unknown command %q\n\n", name)
	usage(os.Stderr)
	os.Exit(2)
}

func usage(w *os.File) {
	fmt.Fprintln(w, "wirelog — log ingestion and analytics at wire speed, and the data-plane tooling around it.")
	fmt.Fprintln(w, "\nUsage: wirelog <command> [flags]   (wirelog <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}

// newFlagSet returns a flag set for a subcommand whose --help prints a
// summary line before the flags.
func newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("wirelog "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wirelog %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns a bad flag into errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see wirelog %s --help)", errUsage, fs.Arg(0), fs.Name())
	}
	return nil
}

// usageErrorf returns an errUsage with a message naming the flag to fix.
func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}
