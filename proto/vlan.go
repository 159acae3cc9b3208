package proto

import "encoding/binary"

// IEEE 802.1Q / 802.1ad tag. The TPID (0x8100 or 0x88a8) sits where the
// EtherType would be, in the Ethernet header or the preceding tag; the VLAN
// view covers the 4 bytes after it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| PCP |D|         VID           |    EtherType (or next TPID)   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	vlanTCI       = 0
	vlanEtherType = 2

	// VLANLen is the length of the part of a VLAN tag after its TPID.
	VLANLen = 4

	// MaxVLANs is the number of stacked tags SkipVLANs accepts (802.1ad
	// QinQ: an S-tag and a C-tag).
	MaxVLANs = 2
)

// VLAN is a view of an 802.1Q/802.1ad tag's TCI and inner EtherType. Make
// one with ParseVLAN.
type VLAN []byte

// ParseVLAN returns b as a VLAN view after checking that it holds a whole
// tag. The view covers all of b; Payload starts after the tag.
func ParseVLAN(b []byte) (VLAN, error) {
	if len(b) < VLANLen {
		return nil, perr(LayerVLAN, ErrTooShort)
	}
	return VLAN(b), nil
}

func (v VLAN) hdr() *[VLANLen]byte { return (*[VLANLen]byte)(v) }

// TCI returns the 16-bit tag control information (PCP, DEI, VID).
func (v VLAN) TCI() uint16 { return binary.BigEndian.Uint16(v.hdr()[vlanTCI : vlanTCI+2]) }

// PCP returns the 3-bit priority code point.
func (v VLAN) PCP() uint8 { return v.hdr()[vlanTCI] >> 5 }

// DEI reports the drop eligible indicator.
func (v VLAN) DEI() bool { return v.hdr()[vlanTCI]&0x10 != 0 }

// VID returns the 12-bit VLAN identifier.
func (v VLAN) VID() uint16 { return v.TCI() & 0x0fff }

// EtherType returns the EtherType after the tag: the payload's protocol, or
// the TPID of the next tag.
func (v VLAN) EtherType() uint16 {
	return binary.BigEndian.Uint16(v.hdr()[vlanEtherType : vlanEtherType+2])
}

// Payload returns the bytes after the tag.
func (v VLAN) Payload() []byte { return v[VLANLen:] }

// SetTCI sets the whole tag control information.
func (v VLAN) SetTCI(tci uint16) { binary.BigEndian.PutUint16(v.hdr()[vlanTCI:vlanTCI+2], tci) }

// SetPCP sets the priority code point; only the low 3 bits of p are used.
func (v VLAN) SetPCP(p uint8) { h := v.hdr(); h[vlanTCI] = h[vlanTCI]&0x1f | (p&7)<<5 }

// SetDEI sets the drop eligible indicator.
func (v VLAN) SetDEI(d bool) {
	h := v.hdr()
	h[vlanTCI] &^= 0x10
	if d {
		h[vlanTCI] |= 0x10
	}
}

// SetVID sets the VLAN identifier; only the low 12 bits of id are used.
func (v VLAN) SetVID(id uint16) { v.SetTCI(v.TCI()&0xf000 | id&0x0fff) }

// SetEtherType sets the EtherType after the tag.
func (v VLAN) SetEtherType(t uint16) {
	binary.BigEndian.PutUint16(v.hdr()[vlanEtherType:vlanEtherType+2], t)
}

// MakeTCI builds a tag control information word; out-of-range bits of pcp
// and vid are dropped.
func MakeTCI(pcp uint8, dei bool, vid uint16) uint16 {
	tci := uint16(pcp&7)<<13 | vid&0x0fff
	if dei {
		tci |= 0x1000
	}
	return tci
}

// AppendVLAN appends the 4 bytes of a tag that follow its TPID: the TCI
// (see MakeTCI) and the inner EtherType. The TPID itself is the EtherType of
// the header appended before (AppendEthernet(b, dst, src, EtherTypeVLAN)).
func AppendVLAN(b []byte, tci uint16, etherType uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, tci)
	return binary.BigEndian.AppendUint16(b, etherType)
}

// isVLANTPID reports whether t introduces an 802.1Q or 802.1ad tag.
func isVLANTPID(t uint16) bool { return t == EtherTypeVLAN || t == EtherTypeQinQ }

// SkipVLANs walks the Ethernet header and up to MaxVLANs stacked 802.1Q or
// 802.1ad tags (either TPID at either position) at the start of frame. It
// returns the EtherType of the payload, the payload's offset in frame, the
// VIDs of the tags found, outermost first, and how many there were. A third
// tag gives ErrTooManyHeaders; a frame that ends inside the header or a tag
// gives ErrTooShort. It never reads past frame and never allocates.
func SkipVLANs(frame []byte) (etherType uint16, l3off int, vids [MaxVLANs]uint16, n int, err error) {
	if len(frame) < EthernetLen {
		return 0, 0, vids, 0, perr(LayerEthernet, ErrTooShort)
	}
	etherType = binary.BigEndian.Uint16(frame[ethEtherType : ethEtherType+2])
	l3off = EthernetLen
	for i := uint(0); isVLANTPID(etherType); i++ {
		if i >= MaxVLANs {
			return 0, 0, vids, n, perr(LayerVLAN, ErrTooManyHeaders)
		}
		if len(frame)-l3off < VLANLen {
			return 0, 0, vids, n, perr(LayerVLAN, ErrTooShort)
		}
		tag := (*[VLANLen]byte)(frame[l3off : l3off+VLANLen])
		vids[i] = binary.BigEndian.Uint16(tag[vlanTCI:vlanTCI+2]) & 0x0fff
		etherType = binary.BigEndian.Uint16(tag[vlanEtherType : vlanEtherType+2])
		l3off += VLANLen
		n++
	}
	return etherType, l3off, vids, n, nil
}
