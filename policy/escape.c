/*
 * escape.c - how the programs show a string they did not write (an
 * executable path, a name, a note, a path in an error) to a person.
 *
 * Such strings come from callers: a process chooses its own executable
 * path, so a path holding a newline or "\x1b[2K\r" could end an audit
 * row early, erase it on the operator's terminal and print a forged one.
 * Human output therefore shows every byte that a terminal would act on,
 * and every byte that is not text, as a visible escape, and a literal
 * backslash as "\\", so one escaped string reads back as exactly one
 * original: C0 controls and DEL as \n \t \r or \xHH, C1 controls (the
 * bytes of U+0080..U+009F, which some terminals read as ESC sequences)
 * and bytes of invalid UTF-8 as \xHH, and the bidirectional overrides
 * (which reorder what follows on screen) as \uHHHH. Valid printable
 * UTF-8 passes unchanged. JSON output escapes by its own rules instead.
 */
#include "policy/policy.h"

#include <stdio.h>

/*
 * Length of the valid UTF-8 sequence of two or more bytes at s, with its
 * code point in *cp, or 0 when s does not start one (overlong forms,
 * surrogates and code points above U+10FFFF are invalid).
 */
static size_t policy_utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n, i;
	uint32_t c, min;

	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2; c = s[0] & 0x1f; min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3; c = s[0] & 0x0f; min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4; c = s[0] & 0x07; min = 0x10000;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)     /* also stops at the terminating NUL */
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Bidirectional embeddings, overrides and isolates: they reorder the line. */
static bool policy_bidi_control(uint32_t cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0x200e || cp == 0x200f || cp == 0x061c;
}

size_t policy_escape(const char *s, char *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = 0;
	char esc[12];

	while (*p) {
		const char *piece = esc;
		size_t n = 1, plen, i;
		uint32_t cp = 0;

		if (*p == '\\') {
			piece = "\\\\";
		} else if (*p == '\n') {
			piece = "\\n";
		} else if (*p == '\t') {
			piece = "\\t";
		} else if (*p == '\r') {
			piece = "\\r";
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof esc, "\\x%02x", *p);
		} else if (*p < 0x80) {
			piece = NULL;
		} else if ((n = policy_utf8_seq(p, &cp)) == 0) {
			n = 1;                       /* not UTF-8: this one byte */
			snprintf(esc, sizeof esc, "\\x%02x", *p);
		} else if (cp <= 0x9f) {
			n = 1;                       /* C1: \xc2, then its second byte */
			snprintf(esc, sizeof esc, "\\x%02x", *p);
		} else if (policy_bidi_control(cp)) {
			snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
		} else {
			piece = NULL;
		}
		if (!piece) {                        /* the bytes as they are */
			for (i = 0; i < n; i++, len++) {
				if (len + 1 < cap)
					out[len] = (char)p[i];
			}
		} else {
			for (plen = 0; piece[plen]; plen++, len++) {
				if (len + 1 < cap)
					out[len] = piece[plen];
			}
		}
		p += n;
	}
	if (cap)
		out[len < cap ? len : cap - 1] = '\0';
	return len;
}
