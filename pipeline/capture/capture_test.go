package capture_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tygress/tygress/pipeline"
	"github.com/tygress/tygress/pipeline/capture"
)

// frame builds a 60-byte Ethernet/IPv4/UDP-looking frame whose bytes 42..49
// carry seq, so a test can tell frames apart in the file.
func frame(seq uint64) []byte {
	b := make([]byte, 60)
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 46)
	ip[8], ip[9] = 64, 17
	copy(ip[12:], []byte{10, 0, 0, 1})
	copy(ip[16:], []byte{10, 0, 0, 2})
	binary.BigEndian.PutUint16(b[34:], 1000)
	binary.BigEndian.PutUint16(b[36:], 9)
	binary.BigEndian.PutUint16(b[38:], 26)
	binary.BigEndian.PutUint64(b[42:], seq)
	return b
}

// batch returns a batch of n frames numbered from seq, backed by
// preallocated buffers.
func batch(seq uint64, n int) *pipeline.Batch {
	b := &pipeline.Batch{Frames: make([]pipeline.Frame, n), Queue: 3, Now: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()}
	for i := range b.Frames {
		b.Frames[i] = pipeline.Frame{Data: frame(seq + uint64(i)), InPort: 1}
	}
	return b
}

// readAll parses a capture file with pcapgo (either format) and returns
// the frames and, for pcapng, the comments.
func readAll(t *testing.T, path string) (frames [][]byte, comments []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if capture.FormatOf(path) == capture.PCAPNG {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for {
			data, _, opts, err := r.ReadPacketDataWithOptions()
			if errors.Is(err, io.EOF) {
				return frames, comments
			}
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			frames = append(frames, bytes.Clone(data))
			comments = append(comments, strings.Join(opts.Comments, ";"))
		}
	}
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		frames = append(frames, bytes.Clone(data))
	}
}

func seqOf(b []byte) uint64 { return binary.BigEndian.Uint64(b[42:]) }

// dropOdd drops odd-numbered frames and redirects even ones to port 2.
type dropOdd struct{}

func (dropOdd) Name() string { return "odd" }
func (dropOdd) Process(b *pipeline.Batch) {
	for i := range b.Frames {
		f := &b.Frames[i]
		if seqOf(f.Data)%2 == 1 {
			f.SetDrop(pipeline.ReasonPolicy)
		} else {
			f.SetRedirect(2)
			f.Data[0] = 0xee // a rewrite: tx must show it, the stage tap must not
		}
	}
}

func run(p *pipeline.Pipeline, b *pipeline.Batch) {
	var out pipeline.Output
	p.Run(b, &out)
}

