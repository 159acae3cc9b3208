package bpf_test

import (
	"errors"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/tygress/tygress/bpf"
	"github.com/tygress/tygress/internal/topo"
)

// vethNS is a fresh network namespace with a veth pair a <-> b inside it.
type vethNS struct {
	ns   *topo.Namespace
	a, b *topo.Port
	nl   *netlink.Handle
}

// newVethNS builds the topology and removes it when the test ends, also
// after a failure.
func newVethNS(t *testing.T) *vethNS {
	t.Helper()
	requirePrivileged(t)
	var tp topo.Topology
	t.Cleanup(func() {
		if err := tp.Close(); err != nil {
			t.Errorf("remove topology: %v", err)
		}
	})
	ns, err := tp.AddNamespace("tyb")
	if err != nil {
		t.Fatalf("namespace: %v", err)
	}
	sfx := topo.Suffix(6)
	v := &vethNS{
		ns: ns,
		a:  &topo.Port{NS: ns, Name: "tyb" + sfx + "a"},
		b:  &topo.Port{NS: ns, Name: "tyb" + sfx + "b"},
	}
	if err := topo.NewVeth(v.a, v.b, topo.VethOptions{}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	v.nl, err = netlink.NewHandleAt(ns.Handle())
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(v.nl.Close)
	return v
}

// xdpState reports the XDP program id and attach mode of the interface, as
// netlink sees them.
func (v *vethNS) xdpState(t *testing.T, name string) (progID uint32, mode uint32) {
	t.Helper()
	l, err := v.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached {
		return 0, nl.XDP_ATTACHED_NONE
	}
	return x.ProgId, x.AttachMode
}

// attach attaches s inside the namespace.
func (v *vethNS) attach(s *bpf.Steer, ifindex int) (*bpf.Attachment, error) {
	var a *bpf.Attachment
	err := v.ns.Do(func() (err error) {
		a, err = s.Attach(ifindex)
		return err
	})
	return a, err
}

func progID(t *testing.T, s *bpf.Steer) uint32 {
	t.Helper()
	info, err := s.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("program info has no id")
	}
	return uint32(id)
}

func (v *vethNS) wantAttached(t *testing.T, name string, id uint32, mode uint32) {
	t.Helper()
	gotID, gotMode := v.xdpState(t, name)
	if gotID != id || gotMode != mode {
		t.Errorf("%s: xdp prog %d mode %d, want prog %d mode %d", name, gotID, gotMode, id, mode)
	}
}

func TestAttachModes(t *testing.T) {
	for _, tt := range []struct {
		mode     bpf.Mode
		want     bpf.Mode
		attached uint32
	}{
		{bpf.ModeAuto, bpf.ModeDriver, nl.XDP_ATTACHED_DRV}, // veth has native XDP
		{bpf.ModeDriver, bpf.ModeDriver, nl.XDP_ATTACHED_DRV},
		{bpf.ModeGeneric, bpf.ModeGeneric, nl.XDP_ATTACHED_SKB},
	} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			v := newVethNS(t)
			s := load(t, bpf.Options{Mode: tt.mode})
			a, err := v.attach(s, v.a.Ifindex)
			if err != nil {
				t.Fatalf("Attach: %v", err)
			}
			if a.Mode() != tt.want || a.Ifindex() != v.a.Ifindex {
				t.Errorf("attached to %d in %v mode, want %d in %v", a.Ifindex(), a.Mode(), v.a.Ifindex, tt.want)
			}
			v.wantAttached(t, v.a.Name, progID(t, s), tt.attached)
			v.wantAttached(t, v.b.Name, 0, nl.XDP_ATTACHED_NONE)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			v.wantAttached(t, v.a.Name, 0, nl.XDP_ATTACHED_NONE)
			if err := a.Close(); err != nil {
				t.Errorf("Attachment.Close after Steer.Close: %v", err)
			}
		})
	}
}

func TestAttachTwoInterfaces(t *testing.T) {
	v := newVethNS(t)
	s := load(t, bpf.DefaultOptions())
	id := progID(t, s)
	aa, err := v.attach(s, v.a.Ifindex)
	if err != nil {
		t.Fatalf("Attach a: %v", err)
	}
	ab, err := v.attach(s, v.b.Ifindex)
	if err != nil {
		t.Fatalf("Attach b: %v", err)
	}
	if aa.Mode() != bpf.ModeDriver || ab.Mode() != bpf.ModeDriver {
		t.Errorf("modes %v, %v; want driver", aa.Mode(), ab.Mode())
	}
	v.wantAttached(t, v.a.Name, id, nl.XDP_ATTACHED_DRV)
	v.wantAttached(t, v.b.Name, id, nl.XDP_ATTACHED_DRV)

	// Detaching one leaves the other.
	if err := aa.Close(); err != nil {
		t.Fatalf("detach a: %v", err)
	}
	if err := aa.Close(); err != nil {
		t.Fatalf("second detach a: %v", err)
	}
	v.wantAttached(t, v.a.Name, 0, nl.XDP_ATTACHED_NONE)
	v.wantAttached(t, v.b.Name, id, nl.XDP_ATTACHED_DRV)

	// And a can be attached again.
	if _, err := v.attach(s, v.a.Ifindex); err != nil {
		t.Fatalf("re-attach a: %v", err)
	}
	v.wantAttached(t, v.a.Name, id, nl.XDP_ATTACHED_DRV)

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	v.wantAttached(t, v.a.Name, 0, nl.XDP_ATTACHED_NONE)
	v.wantAttached(t, v.b.Name, 0, nl.XDP_ATTACHED_NONE)
}

