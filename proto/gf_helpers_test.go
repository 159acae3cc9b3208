package proto_test

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tygress/tygress/proto"
)

// Helpers for the golden-frame tests of udp, tcp, encap, quic, flow and
// decode. Names start with gf to keep clear of other test files.

// gfHex decodes hex with whitespace, for the golden frames.
func gfHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// gfFrame returns a copy of the named golden frame.
func gfFrame(tb testing.TB, name string) []byte {
	tb.Helper()
	for _, g := range gfAll {
		if g.name == name {
			return append([]byte(nil), g.frame...)
		}
	}
	tb.Fatalf("no golden frame %q", name)
	return nil
}

// gfIsSentinel reports whether err wraps one of proto's sentinel errors.
func gfIsSentinel(err error) bool {
	for _, s := range []error{
		proto.ErrTooShort, proto.ErrBadVersion, proto.ErrBadHeaderLength, proto.ErrLengthMismatch,
		proto.ErrBadChecksum, proto.ErrBadOption, proto.ErrUnsupported, proto.ErrBadValue, proto.ErrTooManyHeaders,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func gfV4(s string) [4]byte  { return netip.MustParseAddr(s).As4() }
func gfV6(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// gfFlow builds a FlowKey from addresses in text form (both IPv4 or both
// IPv6).
func gfFlow(src string, sp uint16, dst string, dp uint16, p uint8) proto.FlowKey {
	var k proto.FlowKey
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	if s.Is4() {
		k.SetIPv4(s.As4(), d.As4())
	} else {
		k.SetIPv6(s.As16(), d.As16())
	}
	k.SrcPort, k.DstPort, k.Proto = sp, dp, p
	return k
}

// gfConnID is ConnIDFromBytes of hex, for test tables.
func gfConnID(h string) proto.ConnID {
	c, err := proto.ConnIDFromBytes(gfHex(h))
	if err != nil {
		panic(err)
	}
	return c
}
