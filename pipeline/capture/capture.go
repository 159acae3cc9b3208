// Package capture writes the frames seen at a point of a pipeline to a
// pcap or pcapng file, without slowing the data path down or allocating
// on it.
//
// # Model
//
// A Capture is one output file. Each worker that feeds it gets its own
// Ring (NewRing): a single-producer, single-consumer ring of preallocated
// slots, each holding the first Snaplen bytes of a frame and its metadata.
// The worker copies frames into free slots and publishes them once per
// batch with one atomic store; a writer goroutine (Start) drains every
// ring of the Capture into the file. When a ring is full the frames that
// do not fit are not captured and are counted (Stats.Dropped): the data
// path never waits for the disk.
//
// Limits (Options.Count, Options.Duration) stop the capture early; the
// count is reserved once per batch, so a file holds exactly Count frames
// when the traffic lasts long enough.
//
// Pipeline wraps the stages of a pipeline so that taps record at
//
//	rx       every batch as received, before the first stage
//	tx       frames a stage (or the default verdict) sends out: TX or Redirect
//	NAME     the frames the stage named NAME (pipeline.Named, or "stageN"
//	         for an unnamed stage at index N; a bare index N works too) was
//	         given, as it was given them, annotated with the verdict it gave
//
// In pcapng files every packet carries a comment with its port, queue and,
// where known, its verdict and drop reason; pcap files have no room for it.
//
// The package lives under pipeline/ rather than internal/ because it needs
// nothing but the public Stage contract, and library users running their
// own stages want the same capture as tyfwd.
package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tygress/tygress/pipeline"
)

// Format is a file format.
type Format uint8

// Formats.
const (
	PCAP Format = iota
	PCAPNG
)

// FormatOf returns PCAPNG for a name ending in ".pcapng", otherwise PCAP.
func FormatOf(path string) Format {
	if strings.HasSuffix(strings.ToLower(path), ".pcapng") {
		return PCAPNG
	}
	return PCAP
}

// Options configure a Capture.
type Options struct {
	// Point names the tap (rx, tx or a stage); it becomes the pcapng
	// interface name.
	Point string
	// Format of the file.
	Format Format
	// Snaplen is the number of bytes kept of each frame (default 2048).
	Snaplen int
	// RingSlots is the number of frames each worker's ring holds (default
	// 4096, rounded up to a power of two).
	RingSlots int
	// Count stops the capture after this many frames (0: no limit).
	Count uint64
	// Duration stops the capture this long after Start (0: no limit).
	Duration time.Duration
	// Poll is how long the writer sleeps when every ring is empty
	// (default 2ms).
	Poll time.Duration
}

// Stats are a Capture's counters, safe to read from any goroutine.
type Stats struct {
	Written uint64 // frames written to the file
	Dropped uint64 // frames not captured because a ring was full
}

// Capture is one output file fed by one Ring per worker.
type Capture struct {
	opts Options

	budget  atomic.Int64 // frames still allowed (Count > 0)
	done    atomic.Bool  // a limit was reached or Close was called
	written atomic.Uint64
	dropped atomic.Uint64

	mu    sync.Mutex
	rings []*Ring

	w       io.Writer
	closer  io.Closer
	buf     *bufio.Writer
	pcap    *pcapgo.Writer
	ng      *pcapgo.NgWriter
	stop    chan struct{}
	exited  chan struct{}
	started bool
	err     error // first write error (writer goroutine, then Close)
	comment []byte
}

// New makes a Capture; frames can be recorded into its rings at once, and
// reach a file after Start.
func New(opts Options) (*Capture, error) {
	if opts.Snaplen == 0 {
		opts.Snaplen = 2048
	}
	if opts.RingSlots == 0 {
		opts.RingSlots = 4096
	}
	if opts.Poll == 0 {
		opts.Poll = 2 * time.Millisecond
	}
	if opts.Snaplen < 64 || opts.Snaplen > 65535 {
		return nil, fmt.Errorf("capture: snaplen %d outside 64..65535", opts.Snaplen)
	}
	if opts.RingSlots < 1 || opts.RingSlots > 1<<20 {
		return nil, fmt.Errorf("capture: ring of %d slots outside 1..%d", opts.RingSlots, 1<<20)
	}
	n := 1
	for n < opts.RingSlots {
		n <<= 1
	}
	opts.RingSlots = n
	if opts.Count > 1<<62 {
		return nil, fmt.Errorf("capture: count %d too large", opts.Count)
	}
	c := &Capture{opts: opts, stop: make(chan struct{}), exited: make(chan struct{})}
	c.budget.Store(int64(opts.Count))
	return c, nil
}

// Options returns the options in effect (defaults filled in).
func (c *Capture) Options() Options { return c.opts }

