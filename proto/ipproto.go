package proto

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), used in
// the IPv4 protocol field, the IPv6 next header field and pseudo-headers.
const (
	IPProtoHopByHop uint8 = 0  // IPv6 hop-by-hop options
	IPProtoICMP     uint8 = 1  // ICMP for IPv4
	IPProtoIPIP     uint8 = 4  // IPv4 in IP
	IPProtoTCP      uint8 = 6  // TCP
	IPProtoUDP      uint8 = 17 // UDP
	IPProtoIPv6     uint8 = 41 // IPv6 in IP
	IPProtoRouting  uint8 = 43 // IPv6 routing header
	IPProtoFragment uint8 = 44 // IPv6 fragment header
	IPProtoGRE      uint8 = 47 // generic routing encapsulation
	IPProtoESP      uint8 = 50 // encapsulating security payload
	IPProtoAH       uint8 = 51 // authentication header
	IPProtoICMPv6   uint8 = 58 // ICMP for IPv6
	IPProtoNoNext   uint8 = 59 // IPv6 no next header
	IPProtoDstOpts  uint8 = 60 // IPv6 destination options
)
