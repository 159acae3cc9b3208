//go:build race

package sched_test

// raceEnabled reports whether the tests run under the race detector, which
// slows the ring stress tests down by an order of magnitude.
const raceEnabled = true