// Create makes a Capture writing to a new file at path; the format comes
// from the suffix unless opts.Format is set to PCAPNG.
func Create(path string, opts Options) (*Capture, error) {
	if FormatOf(path) == PCAPNG {
		opts.Format = PCAPNG
	}
	c, err := New(opts)
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := c.Start(f); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// Start writes the file header to w and starts the writer goroutine. If w
// is an io.Closer, Close closes it.
func (c *Capture) Start(w io.Writer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("capture: started twice")
	}
	c.w = w
	if cl, ok := w.(io.Closer); ok {
		c.closer = cl
	}
	switch c.opts.Format {
	case PCAPNG:
		intf := pcapgo.NgInterface{Name: c.opts.Point, LinkType: layers.LinkTypeEthernet, SnapLength: uint32(c.opts.Snaplen),
			TimestampResolution: 9}
		opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "tygress"}}
		ng, err := pcapgo.NewNgWriterInterface(w, intf, opts)
		if err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if err := ng.Flush(); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		c.ng = ng
	default:
		c.buf = bufio.NewWriterSize(w, 1<<16)
		c.pcap = pcapgo.NewWriterNanos(c.buf)
		if err := c.pcap.WriteFileHeader(uint32(c.opts.Snaplen), layers.LinkTypeEthernet); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
		if err := c.buf.Flush(); err != nil {
			return fmt.Errorf("capture: %w", err)
		}
	}
	c.started = true
	go c.run()
	return nil
}

// Stats returns the counters.
func (c *Capture) Stats() Stats {
	return Stats{Written: c.written.Load(), Dropped: c.dropped.Load()}
}

// Done reports whether a limit was reached (or Close called): rings
// accept no more frames.
func (c *Capture) Done() bool { return c.done.Load() }

// Close stops capturing, writes what the rings still hold, flushes and
// closes the file. Call it after the workers feeding the rings stopped;
// frames they record after Close are ignored.
func (c *Capture) Close() error {
	c.done.Store(true)
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.exited
	err := c.err
	if c.closer != nil {
		if cerr := c.closer.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("capture: %w", cerr)
		}
		c.closer = nil
	}
	return err
}

func (c *Capture) run() {
	defer close(c.exited)
	var deadline <-chan time.Time
	if c.opts.Duration > 0 {
		t := time.NewTimer(c.opts.Duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(c.opts.Poll)
	defer tick.Stop()
	dirty := false
	for {
		if n := c.drain(); n > 0 {
			dirty = true
			select {
			case <-c.stop:
			default:
				continue
			}
		}
		if dirty {
			c.flush()
			dirty = false
		}
		select {
		case <-c.stop:
			c.drain()
			c.flush()
			return
		case <-deadline:
			c.done.Store(true)
		case <-tick.C:
		}
	}
}

func (c *Capture) flush() {
	var err error
	if c.ng != nil {
		err = c.ng.Flush()
	} else {
		err = c.buf.Flush()
	}
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("capture: %w", err)
	}
}

// drain writes every published slot of every ring; it returns how many.
func (c *Capture) drain() int {
	c.mu.Lock()
	rings := c.rings
	c.mu.Unlock()
	total := 0
	for _, r := range rings {
		head := r.head.Load()
		tail := r.tail.Load()
		for t := tail; t != head; t++ {
			i := t & r.mask
			s := &r.slots[i]
			data := r.data[int(i)*r.snap:][:s.capLen]
			c.write(s, data)
		}
		r.tail.Store(head)
		total += int(head - tail)
	}
	return total
}

func (c *Capture) write(s *slot, data []byte) {
	if c.err != nil {
		return
	}
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, s.ts), CaptureLength: len(data), Length: int(s.length)}
	var err error
	if c.ng != nil {
		err = c.ng.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: []string{c.describe(s)}})
	} else {
		err = c.pcap.WritePacket(ci, data)
	}
	if err != nil {
		c.err = fmt.Errorf("capture: %w", err)
		return
	}
	c.written.Add(1)
}

// describe is the pcapng comment of a slot.
func (c *Capture) describe(s *slot) string {
	b := c.comment[:0]
	b = fmt.Appendf(b, "port=%d queue=%d", s.port, s.queue)
	if s.hasVerdict {
		b = fmt.Appendf(b, " verdict=%s", s.verdict)
		switch s.verdict {
		case pipeline.Drop:
			b = fmt.Appendf(b, " reason=%s", s.reason)
		case pipeline.Redirect:
			b = fmt.Appendf(b, " out-port=%d", s.outPort)
		}
	}
	c.comment = b
	return string(b)
}

// slot is one captured frame's metadata; its bytes are in Ring.data.
type slot struct {
	ts         int64
	length     uint32 // on the wire
	capLen     uint32 // kept
	port       uint16
	queue      uint16
	outPort    uint16
	reason     pipeline.Reason
	verdict    pipeline.Verdict
	hasVerdict bool
}

// Ring is one worker's feed into a Capture: single producer (the worker's
// goroutine), single consumer (the Capture's writer).
type Ring struct {
	c     *Capture
	slots []slot
	data  []byte
	snap  int
	mask  uint64

	// Producer side (the worker's goroutine only).
	headLocal uint64
	tailCache uint64
	pendStart uint64
	pendN     int
	_         [64]byte

	head atomic.Uint64 // published by the producer
	_    [56]byte
	tail atomic.Uint64 // published by the writer
}

