package lb

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/tygress/tygress/proto"
)

// Proto is a service's transport protocol.
type Proto uint8

// Protocols (the IP protocol numbers).
const (
	TCP = Proto(proto.IPProtoTCP)
	UDP = Proto(proto.IPProtoUDP)
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProto parses "tcp" or "udp".
func ParseProto(s string) (Proto, error) {
	switch s {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp or udp)", s)
}

// Mode is how packets reach a backend.
type Mode uint8

// Modes.
const (
	// NAT rewrites the destination to the backend and the source of the
	// replies back to the VIP; the replies must come back through the
	// balancer (the backends' route to the clients points at it).
	NAT Mode = iota
	// DSR (direct server return) changes only the destination MAC: the
	// backend holds the VIP on a loopback and answers the client directly.
	// Backends must be on the balancer's link and listen on the VIP port.
	DSR
)

func (m Mode) String() string {
	switch m {
	case NAT:
		return "nat"
	case DSR:
		return "dsr"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses "nat" or "dsr".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "nat":
		return NAT, nil
	case "dsr":
		return DSR, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want nat or dsr)", s)
}

// HealthKind is the kind of a health check.
type HealthKind uint8

// Health check kinds.
const (
	HealthNone HealthKind = iota
	HealthTCP             // a TCP connect to the backend port
	HealthUDP             // a UDP probe to the backend port
)

func (k HealthKind) String() string {
	switch k {
	case HealthNone:
		return "none"
	case HealthTCP:
		return "tcp"
	case HealthUDP:
		return "udp"
	}
	return fmt.Sprintf("health(%d)", uint8(k))
}

// ParseHealthKind parses "none", "tcp" or "udp".
func ParseHealthKind(s string) (HealthKind, error) {
	switch s {
	case "none", "":
		return HealthNone, nil
	case "tcp":
		return HealthTCP, nil
	case "udp":
		return HealthUDP, nil
	}
	return 0, fmt.Errorf("unknown health check kind %q (want tcp, udp or none)", s)
}

// HealthCheck configures the probing of a service's backends: every
// Interval a probe with Timeout; a backend goes up after Rise successes in
// a row and down after Fall failures in a row. (Configuration only: the
// prober is not written yet.)
type HealthCheck struct {
	Kind     HealthKind
	Interval time.Duration
	Timeout  time.Duration
	Rise     int
	Fall     int
}

// DefaultHealthCheck returns a TCP check every 2 s, 1 s timeout, rise 2,
// fall 3.
func DefaultHealthCheck() HealthCheck {
	return HealthCheck{Kind: HealthTCP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3}
}

// Validate checks the settings (nothing to check for HealthNone).
func (h *HealthCheck) Validate() error {
	if h.Kind == HealthNone {
		return nil
	}
	switch {
	case h.Kind > HealthUDP:
		return fmt.Errorf("unknown health check kind %d", h.Kind)
	case h.Interval <= 0:
		return fmt.Errorf("health check interval %v must be positive", h.Interval)
	case h.Timeout <= 0 || h.Timeout > h.Interval:
		return fmt.Errorf("health check timeout %v must be positive and at most the interval %v", h.Timeout, h.Interval)
	case h.Rise < 1 || h.Fall < 1:
		return fmt.Errorf("health check rise %d and fall %d must be at least 1", h.Rise, h.Fall)
	}
	return nil
}

// Backend is one real server of a service.
type Backend struct {
	Addr   netip.Addr
	Port   uint16 // 0: the VIP's port
	Weight uint32 // share of new connections; 0: drained (no new connections)
}

// Service is one virtual service: a VIP, port and protocol balanced over
// backends.
type Service struct {
	VIP       netip.AddrPort
	Proto     Proto
	Mode      Mode
	Backends  []Backend
	TableSize uint32 // Maglev table size, a prime; 0: DefaultTableSize
	// QUIC keys the connections of a UDP service by the packets' QUIC
	// destination connection ID when one can be read (long headers, and
	// short headers with QUICShortCIDLen-byte IDs), so that a client
	// whose address or port changes (NAT rebinding) keeps its backend.
	QUIC            bool
	QUICShortCIDLen int // length of the IDs the backends issue (1 to 20); 0: 8
	HealthCheck     HealthCheck
}

func (s *Service) String() string { return s.VIP.String() + "/" + s.Proto.String() }

// BackendPort returns the port of backend b of s (its own, or the VIP's).
func (s *Service) BackendPort(b *Backend) uint16 {
	if b.Port != 0 {
		return b.Port
	}
	return s.VIP.Port()
}

// Validate checks a service. Errors are one line and name the service.
func (s *Service) Validate() error {
	if err := s.validate(); err != nil {
		return fmt.Errorf("service %s: %w", s, err)
	}
	return nil
}

func (s *Service) validate() error {
	vip := s.VIP.Addr()
	switch {
	case !vip.IsValid():
		return errors.New("missing VIP address")
	case vip.Zone() != "":
		return errors.New("VIP must not have a zone")
	case vip.Is4In6():
		return errors.New("VIP must be IPv4 or IPv6, not IPv4-mapped IPv6")
	case vip.IsUnspecified() || vip.IsMulticast():
		return fmt.Errorf("VIP %s must be a unicast address", vip)
	case s.VIP.Port() == 0:
		return errors.New("VIP port must not be 0")
	case s.Proto != TCP && s.Proto != UDP:
		return fmt.Errorf("unknown protocol %d", s.Proto)
	case s.Mode != NAT && s.Mode != DSR:
		return fmt.Errorf("unknown mode %d", s.Mode)
	case len(s.Backends) == 0:
		return errors.New("no backends")
	case len(s.Backends) > MaxBackends:
		return fmt.Errorf("%d backends, at most %d", len(s.Backends), MaxBackends)
	case s.QUIC && s.Proto != UDP:
		return errors.New("quic needs protocol udp")
	case s.QUICShortCIDLen < 0 || s.QUICShortCIDLen > proto.MaxConnIDLen:
		return fmt.Errorf("quic short connection ID length %d not in [1, %d]", s.QUICShortCIDLen, proto.MaxConnIDLen)
	}
	if s.TableSize != 0 {
		if err := CheckTableSize(s.TableSize); err != nil {
			return err
		}
	}
	type bk struct {
		a netip.Addr
		p uint16
	}
	seen := make(map[bk]bool, len(s.Backends))
	for i := range s.Backends {
		b := &s.Backends[i]
		a := b.Addr
		switch {
		case !a.IsValid():
			return fmt.Errorf("backend %d: missing address", i)
		case a.Zone() != "":
			return fmt.Errorf("backend %s: must not have a zone", a)
		case a.Is4In6():
			return fmt.Errorf("backend %s: IPv4-mapped IPv6, write it as IPv4", a)
		case a.Is4() != vip.Is4():
			return fmt.Errorf("backend %s: mixed address families (VIP is %s)", a, vip)
		case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			return fmt.Errorf("backend %s: not a unicast address", a)
		case b.Weight > MaxWeight:
			return fmt.Errorf("backend %s: weight %d above %d", a, b.Weight, MaxWeight)
		case s.Mode == DSR && b.Port != 0 && b.Port != s.VIP.Port():
			return fmt.Errorf("backend %s: port %d differs from the VIP port, which dsr cannot rewrite", a, b.Port)
		}
		k := bk{a, s.BackendPort(b)}
		if seen[k] {
			return fmt.Errorf("duplicate backend %s", netip.AddrPortFrom(k.a, k.p))
		}
		seen[k] = true
	}
	if err := s.HealthCheck.Validate(); err != nil {
		return err
	}
	return nil
}

// Config is a balancer's configuration: its services and the connection
// table settings.
type Config struct {
	Services []Service
	// Conntrack sizes the connection table; the zero value (Capacity 0)
	// means DefaultTableOptions. The capacity is fixed when the balancer
	// is made; Balancer.Update applies only the timeouts.
	Conntrack TableOptions
}

// Validate checks every service and that no two share VIP, port and
// protocol.
func (c *Config) Validate() error {
	type vk struct {
		a netip.AddrPort
		p Proto
	}
	seen := make(map[vk]bool, len(c.Services))
	for i := range c.Services {
		s := &c.Services[i]
		if err := s.Validate(); err != nil {
			return err
		}
		k := vk{s.VIP, s.Proto}
		if seen[k] {
			return fmt.Errorf("service %s: defined twice", s)
		}
		seen[k] = true
	}
	if c.Conntrack.Capacity != 0 {
		if err := c.Conntrack.check(); err != nil {
			return fmt.Errorf("conntrack: %w", err)
		}
	}
	return nil
}

// ParseVIP parses a --vip flag: "10.0.0.100:80/tcp" or "[fd00::100]:53/udp".
func ParseVIP(s string) (netip.AddrPort, Proto, error) {
	ap, ps, ok := strings.Cut(s, "/")
	if !ok {
		return netip.AddrPort{}, 0, fmt.Errorf("vip %q: want addr:port/tcp or addr:port/udp", s)
	}
	vip, err := netip.ParseAddrPort(ap)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("vip %q: %v", s, err)
	}
	p, err := ParseProto(ps)
	if err != nil {
		return netip.AddrPort{}, 0, fmt.Errorf("vip %q: %v", s, err)
	}
	return vip, p, nil
}

