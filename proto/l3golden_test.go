package proto_test

// Golden packets for the Ethernet, VLAN, ARP, IPv4, IPv6, ICMPv4 and ICMPv6
// views, built with scapy 2.5.0 (python3-scapy) and decoded by tcpdump
// (-e -t -n -vv; packets without an Ethernet header were written to the pcap
// as LINKTYPE_RAW). The scapy expression that built each one is quoted first,
// with M1=02:00:00:00:00:01, M2=02:00:00:00:00:02, A4=192.0.2.1,
// B4=198.51.100.7, A6=2001:db8::1, B6=2001:db8:1::2, LL6=fe80::1, LL6b=fe80::2.

// l3GoldenEthIPv4ICMPEcho (59 bytes), scapy:
//
//	Ether(dst=M2,src=M1)/IP(src=A4,dst=B4,id=0x1234,ttl=64,flags="DF")/ICMP(type=8,id=0x4242,seq=7)/b"tygress-ping-data"
//
// tcpdump:
//
//	02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype IPv4 (0x0800), length 59: (tos 0x0, ttl 64, id 4660, offset 0, flags [DF], proto ICMP (1), length 45)
//	    192.0.2.1 > 198.51.100.7: ICMP echo request, id 16962, seq 7, length 25
var l3GoldenEthIPv4ICMPEcho = l3Hex(`
0200 0000 0002 0200 0000 0001 0800 4500
002d 1234 4000 4001 3c60 c000 0201 c633
6407 0800 3280 4242 0007 7479 6772 6573
732d 7069 6e67 2d64 6174 61
`)

// l3GoldenEthARPRequest (42 bytes), scapy:
//
//	Ether(dst="ff:ff:ff:ff:ff:ff",src=M1)/ARP(op=1,hwsrc=M1,psrc=A4,hwdst="00:00:00:00:00:00",pdst=B4)
//
// tcpdump:
//
//	02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Ethernet (len 6), IPv4 (len 4), Request who-has 198.51.100.7 tell 192.0.2.1, length 28
var l3GoldenEthARPRequest = l3Hex(`
ffff ffff ffff 0200 0000 0001 0806 0001
0800 0604 0001 0200 0000 0001 c000 0201
0000 0000 0000 c633 6407
`)

// l3GoldenEthARPReplyPadded (60 bytes), scapy:
//
//	Ether(dst=M1,src=M2)/ARP(op=2,hwsrc=M2,psrc=B4,hwdst=M1,pdst=A4)/Padding(b"\x00"*18)
//
// tcpdump:
//
//	02:00:00:00:00:02 > 02:00:00:00:00:01, ethertype ARP (0x0806), length 60: Ethernet (len 6), IPv4 (len 4), Reply 198.51.100.7 is-at 02:00:00:00:00:02, length 46
var l3GoldenEthARPReplyPadded = l3Hex(`
0200 0000 0001 0200 0000 0002 0806 0001
0800 0604 0002 0200 0000 0002 c633 6407
0200 0000 0001 c000 0201 0000 0000 0000
0000 0000 0000 0000 0000 0000
`)

// l3GoldenEthVLANIPv4UDP (50 bytes), scapy:
//
//	Ether(dst=M2,src=M1)/Dot1Q(prio=5,id=1,vlan=100)/IP(src=A4,dst=B4,ttl=17,tos=0xb8,id=1)/UDP(sport=1234,dport=53)/b"abcd"
//
// tcpdump:
//
//	02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 802.1Q (0x8100), length 50: vlan 100, p 5, DEI, ethertype IPv4 (0x0800), (tos 0xb8, ttl 17, id 1, offset 0, flags [none], proto UDP (17), length 32)
//	    192.0.2.1.1234 > 198.51.100.7.53: [udp sum ok] domain [length 4 < 12] (invalid)
var l3GoldenEthVLANIPv4UDP = l3Hex(`
0200 0000 0002 0200 0000 0001 8100 b064
0800 45b8 0020 0001 0000 1111 bcd8 c000
0201 c633 6407 04d2 0035 000c 49cc 6162
6364
`)

