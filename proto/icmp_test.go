package proto_test

import (
	"bytes"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestParseICMPv4Golden(t *testing.T) {
	tests := []struct {
		name       string
		ip         []byte
		typ, code  uint8
		checksum   uint16
		rest       uint32
		id, seq    uint16
		mtu        uint16
		isError    bool
		payloadLen int
	}{
		// ICMP echo request, id 16962, seq 7, length 25
		{"EthIPv4ICMPEcho", l3GoldenEthIPv4ICMPEcho[14:], proto.ICMPv4EchoRequest, 0, 0x3280, 0x42420007, 0x4242, 7, 7, false, 17},
		// ICMP 198.51.100.7 unreachable - need to frag (mtu 1400), length 36
		{"IPv4ICMPFragNeeded", l3GoldenIPv4ICMPFragNeeded, proto.ICMPv4DestUnreachable, proto.ICMPv4FragmentationNeeded, 0xe999, 1400, 0, 1400, 1400, true, 28},
		// ICMP time exceeded in-transit, length 36
		{"IPv4ICMPTimeExceeded", l3GoldenIPv4ICMPTimeExceeded, proto.ICMPv4TimeExceeded, proto.ICMPv4TTLExceeded, 0xf4ff, 0, 0, 0, 0, true, 28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, err := proto.ParseIPv4(tt.ip)
			if err != nil {
				t.Fatal(err)
			}
			m, err := proto.ParseICMPv4(ip.Payload())
			if err != nil {
				t.Fatal(err)
			}
			check := func(field string, got, want any) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %v, want %v", field, got, want)
				}
			}
			check("Type", m.Type(), tt.typ)
			check("Code", m.Code(), tt.code)
			check("Checksum", m.Checksum(), tt.checksum)
			check("CalculateChecksum", m.CalculateChecksum(), tt.checksum)
			check("VerifyChecksum", m.VerifyChecksum(), true)
			check("Rest", m.Rest(), tt.rest)
			check("ID", m.ID(), tt.id)
			check("Seq", m.Seq(), tt.seq)
			check("MTU", m.MTU(), tt.mtu)
			check("IsError", m.IsError(), tt.isError)
			check("Payload", len(m.Payload()), tt.payloadLen)
			if tt.isError {
				if !bytes.Equal(m.Quoted(), m.Payload()) {
					t.Error("Quoted is not the body")
				}
			} else if m.Quoted() != nil {
				t.Error("Quoted of an echo is not nil")
			}
			var re []byte
			if tt.isError {
				re = proto.AppendICMPv4Error(nil, m.Type(), m.Code(), m.Rest(), m.Quoted())
			} else {
				re = proto.AppendICMPv4Echo(nil, m.Type(), m.ID(), m.Seq(), m.Payload())
			}
			if !bytes.Equal(re, m) {
				t.Errorf("re-encoded %x\nwant         %x", re, []byte(m))
			}
		})
	}
	// The echo's data and the time-exceeded message's quoted datagram.
	ip, _ := proto.ParseIPv4(l3GoldenEthIPv4ICMPEcho[14:])
	m, _ := proto.ParseICMPv4(ip.Payload())
	if string(m.Payload()) != "tygress-ping-data" {
		t.Errorf("echo data %q", m.Payload())
	}
	ip, _ = proto.ParseIPv4(l3GoldenIPv4ICMPTimeExceeded)
	m, _ = proto.ParseICMPv4(ip.Payload())
	q, err := proto.ParseIPv4Quoted(m.Quoted())
	if err != nil {
		t.Fatal(err)
	}
	// IP (tos 0x0, ttl 1, id 10, offset 0, flags [none], proto ICMP (1), length 28)
	// 192.0.2.1 > 198.51.100.7: ICMP echo request, id 1, seq 1, length 8
	inner, _ := proto.ParseICMPv4(q.Payload())
	if q.TTL() != 1 || q.ID() != 10 || q.Protocol() != proto.IPProtoICMP || q.TotalLength() != 28 ||
		inner.Type() != proto.ICMPv4EchoRequest || inner.ID() != 1 || inner.Seq() != 1 || !inner.VerifyChecksum() {
		t.Errorf("quoted %+v, inner %x", q.Fields(), []byte(inner))
	}
}

func TestICMPv4Setters(t *testing.T) {
	ip, _ := proto.ParseIPv4(append([]byte(nil), l3GoldenEthIPv4ICMPEcho[14:]...))
	m, _ := proto.ParseICMPv4(ip.Payload())
	m.EchoToReply()
	if m.Type() != proto.ICMPv4EchoReply || !m.VerifyChecksum() || m.Checksum() != m.CalculateChecksum() {
		t.Errorf("EchoToReply: type %d checksum %#04x want %#04x", m.Type(), m.Checksum(), m.CalculateChecksum())
	}
	if want := proto.AppendICMPv4Echo(nil, proto.ICMPv4EchoReply, 0x4242, 7, []byte("tygress-ping-data")); !bytes.Equal(m, want) {
		t.Errorf("reply %x, want %x", []byte(m), want)
	}
	m.SetType(proto.ICMPv4DestUnreachable)
	m.SetCode(proto.ICMPv4FragmentationNeeded)
	m.SetRest(0)
	m.SetMTU(9000)
	m.UpdateChecksum()
	if m.Type() != 3 || m.Code() != 4 || m.MTU() != 9000 || m.Rest() != 9000 || !m.VerifyChecksum() {
		t.Errorf("%x", []byte(m))
	}
	m.SetID(1)
	m.SetSeq(2)
	m.SetChecksum(3)
	if m.ID() != 1 || m.Seq() != 2 || m.Checksum() != 3 || m.VerifyChecksum() {
		t.Errorf("%x", []byte(m))
	}
	m.SetRest(0x14000000)
	if m.Pointer() != 20 {
		t.Errorf("Pointer = %d", m.Pointer())
	}
}

func FuzzICMPv4(f *testing.F) {
	f.Add(l3GoldenEthIPv4ICMPEcho[34:])
	f.Add(l3GoldenIPv4ICMPFragNeeded[20:])
	f.Add(l3GoldenIPv4ICMPTimeExceeded[20:])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := proto.ParseICMPv4(b)
		if err != nil {
			l3CheckErr(t, err)
			return
		}
		_, _, _ = m.MTU(), m.Pointer(), m.Quoted()
		// parse → encode → parse: the encoders reproduce any message but
		// its checksum.
		var re []byte
		if m.Type() == proto.ICMPv4EchoRequest || m.Type() == proto.ICMPv4EchoReply {
			if m.Code() != 0 {
				return
			}
			re = proto.AppendICMPv4Echo(nil, m.Type(), m.ID(), m.Seq(), m.Payload())
		} else {
			re = proto.AppendICMPv4Error(nil, m.Type(), m.Code(), m.Rest(), m.Payload())
		}
		m2, err := proto.ParseICMPv4(re)
		if err != nil || !m2.VerifyChecksum() {
			t.Fatalf("re-encoded message: %v", err)
		}
		want := append([]byte(nil), m...)
		want[2], want[3] = re[2], re[3]
		if !bytes.Equal(re, want) {
			t.Fatalf("re-encoded %x\nparsed       %x", re, want)
		}
		if m.Checksum() == m.CalculateChecksum() && !m.VerifyChecksum() {
			t.Fatal("VerifyChecksum disagrees with CalculateChecksum")
		}
	})
}
