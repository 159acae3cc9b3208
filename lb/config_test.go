package lb

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseVIP(t *testing.T) {
	for _, c := range []struct {
		in    string
		vip   string
		proto Proto
		err   string
	}{
		{"10.0.0.100:80/tcp", "10.0.0.100:80", TCP, ""},
		{"[fd00::100]:53/udp", "[fd00::100]:53", UDP, ""},
		{"10.0.0.100:80", "", 0, "want addr:port/tcp"},
		{"10.0.0.100/tcp", "", 0, "vip"},
		{"10.0.0.100:80/sctp", "", 0, "unknown protocol"},
		{"fd00::100:53/udp", "", 0, "vip"},
	} {
		vip, p, err := ParseVIP(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseVIP(%q) err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || vip != ap(c.vip) || p != c.proto {
			t.Errorf("ParseVIP(%q) = %v %v %v", c.in, vip, p, err)
		}
	}
}

func TestParseBackend(t *testing.T) {
	for _, c := range []struct {
		in  string
		b   Backend
		err bool
	}{
		{"10.0.1.11", Backend{Addr: ipAddr("10.0.1.11"), Weight: 1}, false},
		{"10.0.1.11:8080,3", Backend{Addr: ipAddr("10.0.1.11"), Port: 8080, Weight: 3}, false},
		{"10.0.1.11,0", Backend{Addr: ipAddr("10.0.1.11"), Weight: 0}, false},
		{"10.0.1.11:8080", Backend{Addr: ipAddr("10.0.1.11"), Port: 8080, Weight: 1}, false},
		{"fd00::11", Backend{Addr: ipAddr("fd00::11"), Weight: 1}, false},
		{"fd00::11,2", Backend{Addr: ipAddr("fd00::11"), Weight: 2}, false},
		{"[fd00::11]", Backend{Addr: ipAddr("fd00::11"), Weight: 1}, false},
		{"[fd00::11]:8443,5", Backend{Addr: ipAddr("fd00::11"), Port: 8443, Weight: 5}, false},
		{"", Backend{}, true},
		{",", Backend{}, true},
		{"10.0.1.11,", Backend{}, true},
		{"10.0.1.11,-1", Backend{}, true},
		{"10.0.1.11,70000", Backend{}, true},
		{"10.0.1.11:0", Backend{}, true},
		{"10.0.1.11:99999", Backend{}, true},
		{"host.example:80", Backend{}, true},
		{"[fd00::11", Backend{}, true},
	} {
		b, err := ParseBackend(c.in)
		if c.err {
			if err == nil {
				t.Errorf("ParseBackend(%q) = %+v, want an error", c.in, b)
			}
			continue
		}
		if err != nil || b != c.b {
			t.Errorf("ParseBackend(%q) = %+v, %v; want %+v", c.in, b, err, c.b)
		}
	}
}

func TestServiceFromFlags(t *testing.T) {
	s, err := ServiceFromFlags("10.0.0.100:80/tcp", []string{"10.0.1.11", "10.0.1.12:8080,3"}, "dsr")
	if err == nil {
		t.Fatalf("dsr with a backend port other than the VIP's accepted: %+v", s)
	}
	s, err = ServiceFromFlags("10.0.0.100:80/tcp", []string{"10.0.1.11", "10.0.1.12:8080,3"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode != NAT || len(s.Backends) != 2 || s.BackendPort(&s.Backends[0]) != 80 || s.BackendPort(&s.Backends[1]) != 8080 {
		t.Fatalf("%+v", s)
	}
	for _, c := range []struct {
		vip      string
		backends []string
		mode     string
		err      string
	}{
		{"10.0.0.100:80/tcp", []string{"fd00::11"}, "nat", "mixed address families"},
		{"[fd00::100]:53/udp", []string{"10.0.1.11"}, "nat", "mixed address families"},
		{"10.0.0.100:80/tcp", []string{"10.0.1.11", "10.0.1.11:80"}, "nat", "duplicate backend 10.0.1.11:80"},
		{"10.0.0.100:80/tcp", []string{"10.0.1.11,100000"}, "nat", "weight"},
		{"10.0.0.100:80/tcp", nil, "nat", "no backends"},
		{"10.0.0.100:80/tcp", []string{"10.0.1.11"}, "fullnat", "unknown mode"},
		{"0.0.0.0:80/tcp", []string{"10.0.1.11"}, "nat", "unicast"},
		{"10.0.0.100:0/tcp", []string{"10.0.1.11"}, "nat", "port must not be 0"},
		{"10.0.0.100:80/tcp", []string{"127.0.0.1"}, "nat", "not a unicast"},
	} {
		_, err := ServiceFromFlags(c.vip, c.backends, c.mode)
		if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s %v %s: err %v, want one line with %q", c.vip, c.backends, c.mode, err, c.err)
		}
	}
}

func TestLoadExample(t *testing.T) {
	c, err := LoadConfig("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Conntrack: TableOptions{Capacity: 262144, TCPTimeout: 15 * time.Minute, TCPClosingTimeout: 10 * time.Second,
			UDPTimeout: 2 * time.Minute, Full: EvictLRU, TouchGranularity: 100 * time.Millisecond},
		Services: []Service{
			{
				VIP: ap("10.0.0.100:80"), Proto: TCP, Mode: NAT, TableSize: 65537,
				HealthCheck: HealthCheck{Kind: HealthTCP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3},
				Backends: []Backend{
					{Addr: ipAddr("10.0.1.11"), Weight: 1},
					{Addr: ipAddr("10.0.1.12"), Port: 8080, Weight: 3},
					{Addr: ipAddr("10.0.1.13"), Weight: 0},
				},
			},
			{
				VIP: ap("[fd00::100]:443"), Proto: UDP, Mode: DSR, QUIC: true, QUICShortCIDLen: 8,
				Backends: []Backend{
					{Addr: ipAddr("fd00:1::11"), Weight: 1},
					{Addr: ipAddr("fd00:1::12"), Weight: 2},
				},
			},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const svc = "[[service]]\nvip = \"10.0.0.100:80\"\nproto = \"tcp\"\n"
	const be = "[[service.backend]]\naddr = \"10.0.1.11\"\n"
	for _, c := range []struct {
		name, in, err string
	}{
		{"unknown key", svc + "colour = \"blue\"\n" + be, `unknown key "service.colour"`},
		{"unknown backend key", svc + be + "wieght = 3\n", `unknown key "service.backend.wieght"`},
		{"unknown table", "[conntrak]\ncapacity = 1\n", `unknown key "conntrak`},
		{"syntax", "[[service]\n", "toml: line 2"},
		{"wrong type", svc + "table_size = \"big\"\n" + be, "table_size"},
		{"not prime", svc + "table_size = 65536\n" + be, "not prime"},
		{"too small", svc + "table_size = 7\n" + be, "below the minimum"},
		{"mixed families", svc + "[[service.backend]]\naddr = \"fd00::1\"\n", "mixed address families"},
		{"duplicate backend", svc + be + be, "duplicate backend"},
		{"duplicate service", svc + be + svc + be, "defined twice"},
		{"bad weight", svc + be + "weight = 70000\n", "weight 70000"},
		{"negative weight", svc + be + "weight = -1\n", "service.backend.weight"},
		{"bad addr", svc + "[[service.backend]]\naddr = \"10.0.1\"\n", "backend 1: addr"},
		{"bad health", svc + be + "[service.health_check]\nkind = \"icmp\"\n", "unknown health check kind"},
		{"health timeout", svc + be + "[service.health_check]\ninterval = \"1s\"\ntimeout = \"2s\"\n", "at most the interval"},
		{"bad duration", svc + be + "[service.health_check]\ninterval = \"soon\"\n", "health_check.interval"},
		{"conntrack timeout", "[conntrack]\nudp_timeout = \"-1s\"\n", "conntrack.udp_timeout"},
		{"conntrack full", "[conntrack]\nwhen_full = \"panic\"\n", "when_full"},
		{"quic on tcp", svc + "quic = true\n" + be, "quic needs protocol udp"},
	} {
		_, err := ParseConfig(strings.NewReader(c.in))
		if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err %v, want one line containing %q", c.name, err, c.err)
		}
	}
}

func TestHealthCheckDefaultKind(t *testing.T) {
	c, err := ParseConfig(strings.NewReader("[[service]]\nvip = \"[fd00::1]:53\"\nproto = \"udp\"\n[service.health_check]\nrise = 5\n[[service.backend]]\naddr = \"fd00::2\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Services[0].HealthCheck
	if h.Kind != HealthUDP || h.Rise != 5 || h.Fall != 3 || h.Interval != 2*time.Second {
		t.Fatalf("%+v", h)
	}
	if c.Services[0].Backends[0].Addr != netip.MustParseAddr("fd00::2") {
		t.Fatal("backend")
	}
}

func TestConfigDefaultsAndBalancer(t *testing.T) {
	s, err := ServiceFromFlags("[fd00::100]:53/udp", []string{"fd00::11", "[fd00::12]:5353,2"}, "nat")
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{Services: []Service{s}}
	if err := c.Validate(); err != nil {
		t.Fatalf("zero Conntrack must mean defaults: %v", err)
	}
	b, err := NewBalancer(c, Options{Resolver: mapResolver{}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Table().Cap() != DefaultTableOptions().Capacity {
		t.Fatalf("capacity %d", b.Table().Cap())
	}
	if _, err := NewBalancer(c, Options{}); err == nil {
		t.Fatal("no resolver accepted")
	}
	ex, err := LoadConfig("testdata/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewBalancer(ex, Options{Resolver: mapResolver{}}); err != nil {
		t.Fatalf("example.toml: %v", err)
	}
}
