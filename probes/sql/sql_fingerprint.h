/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sql_fingerprint.h - literal-insensitive 64-bit fingerprint of SQL text, one byte at a time.
 *
 * Runs inside the BPF programs (driven by bpf_loop, one call per byte) and in userspace tests,
 * so it is plain C with no pointers into the text and no loops. It hashes the token stream of
 * docs/normalization.md: whitespace and comments vanish, literals (strings, numbers, TRUE,
 * FALSE, dollar-quoted text, '?') become one '?' token, unquoted words are case-folded,
 * quoted identifiers and $n parameters are kept verbatim, and in an IN (...) list a literal
 * following "literal ," is dropped with its comma. Queries that normalize to different text
 * get different fingerprints except where the difference is only identifier case or the
 * spacing inside an operator (`<=` vs `< =`); the reverse (same text, different
 * fingerprints) cannot happen, and userspace merges series by normalized text anyway.
 */
#ifndef DBTAP_SQL_FINGERPRINT_H
#define DBTAP_SQL_FINGERPRINT_H

#include "bpf/dbtap.h"

enum sql_fp_dialect {
	SQL_FP_POSTGRESQL = 0,
	SQL_FP_MYSQL = 1,
};

/* Lexer states. */
enum sql_fp_state {
	FPS_NONE = 0,	   /* between tokens */
	FPS_WORD,	   /* inside an unquoted word */
	FPS_NUMBER,	   /* inside a numeric literal */
	FPS_NUMBER_EXP,	   /* just after the e/E of an exponent */
	FPS_HEX,	   /* after 0x */
	FPS_ZERO,	   /* a number that so far is "0" (may become 0x) */
	FPS_DOT,	   /* a '.' that may start a number (.5) */
	FPS_STRING,	   /* inside '...' (or "..." in MySQL) */
	FPS_STRING_QUOTE,  /* saw the closing quote: '' continues the string */
	FPS_STRING_ESC,	   /* after a backslash in an escaping string */
	FPS_QIDENT,	   /* inside "..." (PostgreSQL) or `...` (MySQL) */
	FPS_QIDENT_QUOTE,  /* saw the closing quote: doubled quote continues */
	FPS_MINUS,	   /* a '-' that may start a -- comment */
	FPS_LINE_COMMENT,  /* -- or # to end of line */
	FPS_SLASH,	   /* a '/' that may start a block comment */
	FPS_BLOCK_COMMENT, /* inside / * ... * / (nesting counted) */
	FPS_BLOCK_STAR,	   /* a '*' inside a block comment */
	FPS_BLOCK_SLASH,   /* a '/' inside a block comment (may nest) */
	FPS_DOLLAR,	   /* after '$': parameter, $$ or $tag$ */
	FPS_PARAM,	   /* $digits */
	FPS_DOLLAR_TAG,	   /* inside the tag of $tag$ */
	FPS_DOLLAR_BODY,   /* inside a dollar-quoted body */
	FPS_DOLLAR_END,	   /* matching the closing $tag$ */
	FPS_U_AMP,	   /* saw the word U and '&': U&'...' follows? */
};

/* Kinds of the last token hashed, for IN-list collapsing. */
enum sql_fp_last {
	FPL_NONE = 0,
	FPL_WORD,
	FPL_WORD_IN, /* the keyword IN */
	FPL_LITERAL,
	FPL_OTHER,
};

#define SQL_FP_TAG_MAX 16
#define SQL_FP_SEP     0x1f /* separator hashed after every word/literal/identifier token */

