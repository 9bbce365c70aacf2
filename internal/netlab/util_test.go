package netlab

import (
	"strconv"
	"time"
)

func itoa(i int) string { return strconv.Itoa(i) }
func sleepMS(n int)     { time.Sleep(time.Duration(n) * time.Millisecond) }