// l3GoldenEthQinQIPv6ICMPv6Echo (74 bytes), scapy:
//
//	Ether(dst=M2,src=M1,type=0x88a8)/Dot1AD(prio=1,vlan=300)/Dot1Q(vlan=42)/IPv6(src=A6,dst=B6,hlim=64,tc=0x10,fl=0x12345)/ICMPv6EchoRequest(id=0x77,seq=3,data=b"hi6!")
//
// tcpdump:
//
//	02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 802.1Q-QinQ (0x88a8), length 74: vlan 300, p 1, ethertype 802.1Q (0x8100), vlan 42, p 0, ethertype IPv6 (0x86dd), (class 0x10, flowlabel 0x12345, hlim 64, next-header ICMPv6 (58) payload length: 12) 2001:db8::1 > 2001:db8:1::2: [icmp6 sum ok] ICMP6, echo request, id 119, seq 3
var l3GoldenEthQinQIPv6ICMPv6Echo = l3Hex(`
0200 0000 0002 0200 0000 0001 88a8 212c
8100 002a 86dd 6101 2345 000c 3a40 2001
0db8 0000 0000 0000 0000 0000 0001 2001
0db8 0001 0000 0000 0000 0000 0002 8000
853e 0077 0003 6869 3621
`)

// l3GoldenEthTripleTag (54 bytes), scapy:
//
//	Ether(dst=M2,src=M1,type=0x88a8)/Dot1AD(vlan=1)/Dot1Q(vlan=2)/Dot1Q(vlan=3)/IP(src=A4,dst=B4)/UDP(sport=1,dport=2)
//
// tcpdump:
//
//	02:00:00:00:00:01 > 02:00:00:00:00:02, ethertype 802.1Q-QinQ (0x88a8), length 54: vlan 1, p 0, ethertype 802.1Q (0x8100), vlan 2, p 0, ethertype 802.1Q (0x8100), vlan 3, p 0, ethertype IPv4 (0x0800), (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto UDP (17), length 28)
//	    192.0.2.1.1 > 198.51.100.7.2: [udp sum ok] UDP, length 0
var l3GoldenEthTripleTag = l3Hex(`
0200 0000 0002 0200 0000 0001 88a8 0001
8100 0002 8100 0003 0800 4500 001c 0001
0000 4011 8e94 c000 0201 c633 6407 0001
0002 0008 139f
`)

// l3GoldenIPv4OptionsUDP (41 bytes), scapy:
//
//	IP(src=A4,dst=B4,id=0xbeef,ttl=1,options=[IPOption_RR(routers=["10.0.0.1","10.0.0.2"])])/UDP(sport=5000,dport=6000)/b"x"
//
// tcpdump:
//
//	ip: (tos 0x0, ttl 1, id 48879, offset 0, flags [none], proto UDP (17), length 41, options (RR 10.0.0.1 10.0.0.2,EOL))
//	    192.0.2.1.5000 > 198.51.100.7.6000: [udp sum ok] UDP, length 1
var l3GoldenIPv4OptionsUDP = l3Hex(`
4800 0029 beef 0000 0111 fd79 c000 0201
c633 6407 070b 040a 0000 010a 0000 0200
1388 1770 0009 70a7 78
`)

// l3GoldenIPv4FragmentMF (36 bytes), scapy:
//
//	IP(src=A4,dst=B4,id=0x0abc,flags="MF",frag=0,proto=17)/Raw(b"\x13\x88\x17\x70\x00\x18\x00\x00"+b"A"*8)
//
// tcpdump:
//
//	ip: (tos 0x0, ttl 64, id 2748, offset 0, flags [+], proto UDP (17), length 36)
//	    192.0.2.1.5000 > 198.51.100.7.6000: UDP, length 16
var l3GoldenIPv4FragmentMF = l3Hex(`
4500 0024 0abc 2000 4011 63d1 c000 0201
c633 6407 1388 1770 0018 0000 4141 4141
4141 4141
`)

// l3GoldenIPv4FragmentLast (28 bytes), scapy:
//
//	IP(src=A4,dst=B4,id=0x0abc,flags=0,frag=2,proto=17)/Raw(b"B"*8)
//
// tcpdump:
//
//	ip: (tos 0x0, ttl 64, id 2748, offset 16, flags [none], proto UDP (17), length 28)
//	    192.0.2.1 > 198.51.100.7: ip-proto-17
var l3GoldenIPv4FragmentLast = l3Hex(`
4500 001c 0abc 0002 4011 83d7 c000 0201
c633 6407 4242 4242 4242 4242
`)