struct sql_fp {
	__u64 hash;	 /* running FNV-1a 64 over the canonical token stream */
	__u64 word_hash; /* FNV-1a 64 of the current word, lowercased */
	__u32 word_len;
	__u8 state;	    /* enum sql_fp_state */
	__u8 last;	    /* enum sql_fp_last */
	__u8 dialect;	    /* enum sql_fp_dialect */
	__u8 quote;	    /* the quote char of the current string or identifier */
	__u8 escapes;	    /* current string honours backslash escapes */
	__u8 depth;	    /* parenthesis depth (saturating) */
	__u8 in_list;	    /* depth of the IN list being collapsed, 0 = none */
	__u8 pending_comma; /* a ',' inside an IN list, not hashed yet */
	__u8 comment_depth;
	__u8 tag_len;	 /* dollar-quote tag length, 0xff = tag too long (matches nothing) */
	__u8 tag_match;	 /* bytes of "tag$" matched so far at FPS_DOLLAR_END */
	__u8 first_char; /* first char of the current word, lowercased */
	__u8 last_char;	 /* the last punctuation hashed (for unary minus) */
	__u8 tag[SQL_FP_TAG_MAX];
};

/* Character classes of the hot path (sql_fp_step_fast): one table load instead of a chain of
 * comparisons per byte. */
#define SQL_FP_C_SPACE 0x01
#define SQL_FP_C_WORD  0x02 /* continues a word: letters, digits, '_', '$', bytes >= 0x80 */
#define SQL_FP_C_NUM   0x04 /* continues a number: digits and '.' */
#define SQL_FP_C_UPPER 0x08
#define SQL_FP_C_START 0x10 /* starts a word: letters, '_', bytes >= 0x80 */

static const __u8 sql_fp_class[256] = {
	[' '] = SQL_FP_C_SPACE,
	['\t'] = SQL_FP_C_SPACE,
	['\n'] = SQL_FP_C_SPACE,
	['\r'] = SQL_FP_C_SPACE,
	['\f'] = SQL_FP_C_SPACE,
	['\v'] = SQL_FP_C_SPACE,
	['a' ... 'z'] = SQL_FP_C_WORD | SQL_FP_C_START,
	['A' ... 'Z'] = SQL_FP_C_WORD | SQL_FP_C_START | SQL_FP_C_UPPER,
	['_'] = SQL_FP_C_WORD | SQL_FP_C_START,
	['$'] = SQL_FP_C_WORD,
	['0' ... '9'] = SQL_FP_C_WORD | SQL_FP_C_NUM,
	['.'] = SQL_FP_C_NUM,
	[0x80 ... 0xff] = SQL_FP_C_WORD | SQL_FP_C_START,
};

static __always_inline __u64 sql_fp_mix(__u64 h, __u8 c)
{
	return (h ^ c) * DBTAP_FNV64_PRIME;
}

