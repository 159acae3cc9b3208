#!/usr/bin/python3
"""Generates proto/golden_data_test.go: golden frames built with scapy and
decoded with tshark (Debian packages python3-scapy, python3-cryptography,
tshark). Run from the repository root:

    /usr/bin/python3 proto/testdata/golden/gen.py

QUIC Initial packets are protected for real (quicprot.py reproduces the RFC
9001 A.2 and RFC 9369 A.2 vectors) so that tshark decrypts them.
"""
import os, struct, subprocess, sys, tempfile, textwrap
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scapy.all import *  # noqa: F401,F403
from scapy.layers.l2 import Dot1AD
from quicprot import initial, RFC9001_FRAMES, varint

M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
def E(**kw): return Ether(src=M1, dst=M2, **kw)

# QUIC payloads, built by hand per RFC 9000 / RFC 9369 (scapy has no QUIC).
dcid = bytes.fromhex("8394c8f03e515708")
pt = RFC9001_FRAMES + bytes(1162 - len(RFC9001_FRAMES))
Q = {}
Q["v1_initial"] = initial(1, dcid, b"", b"", 2, 4, pt)[0]  # RFC 9001 A.2
Q["v2_initial"] = initial(0x6b3343cf, dcid, b"", b"", 2, 4, pt)[0]  # RFC 9369 A.2
scid = bytes.fromhex("f067a5502a4262b5")
sinit = initial(1, b"", scid, b"", 1, 2, b"\x02\x00\x00\x00\x00" + bytes(40), server=True, key_dcid=dcid)[0]
hs_payload = bytes(range(40))
hs = bytes([0xe0 | 1]) + struct.pack(">I", 1) + b"\x00" + b"\x08" + scid + varint(2 + len(hs_payload), 2) + b"\x00\x00" + hs_payload
Q["server_coalesced"] = sinit + hs
cid2 = bytes.fromhex("0011223344556677")
Q["initial_token"] = initial(1, cid2, b"\xaa\xbb\xcc\xdd", b"tygress-token", 0, 1, b"\x01" + bytes(60))[0]
zr_payload = bytes(range(32))
Q["0rtt"] = bytes([0xd0 | 3]) + struct.pack(">I", 1) + b"\x08" + cid2 + b"\x04" + b"\xaa\xbb\xcc\xdd" + varint(4 + len(zr_payload)) + b"\x00\x00\x00\x05" + zr_payload
Q["retry"] = bytes.fromhex("ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba")  # RFC 9001 A.4
Q["vn"] = bytes([0x80 | 0x2a]) + bytes(4) + b"\x04" + b"\xaa\xbb\xcc\xdd" + b"\x08" + dcid + struct.pack(">III", 1, 0x6b3343cf, 0x1a2a3a4a)
Q["short"] = bytes([0x40 | 0x20 | 0x0a]) + scid + b"\x5a" + bytes(range(100, 140))
Q["unknown_version"] = bytes([0xc5]) + struct.pack(">I", 0xff00001d) + bytes([21]) + bytes(range(21)) + b"\x00" + b"opaque"
GUE0 = bytes([0x01, 4, 0x80, 0x00]) + bytes.fromhex("deadbeef")

