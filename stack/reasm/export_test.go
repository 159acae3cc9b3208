package reasm

import "fmt"

// CheckInvariants verifies the internal accounting; tests call it after
// every operation.
func (r *Reassembler) CheckInvariants() error {
	held := 0
	n := 0
	for f := range r.age {
		prev := int32(-1)
		for i := r.age[f].head; i >= 0; i = r.slots[i].next {
			d := &r.slots[i]
			if d.prev != prev {
				return fmt.Errorf("slot %d: prev %d, want %d", i, d.prev, prev)
			}
			if fam(d.key) != f {
				return fmt.Errorf("slot %d in wrong family list", i)
			}
			if j, ok := r.index[d.key]; !ok || j != i {
				return fmt.Errorf("slot %d not indexed", i)
			}
			c := 0
			for _, ch := range d.chunks {
				if ch >= 0 {
					c++
				}
			}
			if int32(c) != d.nchunks {
				return fmt.Errorf("slot %d: %d chunks, counted %d", i, c, d.nchunks)
			}
			sp := r.spansOf(i)
			sum := int32(0)
			for k, s := range sp {
				if s.start >= s.end || (k > 0 && sp[k-1].end > s.start) {
					return fmt.Errorf("slot %d: bad spans %v", i, sp)
				}
				sum += s.end - s.start
			}
			if sum != d.have {
				return fmt.Errorf("slot %d: have %d, spans sum %d", i, d.have, sum)
			}
			held += c
			n++
			prev = i
		}
		if r.age[f].tail != prev {
			return fmt.Errorf("family %d: tail %d, want %d", f, r.age[f].tail, prev)
		}
	}
	if n != len(r.index) || n != r.stats.Datagrams || n > r.cfg.MaxDatagrams {
		return fmt.Errorf("datagrams: lists %d, index %d, stats %d", n, len(r.index), r.stats.Datagrams)
	}
	if held+len(r.freeChunk) != cap(r.freeChunk) {
		return fmt.Errorf("chunks: held %d + free %d != %d", held, len(r.freeChunk), cap(r.freeChunk))
	}
	if held*ChunkSize != r.stats.BytesHeld || r.stats.BytesHeld > r.cfg.MaxBytes {
		return fmt.Errorf("bytes held %d, stats %d, max %d", held*ChunkSize, r.stats.BytesHeld, r.cfg.MaxBytes)
	}
	if len(r.tombs) > len(r.tombRing) {
		return fmt.Errorf("tombstones %d > %d", len(r.tombs), len(r.tombRing))
	}
	return nil
}
