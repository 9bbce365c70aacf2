package main

import "testing"

// TestCrashSafetyPreallocatedLog is TestCrashSafety with 1 MiB log segments,
// so that the writer rolls onto preallocated, zero-filled segment files many
// times a round (--log-preallocate, on by default, prepares the next one
// when the active segment is half full): the kills land while batches are
// written over zeros, each restart must take the zeros after the last
// batch for the end of the log and write on over them, and the torn tail
// the test appends after them (zeros, then garbage) must be cut.
func TestCrashSafetyPreallocatedLog(t *testing.T) {
	crashSafety(t, "--log-segment-bytes", "1048576", "--store-format", "parquet")
}