# name, Go identifier, scapy expression, extra note
P = [
 ("ipv4_tcp_syn", "IPv4TCPSyn", 'E()/IP(src="192.0.2.1", dst="198.51.100.2", id=0x1234, flags="DF", ttl=64)/TCP(sport=43210, dport=443, seq=0x01020304, flags="S", window=64240, options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (0x11223344, 0)), ("NOP", None), ("WScale", 7)])', ""),
 ("ipv4opt_tcp_sack", "IPv4OptTCPSack", 'E()/IP(src="10.0.0.1", dst="10.0.0.2", id=1, ttl=63, options=[IPOption_Router_Alert()])/TCP(sport=80, dport=51000, seq=1000, ack=2000, flags="PA", window=501, urgptr=7, options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2)), ("NOP", None), ("NOP", None), ("SAck", (3000, 4000, 5000, 6000))])/b"hello"', ""),
 ("vlan_ipv6_udp", "VLANIPv6UDP", 'E()/Dot1Q(prio=3, vlan=100)/IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=64, fl=0x12345)/UDP(sport=5353, dport=53)/bytes(range(12))', ""),
 ("qinq_ipv4_udp", "QinQIPv4UDP", 'E()/Dot1AD(vlan=10)/Dot1Q(vlan=20, prio=5)/IP(src="203.0.113.5", dst="203.0.113.6", id=7)/UDP(sport=1234, dport=5678)/b"data"', ""),
 ("ipv6_ext_tcp", "IPv6ExtTCP", 'E()/IPv6(src="2001:db8:1::10", dst="2001:db8:2::20")/IPv6ExtHdrHopByHop(options=[RouterAlert()])/IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\\x00\\x00\\x00\\x00")])/TCP(sport=40000, dport=22, seq=7, flags="S", window=1024)', ""),
 ("ipv6_frag_first_udp", "IPv6FragFirstUDP", 'E()/IPv6(src="2001:db8::a", dst="2001:db8::b", nh=44)/IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=0xabcd)/UDP(sport=1000, dport=2000, len=1208, chksum=0x1234)/(b"x" * 16)', "First fragment: the UDP Length covers the whole datagram."),
 ("ipv6_frag_later", "IPv6FragLater", 'E()/IPv6(src="2001:db8::a", dst="2001:db8::b", nh=44)/IPv6ExtHdrFragment(nh=17, offset=3, m=0, id=0xabcd)/(b"y" * 16)', ""),
 ("ipv4_frag_first_udp", "IPv4FragFirstUDP", 'E()/IP(src="192.0.2.7", dst="192.0.2.8", id=99, flags="MF", proto=17)/UDP(sport=3000, dport=4000, len=1480, chksum=0x4321)/(b"a" * 24)', "First fragment: the UDP Length covers the whole datagram."),
 ("ipv4_frag_later", "IPv4FragLater", 'E()/IP(src="192.0.2.7", dst="192.0.2.8", id=99, frag=4, proto=17)/(b"b" * 24)', ""),
 ("icmpv4_echo", "ICMPv4Echo", 'E()/IP(src="192.0.2.1", dst="192.0.2.2")/ICMP(id=0x42, seq=1)/b"ping"', ""),
 ("icmpv6_echo", "ICMPv6Echo", 'E()/IPv6(src="fe80::1", dst="fe80::2")/ICMPv6EchoRequest(id=0x42, seq=1, data=b"ping")', ""),
 ("arp_request", "ARPRequest", 'Ether(src=M1, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=M1, psrc="192.0.2.1", pdst="192.0.2.2")/Padding(load=bytes(18))', "Padded to the 60-byte Ethernet minimum."),
 ("gre_full", "GREFull", 'E()/IP(src="198.18.0.1", dst="198.18.0.2")/GRE(chksum_present=1, key_present=1, seqnum_present=1, key=0x1001, seqence_number=7)/IP(src="172.16.0.1", dst="172.16.0.2")/ICMP(id=1, seq=2)', ""),
 ("gre_key_teb", "GREKeyTEB", 'E()/IP(src="198.18.0.1", dst="198.18.0.2")/GRE(key_present=1, key=42, proto=0x6558)/Ether(src=M2, dst=M1)/IP(src="10.1.0.1", dst="10.1.0.2")/UDP(sport=7, dport=9)/b"x"', ""),
 ("vxlan", "VXLAN", 'E()/IP(src="198.18.1.1", dst="198.18.1.2")/UDP(sport=49152, dport=4789, chksum=0)/VXLAN(flags=0x08, vni=0x123456)/Ether(src=M1, dst=M2)/IP(src="10.2.0.1", dst="10.2.0.2")/TCP(sport=1111, dport=2222, flags="A")', ""),
 ("gue_v0", "GUEv0", 'E()/IP(src="198.18.2.1", dst="198.18.2.2")/UDP(sport=49153, dport=6080)/Raw(GUE0)/IP(src="10.3.0.1", dst="10.3.0.2")/ICMP()',
  "GUE0 = 01 04 8000 deadbeef: variant 0, C=0, Hlen=1, proto 4 (IPIP), flags 0x8000,\none extension word (crafted by hand per draft-ietf-intarea-gue-09; tshark has no\nGUE dissector, the inner packet is decoded from its own pcap)."),
 ("gue_v1_ipv6", "GUEv1IPv6", 'E()/IP(src="198.18.2.1", dst="198.18.2.2")/UDP(sport=49154, dport=6080)/IPv6(src="2001:db8::3:1", dst="2001:db8::3:2")/UDP(sport=5, dport=6)', "GUE variant 1: the UDP payload is the inner IPv6 packet."),
 ("quic_v1_initial", "QUICv1Initial", 'E()/IP(src="192.0.2.10", dst="198.51.100.20", flags="DF")/UDP(sport=51234, dport=443)/Raw(Q["v1_initial"])', "QUIC payload: the protected client Initial of RFC 9001 appendix A.2."),
 ("quic_v2_initial_v6", "QUICv2InitialV6", 'E()/IPv6(src="2001:db8::10", dst="2001:db8::20")/UDP(sport=51234, dport=443)/Raw(Q["v2_initial"])', "QUIC payload: the protected client Initial of RFC 9369 appendix A.2."),
 ("quic_v1_server_coalesced", "QUICv1ServerCoalesced", 'E()/IP(src="198.51.100.20", dst="192.0.2.10")/UDP(sport=443, dport=51234)/Raw(Q["server_coalesced"])', "Server Initial (ACK+PADDING, protected with the server Initial keys of\nDCID 8394c8f03e515708) coalesced with a Handshake packet (cleartext header,\nopaque payload). Decoded by tshark after the client Initial."),
 ("quic_v1_initial_token", "QUICv1InitialToken", 'E()/IP(src="192.0.2.11", dst="198.51.100.21")/UDP(sport=40000, dport=443)/Raw(Q["initial_token"])', "Client Initial with a 13-byte token and a 1-byte packet number."),
 ("quic_v1_0rtt", "QUICv10RTT", 'E()/IP(src="192.0.2.11", dst="198.51.100.21")/UDP(sport=40000, dport=443)/Raw(Q["0rtt"])', "0-RTT packet, header in clear, opaque payload."),
 ("quic_v1_retry", "QUICv1Retry", 'E()/IP(src="198.51.100.20", dst="192.0.2.10")/UDP(sport=443, dport=51234)/Raw(Q["retry"])', "QUIC payload: the Retry packet of RFC 9001 appendix A.4."),
 ("quic_vn", "QUICVN", 'E()/IP(src="198.51.100.20", dst="192.0.2.10")/UDP(sport=443, dport=51234)/Raw(Q["vn"])', "Version negotiation: versions 0x00000001, 0x6b3343cf, 0x1a2a3a4a (a greased one)."),
 ("quic_short", "QUICShort", 'E()/IP(src="192.0.2.10", dst="198.51.100.20", flags="DF")/UDP(sport=51234, dport=443)/Raw(Q["short"])', "1-RTT short header, DCID f067a5502a4262b5 (8 bytes), spin bit set.\nDecoded by tshark after the Initial and server packets that set up the connection."),
 ("quic_unknown_version", "QUICUnknownVersion", 'E()/IP(src="192.0.2.10", dst="198.51.100.20")/UDP(sport=51234, dport=443)/Raw(Q["unknown_version"])', "Long header of version 0xff00001d, 21-byte DCID (allowed by RFC 8999),\nempty SCID, then 'opaque'. tshark shows it as data."),
]

