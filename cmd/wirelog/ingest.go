package main

import (
	"context"
	"errors"
)

// runIngest is not built yet; its owner replaces this file.
func runIngest(ctx context.Context, args []string) error {
	return errors.New("not built yet")
}
