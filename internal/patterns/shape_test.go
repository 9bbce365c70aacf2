package patterns

import (
	"strings"
	"testing"
)

// maskedKey is what shape must hash: the message's tokens as the tree sees
// them (mask), cut at MaxTokens, written the slow, obvious way.
func maskedKey(msg string) string {
	toks := strings.FieldsFunc(msg, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
	var b strings.Builder
	for i, tok := range toks {
		if i == MaxTokens {
			b.WriteString(rest)
			break
		}
		b.WriteString(mask(tok))
		b.WriteByte(0)
	}
	return b.String()
}

// FuzzShapeFollowsMask: two messages share a shape (the miner's cache key
// for a template) exactly when their masked tokens are equal, so the
// single-pass shape never puts lines of different templates together nor
// splits one template's lines.
func FuzzShapeFollowsMask(f *testing.F) {
	for _, s := range [][2]string{
		{"GET /orders/42 status=200 in 5ms", "GET /orders/7 status=404 in 12ms"},
		{"user=u-12 logged in", "user=u-99 logged in"},
		{"k9=5 x", "k8=6 x"},
		{"=5 x", "=6 x"},
		{"a=b=3", "a=c=4"},
		{"a=b c", "a=b  c\t"},
		{"retry 3 of 5", "retry three of five"},
		{"", " \t\n"},
		{"x==1", "x=1"},
		{strings.Repeat("w ", MaxTokens+3), strings.Repeat("w ", MaxTokens) + "other words"},
	} {
		f.Add(s[0], s[1])
	}
	m := New(Options{})
	f.Fuzz(func(t *testing.T, a, b string) {
		// Bytes 0 and 1 are shape's separator and wildcard in the hash: a
		// token made of them can collide with a masked one ("x=\x01" with
		// "x=0"), as it always could; log lines do not carry them.
		if strings.ContainsAny(a+b, "\x00\x01") {
			return
		}
		sameMask := maskedKey(a) == maskedKey(b)
		sameShape := m.shape("t", "svc", a) == m.shape("t", "svc", b)
		if sameMask != sameShape {
			t.Fatalf("%q and %q: masked tokens equal %v, shapes equal %v (masked %q / %q)",
				a, b, sameMask, sameShape, maskedKey(a), maskedKey(b))
		}
	})
}
