// Package topo builds the network namespaces and veth pairs that Tygress's
// tests, demo and benchmarks run on, and removes them again. Every name is
// unique per use (a caller-given prefix plus a random suffix) so parallel
// tests and a crashed earlier run never collide; Close removes everything
// that was created, also after a partial failure.
package topo

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace is a named network namespace (as `ip netns add` makes it, so
// `ip netns exec NAME` reaches it).
type Namespace struct {
	Name   string
	handle netns.NsHandle
}

// Suffix returns n random hex characters.
func Suffix(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// NewNamespace creates a named namespace with loopback up.
func NewNamespace(name string) (*Namespace, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	h, err := netns.NewNamed(name)
	if err != nil {
		netns.Set(orig)
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	if err := netns.Set(orig); err != nil {
		panic("topo: cannot return to the original netns: " + err.Error())
	}
	ns := &Namespace{Name: name, handle: h}
	err = ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Do runs fn on a locked OS thread inside the namespace. Sockets, links
// and BPF attachments made in fn belong to the namespace and stay usable
// from any thread afterwards.
func (ns *Namespace) Do(fn func() error) error {
	if ns == nil {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// A fresh goroutine on a locked thread: if returning to the
		// original namespace fails, the thread is discarded with it.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns.handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns.Name, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Handle is the namespace's handle.
func (ns *Namespace) Handle() netns.NsHandle { return ns.handle }

// Close deletes the namespace (its links go with it).
func (ns *Namespace) Close() error {
	if ns == nil || ns.handle == -1 {
		return nil
	}
	ns.handle.Close()
	ns.handle = -1
	return netns.DeleteNamed(ns.Name)
}

// Port is one end of a veth pair.
type Port struct {
	NS      *Namespace // nil: the current namespace
	Name    string
	MAC     net.HardwareAddr
	Ifindex int
	Addrs   []string // CIDRs
}

// VethOptions shape a veth pair.
type VethOptions struct {
	Queues int // rx and tx queues on both ends; 0 means 1
	// ChecksumOffload leaves tx checksum offload on. Off by default: a veth
	// peer with it on sends CHECKSUM_PARTIAL frames that reach AF_XDP copy
	// mode with an incomplete checksum.
	ChecksumOffload bool
	MTU             int
}

// NewVeth creates a veth pair a<->b, moves the ends to their namespaces,
// adds the addresses, sets both up, and fills in MAC and Ifindex.
func NewVeth(a, b *Port, opts VethOptions) error {
	q := max(opts.Queues, 1)
	la := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: a.Name, NumTxQueues: q, NumRxQueues: q, MTU: opts.MTU},
		PeerName:  b.Name, PeerNumTxQueues: uint32(q), PeerNumRxQueues: uint32(q),
	}
	if a.NS != nil {
		la.Namespace = netlink.NsFd(a.NS.handle)
	}
	if b.NS != nil {
		la.PeerNamespace = netlink.NsFd(b.NS.handle)
	}
	if err := netlink.LinkAdd(la); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", a.Name, b.Name, err)
	}
	for _, p := range []*Port{a, b} {
		if err := p.NS.Do(func() error { return p.configure(opts) }); err != nil {
			a.NS.Do(func() error { return deleteLink(a.Name) })
			return err
		}
	}
	return nil
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.LinkDel(l)
}

func (p *Port) configure(opts VethOptions) error {
	l, err := netlink.LinkByName(p.Name)
	if err != nil {
		return fmt.Errorf("find %s: %w", p.Name, err)
	}
	for _, a := range p.Addrs {
		addr, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if strings.Contains(a, ":") {
			addr.Flags = unix.IFA_F_NODAD // usable at once, no DAD wait
		}
		if err := netlink.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, p.Name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", p.Name, err)
	}
	if !opts.ChecksumOffload {
		if err := Ethtool(p.NS, "-K", p.Name, "tx", "off"); err != nil {
			return err
		}
	}
	l, err = netlink.LinkByName(p.Name)
	if err != nil {
		return err
	}
	p.MAC = l.Attrs().HardwareAddr
	p.Ifindex = l.Attrs().Index
	return nil
}

// Ethtool runs the ethtool command in ns.
func Ethtool(ns *Namespace, args ...string) error {
	return Run(ns, "ethtool", args...)
}

// Run runs a command in ns (via `ip netns exec`) and returns its output
// in the error when it fails.
func Run(ns *Namespace, name string, args ...string) error {
	_, err := Output(ns, name, args...)
	return err
}

// Output runs a command in ns and returns its combined output.
func Output(ns *Namespace, name string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if ns != nil {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Topology is a set of namespaces removed together.
type Topology struct {
	Namespaces []*Namespace
}

// AddNamespace creates a namespace named prefix+random suffix.
func (t *Topology) AddNamespace(prefix string) (*Namespace, error) {
	ns, err := NewNamespace(prefix + Suffix(6))
	if err != nil {
		return nil, err
	}
	t.Namespaces = append(t.Namespaces, ns)
	return ns, nil
}

// Close removes every namespace and with them their links.
func (t *Topology) Close() error {
	var errs []error
	for i := len(t.Namespaces) - 1; i >= 0; i-- {
		errs = append(errs, t.Namespaces[i].Close())
	}
	t.Namespaces = nil
	return errors.Join(errs...)
}
