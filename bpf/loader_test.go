package bpf_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/bpf"
)

// These tests need no privileges: rules are checked before anything is
// loaded.

func TestInvalidRules(t *testing.T) {
	tests := []struct {
		name string
		rule bpf.Rule
	}{
		{"vlan out of range", bpf.Rule{VLAN: 4096}},
		{"empty port range", bpf.Rule{PortLo: 10, PortHi: 9}},
		{"port lo without hi", bpf.Rule{PortLo: 10}},
		{"ports with icmp", bpf.Rule{IPProto: 1, PortLo: 1, PortHi: 2}},
		{"ports with arp", bpf.Rule{EtherType: bpf.EtherTypeARP, PortLo: 1, PortHi: 2}},
		{"ip protocol with arp", bpf.Rule{EtherType: bpf.EtherTypeARP, IPProto: bpf.IPProtoUDP}},
		{"ipv4 prefix with ipv6 ethertype", bpf.Rule{EtherType: bpf.EtherTypeIPv6, Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		{"ipv6 prefix with arp", bpf.Rule{EtherType: bpf.EtherTypeARP, Prefix: netip.MustParsePrefix("fd00::/8")}},
		{"invalid prefix", bpf.Rule{Prefix: netip.PrefixFrom(netip.MustParseAddr("10.0.0.0"), 33)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bpf.Load(bpf.Options{Rules: []bpf.Rule{tt.rule}})
			if !errors.Is(err, bpf.ErrInvalidRule) {
				t.Errorf("Load(%v) = %v, want ErrInvalidRule", tt.rule, err)
			}
		})
	}
	_, err := bpf.Load(bpf.Options{Rules: make([]bpf.Rule, bpf.MaxRules+1)})
	if !errors.Is(err, bpf.ErrInvalidRule) {
		t.Errorf("Load with %d rules = %v, want ErrInvalidRule", bpf.MaxRules+1, err)
	}
	if _, err := bpf.Load(bpf.Options{Mode: bpf.ModeGeneric + 1}); err == nil {
		t.Error("Load with an invalid mode succeeded")
	}
}

func TestRuleString(t *testing.T) {
	tests := []struct {
		rule bpf.Rule
		want string
	}{
		{bpf.Rule{}, "any"},
		{bpf.Rule{EtherType: bpf.EtherTypeARP}, "arp"},
		{bpf.Rule{EtherType: 0x88cc, VLAN: 3}, "ethertype 0x88cc vlan 3"},
		{bpf.Rule{IPProto: bpf.IPProtoUDP, Prefix: netip.MustParsePrefix("10.0.0.0/8"), PortLo: 53, PortHi: 53}, "udp dst 10.0.0.0/8 port 53"},
		{bpf.Rule{EtherType: bpf.EtherTypeIPv6, IPProto: 58}, "ipv6 proto 58"},
		{bpf.Rule{IPProto: bpf.IPProtoTCP, PortLo: 8000, PortHi: 8099}, "tcp ports 8000-8099"},
	}
	for _, tt := range tests {
		if got := tt.rule.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.rule, got, tt.want)
		}
	}
}

func TestMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bpf.Mode
	}{
		{"auto", bpf.ModeAuto}, {"driver", bpf.ModeDriver}, {"native", bpf.ModeDriver},
		{"generic", bpf.ModeGeneric}, {"SKB", bpf.ModeGeneric},
	} {
		var m bpf.Mode
		if err := m.UnmarshalText([]byte(tt.in)); err != nil || m != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", tt.in, m, err, tt.want)
		}
	}
	var m bpf.Mode
	if err := m.UnmarshalText([]byte("offload")); err == nil {
		t.Error(`UnmarshalText("offload") succeeded`)
	}
	for m, want := range map[bpf.Mode]string{bpf.ModeAuto: "auto", bpf.ModeDriver: "driver", bpf.ModeGeneric: "generic", 7: "Mode(7)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
	if b, err := bpf.ModeGeneric.MarshalText(); err != nil || string(b) != "generic" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	if d := bpf.DefaultOptions(); d.Mode != bpf.ModeAuto || d.ClaimAll || len(d.Rules) != 0 {
		t.Errorf("DefaultOptions() = %+v", d)
	}
}

func TestCountersArithmetic(t *testing.T) {
	a := bpf.Counters{Seen: 10, Redirected: 4, PassedNoMatch: 3, PassedNoSocket: 2, PassedMalformed: 1}
	b := bpf.Counters{Seen: 4, Redirected: 1, PassedNoMatch: 1, PassedNoSocket: 1, PassedMalformed: 1}
	if got, want := a.Sub(b), (bpf.Counters{Seen: 6, Redirected: 3, PassedNoMatch: 2, PassedNoSocket: 1}); got != want {
		t.Errorf("Sub = %+v, want %+v", got, want)
	}
	if a.Passed() != 6 {
		t.Errorf("Passed = %d, want 6", a.Passed())
	}
}
