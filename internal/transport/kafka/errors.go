package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wirelog/wirelog/internal/transport"
)

// failure is how a produce error is counted and answered.
type failure int

const (
	failOther failure = iota
	failBackpressure
	failUnavailable
	failClosed
	failCanceled
)

func (f failure) String() string {
	switch f {
	case failBackpressure:
		return "backpressure"
	case failUnavailable:
		return "unavailable"
	case failClosed:
		return "closed"
	case failCanceled:
		return "canceled"
	}
	return "error"
}

// classify sorts a franz-go error into what the caller can do about it.
func classify(err error) failure {
	switch {
	case errors.Is(err, kgo.ErrMaxBuffered):
		return failBackpressure
	case errors.Is(err, kgo.ErrClientClosed):
		return failClosed
	case errors.Is(err, context.Canceled):
		return failCanceled
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.EHOSTUNREACH):
		return failUnavailable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return failUnavailable
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && ke.Retriable {
		// Retriable broker errors (NOT_ENOUGH_REPLICAS, NOT_LEADER…) that
		// outlived the client's retries: the cluster cannot take writes.
		return failUnavailable
	}
	// franz-go reports some dial failures as plain strings.
	if s := err.Error(); strings.Contains(s, "unable to dial") || strings.Contains(s, "connection refused") {
		return failUnavailable
	}
	return failOther
}

// wrap turns a franz-go error into one wrapping the transport sentinel the
// caller maps to HTTP (ErrBackpressure → 429, ErrUnavailable → 503).
func wrap(f failure, what string, err error) error {
	switch f {
	case failBackpressure:
		return fmt.Errorf("%s: %w: %v", what, transport.ErrBackpressure, err)
	case failUnavailable:
		return fmt.Errorf("%s: %w: %v", what, transport.ErrUnavailable, err)
	case failClosed:
		return fmt.Errorf("%s: %w", what, transport.ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, err)
}