// ParseBackend parses a --backend flag: addr[:port][,weight], the address
// in brackets when it is IPv6 with a port ("10.0.1.11",
// "10.0.1.11:8080,3", "fd00::11", "[fd00::11]:8080", "fd00::11,2").
// The weight defaults to 1; 0 drains the backend.
func ParseBackend(s string) (Backend, error) {
	b := Backend{Weight: 1}
	as := s
	if i := strings.LastIndexByte(s, ','); i >= 0 {
		as = s[:i]
		w, err := strconv.ParseUint(s[i+1:], 10, 32)
		if err != nil || w > MaxWeight {
			return Backend{}, fmt.Errorf("backend %q: weight %q is not an integer in [0, %d]", s, s[i+1:], MaxWeight)
		}
		b.Weight = uint32(w)
	}
	bare := as
	if len(as) >= 2 && as[0] == '[' && as[len(as)-1] == ']' {
		bare = as[1 : len(as)-1]
	}
	if a, err := netip.ParseAddr(bare); err == nil {
		b.Addr = a
		return b, nil
	}
	ap, err := netip.ParseAddrPort(as)
	if err != nil {
		return Backend{}, fmt.Errorf("backend %q: want addr[:port][,weight]: %v", s, err)
	}
	if ap.Port() == 0 {
		return Backend{}, fmt.Errorf("backend %q: port 0 (leave the port out to use the VIP's)", s)
	}
	b.Addr, b.Port = ap.Addr(), ap.Port()
	return b, nil
}

