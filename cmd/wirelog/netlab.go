package main

import (
	"context"
	"errors"
)

// runNetlab is not built yet; its owner replaces this file.
func runNetlab(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
