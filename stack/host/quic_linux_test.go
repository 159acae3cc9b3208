package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

const quicBytes = 10 << 20

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "tygress-test"},
		DNSNames:     []string{"tygress-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"tygress-test"},
	}
}

// stream writes n pseudo-random bytes of seed to w and returns their hash.
func stream(w io.Writer, seed uint64, n int) ([32]byte, error) {
	h := sha256.New()
	rng := mrand.New(mrand.NewPCG(seed, seed))
	buf := make([]byte, 64<<10)
	for n > 0 {
		m := min(n, len(buf))
		for i := 0; i < m; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8 && i+j < m; j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := w.Write(buf[:m]); err != nil {
			return [32]byte{}, err
		}
		h.Write(buf[:m])
		n -= m
	}
	return [32]byte(h.Sum(nil)), nil
}

func drain(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return [32]byte(h.Sum(nil)), n, err
}

// quicTransfer runs a quic-go server on srv and a quic-go client on cli:
// the client sends 10 MB on a stream, the server reads it and sends 10 MB
// back; both hashes must match what was sent.
func quicTransfer(t *testing.T, srv, cli net.PacketConn, srvAddr net.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tlsConf := selfSigned(t)
	qconf := &quic.Config{MaxIdleTimeout: 30 * time.Second}
	st := &quic.Transport{Conn: srv}
	defer st.Close()
	ln, err := st.Listen(tlsConf, qconf)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		got, sent [32]byte
		n         int64
		err       error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() { done <- r }()
		conn, err := ln.Accept(ctx)
		if err != nil {
			r.err = err
			return
		}
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			r.err = err
			return
		}
		if r.got, r.n, r.err = drain(s); r.err != nil {
			return
		}
		if r.sent, r.err = stream(s, 2, quicBytes); r.err != nil {
			return
		}
		r.err = s.Close()
		<-conn.Context().Done() // the client closes when it has read everything
	}()

	start := time.Now()
	ct := &quic.Transport{Conn: cli}
	defer ct.Close()
	ctls := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"tygress-test"}}
	conn, err := ct.Dial(ctx, srvAddr, ctls, qconf)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := stream(s, 1, quicBytes)
	if err != nil {
		t.Fatalf("client write: %v", err)
	}
	s.Close()
	got, n, err := drain(s)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	conn.CloseWithError(0, "done")
	r := <-done
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	if r.n != quicBytes || r.got != sent {
		t.Errorf("server received %d bytes, hash match %v", r.n, r.got == sent)
	}
	if n != quicBytes || got != r.sent {
		t.Errorf("client received %d bytes, hash match %v", n, got == r.sent)
	}
	t.Logf("2 x 10 MB in %v", time.Since(start).Round(time.Millisecond))
}

// TestQUICClientOverTygress: a quic-go client on our UDP socket talks to a
// quic-go server on a kernel socket in the peer namespace.
func TestQUICClientOverTygress(t *testing.T) {
	for _, fam := range []struct{ net, kernel, ours string }{
		{"udp4", "10.92.0.1:4433", "10.92.0.2:0"},
		{"udp6", "[fd00:92::1]:4433", "[fd00:92::2]:0"},
	} {
		t.Run(fam.net, func(t *testing.T) {
			k := newKernelPeer(t, 1)
			srv := k.kernelUDP(t, fam.net, fam.kernel)
			cli, err := k.h.Stack.ListenPacket(fam.net, fam.ours)
			if err != nil {
				t.Fatal(err)
			}
			defer cli.Close()
			quicTransfer(t, srv, cli, srv.LocalAddr())
		})
	}
}

// TestQUICServerOverTygress: a quic-go server on our UDP socket serves a
// quic-go client on a kernel socket.
func TestQUICServerOverTygress(t *testing.T) {
	k := newKernelPeer(t, 1)
	srv, err := k.h.Stack.ListenPacket("udp", ":4433")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli := k.kernelUDP(t, "udp4", "10.92.0.1:0")
	quicTransfer(t, srv, cli, &net.UDPAddr{IP: net.ParseIP("10.92.0.2"), Port: 4433})
}