// l3GoldenIPv4ICMPFragNeeded (56 bytes), scapy:
//
//	IP(src=B4,dst=A4,ttl=255,id=0)/ICMP(type=3,code=4,nexthopmtu=1400)/IP(src=A4,dst=B4,len=1500,id=9,flags="DF")/UDP(sport=1111,dport=2222,len=1480)
//
// tcpdump:
//
//	ip: (tos 0x0, ttl 255, id 0, offset 0, flags [none], proto ICMP (1), length 56)
//	    198.51.100.7 > 192.0.2.1: ICMP 198.51.100.7 unreachable - need to frag (mtu 1400), length 36
//	    (tos 0x0, ttl 64, id 9, offset 0, flags [DF], proto UDP (17), length 1500)
//	    192.0.2.1.1111 > 198.51.100.7.2222: UDP, length 1472
var l3GoldenIPv4ICMPFragNeeded = l3Hex(`
4500 0038 0000 0000 ff01 cf88 c633 6407
c000 0201 0304 e999 0000 0578 4500 05dc
0009 4000 4011 48cc c000 0201 c633 6407
0457 08ae 05c8 fb1c
`)

// l3GoldenIPv4ICMPTimeExceeded (56 bytes), scapy:
//
//	IP(src=B4,dst=A4,ttl=64,id=1)/ICMP(type=11,code=0)/IP(src=A4,dst=B4,ttl=1,id=10)/ICMP(type=8,id=1,seq=1)
//
// tcpdump:
//
//	ip: (tos 0x0, ttl 64, id 1, offset 0, flags [none], proto ICMP (1), length 56)
//	    198.51.100.7 > 192.0.2.1: ICMP time exceeded in-transit, length 36
//	    (tos 0x0, ttl 1, id 10, offset 0, flags [none], proto ICMP (1), length 28)
//	    192.0.2.1 > 198.51.100.7: ICMP echo request, id 1, seq 1, length 8
var l3GoldenIPv4ICMPTimeExceeded = l3Hex(`
4500 0038 0001 0000 4001 8e88 c633 6407
c000 0201 0b00 f4ff 0000 0000 4500 001c
000a 0000 0101 cd9b c000 0201 c633 6407
0800 f7fd 0001 0001
`)

// l3GoldenIPv6ExtChainUDP (100 bytes), scapy:
//
//	IPv6(src=A6,dst=B6,hlim=9)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")])/IPv6ExtHdrRouting(type=0,addresses=["2001:db8::99"],segleft=1)/IPv6ExtHdrFragment(offset=0,m=1,id=0xdeadbeef)/UDP(sport=53,dport=53)/b"dns?"
//
// tcpdump:
//
//	ip: (hlim 9, next-header Options (0) payload length: 60) 2001:db8::1 > 2001:db8:1::2: HBH (rtalert: 0x0000) (padn) DSTOPT (padn) RT6 (len=2, type=0 [Deprecated], segleft=1, rsv=0x0, [0]2001:db8::99) frag (0xdeadbeef:0|12) 53 > 53: domain [length 4 < 12] (invalid)
var l3GoldenIPv6ExtChainUDP = l3Hex(`
6000 0000 003c 0009 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002 3c00 0502 0000 0100
2b00 0104 0000 0000 2c02 0001 0000 0000
2001 0db8 0000 0000 0000 0000 0000 0099
1100 0001 dead beef 0035 0035 000c cbb2
646e 733f
`)

// l3GoldenIPv6FragmentNonFirst (64 bytes), scapy:
//
//	IPv6(src=A6,dst=B6)/IPv6ExtHdrFragment(offset=100,m=0,id=0xdeadbeef,nh=17)/Raw(b"tail-of-datagram")
//
// tcpdump:
//
//	ip: (hlim 64, next-header Fragment (44) payload length: 24) 2001:db8::1 > 2001:db8:1::2: frag (0xdeadbeef:800|16)
var l3GoldenIPv6FragmentNonFirst = l3Hex(`
6000 0000 0018 2c40 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002 1100 0320 dead beef
7461 696c 2d6f 662d 6461 7461 6772 616d
`)

// l3GoldenIPv6AHTCP (84 bytes), scapy:
//
//	IPv6(src=A6,dst=B6)/AH(nh=6,payloadlen=4,spi=0x100,seq=1,icv=b"\x11"*12)/TCP(sport=80,dport=40000,flags="S",seq=1000)
//
// tcpdump:
//
//	ip: (hlim 64, next-header AH (51) payload length: 44) 2001:db8::1 > 2001:db8:1::2: AH(length=4(24-bytes),spi=0x00000100,seq=0x1,icv=0x111111111111111111111111): 80 > 40000: Flags [S], cksum 0x0000 (incorrect -> 0x93f4), seq 1000, win 8192, length 0
var l3GoldenIPv6AHTCP = l3Hex(`
6000 0000 002c 3340 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002 0604 0000 0000 0100
0000 0001 1111 1111 1111 1111 1111 1111
0050 9c40 0000 03e8 0000 0000 5002 2000
0000 0000
`)

