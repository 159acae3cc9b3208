package admin

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tygress/tygress/dataplane"
	"github.com/tygress/tygress/pipeline"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tygress_"+name, help, labels, nil)
}

// The data path's metrics. A worker serves queue q of every port, so
// worker counters carry only queue; socket counters carry port and queue.
var (
	descRx          = desc("rx_packets_total", "Frames received from the AF_XDP rx ring.", "port", "queue")
	descTx          = desc("tx_packets_total", "Frames placed on the AF_XDP tx ring.", "port", "queue")
	descDrops       = desc("drops_total", "Frames the workers dropped, by reason.", "queue", "reason")
	descRxRingFull  = desc("xsk_rx_ring_full_total", "Frames the kernel dropped because the rx ring was full.", "port", "queue")
	descFillEmpty   = desc("xsk_fill_ring_empty_total", "Times a frame arrived while the fill ring was empty.", "port", "queue")
	descRxDropped   = desc("xsk_rx_dropped_total", "Frames the kernel dropped for other reasons than invalid descriptors.", "port", "queue")
	descRxInvalid   = desc("xsk_rx_invalid_descriptors_total", "Invalid rx descriptors (our checks and the kernel's).", "port", "queue")
	descTxInvalid   = desc("xsk_tx_invalid_descriptors_total", "Invalid tx descriptors (our checks and the kernel's).", "port", "queue")
	descTxRingFull  = desc("xsk_tx_ring_full_total", "Descriptors that found the tx ring full.", "port", "queue")
	descTxKicks     = desc("xsk_tx_kicks_total", "sendto() wakeups for transmission.", "port", "queue")
	descRxWakeups   = desc("xsk_rx_wakeups_total", "poll()/recvfrom() wakeups for reception or the fill ring.", "port", "queue")
	descBatches     = desc("worker_batches_total", "Steps of a worker that received frames.", "queue")
	descPolls       = desc("worker_polls_total", "poll() calls a worker made while idle.", "queue")
	descHandoffIn   = desc("worker_handoff_in_total", "Frames other shards handed to this one.", "queue")
	descStageIn     = desc("stage_packets_total", "Frames a pipeline stage was given (stage \"default\": frames no stage decided).", "queue", "stage")
	descStageVerd   = desc("stage_verdicts_total", "Verdicts a pipeline stage gave.", "queue", "stage", "verdict")
	descStageDrops  = desc("stage_drops_total", "Drops a pipeline stage decided, by reason.", "queue", "stage", "reason")
	descXDPSeen     = desc("xdp_packets_total", "Frames the steering XDP program ran on.", "port")
	descXDPRedirect = desc("xdp_redirected_packets_total", "Frames the steering program redirected to an AF_XDP socket.", "port")
	descXDPPassed   = desc("xdp_passed_packets_total", "Frames the steering program passed to the kernel stack.", "port")
	descPortInfo    = desc("port_info", "One per port: its attach and bind modes.", "port", "ifindex", "xdp_mode", "bind_mode")
)

// DataPathCollector exports a data path's counters at scrape time. It
// reads the same atomics as DataPath.Snapshot, per port and queue, plus
// the kernel's XDP_STATISTICS (one getsockopt per socket per scrape) and
// the steering programs' counters. Zero drop and verdict series are left
// out.
type DataPathCollector struct {
	dp *dataplane.DataPath
}

// NewDataPathCollector returns the collector of dp.
func NewDataPathCollector(dp *dataplane.DataPath) *DataPathCollector {
	return &DataPathCollector{dp: dp}
}

// Describe implements prometheus.Collector.
func (c *DataPathCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRx, descTx, descDrops, descRxRingFull, descFillEmpty, descRxDropped, descRxInvalid,
		descTxInvalid, descTxRingFull, descTxKicks, descRxWakeups, descBatches, descPolls, descHandoffIn, descStageIn, descStageVerd,
		descStageDrops, descXDPSeen, descXDPRedirect, descXDPPassed, descPortInfo} {
		ch <- d
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

// Collect implements prometheus.Collector.
func (c *DataPathCollector) Collect(ch chan<- prometheus.Metric) {
	dp := c.dp
	for _, p := range dp.Ports {
		xdp := p.XDPMode
		if xdp == "" {
			xdp = "none"
		}
		bind := "none"
		if len(p.Sockets) > 0 {
			bind = p.Sockets[0].Mode()
		}
		ch <- prometheus.MustNewConstMetric(descPortInfo, prometheus.GaugeValue, 1, p.Name, strconv.Itoa(p.Ifindex), xdp, bind)
		for _, s := range p.Sockets {
			q := strconv.Itoa(s.Queue())
			st := s.Stats()
			counter(ch, descRx, st.RxFrames, p.Name, q)
			counter(ch, descTx, st.TxFrames, p.Name, q)
			counter(ch, descTxRingFull, st.TxRingFull, p.Name, q)
			counter(ch, descTxKicks, st.TxKicks, p.Name, q)
			counter(ch, descRxWakeups, st.RxWakeups, p.Name, q)
			rxInv, txInv := st.RxInvalid, st.TxInvalid
			if ks, err := s.KernelStats(); err == nil {
				counter(ch, descRxRingFull, ks.RxRingFull, p.Name, q)
				counter(ch, descFillEmpty, ks.RxFillRingEmpty, p.Name, q)
				counter(ch, descRxDropped, ks.RxDropped, p.Name, q)
				rxInv += ks.RxInvalidDescs
				txInv += ks.TxInvalidDescs
			}
			counter(ch, descRxInvalid, rxInv, p.Name, q)
			counter(ch, descTxInvalid, txInv, p.Name, q)
		}
		if p.Steer != nil {
			if sc, err := p.Steer.Counters(); err == nil {
				counter(ch, descXDPSeen, sc.Seen, p.Name)
				counter(ch, descXDPRedirect, sc.Redirected, p.Name)
				counter(ch, descXDPPassed, sc.Passed(), p.Name)
			}
		}
	}
	for qi, w := range dp.Workers {
		q := strconv.Itoa(qi)
		ws := w.Stats()
		counter(ch, descBatches, ws.Batches, q)
		counter(ch, descPolls, ws.Polls, q)
		counter(ch, descHandoffIn, ws.HandoffIn, q)
		for r, n := range ws.Drops {
			if n != 0 {
				counter(ch, descDrops, n, q, pipeline.Reason(r).String())
			}
		}
		collectStages(ch, q, w.Pipeline().Counters())
	}
}

// collectStages exports one worker's stage counters. Stage names repeat
// only when a pipeline holds two stages of one type: those get "#index".
func collectStages(ch chan<- prometheus.Metric, q string, cs []pipeline.StageCounters) {
	seen := make(map[string]int, len(cs))
	for _, s := range cs {
		seen[s.Name]++
	}
	for i, s := range cs {
		name := s.Name
		if seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, i)
		}
		counter(ch, descStageIn, s.In, q, name)
		for v, n := range s.Verdicts {
			if n != 0 {
				counter(ch, descStageVerd, n, q, name, pipeline.Verdict(v).String())
			}
		}
		for r, n := range s.Drops {
			if n != 0 {
				counter(ch, descStageDrops, n, q, name, pipeline.Reason(r).String())
			}
		}
	}
}
