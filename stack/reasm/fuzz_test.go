package reasm_test

import (
	"testing"
	"time"

	"github.com/tygress/tygress/stack/reasm"
)

// fuzzByte is the content of byte pos of the datagram with key index ki, so
// that any datagram the reassembler completes can be checked.
func fuzzByte(ki, pos int) byte { return byte(pos*7 + ki*31 + pos>>8) }

// FuzzReassemble decodes the input as a sequence of 5-byte operations on a
// small reassembler and checks that it never panics, never exceeds its
// limits, keeps its accounting consistent and only completes datagrams whose
// bytes and length are right:
//
//	b0: bits 0-1 key, bit 2 IPv6, bit 3 more, bits 4-6 extra length of a
//	    last fragment, bit 7 tick instead of add
//	b1 b2: offset / 8 (big endian)
//	b3: length / 8
//	b4: clock advance in units of 10 ms
func FuzzReassemble(f *testing.F) {
	f.Add([]byte{0x08, 0, 0, 4, 0, 0x00, 0, 4, 4, 0})                   // two fragments, in order
	f.Add([]byte{0x30, 0, 4, 4, 0, 0x08, 0, 0, 4, 0})                   // reversed, odd last length
	f.Add([]byte{0x08, 0, 0, 4, 0, 0x08, 0, 2, 4, 0, 0x00, 0, 6, 1, 0}) // overlap then tombstone
	f.Add([]byte{0x0c, 0, 0, 4, 0, 0x0c, 0, 0, 4, 0, 0x04, 0, 4, 1, 0}) // IPv6 duplicate
	f.Add([]byte{0x08, 0, 0, 4, 0, 0x80, 0, 0, 0, 255, 0x80, 0, 0, 0, 255})
	f.Add([]byte{0x09, 0x1f, 0xff, 255, 0, 0x0a, 0, 0, 255, 1, 0x0b, 0, 40, 255, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := reasm.Config{
			MaxBytes:                8 * reasm.ChunkSize,
			MaxDatagrams:            3,
			MaxFragmentsPerDatagram: 6,
			Timeout:                 time.Second,
			TimeoutIPv6:             2 * time.Second,
		}
		r := reasm.New(cfg)
		var now int64
		payload := make([]byte, 255*8+7)
		hdr := []byte{0x45, 1, 2, 3}
		for ; len(in) >= 5; in = in[5:] {
			b0 := in[0]
			now += int64(in[4]) * int64(10*time.Millisecond)
			if b0&0x80 != 0 {
				r.Tick(now, func(e reasm.Expired) {
					if len(e.Header) > reasm.MaxQuoteHeader || len(e.Data) > 8 {
						t.Fatalf("quote too long: %d+%d", len(e.Header), len(e.Data))
					}
				})
				if next := r.Next(); next <= now {
					t.Fatalf("Next %d not after Tick(%d)", next, now)
				}
				check(t, r)
				continue
			}
			ki := int(b0 & 3)
			v6 := b0&4 != 0
			more := b0&8 != 0
			off := (int(in[1])<<8 | int(in[2])) * 8
			n := int(in[3]) * 8
			if !more {
				n += int(b0>>4) & 7
			}
			var k reasm.Key
			if v6 {
				k = key6(uint32(ki))
				ki += 4
			} else {
				k = key4(uint16(ki))
			}
			p := payload[:n]
			for i := range p {
				p[i] = fuzzByte(ki, off+i)
			}
			got, done, err := r.Add(now, k, off, more, hdr, p)
			check(t, r)
			st := r.Stats()
			if st.BytesHeld > cfg.MaxBytes || st.Datagrams > cfg.MaxDatagrams {
				t.Fatalf("over budget: %+v", st)
			}
			if done {
				if err != nil {
					t.Fatalf("done with error %v", err)
				}
				if off == 0 && !more {
					continue // atomic: returned as is
				}
				if (!more && len(got) != off+n) || len(got) < off+n {
					t.Fatalf("datagram of %d bytes, completing fragment ends at %d (more %v)", len(got), off+n, more)
				}
				for i, c := range got {
					if c != fuzzByte(ki, i) {
						t.Fatalf("datagram byte %d = %#x, want %#x", i, c, fuzzByte(ki, i))
					}
				}
			}
		}
	})
}
