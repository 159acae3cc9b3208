// Command tyfwd runs Tygress's AF_XDP data path: receive-and-drop,
// layer-2 forwarding between two ports, a UDP traffic generator, and a
// demo that builds its own namespaces and runs all three.
//
// Usage:
//
//	tyfwd rxdrop -i IFACE [flags]
//	tyfwd l2fwd  -i IFACE_IN -o IFACE_OUT [--dst-mac MAC] [flags]
//	tyfwd txgen  -i IFACE --dst-mac MAC --src IP --dst IP [--size 60] [--rate PPS] [--flows N] [flags]
//	tyfwd demo   [--duration 5s]
//	tyfwd lb     -i CLIENT_IFACE -o BACKEND_IFACE --addr CIDR --vip 10.0.0.100:80/tcp --backend 10.0.1.11 [--mode nat|dsr] [--config FILE]
//	tyfwd serve  -i IFACE --addr 10.0.0.2/24 [--addr fd00::2/64] [--gateway IP] [--queues N] [--cores LIST]
//
// Every command prints per-second statistics and one final line starting
// with "summary:" of key=value pairs, and detaches cleanly on SIGINT and
// SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

var commands = map[string]func(ctx context.Context, args []string, out io.Writer) error{
	"rxdrop": cmdRxdrop,
	"l2fwd":  cmdL2fwd,
	"txgen":  cmdTxgen,
	"demo":   cmdDemo,
	"serve":  cmdServe,
	"lb":     cmdLB,
}

const usage = `usage: tyfwd COMMAND [flags]

commands:
  rxdrop   receive on every queue of an interface and drop (receive benchmark)
  l2fwd    forward frames from one interface to another, rewriting MACs
  txgen    send UDP flows (IPv4 or IPv6) at a given size, rate and flow count
  demo     build two namespaces and a forwarder, run txgen -> l2fwd -> rxdrop
  serve    run the host stack on an interface: ICMP echo, UDP echo/discard/stats
  lb       L4 load balancer (Maglev, connection table, NAT or DSR, health checks)

Run 'tyfwd COMMAND -h' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tyfwd: unknown command %q\n%s", args[0], usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd(ctx, args[1:], stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tyfwd %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "tyfwd %s: error: %v\n", args[0], err)
		return 1
	}
}