OPTS = ["-o", "tcp.relative_sequence_numbers:FALSE", "-o", "tcp.analyze_sequence_numbers:FALSE",
        "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE"]

def tshark(path):
    r = subprocess.run(["tshark", "-r", path, "-V"] + OPTS, capture_output=True, text=True, check=True)
    frames, cur = [], None
    for line in r.stdout.splitlines():
        if line.startswith("Frame "):
            cur = []
            frames.append(cur)
            skip = True
            continue
        if not line.startswith(" "):
            skip = False
        if skip:
            continue
        cur.append(line)
    return [filt(f) for f in frames]

def filt(lines):
    out, tls = [], 0
    for line in lines:
        s = line.strip()
        if not s or s.startswith("[") or s.startswith("Address:") or "LG bit" in s or "IG bit" in s:
            continue
        if s.startswith(("0000 ", "0010 ", "0020 ", "0030 ")):
            continue  # hex dump of undissected data
        if "Handshake Protocol: Client Hello" in s:
            tls = 1
        elif tls:
            tls += 1
            if tls > 6:
                if tls == 7:
                    out.append(line[:len(line) - len(line.lstrip())] + "…")
                continue
        out.append(line.rstrip())
    return out

env = dict(globals())
frames = {name: bytes(eval(expr, env)) for name, _, expr, _ in P}
tmp = tempfile.mkdtemp()
dec = {}
for name in frames:
    p = os.path.join(tmp, name + ".pcap")
    wrpcap(p, [Ether(frames[name])])
    dec[name] = tshark(p)[0]
