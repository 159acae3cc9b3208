// Package bpf loads and attaches Tygress's XDP steering program, which
// decides for every received frame whether Tygress or the kernel gets it.
//
// # Model
//
// The program (steer.c, compiled by bpf2go into steer_bpfel.o and embedded)
// runs on every frame of every interface it is attached to. A frame is
// claimed when it matches any of the configured Rules (or when
// Options.ClaimAll is set); a claimed frame is redirected to the AF_XDP
// socket registered for the queue it arrived on (an XSKMAP slot per queue,
// see Register). Everything else goes to the kernel stack with XDP_PASS, so
// the host keeps working for the traffic Tygress does not own: ARP, SSH,
// its own addresses. A claimed frame whose queue has no socket is passed too.
//
// A Rule matches when all its non-zero fields match: EtherType (after up to
// two VLAN tags, 802.1Q or 802.1ad), the VLAN id of the innermost tag, the
// IP protocol (for IPv6 the one after up to four extension headers), the
// destination prefix (IPv4 or IPv6) and the destination port range (UDP,
// TCP, SCTP). IP fragments other than the first carry no ports and so match
// only rules without a port range. Frames with truncated headers are never
// claimed. VLAN tags that the NIC strips on receive (rx VLAN offload) are
// invisible to XDP: turn the offload off to steer by VLAN.
//
// The rules are kept in two banks in the kernel: SetRules writes the
// inactive bank and then switches bank and rule count in one aligned 32-bit
// word that the program reads once per frame, so a frame is checked against
// either the old or the new rule set, never a mix (as long as one run of
// the program, nanoseconds, is shorter than the time between two SetRules
// calls, which take several system calls each).
//
// Every frame is counted per CPU in Seen and in exactly one outcome (see
// Counters).
//
// # Lifetime
//
// Load creates the program and its maps; Attach attaches the program to an
// interface through a bpf_link, so the program is detached when the link is
// closed or the process exits, also after a crash: no stale program stays
// on the interface. Keep the Steer reachable while it is attached: if it is
// garbage collected, its file descriptors are closed and the program
// detaches.
//
// One loaded program can be attached to several interfaces, but they share
// its XSKMAP and counters. The XSKMAP is indexed by the receive queue alone
// and a socket only accepts frames of the interface and queue it is bound
// to, so when AF_XDP sockets serve several interfaces, load one Steer per
// interface.
//
// RLIMIT_MEMLOCK is not raised: BPF memory is accounted to the memory
// cgroup on Linux 5.11 and later, and raising the limit needs
// CAP_SYS_RESOURCE, which a container's root often lacks.
package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Limits of the XDP program's maps.
const (
	// MaxQueues is the number of XSKMAP slots: queues 0..MaxQueues-1.
	MaxQueues = 256
	// MaxRules is the largest number of rules in one rule set.
	MaxRules = 64
)

// Bits of the program's config map; they mirror steer.c.
const (
	activeBankShift = 8
	flagClaimAll    = 1 << 0
)

// Frequently used values of Rule fields.
const (
	EtherTypeIPv4 = 0x0800 // EtherType of IPv4
	EtherTypeARP  = 0x0806 // EtherType of ARP
	EtherTypeIPv6 = 0x86DD // EtherType of IPv6

	IPProtoTCP  = 6   // IP protocol number of TCP
	IPProtoUDP  = 17  // IP protocol number of UDP
	IPProtoSCTP = 132 // IP protocol number of SCTP
)

var (
	// ErrNotSupported is returned by Attach when the interface or the
	// kernel cannot run the program in the requested mode.
	ErrNotSupported = errors.New("xdp mode not supported")
	// ErrBusy is returned by Attach when the interface already has an XDP
	// program (in this or another mode, attached by this or another
	// process).
	ErrBusy = errors.New("interface already has an xdp program")
	// ErrInvalidRule is returned by Load and SetRules for a rule that can
	// never match or does not fit the program (out-of-range values, too many
	// rules).
	ErrInvalidRule = errors.New("invalid rule")
	// ErrClosed is returned by the methods of a closed Steer.
	ErrClosed = errors.New("steer closed")
)