// ServiceFromFlags builds and validates a service from the --vip,
// --backend (repeated) and --mode flags. An empty mode is nat.
func ServiceFromFlags(vip string, backends []string, mode string) (Service, error) {
	var s Service
	var err error
	if s.VIP, s.Proto, err = ParseVIP(vip); err != nil {
		return Service{}, err
	}
	if mode != "" {
		if s.Mode, err = ParseMode(mode); err != nil {
			return Service{}, err
		}
	}
	for _, f := range backends {
		b, err := ParseBackend(f)
		if err != nil {
			return Service{}, err
		}
		s.Backends = append(s.Backends, b)
	}
	return s, s.Validate()
}

// The TOML file's shape; pointers tell an absent key from a zero value.
type fileConfig struct {
	Service   []fileService  `toml:"service"`
	Conntrack *fileConntrack `toml:"conntrack"`
}

type fileService struct {
	VIP             string        `toml:"vip"`
	Proto           string        `toml:"proto"`
	Mode            string        `toml:"mode"`
	TableSize       uint32        `toml:"table_size"`
	QUIC            bool          `toml:"quic"`
	QUICShortCIDLen int           `toml:"quic_short_cid_len"`
	HealthCheck     *fileHealth   `toml:"health_check"`
	Backend         []fileBackend `toml:"backend"`
}

type fileBackend struct {
	Addr   string  `toml:"addr"`
	Port   uint16  `toml:"port"`
	Weight *uint32 `toml:"weight"`
}

type fileHealth struct {
	Kind     string `toml:"kind"`
	Interval string `toml:"interval"`
	Timeout  string `toml:"timeout"`
	Rise     int    `toml:"rise"`
	Fall     int    `toml:"fall"`
}

type fileConntrack struct {
	Capacity          int    `toml:"capacity"`
	TCPTimeout        string `toml:"tcp_timeout"`
	TCPClosingTimeout string `toml:"tcp_closing_timeout"`
	UDPTimeout        string `toml:"udp_timeout"`
	TouchGranularity  string `toml:"touch_granularity"`
	WhenFull          string `toml:"when_full"`
}

