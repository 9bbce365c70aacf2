package main

import (
	"context"
	"errors"
)

// runLoadgen is not built yet; its owner replaces this file.
func runLoadgen(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