conv = os.path.join(tmp, "conv.pcap")
wrpcap(conv, [Ether(frames[n]) for n in ("quic_v1_initial", "quic_v1_server_coalesced", "quic_short")])
c = tshark(conv)
dec["quic_v1_server_coalesced"], dec["quic_short"] = c[1], c[2]
inner = os.path.join(tmp, "gue_inner.pcap")
wrpcap(inner, [Ether(src=M1, dst=M2, type=0x0800) / Raw(frames["gue_v0"][14 + 20 + 8 + len(GUE0):])])

gi = tshark(inner)[0]
gi = gi[next(i for i, l in enumerate(gi) if i > 0 and not l.startswith(" ")):]  # drop the dummy Ethernet header
dec["gue_v0"] = [l for l in dec["gue_v0"] if not l.startswith("Internet Protocol, bogus")] + ["GUE header 01 04 8000 deadbeef, then:"] + gi

out = ["// Code generated by proto/testdata/golden/gen.py with scapy and tshark; DO NOT EDIT.", "",
       "package proto_test", ""]
out.append("// Golden frames. Each comment shows the scapy expression that built the")
out.append("// frame (E() is Ether(src=02:00:00:00:00:01, dst=02:00:00:00:00:02)) and")
out.append("// tshark's decode of it (computed [lines] left out).")
out.append("var (")
for name, ident, expr, note in P:
    out.append(f"\t// gf{ident}: {name}")
    out.append("\t//")
    for l in textwrap.wrap("scapy: " + expr, 100, break_long_words=True, subsequent_indent="    "):
        out.append("\t// " + l)
    if note:
        out.append("\t//")
        for l in note.splitlines():
            out.append("\t// " + l)
    out.append("\t//")
    out.append("\t// tshark -V:")
    for l in dec[name]:
        out.append("\t//   " + l.replace("\t", " "))
    h = frames[name].hex()
    out.append(f"\tgf{ident} = gfHex(`")
    for i in range(0, len(h), 64):
        out.append("\t\t" + h[i:i + 64])
    out.append("\t`)")
    out.append("")
out.append(")")
out.append("")
out.append("// gfAll lists every golden frame by name.")
out.append("var gfAll = []struct {")
out.append("\tname  string")
out.append("\tframe []byte")
out.append("}{")
for name, ident, _, _ in P:
    out.append(f"\t{{\"{name}\", gf{ident}}},")
