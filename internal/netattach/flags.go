package netattach

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"
)

// Binding is the --bind-network flag group: the network to listen on and
// where its status is read from.
type Binding struct {
	Network    string        // --bind-network; "" = listen where the address flags say
	StatusFile string        // --network-status-file
	Wait       time.Duration // --bind-network-wait
}

// RegisterFlags binds the flags to b.
func (b *Binding) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&b.Network, "bind-network", "",
		"Multus network `NAME` (a NetworkAttachmentDefinition, name or namespace/name) whose address in this pod the HTTP and syslog "+
			"listeners bind to, keeping the ports of --http, --syslog-udp and --syslog-tcp; read from --network-status-file. "+
			"For an SR-IOV VF: ingest listens on the VF only. Empty = bind as the address flags say")
	fs.StringVar(&b.StatusFile, "network-status-file", DefaultStatusFile,
		"`file` holding the pod's "+StatusAnnotation+" annotation (a downward-API volume item), for --bind-network")
	fs.DurationVar(&b.Wait, "bind-network-wait", DefaultWait,
		"how long --bind-network waits for the network to appear in --network-status-file (`duration`)")
}

// Apply rewrites each listen address in addrs (pointers to flag values;
// empty ones stay disabled) to the network's address. It does nothing when
// --bind-network is empty.
func (b *Binding) Apply(ctx context.Context, log *slog.Logger, addrs ...*string) error {
	if b.Network == "" {
		return nil
	}
	file := b.StatusFile
	if file == "" {
		file = DefaultStatusFile
	}
	wait := b.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	st, ip, err := Resolve(ctx, file, b.Network, wait)
	if err != nil {
		return fmt.Errorf("--bind-network %s: %w", b.Network, err)
	}
	for _, a := range addrs {
		na, err := Rebind(*a, ip)
		if err != nil {
			return fmt.Errorf("--bind-network %s: %w", b.Network, err)
		}
		*a = na
	}
	log.Info("listeners bound to a secondary network", "network", st.Name, "interface", st.Interface, "address", ip.String())
	return nil
}