// NewRing allocates a ring of Options.RingSlots slots for one worker.
func (c *Capture) NewRing() *Ring {
	n := c.opts.RingSlots
	r := &Ring{c: c, slots: make([]slot, n), data: make([]byte, n*c.opts.Snaplen), snap: c.opts.Snaplen, mask: uint64(n - 1)}
	c.mu.Lock()
	c.rings = append(c.rings, r)
	c.mu.Unlock()
	return r
}

// reserve returns how many of n frames may be captured now (ring room and
// count limit), counting the rest as dropped when only the ring is short.
func (r *Ring) reserve(n int) int {
	c := r.c
	if n == 0 || c.done.Load() {
		return 0
	}
	want := n
	if c.opts.Count > 0 {
		for {
			b := c.budget.Load()
			if b <= 0 {
				c.done.Store(true)
				return 0
			}
			want = int(min(int64(n), b))
			free := r.free()
			k := min(want, free)
			if k == 0 || c.budget.CompareAndSwap(b, b-int64(k)) {
				if k < want {
					c.dropped.Add(uint64(want - k))
				}
				if b-int64(k) == 0 {
					c.done.Store(true)
				}
				return k
			}
		}
	}
	k := min(want, r.free())
	if k < want {
		c.dropped.Add(uint64(want - k))
	}
	return k
}

func (r *Ring) free() int {
	size := uint64(len(r.slots))
	if r.headLocal-r.tailCache >= size {
		r.tailCache = r.tail.Load()
	}
	return int(size - (r.headLocal - r.tailCache))
}

// put copies frame f into the next slot (reserved by the caller).
func (r *Ring) put(f *pipeline.Frame, b *pipeline.Batch, ts int64) {
	i := r.headLocal & r.mask
	s := &r.slots[i]
	n := copy(r.data[int(i)*r.snap:][:r.snap], f.Data)
	*s = slot{ts: ts, length: uint32(len(f.Data)), capLen: uint32(n), port: f.InPort, queue: b.Queue}
	r.headLocal++
}

// Record captures the frames (at most what fits) and publishes them at
// once. It is the whole producer API for a tap outside a pipeline (a
// worker's Tap hook); it does not allocate.
func (r *Ring) Record(b *pipeline.Batch, frames []pipeline.Frame) {
	k := r.reserve(len(frames))
	ts := batchTime(b)
	for i := range frames[:k] {
		r.put(&frames[i], b, ts)
	}
	if k > 0 {
		r.head.Store(r.headLocal)
	}
}

// begin copies the first frames of the batch (as many as may be taken)
// before a stage runs; finish adds the verdicts the stage gave and
// publishes them.
func (r *Ring) begin(b *pipeline.Batch) {
	r.pendStart = r.headLocal
	r.pendN = r.reserve(len(b.Frames))
	ts := batchTime(b)
	for i := range b.Frames[:r.pendN] {
		r.put(&b.Frames[i], b, ts)
	}
}

func (r *Ring) finish(b *pipeline.Batch, verdicts bool) {
	if r.pendN == 0 {
		return
	}
	if verdicts {
		// A stage changes verdicts in place and does not reorder or
		// remove frames: frame i of the batch is still slot start+i.
		for i := range b.Frames[:min(r.pendN, len(b.Frames))] {
			f := &b.Frames[i]
			s := &r.slots[(r.pendStart+uint64(i))&r.mask]
			s.hasVerdict, s.verdict, s.reason, s.outPort = true, f.Verdict, f.Reason, f.OutPort
		}
	}
	r.pendN = 0
	r.head.Store(r.headLocal)
}

// recordOut captures the frames that leave with TX or Redirect; with
// dflt set, undecided frames count as getting verdict dflt.
func (r *Ring) recordOut(b *pipeline.Batch, dflt pipeline.Verdict, dfltPort uint16) {
	n := 0
	for i := range b.Frames {
		if out(b.Frames[i].Verdict, dflt) {
			n++
		}
	}
	k := r.reserve(n)
	if k == 0 {
		return
	}
	ts := batchTime(b)
	for i := range b.Frames {
		if k == 0 {
			break
		}
		f := &b.Frames[i]
		if !out(f.Verdict, dflt) {
			continue
		}
		r.put(f, b, ts)
		s := &r.slots[(r.headLocal-1)&r.mask]
		s.hasVerdict, s.verdict, s.outPort = true, f.Verdict, f.OutPort
		if f.Verdict == pipeline.Pass {
			s.verdict, s.outPort = dflt, dfltPort
		}
		k--
	}
	r.head.Store(r.headLocal)
}

func out(v, dflt pipeline.Verdict) bool {
	return v == pipeline.TX || v == pipeline.Redirect || (v == pipeline.Pass && (dflt == pipeline.TX || dflt == pipeline.Redirect))
}

func batchTime(b *pipeline.Batch) int64 {
	if b.Now != 0 {
		return b.Now
	}
	return time.Now().UnixNano()
}