// TestAttachBusy: a second program on the same interface is refused, in
// either mode.
func TestAttachBusy(t *testing.T) {
	v := newVethNS(t)
	first := load(t, bpf.DefaultOptions())
	if _, err := v.attach(first, v.a.Ifindex); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	for _, mode := range []bpf.Mode{bpf.ModeAuto, bpf.ModeDriver, bpf.ModeGeneric} {
		s := load(t, bpf.Options{Mode: mode})
		_, err := v.attach(s, v.a.Ifindex)
		t.Log(err)
		if !errors.Is(err, bpf.ErrBusy) {
			t.Errorf("%v: second Attach = %v, want ErrBusy", mode, err)
		}
	}
	v.wantAttached(t, v.a.Name, progID(t, first), nl.XDP_ATTACHED_DRV)
}

// TestAttachFallback uses the namespace's loopback interface, which has no
// native XDP: auto mode falls back to generic, driver mode fails with
// ErrNotSupported.
func TestAttachFallback(t *testing.T) {
	v := newVethNS(t)
	const name = "lo"
	lo, err := v.nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	ifindex := lo.Attrs().Index

	drv := load(t, bpf.Options{Mode: bpf.ModeDriver})
	_, err = v.attach(drv, ifindex)
	t.Log(err)
	if !errors.Is(err, bpf.ErrNotSupported) {
		t.Errorf("driver mode on lo: %v, want ErrNotSupported", err)
	}
	auto := load(t, bpf.Options{Mode: bpf.ModeAuto})
	a, err := v.attach(auto, ifindex)
	if err != nil {
		t.Fatalf("auto mode on lo: %v", err)
	}
	if a.Mode() != bpf.ModeGeneric {
		t.Errorf("auto mode on lo gave %v, want generic", a.Mode())
	}
	v.wantAttached(t, name, progID(t, auto), nl.XDP_ATTACHED_SKB)
	if _, err := v.attach(auto, 1<<30); err == nil {
		t.Error("Attach to a missing interface succeeded")
	}
}

// TestAttachTraffic sends frames from b to a, where the program runs: the
// claimed ones are counted as claimed without socket, the others pass.
func TestAttachTraffic(t *testing.T) {
	for _, mode := range []bpf.Mode{bpf.ModeAuto, bpf.ModeGeneric} {
		t.Run(mode.String(), func(t *testing.T) {
			v := newVethNS(t)
			s := load(t, bpf.Options{Mode: mode, Rules: []bpf.Rule{{IPProto: bpf.IPProtoUDP, PortLo: 9, PortHi: 9}}})
			if _, err := v.attach(s, v.a.Ifindex); err != nil {
				t.Fatalf("Attach: %v", err)
			}
			var fd int
			err := v.ns.Do(func() (err error) {
				fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
				return err
			})
			if err != nil {
				t.Fatalf("packet socket: %v", err)
			}
			defer unix.Close(fd)
			send := func(frame []byte) {
				t.Helper()
				copy(frame, v.a.MAC)
				copy(frame[6:], v.b.MAC)
				sa := &unix.SockaddrLinklayer{Ifindex: v.b.Ifindex, Halen: 6}
				copy(sa.Addr[:], v.a.MAC)
				if err := unix.Sendto(fd, frame, 0, sa); err != nil {
					t.Fatalf("send: %v", err)
				}
			}
			const claimedN, otherN = 5, 3
			for range claimedN {
				send(f(ipv4("10.9.9.9", udp(9), v4opts{})))
			}
			for range otherN {
				send(f(ipv6("fd00::9", udp(10))))
			}
			// The interfaces may send a few frames of their own (IPv6
			// neighbour discovery): those are not claimed.
			deadline := time.Now().Add(5 * time.Second)
			var c bpf.Counters
			for {
				c = counters(t, s)
				if c.PassedNoSocket >= claimedN && c.PassedNoMatch >= otherN || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if c.PassedNoSocket != claimedN || c.PassedNoMatch < otherN || c.Redirected != 0 || c.Aborted != 0 || c.PassedMalformed != 0 {
				t.Errorf("counters %+v: want %d claimed, at least %d unmatched", c, claimedN, otherN)
			}
			if c.Seen != c.Redirected+c.Passed()+c.Aborted {
				t.Errorf("seen %d != sum of outcomes in %+v", c.Seen, c)
			}
		})
	}
}