// l3GoldenIPv6NoNextHeader (40 bytes), scapy:
//
//	IPv6(src=A6,dst=B6,nh=59)
//
// tcpdump:
//
//	ip: (hlim 64, next-header unknown (59) payload length: 0) 2001:db8::1 > 2001:db8:1::2: no next header
var l3GoldenIPv6NoNextHeader = l3Hex(`
6000 0000 0000 3b40 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002
`)

// l3GoldenICMPv6NS (72 bytes), scapy:
//
//	IPv6(src=LL6,dst="ff02::1:ff00:2",hlim=255)/ICMPv6ND_NS(tgt=LL6b)/ICMPv6NDOptSrcLLAddr(lladdr=M1)
//
// tcpdump:
//
//	ip: (hlim 255, next-header ICMPv6 (58) payload length: 32) fe80::1 > ff02::1:ff00:2: [icmp6 sum ok] ICMP6, neighbor solicitation, length 32, who has fe80::2
//	      source link-address option (1), length 8 (1): 02:00:00:00:00:01
//	        0x0000:  0200 0000 0001
var l3GoldenICMPv6NS = l3Hex(`
6000 0000 0020 3aff fe80 0000 0000 0000
0000 0000 0000 0001 ff02 0000 0000 0000
0000 0001 ff00 0002 8700 7a97 0000 0000
fe80 0000 0000 0000 0000 0000 0000 0002
0101 0200 0000 0001
`)

// l3GoldenICMPv6NA (72 bytes), scapy:
//
//	IPv6(src=LL6b,dst=LL6,hlim=255)/ICMPv6ND_NA(tgt=LL6b,R=1,S=1,O=0)/ICMPv6NDOptDstLLAddr(lladdr=M2)
//
// tcpdump:
//
//	ip: (hlim 255, next-header ICMPv6 (58) payload length: 32) fe80::2 > fe80::1: [icmp6 sum ok] ICMP6, neighbor advertisement, length 32, tgt is fe80::2, Flags [router, solicited]
//	      destination link-address option (2), length 8 (1): 02:00:00:00:00:02
//	        0x0000:  0200 0000 0002
var l3GoldenICMPv6NA = l3Hex(`
6000 0000 0020 3aff fe80 0000 0000 0000
0000 0000 0000 0002 fe80 0000 0000 0000
0000 0000 0000 0001 8800 b819 c000 0000
fe80 0000 0000 0000 0000 0000 0000 0002
0201 0200 0000 0002
`)

// l3GoldenICMPv6RA (104 bytes), scapy:
//
//	IPv6(src=LL6,dst="ff02::1",hlim=255)/ICMPv6ND_RA(chlim=64,M=1,O=0,routerlifetime=1800,reachabletime=30000,retranstimer=1000)/ICMPv6NDOptSrcLLAddr(lladdr=M1)/ICMPv6NDOptMTU(mtu=1500)/ICMPv6NDOptPrefixInfo(prefixlen=64,L=1,A=1,validlifetime=86400,preferredlifetime=14400,prefix="2001:db8:1::")
//
// tcpdump:
//
//	ip: (hlim 255, next-header ICMPv6 (58) payload length: 64) fe80::1 > ff02::1: [icmp6 sum ok] ICMP6, router advertisement, length 64
//	    hop limit 64, Flags [managed], pref high, router lifetime 1800s, reachable time 30000ms, retrans timer 1000ms
//	      source link-address option (1), length 8 (1): 02:00:00:00:00:01
//	        0x0000:  0200 0000 0001
//	      mtu option (5), length 8 (1):  1500
//	        0x0000:  0000 0000 05dc
//	      prefix info option (3), length 32 (4): 2001:db8:1::/64, Flags [onlink, auto], valid time 86400s, pref. time 14400s
//	        0x0000:  40c0 0001 5180 0000 3840 0000 0000 2001
//	        0x0010:  0db8 0001 0000 0000 0000 0000 0000
var l3GoldenICMPv6RA = l3Hex(`
6000 0000 0040 3aff fe80 0000 0000 0000
0000 0000 0000 0001 ff02 0000 0000 0000
0000 0000 0000 0001 8600 b237 4088 0708
0000 7530 0000 03e8 0101 0200 0000 0001
0501 0000 0000 05dc 0304 40c0 0001 5180
0000 3840 0000 0000 2001 0db8 0001 0000
0000 0000 0000 0000
`)

