//go:build !unix

package main

import (
	"errors"
	"time"
)

// cpuTime is not measured on this system.
func cpuTime() (time.Duration, error) {
	return 0, errors.New("scale: the process's CPU time is measured on unix systems only")
}
