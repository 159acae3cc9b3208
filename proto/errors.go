package proto

import "errors"

// Sentinel errors returned (possibly wrapped in *ParseError) by the checked
// constructors. Callers test them with errors.Is; the pipeline maps each to a
// drop reason.
var (
	ErrTooShort        = errors.New("too short")
	ErrBadVersion      = errors.New("bad version")
	ErrBadHeaderLength = errors.New("bad header length")
	ErrLengthMismatch  = errors.New("length mismatch")
	ErrBadChecksum     = errors.New("bad checksum")
	ErrBadOption       = errors.New("bad option")
	ErrUnsupported     = errors.New("unsupported")
	ErrBadValue        = errors.New("bad field value")
	ErrTooManyHeaders  = errors.New("too many extension headers")
)

// Layer names the protocol layer an error was found in.
type Layer uint8

// Layers, in the order a frame is decoded.
const (
	LayerNone Layer = iota
	LayerEthernet
	LayerVLAN
	LayerARP
	LayerIPv4
	LayerIPv6
	LayerIPv6Ext
	LayerICMPv4
	LayerICMPv6
	LayerUDP
	LayerTCP
	LayerGRE
	LayerGUE
	LayerVXLAN
	LayerQUIC
	numLayers
)

var layerNames = [numLayers]string{
	"none", "ethernet", "vlan", "arp", "ipv4", "ipv6", "ipv6-ext",
	"icmpv4", "icmpv6", "udp", "tcp", "gre", "gue", "vxlan", "quic",
}

func (l Layer) String() string {
	if l < numLayers {
		return layerNames[l]
	}
	return "unknown"
}

// ParseError says which layer failed and why. It is returned by value
// inside an error interface only on the slow (failing) path; Err is one of
// the sentinels above, so errors.Is(err, ErrTooShort) works.
//
// To keep failed parses free of allocation, constructors return
// preallocated *ParseError values from errTable rather than building new
// ones.
type ParseError struct {
	Layer Layer
	Err   error
}

func (e *ParseError) Error() string { return e.Layer.String() + ": " + e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

var sentinels = [...]error{
	ErrTooShort, ErrBadVersion, ErrBadHeaderLength, ErrLengthMismatch,
	ErrBadChecksum, ErrBadOption, ErrUnsupported, ErrBadValue, ErrTooManyHeaders,
}

var errTable = func() (t [numLayers][len(sentinels)]*ParseError) {
	for l := range t {
		for i, s := range sentinels {
			t[l][i] = &ParseError{Layer: Layer(l), Err: s}
		}
	}
	return t
}()

// perr returns the preallocated *ParseError for (layer, sentinel) without
// allocating.
func perr(l Layer, err error) error {
	for i, s := range sentinels {
		if s == err {
			return errTable[l][i]
		}
	}
	return &ParseError{Layer: l, Err: err}
}