// l3GoldenICMPv6RS (56 bytes), scapy:
//
//	IPv6(src=LL6b,dst="ff02::2",hlim=255)/ICMPv6ND_RS()/ICMPv6NDOptSrcLLAddr(lladdr=M2)
//
// tcpdump:
//
//	ip: (hlim 255, next-header ICMPv6 (58) payload length: 16) fe80::2 > ff02::2: [icmp6 sum ok] ICMP6, router solicitation, length 16
//	      source link-address option (1), length 8 (1): 02:00:00:00:00:02
//	        0x0000:  0200 0000 0002
var l3GoldenICMPv6RS = l3Hex(`
6000 0000 0010 3aff fe80 0000 0000 0000
0000 0000 0000 0002 ff02 0000 0000 0000
0000 0000 0000 0002 8500 7a2a 0000 0000
0101 0200 0000 0002
`)

// l3GoldenICMPv6Redirect (88 bytes), scapy:
//
//	IPv6(src=LL6,dst=LL6b,hlim=255)/ICMPv6ND_Redirect(tgt="fe80::3",dst="2001:db8:2::5")/ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:03")
//
// tcpdump:
//
//	ip: (hlim 255, next-header ICMPv6 (58) payload length: 48) fe80::1 > fe80::2: [icmp6 sum ok] ICMP6, redirect, length 48, 2001:db8:2::5 to fe80::3
//	      destination link-address option (2), length 8 (1): 02:00:00:00:00:03
//	        0x0000:  0200 0000 0003
var l3GoldenICMPv6Redirect = l3Hex(`
6000 0000 0030 3aff fe80 0000 0000 0000
0000 0000 0000 0001 fe80 0000 0000 0000
0000 0000 0000 0002 8900 4948 0000 0000
fe80 0000 0000 0000 0000 0000 0000 0003
2001 0db8 0002 0000 0000 0000 0000 0005
0201 0200 0000 0003
`)

// l3GoldenICMPv6PacketTooBig (96 bytes), scapy:
//
//	IPv6(src=B6,dst=A6,hlim=64)/ICMPv6PacketTooBig(mtu=1280)/IPv6(src=A6,dst=B6,plen=1452)/UDP(sport=4000,dport=4001,len=1452)
//
// tcpdump:
//
//	ip: (hlim 64, next-header ICMPv6 (58) payload length: 56) 2001:db8:1::2 > 2001:db8::1: [icmp6 sum ok] ICMP6, packet too big, mtu 1280
var l3GoldenICMPv6PacketTooBig = l3Hex(`
6000 0000 0038 3a40 2001 0db8 0001 0000
0000 0000 0000 0002 2001 0db8 0000 0000
0000 0000 0000 0001 0200 2644 0000 0500
6000 0000 05ac 1140 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002 0fa0 0fa1 05ac 7f83
`)

// l3GoldenICMPv6TimeExceeded (96 bytes), scapy:
//
//	IPv6(src=B6,dst=A6)/ICMPv6TimeExceeded(code=0)/IPv6(src=A6,dst=B6,hlim=1)/ICMPv6EchoRequest(id=5,seq=6)
//
// tcpdump:
//
//	ip: (hlim 64, next-header ICMPv6 (58) payload length: 56) 2001:db8:1::2 > 2001:db8::1: [icmp6 sum ok] ICMP6, time exceeded in-transit for 2001:db8:1::2
var l3GoldenICMPv6TimeExceeded = l3Hex(`
6000 0000 0038 3a40 2001 0db8 0001 0000
0000 0000 0000 0002 2001 0db8 0000 0000
0000 0000 0000 0001 0300 0750 0000 0000
6000 0000 0008 3a01 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002 8000 243c 0005 0006
`)

// l3GoldenICMPv6ParamProblem (96 bytes), scapy:
//
//	IPv6(src=B6,dst=A6)/ICMPv6ParamProblem(code=1,ptr=40)/IPv6(src=A6,dst=B6,nh=200)/Raw(b"\x00"*8)
//
// tcpdump:
//
//	ip: (hlim 64, next-header ICMPv6 (58) payload length: 56) 2001:db8:1::2 > 2001:db8::1: [icmp6 sum ok] ICMP6, parameter problem, next header - octet 40
var l3GoldenICMPv6ParamProblem = l3Hex(`
6000 0000 0038 3a40 2001 0db8 0001 0000
0000 0000 0000 0002 2001 0db8 0000 0000
0000 0000 0000 0001 0401 1c2f 0000 0028
6000 0000 0008 c840 2001 0db8 0000 0000
0000 0000 0000 0001 2001 0db8 0001 0000
0000 0000 0000 0002 0000 0000 0000 0000
`)