// LoadConfig reads and validates a TOML configuration file (see the
// package documentation for the format).
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := ParseConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig reads and validates a TOML configuration. Unknown keys are
// errors, so that a misspelt key is not silently ignored.
func ParseConfig(r io.Reader) (*Config, error) {
	var fc fileConfig
	md, err := toml.NewDecoder(r).Decode(&fc)
	if err != nil {
		return nil, oneLine(err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("unknown key %q", u[0].String())
	}
	c := &Config{Conntrack: DefaultTableOptions()}
	if ct := fc.Conntrack; ct != nil {
		if ct.Capacity != 0 {
			c.Conntrack.Capacity = ct.Capacity
		}
		for _, d := range []struct {
			name string
			s    string
			dst  *time.Duration
		}{
			{"tcp_timeout", ct.TCPTimeout, &c.Conntrack.TCPTimeout},
			{"tcp_closing_timeout", ct.TCPClosingTimeout, &c.Conntrack.TCPClosingTimeout},
			{"udp_timeout", ct.UDPTimeout, &c.Conntrack.UDPTimeout},
			{"touch_granularity", ct.TouchGranularity, &c.Conntrack.TouchGranularity},
		} {
			if d.s == "" {
				continue
			}
			if *d.dst, err = parseDuration(d.s); err != nil {
				return nil, fmt.Errorf("conntrack.%s: %v", d.name, err)
			}
		}
		switch ct.WhenFull {
		case "", "evict":
			c.Conntrack.Full = EvictLRU
		case "reject":
			c.Conntrack.Full = RejectNew
		default:
			return nil, fmt.Errorf("conntrack.when_full: %q is not evict or reject", ct.WhenFull)
		}
	}
	for i, fs := range fc.Service {
		s, err := fs.service()
		if err != nil {
			return nil, fmt.Errorf("service %d (%s): %v", i+1, fs.VIP, err)
		}
		c.Services = append(c.Services, s)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (fs *fileService) service() (Service, error) {
	var s Service
	var err error
	if s.VIP, err = netip.ParseAddrPort(fs.VIP); err != nil {
		return s, fmt.Errorf("vip: %v", err)
	}
	if s.Proto, err = ParseProto(fs.Proto); err != nil {
		return s, err
	}
	if fs.Mode != "" {
		if s.Mode, err = ParseMode(fs.Mode); err != nil {
			return s, err
		}
	}
	s.TableSize = fs.TableSize
	s.QUIC, s.QUICShortCIDLen = fs.QUIC, fs.QUICShortCIDLen
	if h := fs.HealthCheck; h != nil {
		s.HealthCheck = DefaultHealthCheck()
		if s.HealthCheck.Kind, err = ParseHealthKind(h.Kind); err != nil {
			return s, err
		}
		if h.Kind == "" {
			s.HealthCheck.Kind = HealthTCP
			if s.Proto == UDP {
				s.HealthCheck.Kind = HealthUDP
			}
		}
		if h.Interval != "" {
			if s.HealthCheck.Interval, err = parseDuration(h.Interval); err != nil {
				return s, fmt.Errorf("health_check.interval: %v", err)
			}
		}
		if h.Timeout != "" {
			if s.HealthCheck.Timeout, err = parseDuration(h.Timeout); err != nil {
				return s, fmt.Errorf("health_check.timeout: %v", err)
			}
		}
		if h.Rise != 0 {
			s.HealthCheck.Rise = h.Rise
		}
		if h.Fall != 0 {
			s.HealthCheck.Fall = h.Fall
		}
	}
	for j, fb := range fs.Backend {
		b := Backend{Port: fb.Port, Weight: 1}
		if b.Addr, err = netip.ParseAddr(fb.Addr); err != nil {
			return s, fmt.Errorf("backend %d: addr: %v", j+1, err)
		}
		if fb.Weight != nil {
			b.Weight = *fb.Weight
		}
		s.Backends = append(s.Backends, b)
	}
	return s, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("%s must be positive", s)
	}
	return d, nil
}

// oneLine keeps the first line of a (TOML parse) error.
func oneLine(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" {
			return fmt.Errorf("toml: line %d: %s: %s", pe.Position.Line, pe.LastKey, pe.Message)
		}
		return fmt.Errorf("toml: line %d: %s", pe.Position.Line, pe.Message)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(msg)
}
