package integration_test

import (
	"io"
	"log/slog"
	"syscall"
)

var sigterm = syscall.SIGTERM

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
