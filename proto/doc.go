// Package proto holds zero-copy header views, encoders and checksums for
// every protocol Tygress speaks.
//
// A header view is a named byte-slice type (type IPv4 []byte) laid over a
// frame in place, usually inside UMEM. Views are made only by checked
// constructors (ParseIPv4, ParseUDP, …) that validate every length the view
// will ever use; after a constructor succeeds no accessor or setter can
// panic, whatever the bytes are. Accessors return fixed-size values
// ([4]byte, [6]byte, netip.Addr, integers) and never allocate.
//
// Encoders append: AppendX(b []byte, …) []byte, or write into a slice the
// caller sized with XLen. Parsers that consume a variable amount return how
// many bytes they used.
//
// Errors are typed and errors.Is-able (ErrTooShort, ErrBadVersion,
// ErrBadHeaderLength, ErrLengthMismatch, ErrBadChecksum, …) so that the
// pipeline can turn each into a drop counter with a reason.
//
// proto is a leaf: it imports only the standard library.
package proto
