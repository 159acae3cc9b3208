package dataplane

import "testing"

func TestAutoFrameSize(t *testing.T) {
	for _, c := range []struct{ mtu, want int }{
		{0, 2048}, {1500, 2048}, {1770, 2048}, // 1770 + 256 headroom + 14 + 8 = 2048
		{1771, 4096}, {9000, 4096}, {65535, 4096},
	} {
		if got := AutoFrameSize(c.mtu); got != c.want {
			t.Errorf("AutoFrameSize(%d) = %d, want %d", c.mtu, got, c.want)
		}
	}
}
