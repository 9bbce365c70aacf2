package main

import (
	"context"
	"errors"
)

// runDataplane is not built yet; its owner replaces this file.
func runDataplane(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
