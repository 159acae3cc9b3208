package route

// The per-length tables: open addressing with linear probing, a power of
// two slots, at most half of them used, and deletion by backward shift (no
// tombstones), so that a probe for an absent key ends at the first empty
// slot. An empty slot has a nil route.
//
// hash4 and hash6 are the same code on two key types on purpose: a generic
// table[K] whose keys hash through a method measured 1.7x slower lookups
// here (the method is called through the generic dictionary), and lookups
// run per datagram sent.

const (
	mul1 = 0x9e3779b97f4a7c15 // 2^64 / golden ratio
	mul2 = 0xbf58476d1ce4e5b9 // splitmix64
)

type slot4 struct {
	key uint32
	r   *Route
}

type hash4 struct {
	slots []slot4
	shift uint8 // 64 - log2(len(slots))
	n     int
}

func (h *hash4) home(k uint32) int { return int(uint64(k) * mul1 >> h.shift) }

func (h *hash4) get(k uint32) *Route {
	m := len(h.slots) - 1
	for i := h.home(k); ; i = (i + 1) & m {
		s := &h.slots[i]
		if s.r == nil || s.key == k {
			return s.r
		}
	}
}

// set stores r under k and reports whether k is new.
func (h *hash4) set(k uint32, r *Route) bool {
	if 2*(h.n+1) > len(h.slots) {
		h.grow()
	}
	m := len(h.slots) - 1
	i := h.home(k)
	for ; h.slots[i].r != nil; i = (i + 1) & m {
		if h.slots[i].key == k {
			h.slots[i].r = r
			return false
		}
	}
	h.slots[i] = slot4{k, r}
	h.n++
	return true
}

func (h *hash4) grow() {
	old := h.slots
	size := max(2*len(old), 4)
	h.slots = make([]slot4, size)
	h.shift = uint8(64 - log2(size))
	m := size - 1
	for _, s := range old {
		if s.r != nil {
			i := h.home(s.key)
			for h.slots[i].r != nil {
				i = (i + 1) & m
			}
			h.slots[i] = s
		}
	}
}

// del removes k and reports whether it was there.
func (h *hash4) del(k uint32) bool {
	if h.n == 0 {
		return false
	}
	m := len(h.slots) - 1
	i := h.home(k)
	for ; h.slots[i].key != k; i = (i + 1) & m {
		if h.slots[i].r == nil {
			return false
		}
	}
	if h.slots[i].r == nil {
		return false
	}
	for j := (i + 1) & m; h.slots[j].r != nil; j = (j + 1) & m {
		if between(h.home(h.slots[j].key), i, j) {
			continue // its home is in (i, j]: it may not move to i
		}
		h.slots[i] = h.slots[j]
		i = j
	}
	h.slots[i] = slot4{}
	h.n--
	return true
}

type key6 struct{ hi, lo uint64 }

type slot6 struct {
	key key6
	r   *Route
}

type hash6 struct {
	slots []slot6
	shift uint8
	n     int
}

func (h *hash6) home(k key6) int {
	x := k.hi*mul1 + k.lo
	x ^= x >> 31
	return int(x * mul2 >> h.shift)
}

func (h *hash6) get(k key6) *Route {
	m := len(h.slots) - 1
	for i := h.home(k); ; i = (i + 1) & m {
		s := &h.slots[i]
		if s.r == nil || s.key == k {
			return s.r
		}
	}
}

func (h *hash6) set(k key6, r *Route) bool {
	if 2*(h.n+1) > len(h.slots) {
		h.grow()
	}
	m := len(h.slots) - 1
	i := h.home(k)
	for ; h.slots[i].r != nil; i = (i + 1) & m {
		if h.slots[i].key == k {
			h.slots[i].r = r
			return false
		}
	}
	h.slots[i] = slot6{k, r}
	h.n++
	return true
}

func (h *hash6) grow() {
	old := h.slots
	size := max(2*len(old), 4)
	h.slots = make([]slot6, size)
	h.shift = uint8(64 - log2(size))
	m := size - 1
	for _, s := range old {
		if s.r != nil {
			i := h.home(s.key)
			for h.slots[i].r != nil {
				i = (i + 1) & m
			}
			h.slots[i] = s
		}
	}
}

func (h *hash6) del(k key6) bool {
	if h.n == 0 {
		return false
	}
	m := len(h.slots) - 1
	i := h.home(k)
	for ; h.slots[i].key != k; i = (i + 1) & m {
		if h.slots[i].r == nil {
			return false
		}
	}
	if h.slots[i].r == nil {
		return false
	}
	for j := (i + 1) & m; h.slots[j].r != nil; j = (j + 1) & m {
		if between(h.home(h.slots[j].key), i, j) {
			continue
		}
		h.slots[i] = h.slots[j]
		i = j
	}
	h.slots[i] = slot6{}
	h.n--
	return true
}

// between reports whether x lies in the cyclic interval (i, j].
func between(x, i, j int) bool {
	if i <= j {
		return i < x && x <= j
	}
	return i < x || x <= j
}

func log2(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	return l
}
