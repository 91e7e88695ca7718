/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * utf8.h - UTF-8 well-formedness checks for the outputs.
 */
#ifndef DBTAP_UTF8_H
#define DBTAP_UTF8_H

#include <stdbool.h>

/*
 * Length (1..4) of the well-formed UTF-8 sequence at @s, 0 when the byte at @s does not start
 * one (stray continuation, overlong form, surrogate, beyond U+10FFFF, cut short). Reads stop
 * at the terminating NUL, which is never a continuation byte.
 */
int dbtap_utf8_seq_len(const unsigned char *s);

#endif /* DBTAP_UTF8_H */