func TestPipelineTaps(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{
		"rx":  filepath.Join(dir, "rx.pcap"),
		"odd": filepath.Join(dir, "odd.pcapng"),
		"tx":  filepath.Join(dir, "tx.pcapng"),
		"1":   filepath.Join(dir, "len.pcap"),
	}
	var taps []capture.Tap
	var caps []*capture.Capture
	for point, path := range paths {
		c, err := capture.Create(path, capture.Options{Point: point})
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
		taps = append(taps, capture.Tap{Point: point, Capture: c})
	}
	base := pipeline.New(dropOdd{}, pipeline.MinLength{N: 14})
	p, err := capture.Pipeline(base, taps...)
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	run(p, batch(0, n))
	for _, c := range caps {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Counters keep the stages' names and see every frame.
	cs := p.Counters()
	if cs[0].Name != "odd" || cs[1].Name != "length" || cs[0].In != n || cs[0].Drops[pipeline.ReasonPolicy] != n/2 {
		t.Fatalf("counters %+v", cs[:2])
	}

	rx, _ := readAll(t, paths["rx"])
	if len(rx) != n {
		t.Fatalf("rx: %d frames, want %d", len(rx), n)
	}
	for i, f := range rx {
		if seqOf(f) != uint64(i) || f[0] != 2 || len(f) != 60 {
			t.Fatalf("rx frame %d: seq %d byte0 %#x len %d", i, seqOf(f), f[0], len(f))
		}
	}
	at, comments := readAll(t, paths["odd"])
	if len(at) != n {
		t.Fatalf("odd: %d frames, want %d", len(at), n)
	}
	for i := range at {
		want := "port=1 queue=3 verdict=redirect out-port=2"
		if i%2 == 1 {
			want = "port=1 queue=3 verdict=drop reason=policy"
		}
		if comments[i] != want || at[i][0] != 2 {
			t.Fatalf("odd frame %d: comment %q, byte0 %#x; want %q and the frame as the stage got it", i, comments[i], at[i][0], want)
		}
	}
	tx, comments := readAll(t, paths["tx"])
	if len(tx) != n/2 {
		t.Fatalf("tx: %d frames, want %d", len(tx), n/2)
	}
	for i, f := range tx {
		if seqOf(f) != uint64(2*i) || f[0] != 0xee || comments[i] != "port=1 queue=3 verdict=redirect out-port=2" {
			t.Fatalf("tx frame %d: seq %d byte0 %#x comment %q", i, seqOf(f), f[0], comments[i])
		}
	}
	// The stage after odd sees only the frames still undecided: none.
	if l, _ := readAll(t, paths["1"]); len(l) != 0 {
		t.Fatalf("length stage: %d frames, want 0", len(l))
	}
	checkTools(t, paths["rx"], n)
	checkTools(t, paths["odd"], n)
}

// checkTools reads the file with tcpdump and tshark when they exist.
func checkTools(t *testing.T, path string, want int) {
	t.Helper()
	for _, tool := range [][]string{{"tcpdump", "-n", "-r", path}, {"tshark", "-n", "-r", path}} {
		bin, err := exec.LookPath(tool[0])
		if err != nil {
			t.Logf("%s not installed: not checked", tool[0])
			continue
		}
		cmd := exec.Command(bin, tool[1:]...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(tool, " "), err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		if len(lines) != want || !strings.Contains(lines[0], "10.0.0.1") {
			t.Fatalf("%s: %d lines, want %d:\n%s\n%s", strings.Join(tool, " "), len(lines), want, stdout.String(), stderr.String())
		}
	}
}

// TestRingFullDropsAndCount: a ring of 8 slots that the writer has not
// drained takes 8 frames of a 20-frame batch and counts 12 as dropped; a
// count limit stops exactly at the count.
func TestRingFullDropsAndCount(t *testing.T) {
	c, err := capture.New(capture.Options{Point: "rx", RingSlots: 8})
	if err != nil {
		t.Fatal(err)
	}
	r := c.NewRing()
	b := batch(0, 20)
	r.Record(b, b.Frames) // not started: nothing drains
	if s := c.Stats(); s.Dropped != 12 {
		t.Fatalf("dropped %d, want 12", s.Dropped)
	}
	r.Record(b, b.Frames)
	if s := c.Stats(); s.Dropped != 32 {
		t.Fatalf("dropped %d, want 32", s.Dropped)
	}
	var buf bytes.Buffer
	if err := c.Start(nopCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	waitWritten(t, c, 8)
	r.Record(b, b.Frames[:5])
	waitWritten(t, c, 13)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.pcap")
	os.WriteFile(path, buf.Bytes(), 0o644)
	if fr, _ := readAll(t, path); len(fr) != 13 || seqOf(fr[12]) != 4 {
		t.Fatalf("%d frames in the file, want 13", len(fr))
	}

	// Count: 3 workers, batches of 7, limit 100: exactly 100 written.
	path = filepath.Join(t.TempDir(), "count.pcapng")
	c, err = capture.Create(path, capture.Options{Point: "rx", Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		r := c.NewRing()
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := batch(0, 7)
			for range 50 {
				r.Record(b, b.Frames)
			}
		}()
	}
	wg.Wait()
	if !c.Done() {
		t.Fatal("count reached but capture not done")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Written != 100 || s.Dropped != 0 {
		t.Fatalf("stats %+v, want 100 written, 0 dropped", s)
	}
	if fr, _ := readAll(t, path); len(fr) != 100 {
		t.Fatalf("%d frames in the file, want 100", len(fr))
	}
	checkTools(t, path, 100)
}

func TestDurationLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.pcap")
	// The frames must be recorded before the duration ends: 50 ms once
	// passed between Create and Record on a loaded CI machine (written 0).
	c, err := capture.Create(path, capture.Options{Point: "rx", Duration: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := c.NewRing()
	b := batch(0, 4)
	r.Record(b, b.Frames)
	deadline := time.Now().Add(5 * time.Second)
	for !c.Done() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !c.Done() {
		t.Fatal("duration passed, capture not done")
	}
	r.Record(b, b.Frames)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.Written != 4 {
		t.Fatalf("written %d, want 4 (the frames before the deadline)", s.Written)
	}
}

func TestSnaplenTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.pcap")
	c, err := capture.Create(path, capture.Options{Point: "rx", Snaplen: 64})
	if err != nil {
		t.Fatal(err)
	}
	r := c.NewRing()
	b := batch(0, 1)
	b.Frames[0].Data = append(b.Frames[0].Data, make([]byte, 100)...)
	r.Record(b, b.Frames)
	c.Close()
	f, _ := os.Open(path)
	defer f.Close()
	pr, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, ci, err := pr.ReadPacketData()
	if err != nil || len(data) != 64 || ci.Length != 160 || ci.Timestamp.UnixNano() != b.Now {
		t.Fatalf("err %v, captured %d of %d at %v", err, len(data), ci.Length, ci.Timestamp)
	}
}

func TestUnknownStage(t *testing.T) {
	c, _ := capture.New(capture.Options{})
	p := pipeline.New(dropOdd{}, pipeline.MinLength{})
	if _, err := capture.Pipeline(p, capture.Tap{Point: "nosuch", Capture: c}); err == nil || !strings.Contains(err.Error(), "rx, tx, odd, length") {
		t.Fatalf("err %v, want the list of points", err)
	}
	if _, err := capture.Pipeline(pipeline.New(), capture.Tap{Point: "rx", Capture: c}); err == nil {
		t.Fatal("rx on an empty pipeline accepted")
	}
	dup := pipeline.New(dropOdd{}, dropOdd{})
	if _, err := capture.Pipeline(dup, capture.Tap{Point: "odd", Capture: c}); err == nil {
		t.Fatal("ambiguous name accepted")
	}
	if _, err := capture.Pipeline(dup, capture.Tap{Point: "1", Capture: c}); err != nil {
		t.Fatalf("index: %v", err)
	}
}

// holder is a Releaser: the wrapper must keep it one.
type holder struct{ dropOdd }

func (holder) Release(int64, []pipeline.Frame) int { return 0 }
func (holder) Next() int64                         { return 0 }

func TestKeepsReleaser(t *testing.T) {
	c, _ := capture.New(capture.Options{})
	p, err := capture.Pipeline(pipeline.New(holder{}), capture.Tap{Point: "odd", Capture: c})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Holds() {
		t.Fatal("wrapped Releaser lost")
	}
}

// TestDefaultTX: frames no stage decided leave by the default verdict and
// the tx tap sees them.
func TestDefaultTX(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tx.pcapng")
	c, err := capture.Create(path, capture.Options{Point: "tx"})
	if err != nil {
		t.Fatal(err)
	}
	base := pipeline.New(pipeline.MinLength{N: 14})
	base.Default, base.DefaultPort = pipeline.Redirect, 4
	p, err := capture.Pipeline(base, capture.Tap{Point: "tx", Capture: c})
	if err != nil {
		t.Fatal(err)
	}
	run(p, batch(0, 3))
	c.Close()
	fr, com := readAll(t, path)
	if len(fr) != 3 || com[0] != "port=1 queue=3 verdict=redirect out-port=4" {
		t.Fatalf("%d frames, comments %q", len(fr), com)
	}
}

// TestNoAllocs proves the taps allocate nothing per batch (and so per
// packet). The writer is not started (its allocations would count: the
// measure is process-wide); the rings are large enough that every frame
// is copied, none dropped.
func TestNoAllocs(t *testing.T) {
	var taps []capture.Tap
	var caps []*capture.Capture
	for _, point := range []string{"rx", "odd", "tx"} {
		c, err := capture.New(capture.Options{Point: point, Snaplen: 64, RingSlots: 1 << 17})
		if err != nil {
			t.Fatal(err)
		}
		caps = append(caps, c)
		taps = append(taps, capture.Tap{Point: point, Capture: c})
	}
	p, err := capture.Pipeline(pipeline.New(dropOdd{}), taps...)
	if err != nil {
		t.Fatal(err)
	}
	src := batch(0, 64)
	b := &pipeline.Batch{Frames: make([]pipeline.Frame, 0, 64), Queue: 1, Now: 1}
	out := pipeline.Output{Drop: make([]pipeline.Frame, 0, 64), TX: make([]pipeline.Frame, 0, 64)}
	allocs := testing.AllocsPerRun(1000, func() {
		b.Frames = append(b.Frames[:0], src.Frames...)
		for i := range b.Frames {
			b.Frames[i].Verdict = pipeline.Pass
		}
		p.Run(b, &out)
		out.Reset()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of 64", allocs)
	}
	for _, c := range caps {
		if s := c.Stats(); s.Dropped != 0 {
			t.Fatalf("%+v: frames dropped, the copy path was not measured", s)
		}
	}
	var buf bytes.Buffer
	if err := caps[1].Start(nopCloser{&buf}); err != nil {
		t.Fatal(err)
	}
	if err := caps[1].Close(); err != nil {
		t.Fatal(err)
	}
	if s := caps[1].Stats(); s.Written != 1001*64 {
		t.Fatalf("%+v, want %d written", s, 1001*64)
	}
}

func BenchmarkRxTap(b *testing.B) {
	c, _ := capture.New(capture.Options{Point: "rx"})
	c.Start(nopCloser{io.Discard})
	defer c.Close()
	r := c.NewRing()
	src := batch(0, 64)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(src, src.Frames)
	}
}

func waitWritten(t *testing.T, c *capture.Capture, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Written < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if w := c.Stats().Written; w != n {
		t.Fatalf("written %d, want %d", w, n)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
