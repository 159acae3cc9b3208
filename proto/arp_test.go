package proto_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/tygress/tygress/proto"
)

func TestParseARPGolden(t *testing.T) {
	tests := []struct {
		name               string
		frame              []byte
		op                 uint16
		senderHW, targetHW [6]byte
		senderIP, targetIP [4]byte
	}{
		// who-has 198.51.100.7 tell 192.0.2.1
		{"EthARPRequest", l3GoldenEthARPRequest, proto.ARPRequest, l3M1, [6]byte{}, l3A4, l3B4},
		// 198.51.100.7 is-at 02:00:00:00:00:02, 18 bytes of padding
		{"EthARPReplyPadded", l3GoldenEthARPReplyPadded, proto.ARPReply, l3M2, l3M1, l3B4, l3A4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := proto.ParseARP(tt.frame[proto.EthernetLen:])
			if err != nil {
				t.Fatal(err)
			}
			if len(a) != proto.ARPLen {
				t.Errorf("len = %d, want %d (padding excluded)", len(a), proto.ARPLen)
			}
			if a.Op() != tt.op {
				t.Errorf("Op = %d, want %d", a.Op(), tt.op)
			}
			if a.SenderHW() != tt.senderHW || a.TargetHW() != tt.targetHW {
				t.Errorf("HW = %x, %x; want %x, %x", a.SenderHW(), a.TargetHW(), tt.senderHW, tt.targetHW)
			}
			if a.SenderIPArray() != tt.senderIP || a.TargetIPArray() != tt.targetIP {
				t.Errorf("IP = %v, %v", a.SenderIPArray(), a.TargetIPArray())
			}
			if a.SenderIP() != netip.AddrFrom4(tt.senderIP) || a.TargetIP() != netip.AddrFrom4(tt.targetIP) {
				t.Errorf("IP addrs = %v, %v", a.SenderIP(), a.TargetIP())
			}
			got := proto.AppendARP(nil, a.Op(), a.SenderHW(), a.SenderIPArray(), a.TargetHW(), a.TargetIPArray())
			if !bytes.Equal(got, a) {
				t.Errorf("AppendARP = %x, want %x", got, []byte(a))
			}
		})
	}
}

func TestARPSetters(t *testing.T) {
	// Turn the request into the reply, as a responder does in place.
	b := append([]byte(nil), l3GoldenEthARPRequest[proto.EthernetLen:]...)
	a, _ := proto.ParseARP(b)
	a.SetOp(proto.ARPReply)
	a.SetTargetHW(a.SenderHW())
	a.SetTargetIP(a.SenderIPArray())
	a.SetSenderHW(l3M2)
	a.SetSenderIP(l3B4)
	want := l3GoldenEthARPReplyPadded[proto.EthernetLen : proto.EthernetLen+proto.ARPLen]
	if !bytes.Equal(a, want) {
		t.Errorf("reply = %x, want %x", []byte(a), want)
	}
}

func FuzzARP(f *testing.F) {
	f.Add(l3GoldenEthARPRequest[proto.EthernetLen:])
	f.Add(l3GoldenEthARPReplyPadded[proto.EthernetLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := proto.ParseARP(b)
		if err != nil {
			l3CheckErr(t, err)
			return
		}
		_ = a.SenderIP()
		_ = a.TargetIP()
		got := proto.AppendARP(nil, a.Op(), a.SenderHW(), a.SenderIPArray(), a.TargetHW(), a.TargetIPArray())
		if !bytes.Equal(got, a) {
			t.Fatalf("AppendARP = %x, parsed %x", got, []byte(a))
		}
		a2, err := proto.ParseARP(got)
		if err != nil || !bytes.Equal(a2, a) {
			t.Fatalf("reparse: %v", err)
		}
	})
}
