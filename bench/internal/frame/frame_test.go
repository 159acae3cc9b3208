package frame_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/tygress/tygress/bench/internal/frame"
)

func opts(n int) frame.UDP4Options {
	return frame.UDP4Options{
		DstMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 2}, SrcMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 1},
		Src: netip.MustParseAddr("10.77.0.1"), Dst: netip.MustParseAddr("10.77.0.2"),
		SrcPort: 1234, DstPort: 9000, Len: n,
	}
}

// TestUDP4MatchesGopacket serializes the same headers with gopacket (which
// computes checksums itself) and expects identical bytes.
func TestUDP4MatchesGopacket(t *testing.T) {
	for _, n := range []int{frame.MinLen, 60, 61, 1514} {
		o := opts(n)
		got, err := frame.UDP4(o)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("len %d, want %d", len(got), n)
		}
		if err := frame.Verify(got); err != nil {
			t.Fatalf("len %d: %v", n, err)
		}
		pkt := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
		if e := pkt.ErrorLayer(); e != nil {
			t.Fatalf("len %d: gopacket: %v", n, e.Error())
		}
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if ip.SrcIP.String() != "10.77.0.1" || ip.DstIP.String() != "10.77.0.2" || udp.DstPort != 9000 {
			t.Fatalf("len %d: decoded %v %v %v", n, ip.SrcIP, ip.DstIP, udp.DstPort)
		}
		eth := &layers.Ethernet{SrcMAC: o.SrcMAC, DstMAC: o.DstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip2 := &layers.IPv4{Version: 4, IHL: 5, Id: ip.Id, Flags: ip.Flags, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: ip.SrcIP, DstIP: ip.DstIP}
		udp2 := &layers.UDP{SrcPort: 1234, DstPort: 9000}
		udp2.SetNetworkLayerForChecksum(ip2)
		buf := gopacket.NewSerializeBuffer()
		err = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip2, udp2, gopacket.Payload(udp.Payload))
		if err != nil {
			t.Fatal(err)
		}
		want := buf.Bytes()
		if len(want) > n {
			want = want[:n] // gopacket pads short frames to 60 bytes
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("len %d: differs from gopacket:\n got %x\nwant %x", n, got, want)
		}
	}
}

func TestUDP4BadOptions(t *testing.T) {
	for name, o := range map[string]frame.UDP4Options{
		"short": func() frame.UDP4Options { o := opts(41); return o }(),
		"v6":    func() frame.UDP4Options { o := opts(60); o.Dst = netip.MustParseAddr("::1"); return o }(),
		"mac":   func() frame.UDP4Options { o := opts(60); o.DstMAC = nil; return o }(),
	} {
		if _, err := frame.UDP4(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestVerifyCatchesCorruption(t *testing.T) {
	b, _ := frame.UDP4(opts(60))
	for _, off := range []int{14 + 8, 14 + 20 + 9, 14 + 20 + 8 + 3} {
		c := bytes.Clone(b)
		c[off] ^= 0x40
		if frame.Verify(c) == nil {
			t.Errorf("flip at %d not detected", off)
		}
	}
}

func TestWireBits(t *testing.T) {
	// 64-byte frames at 10 Gb/s: the classic 14.88 Mpps.
	if pps := 10e9 / frame.WireBits(60); pps < 14.88e6 || pps > 14.89e6 {
		t.Fatalf("64-byte line rate %.0f pps", pps)
	}
}
