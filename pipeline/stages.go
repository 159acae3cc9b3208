package pipeline

// Ready-made stages for the common jobs. Each is also an example of the
// Stage contract: look only at b.Frames, give verdicts, never allocate.
// None reads the batch clock, and each says so (Clockless).

// DropAll drops every frame with ReasonPolicy: the rxdrop benchmark.
type DropAll struct{}

// Clockless implements Clockless.
func (DropAll) Clockless() {}

// Name implements Named.
func (DropAll) Name() string { return "drop-all" }

// Process implements Stage.
func (DropAll) Process(b *Batch) {
	for i := range b.Frames {
		b.Frames[i].SetDrop(ReasonPolicy)
	}
}

// L2Forward rewrites the Ethernet addresses and redirects every frame to
// OutPort: the l2fwd job. With a shared UMEM the descriptor moves to the
// other port's tx ring; nothing is copied.
type L2Forward struct {
	OutPort uint16
	Src     [6]byte
	Dst     [6]byte
	// KeepSrc leaves the source MAC unchanged.
	KeepSrc bool
}

// Clockless implements Clockless.
func (*L2Forward) Clockless() {}

// Name implements Named.
func (*L2Forward) Name() string { return "l2fwd" }

// Process implements Stage.
func (s *L2Forward) Process(b *Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		if len(f.Data) < 14 {
			f.SetDrop(ReasonTooShort)
			continue
		}
		h := (*[12]byte)(f.Data)
		copy(h[0:6], s.Dst[:])
		if !s.KeepSrc {
			copy(h[6:12], s.Src[:])
		}
		f.SetRedirect(s.OutPort)
	}
}

// MACSwap swaps the Ethernet source and destination and sends the frame
// back out of the port it came in on (an L2 reflector).
type MACSwap struct{}

// Clockless implements Clockless.
func (MACSwap) Clockless() {}

// Name implements Named.
func (MACSwap) Name() string { return "macswap" }

// Process implements Stage.
func (MACSwap) Process(b *Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		if len(f.Data) < 14 {
			f.SetDrop(ReasonTooShort)
			continue
		}
		h := (*[12]byte)(f.Data)
		var t [6]byte
		copy(t[:], h[0:6])
		copy(h[0:6], h[6:12])
		copy(h[6:12], t[:])
		f.Verdict = TX
	}
}

// MinLength drops frames shorter than N bytes (ReasonTooShort) and longer
// than Max (ReasonTooBig, when Max > 0).
type MinLength struct{ N, Max int }

// Clockless implements Clockless.
func (MinLength) Clockless() {}

// Name implements Named.
func (MinLength) Name() string { return "length" }

// Process implements Stage.
func (s MinLength) Process(b *Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		switch {
		case len(f.Data) < s.N:
			f.SetDrop(ReasonTooShort)
		case s.Max > 0 && len(f.Data) > s.Max:
			f.SetDrop(ReasonTooBig)
		}
	}
}
