package main

import (
	"context"
	"errors"
)

// runPreflight is not built yet; its owner replaces this file.
func runPreflight(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
