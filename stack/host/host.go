// Package host runs a stack.Stack on a network interface: it loads the XDP
// steering program with rules that claim only the stack's traffic (ARP, the
// stack's IPv4 and IPv6 addresses, and the solicited-node multicast
// groups of the IPv6 ones), binds one AF_XDP socket per queue, each with
// its own UMEM and frame pool, and gives each queue's link.XSK to one
// shard. Everything else the interface receives goes on to the kernel.
//
// It sits outside package stack so that the stack itself depends only on
// link.Link: tests and other links (AF_PACKET, memory) need no BPF.
package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/tygress/tygress/bpf"
	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/link"
	"github.com/tygress/tygress/stack"
	"github.com/tygress/tygress/stack/neighbor"
	"github.com/tygress/tygress/xsk"
)

// Config configures a Host.
type Config struct {
	// Interface is the name of the network interface.
	Interface string
	// Interfaces, when set, makes a host on several ports: port i is
	// Interfaces[i] (Interface is ignored). Stack.Addrs are port 0's
	// addresses and Stack.PortAddrs[i] port i's; a route's Port picks the
	// port a datagram leaves on.
	Interfaces []string
	// Queues is the number of queues (and shards); 0 means every rx queue
	// of the interface.
	Queues int
	// XDPMode is the XDP attach mode (default: driver, falling back to
	// generic).
	XDPMode bpf.Mode
	// Socket are the AF_XDP socket options (xsk.DefaultSocketOptions when
	// zero).
	Socket xsk.SocketOptions
	// Frames is the number of UMEM frames per queue (default 4096).
	Frames int
	// Stack configures the stack; Config.CPUs pins the shards.
	Stack stack.Config
}

// Host is a running stack on an interface.
type Host struct {
	Stack  *stack.Stack
	Mode   string       // XDP attach mode obtained
	Bind   string       // AF_XDP bind mode obtained (copy or zero-copy)
	steers []*bpf.Steer // one per port
	links  []*link.XSK
	umems  []*xsk.UMEM
}

// Rules returns the steering rules that claim a stack's traffic: ARP, and
// for every address its /32 or /128, plus the solicited-node multicast
// group of every IPv6 address.
func Rules(addrs []netip.Prefix) []bpf.Rule {
	rules := []bpf.Rule{{EtherType: bpf.EtherTypeARP}}
	for _, p := range addrs {
		a := p.Addr()
		rules = append(rules, bpf.Rule{Prefix: netip.PrefixFrom(a, a.BitLen())})
		if !a.Is4() {
			rules = append(rules, bpf.Rule{Prefix: netip.PrefixFrom(neighbor.SolicitedNode(a), 128)})
		}
	}
	return rules
}

// Open sets everything up in the calling thread's network namespace; Run
// starts the shards. On error everything made so far is undone.
func Open(cfg Config) (_ *Host, err error) {
	ifaces := cfg.Interfaces
	if len(ifaces) == 0 {
		ifaces = []string{cfg.Interface}
	}
	if cfg.Frames == 0 {
		cfg.Frames = 4096
	}
	if cfg.Socket == (xsk.SocketOptions{}) {
		cfg.Socket = xsk.DefaultSocketOptions()
	}
	h := &Host{}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	var ports []int
	for port, name := range ifaces {
		ifc, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %s: %w", name, err)
		}
		queues := cfg.Queues
		if queues == 0 {
			queues = 1
			if n, err := dataplane.RxQueues(name); err == nil {
				queues = n
			}
		}
		addrs := cfg.Stack.Addrs
		if port > 0 {
			addrs = nil
			if port < len(cfg.Stack.PortAddrs) {
				addrs = cfg.Stack.PortAddrs[port]
			}
		}
		steer, err := bpf.Load(bpf.Options{Rules: Rules(addrs), Mode: cfg.XDPMode})
		if err != nil {
			return nil, fmt.Errorf("load steering program: %w", err)
		}
		h.steers = append(h.steers, steer)
		for q := range queues {
			u, err := xsk.NewUMEM(xsk.UMEMOptions{FrameSize: 2048, NumFrames: cfg.Frames})
			if err != nil {
				return nil, err
			}
			h.umems = append(h.umems, u)
			pool, err := xsk.NewFramePool(u, 0, cfg.Frames)
			if err != nil {
				return nil, err
			}
			sock, err := xsk.NewSocket(pool, ifc.Index, q, cfg.Socket)
			if err != nil {
				return nil, fmt.Errorf("%s queue %d: %w", name, q, err)
			}
			l, err := link.NewXSK(sock, link.XSKOptions{Port: uint16(port)})
			if err != nil {
				sock.Close()
				return nil, fmt.Errorf("%s queue %d: %w", name, q, err)
			}
			h.links = append(h.links, l)
			ports = append(ports, port)
			if err := steer.Register(q, sock.FD()); err != nil {
				return nil, fmt.Errorf("%s queue %d: register socket: %w", name, q, err)
			}
			h.Bind = sock.Mode()
		}
		a, err := steer.Attach(ifc.Index)
		if err != nil {
			return nil, fmt.Errorf("attach xdp to %s: %w", name, err)
		}
		h.Mode = a.Mode().String()
	}
	links := make([]link.Link, len(h.links))
	for i, l := range h.links {
		links[i] = l
	}
	scfg := cfg.Stack
	scfg.LinkPorts = ports
	h.Stack, err = stack.New(links, scfg)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Run runs the stack until ctx is done (see stack.Stack.Run).
func (h *Host) Run(ctx context.Context) error { return h.Stack.Run(ctx) }

// Links returns the AF_XDP links, one per queue.
func (h *Host) Links() []*link.XSK { return h.links }

// Steer returns the steering program of port 0 (for its counters).
func (h *Host) Steer() *bpf.Steer { return h.steers[0] }

// Close detaches the XDP program and closes the sockets and UMEMs. Call it
// after Run returned.
func (h *Host) Close() error {
	var errs []error
	for _, st := range h.steers {
		errs = append(errs, st.Close())
	}
	for _, l := range h.links {
		errs = append(errs, l.Close())
	}
	for _, u := range h.umems {
		errs = append(errs, u.Close())
	}
	return errors.Join(errs...)
}