// Mode is how the XDP program is attached to an interface.
type Mode int

// Attach modes.
const (
	// ModeAuto tries driver mode and falls back to generic mode.
	ModeAuto Mode = iota
	// ModeDriver runs the program in the driver (native XDP). Needed for
	// zero-copy AF_XDP.
	ModeDriver
	// ModeGeneric runs the program on the skb after the driver (SKB mode).
	// Works on every interface, slowly.
	ModeGeneric
)

var modeNames = [...]string{ModeAuto: "auto", ModeDriver: "driver", ModeGeneric: "generic"}

// String returns "auto", "driver" or "generic".
func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(modeNames) {
		return nil, fmt.Errorf("invalid xdp mode %d", int(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler (so a Mode works with
// flag.TextVar): it accepts "auto", "driver" ("native", "drv") and
// "generic" ("skb").
func (m *Mode) UnmarshalText(b []byte) error {
	switch strings.ToLower(string(b)) {
	case "auto", "":
		*m = ModeAuto
	case "driver", "native", "drv":
		*m = ModeDriver
	case "generic", "skb":
		*m = ModeGeneric
	default:
		return fmt.Errorf("unknown xdp mode %q (want auto, driver or generic)", b)
	}
	return nil
}

// Rule claims the frames that match all its non-zero fields.
type Rule struct {
	// EtherType after the VLAN tags; 0 matches any. ARP (0x0806) can be
	// claimed for a user-space stack.
	EtherType uint16
	// IPProto is the IP protocol (for IPv6, after the extension headers);
	// 0 matches any.
	IPProto uint8
	// Prefix is the destination prefix, IPv4 or IPv6; the zero Prefix
	// matches any frame, 0.0.0.0/0 any IPv4 frame and ::/0 any IPv6 frame.
	Prefix netip.Prefix
	// PortLo and PortHi bound the destination port (UDP, TCP or SCTP),
	// inclusive; 0, 0 matches any frame, also one without ports.
	PortLo, PortHi uint16
	// VLAN is the id of the innermost VLAN tag; 0 matches any frame,
	// tagged or not.
	VLAN uint16
}

// String describes the rule, e.g. "ipv4 udp dst 10.0.0.0/8 port 53".
func (r Rule) String() string {
	var parts []string
	switch r.EtherType {
	case 0:
	case EtherTypeIPv4:
		parts = append(parts, "ipv4")
	case EtherTypeIPv6:
		parts = append(parts, "ipv6")
	case EtherTypeARP:
		parts = append(parts, "arp")
	default:
		parts = append(parts, fmt.Sprintf("ethertype 0x%04x", r.EtherType))
	}
	if r.VLAN != 0 {
		parts = append(parts, fmt.Sprintf("vlan %d", r.VLAN))
	}
	switch r.IPProto {
	case 0:
	case IPProtoTCP:
		parts = append(parts, "tcp")
	case IPProtoUDP:
		parts = append(parts, "udp")
	case IPProtoSCTP:
		parts = append(parts, "sctp")
	default:
		parts = append(parts, fmt.Sprintf("proto %d", r.IPProto))
	}
	if r.Prefix.IsValid() {
		parts = append(parts, "dst "+r.Prefix.String())
	}
	switch {
	case r.PortLo == 0 && r.PortHi == 0:
	case r.PortLo == r.PortHi:
		parts = append(parts, fmt.Sprintf("port %d", r.PortLo))
	default:
		parts = append(parts, fmt.Sprintf("ports %d-%d", r.PortLo, r.PortHi))
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

// encode checks r and converts it into the program's layout.
func (r Rule) encode() (steerRule, error) {
	var sr steerRule
	if r.VLAN > 4095 {
		return sr, fmt.Errorf("%w: vlan %d out of range", ErrInvalidRule, r.VLAN)
	}
	if r.PortLo > r.PortHi {
		return sr, fmt.Errorf("%w: port range %d-%d is empty", ErrInvalidRule, r.PortLo, r.PortHi)
	}
	isIP := r.EtherType == 0 || r.EtherType == EtherTypeIPv4 || r.EtherType == EtherTypeIPv6
	if r.IPProto != 0 && !isIP {
		return sr, fmt.Errorf("%w: ip protocol with ethertype 0x%04x", ErrInvalidRule, r.EtherType)
	}
	if r.PortHi != 0 {
		if !isIP {
			return sr, fmt.Errorf("%w: ports with ethertype 0x%04x", ErrInvalidRule, r.EtherType)
		}
		switch r.IPProto {
		case 0, IPProtoTCP, IPProtoUDP, IPProtoSCTP:
		default:
			return sr, fmt.Errorf("%w: ports with ip protocol %d", ErrInvalidRule, r.IPProto)
		}
	}
	if r.Prefix != (netip.Prefix{}) {
		if !r.Prefix.IsValid() {
			return sr, fmt.Errorf("%w: prefix %v", ErrInvalidRule, r.Prefix)
		}
		p := r.Prefix.Masked()
		var addr, mask [16]byte
		sr.Family = 4
		want := uint16(EtherTypeIPv4)
		if p.Addr().Is4() {
			a4 := p.Addr().As4()
			copy(addr[:], a4[:])
		} else {
			sr.Family = 6
			want = EtherTypeIPv6
			addr = p.Addr().As16()
		}
		if r.EtherType != 0 && r.EtherType != want {
			return sr, fmt.Errorf("%w: prefix %v with ethertype 0x%04x", ErrInvalidRule, r.Prefix, r.EtherType)
		}
		for i := range p.Bits() {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		for i := range 4 {
			// The program compares 32-bit loads of the packet, so the words
			// are in memory (network) byte order.
			sr.Addr[i] = binary.NativeEndian.Uint32(addr[4*i:])
			sr.Mask[i] = binary.NativeEndian.Uint32(mask[4*i:])
		}
	}
	sr.Ethertype = r.EtherType
	sr.Vlan = r.VLAN
	sr.Ipproto = r.IPProto
	sr.PortLo = r.PortLo
	sr.PortHi = r.PortHi
	return sr, nil
}

func encodeRules(rules []Rule) ([]steerRule, error) {
	if len(rules) > MaxRules {
		return nil, fmt.Errorf("%w: %d rules, at most %d", ErrInvalidRule, len(rules), MaxRules)
	}
	out := make([]steerRule, len(rules))
	for i, r := range rules {
		sr, err := r.encode()
		if err != nil {
			return nil, fmt.Errorf("rule %d (%v): %w", i, r, err)
		}
		out[i] = sr
	}
	return out, nil
}

// Options configure Load.
type Options struct {
	// Rules select the frames to claim (at most MaxRules).
	Rules []Rule
	// ClaimAll claims every frame without parsing it (rxdrop benchmarks,
	// an interface dedicated to Tygress). Rules are ignored while it is set.
	ClaimAll bool
	// Mode is the attach mode of Attach.
	Mode Mode
}

// DefaultOptions returns options that claim nothing (add Rules) and attach
// in ModeAuto.
func DefaultOptions() Options {
	return Options{Mode: ModeAuto}
}

// Counters are the program's counters summed over all CPUs. Seen is the sum
// of the other fields (up to frames in flight while they are read).
type Counters struct {
	// Seen counts every frame the program ran on.
	Seen uint64
	// Redirected counts claimed frames handed to the queue's socket. The
	// kernel can still drop them after the program (socket bound to another
	// queue, rx ring full): see the socket's XDP_STATISTICS.
	Redirected uint64
	// PassedNoMatch counts frames that matched no rule (XDP_PASS).
	PassedNoMatch uint64
	// PassedNoSocket counts claimed frames whose queue has no socket
	// registered (XDP_PASS).
	PassedNoSocket uint64
	// PassedMalformed counts frames with truncated or invalid headers
	// (XDP_PASS; the kernel stack drops them).
	PassedMalformed uint64
	// Aborted counts frames on which the program hit an internal error
	// (XDP_ABORTED). It stays zero unless something is broken.
	Aborted uint64
}

// Passed is the number of frames given to the kernel stack.
func (c Counters) Passed() uint64 {
	return c.PassedNoMatch + c.PassedNoSocket + c.PassedMalformed
}

// Sub returns c - prev, field by field (the counts of an interval).
func (c Counters) Sub(prev Counters) Counters {
	return Counters{
		Seen:            c.Seen - prev.Seen,
		Redirected:      c.Redirected - prev.Redirected,
		PassedNoMatch:   c.PassedNoMatch - prev.PassedNoMatch,
		PassedNoSocket:  c.PassedNoSocket - prev.PassedNoSocket,
		PassedMalformed: c.PassedMalformed - prev.PassedMalformed,
		Aborted:         c.Aborted - prev.Aborted,
	}
}

// Steer is a loaded steering program with its maps. Its methods are safe
// for concurrent use.
type Steer struct {
	mu       sync.Mutex
	objs     steerObjects
	mode     Mode
	flags    uint32
	bank     uint32 // bank of the active rule set
	attached []*Attachment
	closed   bool
}

// Load loads the steering program and its maps into the kernel and
// installs opts.Rules and opts.ClaimAll. Nothing is attached yet.
func Load(opts Options) (*Steer, error) {
	if opts.Mode < ModeAuto || opts.Mode > ModeGeneric {
		return nil, fmt.Errorf("invalid xdp mode %d", int(opts.Mode))
	}
	rules, err := encodeRules(opts.Rules)
	if err != nil {
		return nil, err
	}
	s := &Steer{mode: opts.Mode}
	if opts.ClaimAll {
		s.flags |= flagClaimAll
	}
	if err := loadSteerObjects(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	// The inactive bank is 1 after loading (all zero: bank 0, no rules),
	// so the first rule set goes to bank 1.
	if err := s.install(rules); err != nil {
		s.objs.closeAll()
		return nil, err
	}
	return s, nil
}

// install writes rules into the inactive bank and publishes them together
// with s.flags. s.mu is held or s is not shared yet.
func (s *Steer) install(rules []steerRule) error {
	bank := s.bank ^ 1
	for i := range rules {
		key := bank*MaxRules + uint32(i)
		if err := s.objs.Rules.Put(key, &rules[i]); err != nil {
			return fmt.Errorf("write rule %d: %w", i, err)
		}
	}
	cfg := steerConfig{Active: bank<<activeBankShift | uint32(len(rules)), Flags: s.flags}
	if err := s.objs.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("publish rules: %w", err)
	}
	s.bank = bank
	return nil
}

// SetRules replaces the rule set. Frames are checked against either the
// old or the new set, never a mix of both.
func (s *Steer) SetRules(rules []Rule) error {
	enc, err := encodeRules(rules)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.install(enc)
}

// Program returns the loaded XDP program, e.g. to attach it by other means
// or to run it with BPF_PROG_TEST_RUN. It belongs to s: do not close it.
func (s *Steer) Program() *ebpf.Program {
	return s.objs.TygressSteer
}

// Attachment is the program attached to one interface.
type Attachment struct {
	s       *Steer
	ifindex int
	mode    Mode
	link    link.Link
}

// Ifindex is the interface the program is attached to.
func (a *Attachment) Ifindex() int { return a.ifindex }

// Mode is the mode obtained: ModeDriver or ModeGeneric.
func (a *Attachment) Mode() Mode { return a.mode }

// Close detaches the program from the interface. It is idempotent, and a
// no-op after the Steer was closed.
func (a *Attachment) Close() error {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	return a.s.detach(a)
}

// detach closes a's link and forgets it. s.mu is held.
func (s *Steer) detach(a *Attachment) error {
	for i, b := range s.attached {
		if b == a {
			s.attached = append(s.attached[:i], s.attached[i+1:]...)
			if err := a.link.Close(); err != nil {
				return fmt.Errorf("detach xdp from ifindex %d: %w", a.ifindex, err)
			}
			return nil
		}
	}
	return nil
}

// Attach attaches the program to the interface ifindex (of the calling
// thread's network namespace) in the mode of Options.Mode, through a
// bpf_link. In ModeAuto it tries driver mode first and falls back to
// generic mode; the returned Attachment tells which mode was obtained. The
// same Steer can be attached to several interfaces.
func (s *Steer) Attach(ifindex int) (*Attachment, error) {
	if ifindex <= 0 {
		return nil, fmt.Errorf("attach xdp: invalid ifindex %d", ifindex)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var (
		l    link.Link
		err  error
		mode = s.mode
	)
	switch s.mode {
	case ModeDriver, ModeGeneric:
		l, err = s.attachLink(ifindex, s.mode)
		if err != nil {
			return nil, fmt.Errorf("attach xdp to ifindex %d in %v mode: %w", ifindex, s.mode, err)
		}
	default:
		mode = ModeDriver
		l, err = s.attachLink(ifindex, ModeDriver)
		if err != nil {
			var gerr error
			mode = ModeGeneric
			l, gerr = s.attachLink(ifindex, ModeGeneric)
			if gerr != nil {
				return nil, fmt.Errorf("attach xdp to ifindex %d: driver mode: %w; generic mode: %w", ifindex, err, gerr)
			}
		}
	}
	a := &Attachment{s: s, ifindex: ifindex, mode: mode, link: l}
	s.attached = append(s.attached, a)
	return a, nil
}

// errENOTSUPP is the kernel's internal ENOTSUPP (524), which leaks to user
// space from some drivers' XDP setup.
const errENOTSUPP = syscall.Errno(524)

func (s *Steer) attachLink(ifindex int, mode Mode) (link.Link, error) {
	flags := link.XDPDriverMode
	if mode == ModeGeneric {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: s.objs.TygressSteer, Interface: ifindex, Flags: flags})
	switch {
	case err == nil:
		return l, nil
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, errENOTSUPP), errors.Is(err, ebpf.ErrNotSupported):
		return nil, fmt.Errorf("%w: %w", ErrNotSupported, err)
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EEXIST):
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	return nil, err
}

// Register puts the AF_XDP socket fd into the XSKMAP slot of queue: claimed
// frames that arrive on that queue go to it. The socket must be bound to
// the same queue of the interface, or the kernel drops the frames after the
// redirect (they are still counted as Redirected). A socket that is closed
// leaves the map by itself.
func (s *Steer) Register(queue int, fd int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("register socket: queue %d out of range [0, %d)", queue, MaxQueues)
	}
	if fd < 0 {
		return fmt.Errorf("register socket for queue %d: invalid fd %d", queue, fd)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.objs.XsksMap.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("register socket for queue %d: %w", queue, err)
	}
	return nil
}

// Unregister empties the XSKMAP slot of queue: claimed frames of that queue
// go to the kernel stack again. Emptying an empty slot is not an error.
func (s *Steer) Unregister(queue int) error {
	if queue < 0 || queue >= MaxQueues {
		return fmt.Errorf("unregister socket: queue %d out of range [0, %d)", queue, MaxQueues)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.objs.XsksMap.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("unregister socket for queue %d: %w", queue, err)
	}
	return nil
}

// Counters reads the counters of all CPUs and sums them.
func (s *Steer) Counters() (Counters, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Counters{}, ErrClosed
	}
	var per []steerCounters
	if err := s.objs.Counters.Lookup(uint32(0), &per); err != nil {
		return Counters{}, fmt.Errorf("read counters: %w", err)
	}
	var c Counters
	for _, p := range per {
		c.Seen += p.Seen
		c.Redirected += p.Redirected
		c.PassedNoMatch += p.PassedNoMatch
		c.PassedNoSocket += p.PassedNoSocket
		c.PassedMalformed += p.PassedMalformed
		c.Aborted += p.Aborted
	}
	return c, nil
}

// Close detaches the program from every interface and frees the program
// and its maps (the XSKMAP drops its socket references). It is idempotent.
func (s *Steer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for len(s.attached) > 0 {
		errs = append(errs, s.detach(s.attached[len(s.attached)-1]))
	}
	errs = append(errs, s.objs.closeAll())
	return errors.Join(errs...)
}

// closeAll closes the program and every map, also after an error (the
// generated Close stops at the first one).
func (o *steerObjects) closeAll() error {
	var errs []error
	for _, c := range []interface{ Close() error }{o.TygressSteer, o.Config, o.Counters, o.Rules, o.XsksMap} {
		if err := c.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close xdp objects: %w", err)
	}
	return nil
}