out.append("}")
dst = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "golden_data_test.go")
open(dst, "w").write("\n".join(out) + "\n")
subprocess.run(["gofmt", "-w", dst], check=True)
print("wrote", os.path.normpath(dst), len(P), "frames")

# Seed corpora for the fuzz targets of udp, tcp, encap, quic and decode, in
# the "go test fuzz v1" format, under proto/testdata/fuzz/<FuzzName>/.
import hashlib

def golit(v):
    if isinstance(v, (bytes, bytearray)):
        return '[]byte("' + "".join("\\x%02x" % c for c in v) + '")'
    kind, x = v
    return f"{kind}({x})"

def seed(target, *args):
    body = "go test fuzz v1\n" + "".join(golit(a) + "\n" for a in args)
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha256(body.encode()).hexdigest()[:16]
    open(os.path.join(d, name), "w").write(body)

F = frames
u8 = lambda x: ("uint8", x)
seed("FuzzUDP", F["qinq_ipv4_udp"][42:])
seed("FuzzUDP", F["vxlan"][34:])
seed("FuzzUDP", F["vlan_ipv6_udp"][58:] + b"\x00\x00pad")
seed("FuzzUDP", bytes.fromhex("0001000200070000"))
seed("FuzzTCP", F["ipv4_tcp_syn"][34:])
seed("FuzzTCP", F["ipv4opt_tcp_sack"][38:])
seed("FuzzTCP", F["ipv4_tcp_syn"][34:50])
seed("FuzzTCPOptions", F["ipv4_tcp_syn"][54:74])
seed("FuzzTCPOptions", F["ipv4opt_tcp_sack"][58:90])
seed("FuzzTCPOptions", bytes.fromhex("0101050a0000000100000002"))
seed("FuzzTCPOptions", bytes.fromhex("020300"))
seed("FuzzGRE", F["gre_full"][34:])
seed("FuzzGRE", F["gre_key_teb"][34:])
seed("FuzzGRE", bytes.fromhex("3001880b00000000"))
seed("FuzzGUE", F["gue_v0"][42:])
seed("FuzzGUE", F["gue_v1_ipv6"][42:])
seed("FuzzGUE", bytes.fromhex("3f00000011223344"))
seed("FuzzVXLAN", F["vxlan"][42:])
seed("FuzzVXLAN", bytes.fromhex("0000000000000100"))
seed("FuzzVarint", bytes.fromhex("c2197c5eff14e88c"), ("uint64", 151288809941952652))
seed("FuzzVarint", bytes.fromhex("9d7f3e"), ("uint64", 16383))
seed("FuzzVarint", bytes.fromhex("4025"), ("uint64", 4611686018427387904))
seed("FuzzQUICLongHeader", F["quic_v1_initial"][42:100])
seed("FuzzQUICLongHeader", F["quic_v1_server_coalesced"][42:])
seed("FuzzQUICLongHeader", F["quic_v1_retry"][42:])
seed("FuzzQUICLongHeader", F["quic_vn"][42:])
seed("FuzzQUICLongHeader", F["quic_unknown_version"][42:])
seed("FuzzQUICShortHeader", F["quic_short"][42:], u8(8))
seed("FuzzQUICShortHeader", F["quic_short"][42:], u8(20))
seed("FuzzQUICShortHeader", bytes.fromhex("4cfe4189655e5cd55c41f69080575d7999c25a5bfb"), u8(0))
seed("FuzzDecode", F["ipv4_tcp_syn"], u8(8))
seed("FuzzDecode", F["vlan_ipv6_udp"], u8(8))
seed("FuzzDecode", F["quic_short"], u8(8))
seed("FuzzDecode", F["ipv6_frag_later"], u8(0))
seed("FuzzDecode", F["quic_v1_initial_token"], u8(4))
print("wrote seed corpora")
