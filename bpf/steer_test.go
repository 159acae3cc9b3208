package bpf_test

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bpf"
)

// XDP actions (uapi/linux/bpf.h).
const (
	xdpAborted  = 0
	xdpPass     = 2
	xdpRedirect = 4
)

type outcome int

const (
	claimed   outcome = iota // claimed; no socket registered in the tests
	noMatch                  // no rule matched
	malformed                // truncated headers
)

func (o outcome) String() string {
	return [...]string{"claimed", "no-match", "malformed"}[o]
}

func (o outcome) counters() bpf.Counters {
	switch o {
	case claimed:
		return bpf.Counters{Seen: 1, PassedNoSocket: 1}
	case noMatch:
		return bpf.Counters{Seen: 1, PassedNoMatch: 1}
	}
	return bpf.Counters{Seen: 1, PassedMalformed: 1}
}

func load(t *testing.T, opts bpf.Options) *bpf.Steer {
	t.Helper()
	requirePrivileged(t)
	s, err := bpf.Load(opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func counters(t *testing.T, s *bpf.Steer) bpf.Counters {
	t.Helper()
	c, err := s.Counters()
	if err != nil {
		t.Fatalf("Counters: %v", err)
	}
	return c
}

// run runs the program once on frame (rx queue 0) and returns the action
// and the change of the counters.
func run(t *testing.T, s *bpf.Steer, frame []byte) (uint32, bpf.Counters) {
	t.Helper()
	before := counters(t, s)
	ret, err := s.Program().Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("Run on %d-byte frame: %v", len(frame), err)
	}
	return ret, counters(t, s).Sub(before)
}

// expect runs frame and checks the action and counters of outcome want.
func expect(t *testing.T, s *bpf.Steer, frame []byte, want outcome) {
	t.Helper()
	ret, got := run(t, s, frame)
	if ret != xdpPass {
		t.Errorf("action = %d, want XDP_PASS (%d)", ret, xdpPass)
	}
	if got != want.counters() {
		t.Errorf("want %v: counters (-want +got):\n-%+v\n+%+v\nframe % x", want, want.counters(), got, frame)
	}
}

func f(p l3, tags ...tag) []byte {
	b, _ := eth(p, tags...)
	return b
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

type frameCase struct {
	name  string
	frame []byte
	want  outcome
}

func TestRuleFields(t *testing.T) {
	s := load(t, bpf.DefaultOptions())
	const v4, v6 = "10.1.2.3", "fd00:1::5"
	tests := []struct {
		name   string
		rules  []bpf.Rule
		frames []frameCase
	}{
		{
			name:  "no rules",
			rules: nil,
			frames: []frameCase{
				{"ipv4 udp", f(ipv4(v4, udp(53), v4opts{})), noMatch},
				{"ipv6 tcp", f(ipv6(v6, tcp(80))), noMatch},
				{"arp", f(arp()), noMatch},
			},
		},
		{
			name:  "empty rule claims all parsable",
			rules: []bpf.Rule{{}},
			frames: []frameCase{
				{"ipv4 udp", f(ipv4(v4, udp(53), v4opts{})), claimed},
				{"ipv6 icmp", f(ipv6(v6, icmp(58))), claimed},
				{"arp", f(arp()), claimed},
				{"lldp", f(raw(0x88cc)), claimed},
				{"truncated ipv4", f(ipv4(v4, udp(53), v4opts{}))[:30], malformed},
			},
		},
		{
			name:  "ethertype arp",
			rules: []bpf.Rule{{EtherType: bpf.EtherTypeARP}},
			frames: []frameCase{
				{"arp", f(arp()), claimed},
				{"arp in vlan", f(arp(), q(5)), claimed},
				{"ipv4", f(ipv4(v4, udp(53), v4opts{})), noMatch},
				{"ipv6", f(ipv6(v6, udp(53))), noMatch},
			},
		},
		{
			name:  "ethertype ipv4",
			rules: []bpf.Rule{{EtherType: bpf.EtherTypeIPv4}},
			frames: []frameCase{
				{"ipv4 udp", f(ipv4(v4, udp(53), v4opts{})), claimed},
				{"ipv4 in qinq", f(ipv4(v4, tcp(1), v4opts{}), ad(10), q(20)), claimed},
				{"ipv4 behind three tags", f(ipv4(v4, tcp(1), v4opts{}), ad(10), q(20), q(30)), noMatch},
				{"ipv6 udp", f(ipv6(v6, udp(53))), noMatch},
				{"arp", f(arp()), noMatch},
			},
		},
		{
			name:  "ethertype other",
			rules: []bpf.Rule{{EtherType: 0x88cc}},
			frames: []frameCase{
				{"lldp", f(raw(0x88cc)), claimed},
				{"ipv4", f(ipv4(v4, udp(53), v4opts{})), noMatch},
			},
		},
		{
			name:  "ip protocol udp",
			rules: []bpf.Rule{{IPProto: bpf.IPProtoUDP}},
			frames: []frameCase{
				{"ipv4 udp", f(ipv4(v4, udp(53), v4opts{})), claimed},
				{"ipv4 tcp", f(ipv4(v4, tcp(53), v4opts{})), noMatch},
				{"ipv6 udp", f(ipv6(v6, udp(53))), claimed},
				{"ipv6 udp after hop-by-hop and dstopts", f(ipv6(v6, udp(53), ext{typ: 0}, ext{typ: 60, words: 1})), claimed},
				{"ipv6 tcp", f(ipv6(v6, tcp(53))), noMatch},
				{"ipv4 udp non-first fragment", f(ipv4(v4, udp(53), v4opts{fragOff: 100})), claimed},
				{"arp", f(arp()), noMatch},
			},
		},
		{
			name:  "ip protocol icmpv6",
			rules: []bpf.Rule{{EtherType: bpf.EtherTypeIPv6, IPProto: 58}},
			frames: []frameCase{
				{"icmpv6", f(ipv6(v6, icmp(58))), claimed},
				{"icmpv6 after routing", f(ipv6(v6, icmp(58), ext{typ: 43, words: 2})), claimed},
				{"icmpv4", f(ipv4(v4, icmp(1), v4opts{})), noMatch},
			},
		},
		{
			name:  "ipv4 prefix /24",
			rules: []bpf.Rule{{Prefix: pfx("10.1.2.0/24")}},
			frames: []frameCase{
				{"first", f(ipv4("10.1.2.0", udp(1), v4opts{})), claimed},
				{"last", f(ipv4("10.1.2.255", udp(1), v4opts{})), claimed},
				{"below", f(ipv4("10.1.1.255", udp(1), v4opts{})), noMatch},
				{"above", f(ipv4("10.1.3.0", udp(1), v4opts{})), noMatch},
				{"ipv6 with same leading bytes", f(ipv6("a01:200::", udp(1))), noMatch},
				{"arp", f(arp()), noMatch},
			},
		},
		{
			name:  "ipv4 prefix /23 and /25 and /32",
			rules: []bpf.Rule{{Prefix: pfx("172.16.4.0/23")}, {Prefix: pfx("192.0.2.128/25")}, {Prefix: pfx("198.51.100.7/32")}},
			frames: []frameCase{
				{"/23 first", f(ipv4("172.16.4.0", tcp(1), v4opts{})), claimed},
				{"/23 last", f(ipv4("172.16.5.255", tcp(1), v4opts{})), claimed},
				{"/23 below", f(ipv4("172.16.3.255", tcp(1), v4opts{})), noMatch},
				{"/23 above", f(ipv4("172.16.6.0", tcp(1), v4opts{})), noMatch},
				{"/25 first", f(ipv4("192.0.2.128", tcp(1), v4opts{})), claimed},
				{"/25 last", f(ipv4("192.0.2.255", tcp(1), v4opts{})), claimed},
				{"/25 below", f(ipv4("192.0.2.127", tcp(1), v4opts{})), noMatch},
				{"/32", f(ipv4("198.51.100.7", tcp(1), v4opts{})), claimed},
				{"/32 neighbour", f(ipv4("198.51.100.6", tcp(1), v4opts{})), noMatch},
			},
		},
		{
			name:  "ipv4 /0 and ipv6 /0",
			rules: []bpf.Rule{{Prefix: pfx("0.0.0.0/0"), IPProto: bpf.IPProtoTCP}, {Prefix: pfx("::/0"), IPProto: bpf.IPProtoUDP}},
			frames: []frameCase{
				{"ipv4 tcp", f(ipv4("255.255.255.255", tcp(1), v4opts{})), claimed},
				{"ipv4 udp", f(ipv4("1.2.3.4", udp(1), v4opts{})), noMatch},
				{"ipv6 udp", f(ipv6("ff02::1", udp(1))), claimed},
				{"ipv6 tcp", f(ipv6("ff02::1", tcp(1))), noMatch},
				{"arp", f(arp()), noMatch},
			},
		},
		{
			name:  "ipv6 prefixes",
			rules: []bpf.Rule{{Prefix: pfx("fd00:1::/64")}, {Prefix: pfx("2001:db8:ff::/127")}, {Prefix: pfx("fd00:2:0:1::/61")}},
			frames: []frameCase{
				{"/64 first", f(ipv6("fd00:1::", udp(1))), claimed},
				{"/64 last", f(ipv6("fd00:1::ffff:ffff:ffff:ffff", udp(1))), claimed},
				{"/64 below", f(ipv6("fd00:0:0:ffff:ffff:ffff:ffff:ffff", udp(1))), noMatch},
				{"/64 above", f(ipv6("fd00:1:0:1::", udp(1))), noMatch},
				{"/127 first", f(ipv6("2001:db8:ff::", udp(1))), claimed},
				{"/127 second", f(ipv6("2001:db8:ff::1", udp(1))), claimed},
				{"/127 third", f(ipv6("2001:db8:ff::2", udp(1))), noMatch},
				{"/61 first", f(ipv6("fd00:2::", udp(1))), claimed},
				{"/61 last", f(ipv6("fd00:2:0:7:ffff:ffff:ffff:ffff", udp(1))), claimed},
				{"/61 above", f(ipv6("fd00:2:0:8::", udp(1))), noMatch},
				{"ipv4", f(ipv4("253.0.0.1", udp(1), v4opts{})), noMatch},
			},
		},
		{
			name:  "udp port range",
			rules: []bpf.Rule{{IPProto: bpf.IPProtoUDP, PortLo: 1000, PortHi: 2000}},
			frames: []frameCase{
				{"below", f(ipv4(v4, udp(999), v4opts{})), noMatch},
				{"lo", f(ipv4(v4, udp(1000), v4opts{})), claimed},
				{"mid ipv6", f(ipv6(v6, udp(1500))), claimed},
				{"hi", f(ipv4(v4, udp(2000), v4opts{})), claimed},
				{"above", f(ipv4(v4, udp(2001), v4opts{})), noMatch},
				{"tcp in range", f(ipv4(v4, tcp(1500), v4opts{})), noMatch},
				{"ipv4 options", f(ipv4(v4, udp(1500), v4opts{optWords: 10})), claimed},
				{"ipv4 first fragment", f(ipv4(v4, udp(1500), v4opts{fragOff: 0x2000})), claimed},
				{"ipv4 non-first fragment", f(ipv4(v4, udp(1500), v4opts{fragOff: 0x2000 | 185})), noMatch},
				{"ipv6 first fragment", f(ipv6(v6, udp(1500), ext{typ: 44, fragOff: 1})), claimed},
				{"ipv6 non-first fragment", f(ipv6(v6, udp(1500), ext{typ: 44, fragOff: 185 << 3})), noMatch},
				{"ipv6 four extension headers", f(ipv6(v6, udp(1500), ext{typ: 0}, ext{typ: 60, words: 3}, ext{typ: 43, words: 1}, ext{typ: 44})), claimed},
				{"ipv6 five extension headers", f(ipv6(v6, udp(1500), ext{typ: 0}, ext{typ: 60}, ext{typ: 43}, ext{typ: 44}, ext{typ: 60})), noMatch},
			},
		},
		{
			name:  "single port any protocol",
			rules: []bpf.Rule{{PortLo: 53, PortHi: 53}},
			frames: []frameCase{
				{"udp", f(ipv4(v4, udp(53), v4opts{})), claimed},
				{"tcp", f(ipv6(v6, tcp(53))), claimed},
				{"sctp", f(ipv4(v4, sctp(53), v4opts{})), claimed},
				{"sctp other port", f(ipv4(v4, sctp(54), v4opts{})), noMatch},
				{"udp port 52", f(ipv4(v4, udp(52), v4opts{})), noMatch},
				{"icmp", f(ipv4(v4, icmp(1), v4opts{})), noMatch},
				{"arp", f(arp()), noMatch},
			},
		},
		{
			name:  "full port range",
			rules: []bpf.Rule{{IPProto: bpf.IPProtoTCP, PortLo: 0, PortHi: 65535}},
			frames: []frameCase{
				{"port 0", f(ipv4(v4, tcp(0), v4opts{})), claimed},
				{"port 65535", f(ipv4(v4, tcp(65535), v4opts{})), claimed},
				{"udp", f(ipv4(v4, udp(7), v4opts{})), noMatch},
			},
		},
		{
			name:  "vlan",
			rules: []bpf.Rule{{VLAN: 100}},
			frames: []frameCase{
				{"untagged", f(ipv4(v4, udp(1), v4opts{})), noMatch},
				{"802.1q 100", f(ipv4(v4, udp(1), v4opts{}), q(100)), claimed},
				{"802.1q 101", f(ipv4(v4, udp(1), v4opts{}), q(101)), noMatch},
				{"802.1ad 100", f(ipv6(v6, udp(1)), ad(100)), claimed},
				{"qinq inner 100", f(ipv4(v4, udp(1), v4opts{}), ad(200), q(100)), claimed},
				{"qinq outer 100", f(ipv4(v4, udp(1), v4opts{}), ad(100), q(200)), noMatch},
				{"arp in vlan 100", f(arp(), q(100)), claimed},
			},
		},
		{
			name:  "vlan 4095 and id bits only",
			rules: []bpf.Rule{{VLAN: 4095}},
			frames: []frameCase{
				{"4095 with pcp", f(raw(0x88b5), tag{0x8100, 0xefff}), claimed},
				{"4094", f(raw(0x88b5), q(4094)), noMatch},
			},
		},
		{
			name: "all fields",
			rules: []bpf.Rule{{
				EtherType: bpf.EtherTypeIPv6, IPProto: bpf.IPProtoTCP, Prefix: pfx("2001:db8::/32"),
				PortLo: 443, PortHi: 443, VLAN: 7,
			}},
			frames: []frameCase{
				{"match", f(ipv6("2001:db8:1::1", tcp(443), ext{typ: 0}, ext{typ: 60}), ad(9), q(7)), claimed},
				{"wrong vlan", f(ipv6("2001:db8:1::1", tcp(443)), q(8)), noMatch},
				{"wrong prefix", f(ipv6("2001:db9::1", tcp(443)), q(7)), noMatch},
				{"wrong proto", f(ipv6("2001:db8:1::1", udp(443)), q(7)), noMatch},
				{"wrong port", f(ipv6("2001:db8:1::1", tcp(444)), q(7)), noMatch},
				{"untagged", f(ipv6("2001:db8:1::1", tcp(443))), noMatch},
			},
		},
		{
			name:  "rules are ored",
			rules: []bpf.Rule{{EtherType: bpf.EtherTypeARP}, {IPProto: bpf.IPProtoUDP, PortLo: 53, PortHi: 53}, {Prefix: pfx("fd00::/8")}},
			frames: []frameCase{
				{"arp", f(arp()), claimed},
				{"dns", f(ipv4(v4, udp(53), v4opts{})), claimed},
				{"ula", f(ipv6("fd12::1", tcp(22))), claimed},
				{"other", f(ipv6("2001:db8::1", tcp(22))), noMatch},
			},
		},
		{
			name:  "malformed headers",
			rules: []bpf.Rule{{}},
			frames: []frameCase{
				{"ipv4 ihl 4", f(ipv4(v4, udp(1), v4opts{ihl: 4})), malformed},
				{"ipv4 ihl 0", f(ipv4(v4, udp(1), v4opts{ihl: 0xf0})), malformed}, // 0xf0&0xf
				{"ipv4 version 6", f(ipv4(v4, udp(1), v4opts{version: 6})), malformed},
				{"ipv6 version 4", f(l3{0x86dd, append([]byte{0x40}, ipv6(v6, udp(1)).b[1:]...), 0}), malformed},
				{"ipv4 ihl beyond frame", f(ipv4(v4, l4{253, nil, 0}, v4opts{ihl: 15})), malformed},
				{"ipv6 extension beyond frame", f(ipv6(v6, l4{59, nil, 0}, ext{typ: 60, words: 255}))[:14+40+16], malformed},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetRules(tt.rules); err != nil {
				t.Fatalf("SetRules: %v", err)
			}
			for _, fc := range tt.frames {
				t.Run(fc.name, func(t *testing.T) {
					expect(t, s, fc.frame, fc.want)
				})
			}
		})
	}
}

// TestTruncated feeds every prefix of valid frames: a prefix that cuts into
// a header the program reads is passed and counted malformed, a longer one
// is claimed. The kernel's test run refuses frames shorter than an
// Ethernet header, so prefixes start at 14 bytes.
func TestTruncated(t *testing.T) {
	s := load(t, bpf.Options{Rules: []bpf.Rule{{}}})
	frames := []struct {
		name string
		p    l3
		tags []tag
	}{
		{"ipv4 udp", ipv4("10.0.0.1", udp(53), v4opts{}), nil},
		{"ipv4 tcp options", ipv4("10.0.0.1", tcp(80), v4opts{optWords: 3}), nil},
		{"ipv4 sctp in vlan", ipv4("10.0.0.1", sctp(80), v4opts{}), []tag{q(3)}},
		{"ipv4 udp in qinq", ipv4("10.0.0.1", udp(53), v4opts{}), []tag{ad(1), q(2)}},
		{"ipv4 non-first fragment", ipv4("10.0.0.1", udp(53), v4opts{fragOff: 7}), nil},
		{"ipv6 tcp", ipv6("fd00::1", tcp(443)), nil},
		{"ipv6 udp extensions", ipv6("fd00::1", udp(443), ext{typ: 0, words: 1}, ext{typ: 43}, ext{typ: 44}, ext{typ: 60, words: 2}), []tag{ad(4000), q(4001)}},
		{"ipv6 non-first fragment", ipv6("fd00::1", udp(443), ext{typ: 44, fragOff: 8}), nil},
		{"ipv6 icmpv6", ipv6("fd00::1", icmp(58)), nil},
		{"arp in vlan", arp(), []tag{q(9)}},
	}
	for _, fr := range frames {
		t.Run(fr.name, func(t *testing.T) {
			frame, hdrLen := eth(fr.p, fr.tags...)
			if hdrLen > len(frame) {
				t.Fatalf("bad test frame: headers %d > frame %d", hdrLen, len(frame))
			}
			for n := 14; n <= len(frame); n++ {
				want := claimed
				if n < hdrLen {
					want = malformed
				}
				t.Run(fmt.Sprint(n), func(t *testing.T) {
					expect(t, s, frame[:n], want)
				})
			}
		})
	}
}

func TestClaimAll(t *testing.T) {
	s := load(t, bpf.Options{ClaimAll: true, Rules: []bpf.Rule{{EtherType: bpf.EtherTypeARP}}})
	for _, fc := range []frameCase{
		{"ipv4", f(ipv4("10.0.0.1", udp(53), v4opts{})), claimed},
		{"arp", f(arp()), claimed},
		{"ipv6", f(ipv6("fd00::1", tcp(1))), claimed},
		{"truncated ipv4", f(ipv4("10.0.0.1", udp(53), v4opts{}))[:20], claimed},
		{"bare ethernet", f(raw(0x0800))[:14], claimed},
	} {
		t.Run(fc.name, func(t *testing.T) { expect(t, s, fc.frame, fc.want) })
	}
}

// TestRegister puts an (unbound) AF_XDP socket into slot 0: the program's
// redirect then succeeds (the kernel's test run does not deliver it).
func TestRegister(t *testing.T) {
	s := load(t, bpf.Options{Rules: []bpf.Rule{{IPProto: bpf.IPProtoUDP}}})
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	defer unix.Close(fd)
	udpFrame := f(ipv4("10.0.0.1", udp(53), v4opts{}))
	tcpFrame := f(ipv4("10.0.0.1", tcp(53), v4opts{}))

	if err := s.Register(1, fd); err != nil {
		t.Fatalf("Register(1): %v", err)
	}
	expect(t, s, udpFrame, claimed) // the test run is on queue 0

	if err := s.Register(0, fd); err != nil {
		t.Fatalf("Register(0): %v", err)
	}
	ret, got := run(t, s, udpFrame)
	if want := (bpf.Counters{Seen: 1, Redirected: 1}); ret != xdpRedirect || got != want {
		t.Errorf("registered: action %d counters %+v, want %d %+v", ret, got, xdpRedirect, want)
	}
	expect(t, s, tcpFrame, noMatch)

	if err := s.Unregister(0); err != nil {
		t.Fatalf("Unregister(0): %v", err)
	}
	if err := s.Unregister(0); err != nil {
		t.Fatalf("second Unregister(0): %v", err)
	}
	expect(t, s, udpFrame, claimed)

	// Not an AF_XDP socket.
	ufd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ufd)
	if err := s.Register(2, ufd); err == nil {
		t.Error("Register of a UDP socket succeeded")
	}
	for _, q := range []int{-1, bpf.MaxQueues} {
		if err := s.Register(q, fd); err == nil {
			t.Errorf("Register(%d) succeeded", q)
		}
		if err := s.Unregister(q); err == nil {
			t.Errorf("Unregister(%d) succeeded", q)
		}
	}
	if c := counters(t, s); c.Aborted != 0 {
		t.Errorf("aborted = %d", c.Aborted)
	}
}

// TestSetRules switches rule sets back and forth (both banks) and checks
// that the maximum number of rules is honoured.
func TestSetRules(t *testing.T) {
	s := load(t, bpf.DefaultOptions())
	frame := func(port uint16) []byte { return f(ipv4("10.0.0.1", udp(port), v4opts{})) }
	for round := range 3 {
		var rules []bpf.Rule
		for i := range bpf.MaxRules {
			p := uint16(1000*round + i + 1)
			rules = append(rules, bpf.Rule{IPProto: bpf.IPProtoUDP, PortLo: p, PortHi: p})
		}
		if err := s.SetRules(rules); err != nil {
			t.Fatalf("round %d: SetRules: %v", round, err)
		}
		expect(t, s, frame(uint16(1000*round+1)), claimed)
		expect(t, s, frame(uint16(1000*round+bpf.MaxRules)), claimed) // last rule
		expect(t, s, frame(uint16(1000*round+bpf.MaxRules+1)), noMatch)
		if round > 0 {
			expect(t, s, frame(uint16(1000*(round-1)+1)), noMatch) // old set gone
		}
		if err := s.SetRules(rules[:1]); err != nil {
			t.Fatal(err)
		}
		expect(t, s, frame(uint16(1000*round+1)), claimed)
		expect(t, s, frame(uint16(1000*round+2)), noMatch)
	}
	if err := s.SetRules(make([]bpf.Rule, bpf.MaxRules+1)); !errors.Is(err, bpf.ErrInvalidRule) {
		t.Errorf("SetRules(%d rules) = %v, want ErrInvalidRule", bpf.MaxRules+1, err)
	}
	// A failed SetRules leaves the previous set.
	expect(t, s, frame(2001), claimed)
}

func TestClose(t *testing.T) {
	requirePrivileged(t)
	s, err := bpf.Load(bpf.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Counters(); !errors.Is(err, bpf.ErrClosed) {
		t.Errorf("Counters after Close: %v", err)
	}
	if err := s.SetRules(nil); !errors.Is(err, bpf.ErrClosed) {
		t.Errorf("SetRules after Close: %v", err)
	}
	if err := s.Register(0, 0); !errors.Is(err, bpf.ErrClosed) {
		t.Errorf("Register after Close: %v", err)
	}
	if _, err := s.Attach(1); !errors.Is(err, bpf.ErrClosed) {
		t.Errorf("Attach after Close: %v", err)
	}
}

// TestNeverAborts runs the program on many random frames (random bytes
// behind valid and invalid headers): every frame is passed and counted once.
func TestNeverAborts(t *testing.T) {
	s := load(t, bpf.Options{Rules: []bpf.Rule{{PortLo: 1, PortHi: 100}, {Prefix: pfx("fd00::/8")}, {VLAN: 5}}})
	seeds := [][]byte{
		f(ipv4("10.0.0.1", udp(53), v4opts{optWords: 2})),
		f(ipv6("fd00::1", tcp(80), ext{typ: 0}, ext{typ: 44}), q(5)),
		f(arp(), ad(1), q(2)),
	}
	var state uint64 = 0x9e3779b97f4a7c15
	rnd := func() uint64 { // xorshift: deterministic
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		return state
	}
	before := counters(t, s)
	const n = 3000
	for i := range n {
		fr := append([]byte{}, seeds[i%len(seeds)]...)
		for range 1 + rnd()%4 {
			fr[12+rnd()%uint64(len(fr)-12)] = byte(rnd())
		}
		fr = fr[:14+rnd()%uint64(len(fr)-13)]
		ret, err := s.Program().Run(&ebpf.RunOptions{Data: fr})
		if err != nil {
			t.Fatal(err)
		}
		if ret != xdpPass {
			t.Fatalf("action %d on % x", ret, fr)
		}
	}
	d := counters(t, s).Sub(before)
	if d.Seen != n || d.Passed() != n || d.Aborted != 0 || d.Redirected != 0 {
		t.Errorf("counters %+v after %d frames", d, n)
	}
}
