//go:build !linux

package sched

import (
	"errors"
	"fmt"
)

// ErrInvalidCPU is returned by Pin for a negative or absurdly large CPU
// number.
var ErrInvalidCPU = errors.New("invalid cpu number")

// Pin is implemented on Linux only; elsewhere it returns
// errors.ErrUnsupported.
func Pin(cpu int) error {
	return fmt.Errorf("pin to cpu %d: %w", cpu, errors.ErrUnsupported)
}

// Unpin is implemented on Linux only; elsewhere it returns
// errors.ErrUnsupported.
func Unpin() error { return fmt.Errorf("unpin: %w", errors.ErrUnsupported) }

// AllowedCPUs is implemented on Linux only; elsewhere it returns
// errors.ErrUnsupported.
func AllowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("allowed cpus: %w", errors.ErrUnsupported)
}
