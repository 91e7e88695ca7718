// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * utf8.c - UTF-8 well-formedness, shared by the outputs that must never pass invalid bytes on
 * (JSON strings, the terminal).
 */
#include "userspace/utf8.h"

static bool utf8_is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/*
 * Length (1..4) of the well-formed UTF-8 sequence at @s, 0 when the byte at @s does not start
 * one (stray continuation, overlong form, surrogate, beyond U+10FFFF, cut short). Reads stop
 * at the terminating NUL, which is never a continuation byte.
 */
int dbtap_utf8_seq_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xC2) /* continuation byte, or a 2-byte lead that can only be overlong */
		return 0;
	if (c < 0xE0)
		return utf8_is_cont(s[1]) ? 2 : 0;
	if (c < 0xF0) {
		if (!utf8_is_cont(s[1]) || !utf8_is_cont(s[2]))
			return 0;
		if (c == 0xE0 && s[1] < 0xA0) /* overlong */
			return 0;
		if (c == 0xED && s[1] >= 0xA0) /* UTF-16 surrogates U+D800..U+DFFF */
			return 0;
		return 3;
	}
	if (c < 0xF5) {
		if (!utf8_is_cont(s[1]) || !utf8_is_cont(s[2]) || !utf8_is_cont(s[3]))
			return 0;
		if (c == 0xF0 && s[1] < 0x90) /* overlong */
			return 0;
		if (c == 0xF4 && s[1] >= 0x90) /* beyond U+10FFFF */
			return 0;
		return 4;
	}
	return 0;
}
