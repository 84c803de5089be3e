//go:build unix

package backtest

import "syscall"

// cpuSeconds returns the CPU time (user and system) the process used so
// far: on a busy machine, the CPU a backtest takes tells more than its
// wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