static __always_inline int sql_fp_is_space(__u8 c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static __always_inline int sql_fp_is_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

static __always_inline int sql_fp_is_word_start(__u8 c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static __always_inline int sql_fp_is_word_char(__u8 c)
{
	return sql_fp_is_word_start(c) || sql_fp_is_digit(c) || c == '$';
}

static __always_inline int sql_fp_is_hex(__u8 c)
{
	return sql_fp_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static __always_inline __u8 sql_fp_lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* FNV-1a 64 of lowercase ASCII words, for the keyword checks below. */
#define SQL_FP_HASH_IN	  0x08b73807b55c4bbeULL /* "in" */
#define SQL_FP_HASH_TRUE  0x5b5c98ef514dbfa5ULL /* "true" */
#define SQL_FP_HASH_FALSE 0xb5fae2c14238b978ULL /* "false" */

static __always_inline void sql_fp_init(struct sql_fp *fp, enum sql_fp_dialect dialect)
{
	__builtin_memset(fp, 0, sizeof(*fp));
	fp->hash = DBTAP_FNV64_OFFSET;
	fp->dialect = dialect;
}

static __always_inline void sql_fp_flush_comma(struct sql_fp *fp)
{
	if (fp->pending_comma) {
		fp->hash = sql_fp_mix(fp->hash, ',');
		fp->pending_comma = 0;
	}
}

/* A literal token: '?', unless it is collapsed into an IN list's previous literal. */
static __always_inline void sql_fp_literal(struct sql_fp *fp)
{
	if (fp->pending_comma && fp->last == FPL_LITERAL && fp->in_list &&
	    fp->in_list == fp->depth) {
		fp->pending_comma = 0; /* drop ", ?" */
		return;
	}
	sql_fp_flush_comma(fp);
	fp->hash = sql_fp_mix(sql_fp_mix(fp->hash, '?'), SQL_FP_SEP);
	fp->last = FPL_LITERAL;
}

/* Start of any token other than a literal: a deferred IN-list comma is real after all. */
static __always_inline void sql_fp_other(struct sql_fp *fp, __u8 last)
{
	sql_fp_flush_comma(fp);
	fp->last = last;
}

/* The current word ended; hash it (or treat TRUE/FALSE as literals). */
static __always_inline void sql_fp_end_word(struct sql_fp *fp)
{
	if ((fp->word_len == 4 && fp->word_hash == SQL_FP_HASH_TRUE) ||
	    (fp->word_len == 5 && fp->word_hash == SQL_FP_HASH_FALSE)) {
		sql_fp_literal(fp);
	} else {
		sql_fp_other(fp, (fp->word_len == 2 && fp->word_hash == SQL_FP_HASH_IN)
					 ? FPL_WORD_IN
					 : FPL_WORD);
		/* the whole word hash in one FNV step (xor, multiply): a bijection of the
		 * running hash for each word, order-sensitive, one multiply per word */
		fp->hash = (fp->hash ^ fp->word_hash) * DBTAP_FNV64_PRIME;
		fp->hash = sql_fp_mix(fp->hash, SQL_FP_SEP);
	}
	fp->state = FPS_NONE;
}

/* Punctuation and operators: hashed as themselves, no separator (see file comment). */
static __always_inline void sql_fp_punct(struct sql_fp *fp, __u8 c)
{
	if (c == ',' && fp->in_list && fp->in_list == fp->depth && fp->last == FPL_LITERAL &&
	    !fp->pending_comma) {
		fp->pending_comma = 1; /* decided by the next token */
		return;
	}
	if (c == '(') {
		__u8 was_in = fp->last == FPL_WORD_IN;

		sql_fp_other(fp, FPL_OTHER);
		if (fp->depth < 0xff)
			fp->depth++;
		if (was_in)
			fp->in_list = fp->depth; /* the innermost IN list collapses */
	} else if (c == ')') {
		sql_fp_other(fp, FPL_OTHER);
		if (fp->in_list == fp->depth)
			fp->in_list = 0;
		if (fp->depth > 0)
			fp->depth--;
	} else {
		sql_fp_other(fp, FPL_OTHER);
	}
	fp->last_char = c;
	fp->hash = sql_fp_mix(fp->hash, c);
}

static __always_inline void sql_fp_start_string(struct sql_fp *fp, __u8 quote, __u8 escapes)
{
	fp->state = FPS_STRING;
	fp->quote = quote;
	fp->escapes = escapes || fp->dialect == SQL_FP_MYSQL;
}

/*
 * A '-' directly followed by a digit is a sign (part of the literal) when it follows an
 * operator or opening punctuation, a deferred IN-list comma, or nothing at all: `a + -5`,
 * `f(-5)`, `IN (1, -2)`. After a word (keywords included: the kernel cannot tell them from
 * names), literal, parameter, ')' or ']' it is an operator. sql_normalize() follows the same
 * rule.
 */
static __always_inline int sql_fp_unary_context(struct sql_fp *fp)
{
	if (fp->pending_comma || fp->last == FPL_NONE)
		return 1;
	return fp->last == FPL_OTHER && fp->last_char != ')' && fp->last_char != ']' &&
	       fp->last_char != '$';
}

/* A byte in FPS_NONE: start whatever token it begins. */
static __always_inline void sql_fp_dispatch(struct sql_fp *fp, __u8 c)
{
	if (sql_fp_is_space(c))
		return;
	if (sql_fp_is_word_start(c)) {
		fp->state = FPS_WORD;
		fp->word_hash = sql_fp_mix(DBTAP_FNV64_OFFSET, sql_fp_lower(c));
		fp->word_len = 1;
		fp->first_char = sql_fp_lower(c);
		return;
	}
	if (c == '0') {
		fp->state = FPS_ZERO;
		return;
	}
	if (sql_fp_is_digit(c)) {
		fp->state = FPS_NUMBER;
		return;
	}
	switch (c) {
	case '\'':
		sql_fp_start_string(fp, c, 0);
		return;
	case '"':
		if (fp->dialect == SQL_FP_MYSQL) {
			sql_fp_start_string(fp, c, 1);
			return;
		}
		__attribute__((fallthrough)); /* PostgreSQL: a quoted identifier */
	case '`':
		sql_fp_other(fp, FPL_WORD);
		fp->state = FPS_QIDENT;
		fp->quote = c;
		fp->hash = sql_fp_mix(fp->hash, c);
		return;
	case '-':
		fp->state = FPS_MINUS;
		return;
	case '/':
		fp->state = FPS_SLASH;
		return;
	case '#':
		if (fp->dialect == SQL_FP_MYSQL) {
			fp->state = FPS_LINE_COMMENT;
			return;
		}
		break;
	case '.':
		fp->state = FPS_DOT;
		return;
	case '$':
		fp->state = FPS_DOLLAR;
		fp->tag_len = 0;
		return;
	case '?':
		sql_fp_literal(fp);
		return;
	}
	sql_fp_punct(fp, c);
}

/*
 * Feed one byte. States that need one byte of lookahead decide here and, when the byte
 * belongs to the next token, hand it to sql_fp_dispatch() (at most once: no loop).
 */
static __always_inline void sql_fp_step(struct sql_fp *fp, __u8 c)
{
	switch (fp->state) {
	case FPS_NONE:
		sql_fp_dispatch(fp, c);
		return;
	case FPS_WORD:
		if (sql_fp_is_word_char(c)) {
			fp->word_hash = sql_fp_mix(fp->word_hash, sql_fp_lower(c));
			fp->word_len++;
			return;
		}
		if (c == '\'' && fp->word_len == 1) {
			/* E'..' X'..' B'..' N'..': a prefixed string literal */
			__u8 f = fp->first_char;

			if (f == 'e' || f == 'x' || f == 'b' || f == 'n') {
				sql_fp_start_string(fp, c, f == 'e');
				return;
			}
		}
		if (c == '&' && fp->word_len == 1 && fp->first_char == 'u') {
			fp->state = FPS_U_AMP;
			return;
		}
		sql_fp_end_word(fp);
		sql_fp_dispatch(fp, c);
		return;
	case FPS_U_AMP:
		if (c == '\'') {
			sql_fp_start_string(fp, c, 0);
			return;
		}
		sql_fp_end_word(fp); /* the word U */
		sql_fp_punct(fp, '&');
		sql_fp_dispatch(fp, c);
		return;
	case FPS_ZERO:
		if (c == 'x' || c == 'X') {
			fp->state = FPS_HEX;
			return;
		}
		fp->state = FPS_NUMBER;
		__attribute__((fallthrough));
	case FPS_NUMBER:
		if (sql_fp_is_digit(c) || c == '.')
			return;
		if (c == 'e' || c == 'E') {
			fp->state = FPS_NUMBER_EXP;
			return;
		}
		sql_fp_literal(fp);
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_NUMBER_EXP:
		if (sql_fp_is_digit(c) || c == '+' || c == '-') {
			fp->state = FPS_NUMBER;
			return;
		}
		sql_fp_literal(fp);
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_HEX:
		if (sql_fp_is_hex(c))
			return;
		sql_fp_literal(fp);
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_DOT:
		if (sql_fp_is_digit(c)) {
			fp->state = FPS_NUMBER;
			return;
		}
		fp->state = FPS_NONE;
		sql_fp_punct(fp, '.');
		sql_fp_dispatch(fp, c);
		return;
	case FPS_STRING:
		if (c == fp->quote)
			fp->state = FPS_STRING_QUOTE;
		else if (c == '\\' && fp->escapes)
			fp->state = FPS_STRING_ESC;
		return;
	case FPS_STRING_ESC:
		fp->state = FPS_STRING;
		return;
	case FPS_STRING_QUOTE:
		if (c == fp->quote) {
			fp->state = FPS_STRING; /* '' inside a string */
			return;
		}
		sql_fp_literal(fp);
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_QIDENT:
		fp->hash = sql_fp_mix(fp->hash, c);
		if (c == fp->quote)
			fp->state = FPS_QIDENT_QUOTE;
		return;
	case FPS_QIDENT_QUOTE:
		if (c == fp->quote) {
			fp->hash = sql_fp_mix(fp->hash, c);
			fp->state = FPS_QIDENT;
			return;
		}
		fp->hash = sql_fp_mix(fp->hash, SQL_FP_SEP);
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_MINUS:
		if (c == '-') {
			fp->state = FPS_LINE_COMMENT;
			return;
		}
		if (sql_fp_is_digit(c) && sql_fp_unary_context(fp)) {
			fp->state = FPS_NUMBER; /* -5 after an operator is one literal */
			return;
		}
		fp->state = FPS_NONE;
		sql_fp_punct(fp, '-');
		sql_fp_dispatch(fp, c);
		return;
	case FPS_LINE_COMMENT:
		if (c == '\n' || c == '\r')
			fp->state = FPS_NONE;
		return;
	case FPS_SLASH:
		if (c == '*') {
			fp->state = FPS_BLOCK_COMMENT;
			fp->comment_depth = 1;
			return;
		}
		fp->state = FPS_NONE;
		sql_fp_punct(fp, '/');
		sql_fp_dispatch(fp, c);
		return;
	case FPS_BLOCK_COMMENT:
		if (c == '*')
			fp->state = FPS_BLOCK_STAR;
		else if (c == '/' && fp->dialect == SQL_FP_POSTGRESQL)
			fp->state = FPS_BLOCK_SLASH;
		return;
	case FPS_BLOCK_STAR:
		if (c == '/') {
			fp->comment_depth--;
			fp->state = fp->comment_depth ? FPS_BLOCK_COMMENT : FPS_NONE;
		} else if (c != '*') {
			fp->state = FPS_BLOCK_COMMENT;
		}
		return;
	case FPS_BLOCK_SLASH:
		if (c == '*' && fp->comment_depth < 0xff)
			fp->comment_depth++;
		fp->state = c == '/' ? FPS_BLOCK_SLASH : FPS_BLOCK_COMMENT;
		return;
	case FPS_DOLLAR:
		if (sql_fp_is_digit(c)) {
			sql_fp_other(fp, FPL_OTHER);
			fp->last_char = '$';
			fp->hash = sql_fp_mix(sql_fp_mix(fp->hash, '$'), c);
			fp->state = FPS_PARAM;
			return;
		}
		if (c == '$') {
			fp->state = FPS_DOLLAR_BODY; /* $$ */
			return;
		}
		if (sql_fp_is_word_start(c)) {
			fp->tag[0] = c;
			fp->tag_len = 1;
			fp->state = FPS_DOLLAR_TAG;
			return;
		}
		fp->state = FPS_NONE;
		sql_fp_punct(fp, '$');
		sql_fp_dispatch(fp, c);
		return;
	case FPS_PARAM:
		if (sql_fp_is_digit(c)) {
			fp->hash = sql_fp_mix(fp->hash, c);
			return;
		}
		fp->hash = sql_fp_mix(fp->hash, SQL_FP_SEP);
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_DOLLAR_TAG:
		if (c == '$') {
			fp->state = FPS_DOLLAR_BODY;
			return;
		}
		if (sql_fp_is_word_char(c)) {
			if (fp->tag_len < SQL_FP_TAG_MAX)
				fp->tag[fp->tag_len & (SQL_FP_TAG_MAX - 1)] = c;
			if (fp->tag_len != 0xff)
				fp->tag_len++;
			return;
		}
		/* not a dollar quote after all: "$word" hashed as punctuation + word */
		fp->state = FPS_NONE;
		sql_fp_punct(fp, '$');
		fp->state = FPS_NONE;
		sql_fp_dispatch(fp, c);
		return;
	case FPS_DOLLAR_BODY:
		if (c == '$') {
			fp->tag_match = 0;
			fp->state = FPS_DOLLAR_END;
		}
		return;
	case FPS_DOLLAR_END:
		if (fp->tag_match < fp->tag_len && fp->tag_len <= SQL_FP_TAG_MAX &&
		    c == fp->tag[fp->tag_match & (SQL_FP_TAG_MAX - 1)]) {
			fp->tag_match++;
			return;
		}
		if (c == '$' && fp->tag_match == fp->tag_len) {
			sql_fp_literal(fp);
			fp->state = FPS_NONE;
			return;
		}
		fp->state = c == '$' ? FPS_DOLLAR_END : FPS_DOLLAR_BODY;
		fp->tag_match = 0;
		return;
	}
}

/*
 * sql_fp_step() with the common cases first: a byte that continues a word, a number or a
 * run of spaces changes nothing but the word hash, and most bytes of a query are such bytes.
 * Same result as sql_fp_step() for every input (the fingerprint tests run both).
 */
static __always_inline void sql_fp_step_fast(struct sql_fp *fp, __u8 c)
{
	__u8 cls = sql_fp_class[c];

	if (fp->state == FPS_WORD && (cls & SQL_FP_C_WORD)) {
		fp->word_hash =
			sql_fp_mix(fp->word_hash, (cls & SQL_FP_C_UPPER) ? c + ('a' - 'A') : c);
		fp->word_len++;
		return;
	}
	if (fp->state == FPS_WORD && (cls & SQL_FP_C_SPACE)) {
		sql_fp_end_word(fp); /* a space ends a word and starts nothing */
		return;
	}
	if ((fp->state == FPS_NONE && (cls & SQL_FP_C_SPACE)) ||
	    (fp->state == FPS_NUMBER && (cls & SQL_FP_C_NUM)))
		return;
	if (fp->state == FPS_NONE && (cls & SQL_FP_C_START)) {
		__u8 lower = (cls & SQL_FP_C_UPPER) ? c + ('a' - 'A') : c;

		fp->state = FPS_WORD; /* as sql_fp_dispatch() starts a word */
		fp->word_hash = sql_fp_mix(DBTAP_FNV64_OFFSET, lower);
		fp->word_len = 1;
		fp->first_char = lower;
		return;
	}
	sql_fp_step(fp, c);
}

/* End of text: close whatever token is open and return the fingerprint (never 0). */
static __always_inline __u64 sql_fp_finish(struct sql_fp *fp)
{
	switch (fp->state) {
	case FPS_WORD:
		sql_fp_end_word(fp);
		break;
	case FPS_U_AMP:
		sql_fp_end_word(fp);
		sql_fp_punct(fp, '&');
		break;
	case FPS_ZERO:
	case FPS_NUMBER:
	case FPS_NUMBER_EXP:
	case FPS_HEX:
	case FPS_STRING:
	case FPS_STRING_QUOTE:
	case FPS_STRING_ESC:
	case FPS_DOLLAR_BODY:
	case FPS_DOLLAR_END:
		sql_fp_literal(fp);
		break;
	case FPS_DOT:
		sql_fp_punct(fp, '.');
		break;
	case FPS_MINUS:
		sql_fp_punct(fp, '-');
		break;
	case FPS_SLASH:
		sql_fp_punct(fp, '/');
		break;
	case FPS_DOLLAR:
	case FPS_DOLLAR_TAG:
		sql_fp_punct(fp, '$');
		break;
	default:
		break;
	}
	fp->state = FPS_NONE;
	sql_fp_flush_comma(fp);
	return fp->hash ? fp->hash : 1;
}

#endif /* DBTAP_SQL_FINGERPRINT_H */
