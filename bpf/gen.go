package bpf

// steer_bpfel.go and steer_bpfel.o are generated from steer.c and
// committed, so building Tygress needs neither clang nor kernel headers.
// Only the little-endian object is built (amd64, arm64 and the other
// little-endian architectures); big-endian hosts are not supported.
// Regenerate with `go generate ./bpf` (Debian packages clang, libbpf-dev and
// linux-libc-dev).

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel steer steer.c -- -I/usr/include/x86_64-linux-gnu -I/usr/include/aarch64-linux-gnu
