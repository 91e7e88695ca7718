// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sql_normalize.c - SQL text to sanitized text, operation, collection and summary.
 *
 * Three passes over the input, each linear: the lexer cuts the text into tokens by the rules
 * in docs/normalization.md (the rules the kernel fingerprint follows), the printer writes them
 * back with literals replaced and canonical spacing, and the analyzer reads the first
 * statement's tokens for db.operation.name, db.collection.name and db.query.summary.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "probes/sql/sql_normalize.h"

/* ---- characters ---- */

static bool is_space(unsigned char c)
{
	/* NUL counts as whitespace: it must never reach the NUL-terminated output */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
	       c == '\0';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* [A-Za-z_\x80-\xff]: bytes of multi-byte UTF-8 (valid or not) are identifier bytes */
static bool is_ident_start(unsigned char c)
{
	return is_alpha(c) || c == '_' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
	return is_ident_start(c) || is_digit(c) || c == '$';
}

/* a dollar-quote tag byte: an identifier byte other than '$' */
static bool is_tag_char(unsigned char c)
{
	return is_ident_start(c) || is_digit(c);
}

static char ascii_upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* ---- keywords ---- */

#define KW_RESERVED (1 << 0) /* never a table name where one is expected */
#define KW_FUNC	    (1 << 1) /* call syntax: no space before its '(' */
#define KW_VALUE    (1 << 2) /* ends an operand: a '-' after it is binary */
#define KW_SUBQUERY (1 << 3) /* with KW_FUNC: its '(' holds a subquery, not arguments */

#define KW_MAX_LEN 32 /* longer words are never keywords */

struct sql_keyword {
	const char *name;
	unsigned char flags;
};

/* Upper case, sorted by strcmp() (bsearch). Words that are common column names are left out. */
static const struct sql_keyword sql_keywords[] = {
	{"ABORT", KW_RESERVED},
	{"ADD", KW_RESERVED},
	{"ALL", KW_RESERVED}, /* UNION ALL (...) */
	{"ALTER", KW_RESERVED},
	{"ANALYZE", KW_RESERVED},
	{"AND", KW_RESERVED},
	{"ANY", KW_RESERVED | KW_FUNC | KW_SUBQUERY},
	{"ARRAY", KW_RESERVED | KW_FUNC | KW_SUBQUERY},
	{"AS", KW_RESERVED},
	{"ASC", KW_RESERVED},
	{"BEGIN", KW_RESERVED},
	{"BETWEEN", KW_RESERVED},
	{"BIGINT", KW_FUNC},
	{"BOOLEAN", 0},
	{"BOTH", KW_RESERVED},
	{"BY", KW_RESERVED},
	{"CALL", KW_RESERVED},
	{"CASCADE", KW_RESERVED},
	{"CASE", KW_RESERVED},
	{"CAST", KW_RESERVED | KW_FUNC},
	{"CHAR", KW_FUNC},
	{"CHARACTER", KW_FUNC},
	{"CHECK", KW_RESERVED},
	{"CHECKPOINT", KW_RESERVED},
	{"CLOSE", KW_RESERVED},
	{"CLUSTER", KW_RESERVED},
	{"COALESCE", KW_RESERVED | KW_FUNC},
	{"COLLATE", KW_RESERVED},
	{"COLUMN", KW_RESERVED},
	{"COMMIT", KW_RESERVED},
	{"COMMITTED", 0},
	{"CONCURRENTLY", KW_RESERVED},
	{"CONFLICT", KW_RESERVED},
	{"CONSTRAINT", KW_RESERVED},
	{"COPY", KW_RESERVED},
	{"CREATE", KW_RESERVED},
	{"CROSS", KW_RESERVED},
	{"CURRENT_DATE", KW_RESERVED | KW_VALUE},
	{"CURRENT_TIME", KW_RESERVED | KW_VALUE},
	{"CURRENT_TIMESTAMP", KW_RESERVED | KW_VALUE},
	{"CURRENT_USER", KW_RESERVED | KW_VALUE},
	{"DATABASE", 0},
	{"DATE", KW_FUNC},
	{"DEALLOCATE", KW_RESERVED},
	{"DECIMAL", KW_FUNC},
	{"DECLARE", KW_RESERVED},
	{"DEFAULT", KW_RESERVED | KW_VALUE},
	{"DEFERRABLE", KW_RESERVED},
	{"DELAYED", KW_RESERVED},
	{"DELETE", KW_RESERVED},
	{"DESC", KW_RESERVED},
	{"DESCRIBE", KW_RESERVED},
	{"DISCARD", KW_RESERVED},
	{"DISTINCT", KW_RESERVED},
	{"DIV", KW_RESERVED},
	{"DO", KW_RESERVED},
	{"DOUBLE", 0},
	{"DROP", KW_RESERVED},
	{"DUAL", KW_RESERVED},
	{"DUPLICATE", KW_RESERVED},
	{"ELSE", KW_RESERVED},
	{"END", KW_RESERVED | KW_VALUE},
	{"ESCAPE", KW_RESERVED},
	{"EXCEPT", KW_RESERVED},
	{"EXECUTE", KW_RESERVED},
	{"EXISTS", KW_RESERVED},
	{"EXPLAIN", KW_RESERVED},
	{"EXTENSION", 0},
	{"EXTRACT", KW_RESERVED | KW_FUNC},
	{"FETCH", KW_RESERVED},
	{"FILTER", KW_RESERVED},
	{"FLUSH", KW_RESERVED},
	{"FOLLOWING", 0},
	{"FOR", KW_RESERVED},
	{"FOREIGN", KW_RESERVED},
	{"FROM", KW_RESERVED},
	{"FULL", KW_RESERVED},
	{"FUNCTION", 0},
	{"GRANT", KW_RESERVED},
	{"GREATEST", KW_RESERVED | KW_FUNC},
	{"GROUP", KW_RESERVED},
	{"HAVING", KW_RESERVED},
	{"HIGH_PRIORITY", KW_RESERVED},
	{"IF", KW_RESERVED},
	{"IGNORE", KW_RESERVED},
	{"ILIKE", KW_RESERVED},
	{"IN", KW_RESERVED},
	{"INDEX", 0},
	{"INNER", KW_RESERVED},
	{"INSERT", KW_RESERVED},
	{"INTEGER", KW_FUNC},
	{"INTERSECT", KW_RESERVED},
	{"INTERVAL", KW_FUNC},
	{"INTO", KW_RESERVED},
	{"IS", KW_RESERVED},
	{"ISOLATION", KW_RESERVED},
	{"JOIN", KW_RESERVED},
	{"KILL", KW_RESERVED},
	{"LATERAL", KW_RESERVED},
	{"LEADING", KW_RESERVED},
	{"LEAST", KW_RESERVED | KW_FUNC},
	{"LEFT", KW_RESERVED | KW_FUNC},
	{"LEVEL", 0},
	{"LIKE", KW_RESERVED},
	{"LIMIT", KW_RESERVED},
	{"LISTEN", KW_RESERVED},
	{"LOCALTIME", KW_RESERVED | KW_VALUE},
	{"LOCALTIMESTAMP", KW_RESERVED | KW_VALUE},
	{"LOCK", KW_RESERVED},
	{"LOW_PRIORITY", KW_RESERVED},
	{"MATERIALIZED", KW_RESERVED},
	{"MERGE", KW_RESERVED},
	{"NAMES", KW_RESERVED},
	{"NATURAL", KW_RESERVED},
	{"NOT", KW_RESERVED},
	{"NOTHING", KW_RESERVED},
	{"NOTIFY", KW_RESERVED},
	{"NOWAIT", KW_RESERVED},
	{"NULL", KW_RESERVED | KW_VALUE},
	{"NULLIF", KW_RESERVED | KW_FUNC},
	{"NULLS", KW_RESERVED},
	{"NUMERIC", KW_FUNC},
	{"OF", KW_RESERVED},
	{"OFFSET", KW_RESERVED},
	{"ON", KW_RESERVED},
	{"ONLY", KW_RESERVED},
	{"OPTIMIZE", KW_RESERVED},
	{"OR", KW_RESERVED},
	{"ORDER", KW_RESERVED},
	{"OUTER", KW_RESERVED},
	{"OVER", KW_RESERVED},
	{"OVERLAY", KW_RESERVED | KW_FUNC},
	{"PARTITION", KW_RESERVED},
	{"POSITION", KW_RESERVED | KW_FUNC},
	{"PRECEDING", 0},
	{"PRECISION", 0},
	{"PREPARE", KW_RESERVED},
	{"PRIMARY", KW_RESERVED},
	{"PROCEDURE", 0},
	{"READ", 0},
	{"RECURSIVE", KW_RESERVED},
	{"REFERENCES", KW_RESERVED},
	{"REFRESH", KW_RESERVED},
	{"REGEXP", KW_RESERVED},
	{"REINDEX", KW_RESERVED},
	{"RELEASE", KW_RESERVED},
	{"RENAME", KW_RESERVED},
	{"REPEATABLE", 0},
	{"REPLACE", KW_RESERVED | KW_FUNC},
	{"RESET", KW_RESERVED},
	{"RESTRICT", KW_RESERVED},
	{"RETURNING", KW_RESERVED},
	{"RETURNS", KW_RESERVED},
	{"REVOKE", KW_RESERVED},
	{"RIGHT", KW_RESERVED | KW_FUNC},
	{"RLIKE", KW_RESERVED},
	{"ROLLBACK", KW_RESERVED},
	{"ROW", KW_FUNC},
	{"ROWS", KW_RESERVED},
	{"SAVEPOINT", KW_RESERVED},
	{"SCHEMA", 0},
	{"SELECT", KW_RESERVED},
	{"SEQUENCE", 0},
	{"SERIALIZABLE", 0},
	{"SESSION", 0},
	{"SESSION_USER", KW_RESERVED | KW_VALUE},
	{"SET", KW_RESERVED},
	{"SHARE", KW_RESERVED},
	{"SHOW", KW_RESERVED},
	{"SIMILAR", KW_RESERVED},
	{"SMALLINT", KW_FUNC},
	{"SOME", KW_RESERVED | KW_FUNC | KW_SUBQUERY},
	{"SQL_CALC_FOUND_ROWS", KW_RESERVED},
	{"START", KW_RESERVED},
	{"STDIN", KW_RESERVED},
	{"STDOUT", KW_RESERVED},
	{"STRAIGHT_JOIN", KW_RESERVED},
	{"SUBSTRING", KW_RESERVED | KW_FUNC},
	{"TABLE", KW_RESERVED},
	{"TABLES", KW_RESERVED},
	{"TABLESAMPLE", KW_RESERVED},
	{"TEMP", 0},
	{"TEMPORARY", 0},
	{"THEN", KW_RESERVED},
	{"TIME", KW_FUNC},
	{"TIMESTAMP", KW_FUNC},
	{"TO", KW_RESERVED},
	{"TRAILING", KW_RESERVED},
	{"TRANSACTION", 0},
	{"TRIGGER", 0},
	{"TRIM", KW_RESERVED | KW_FUNC},
	{"TRUNCATE", KW_RESERVED},
	{"UNCOMMITTED", 0},
	{"UNION", KW_RESERVED},
	{"UNIQUE", KW_RESERVED},
	{"UNLISTEN", KW_RESERVED},
	{"UNLOCK", KW_RESERVED},
	{"UNLOGGED", 0},
	{"UPDATE", KW_RESERVED},
	{"USE", KW_RESERVED},
	{"USER", KW_RESERVED | KW_VALUE},
	{"USING", KW_RESERVED},
	{"VACUUM", KW_RESERVED},
	{"VALUES", KW_RESERVED},
	{"VARCHAR", KW_FUNC},
	{"VARYING", 0},
	{"VIEW", 0},
	{"WHEN", KW_RESERVED},
	{"WHERE", KW_RESERVED},
	{"WINDOW", KW_RESERVED},
	{"WITH", KW_RESERVED},
	{"WITHIN", KW_RESERVED},
	{"WITHOUT", 0},
	{"WORK", 0},
	{"WRITE", 0},
	{"XOR", KW_RESERVED},
	{"ZONE", 0},
};

#define N_KEYWORDS (sizeof(sql_keywords) / sizeof(sql_keywords[0]))

/* The keyword spelled by @word (any case), or NULL. */
static const struct sql_keyword *keyword_lookup(const char *word, size_t len)
{
	char up[KW_MAX_LEN + 1];
	size_t lo = 0, hi = N_KEYWORDS;

	if (len == 0 || len > KW_MAX_LEN)
		return NULL;
	for (size_t i = 0; i < len; i++)
		up[i] = ascii_upper(word[i]);
	up[len] = '\0';
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(up, sql_keywords[mid].name);

		if (cmp == 0)
			return &sql_keywords[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- lexer ---- */

enum tok_kind {
	TOK_WORD,    /* identifier or keyword */
	TOK_QIDENT,  /* quoted identifier: "x" (PostgreSQL), `x` (MySQL), kept verbatim */
	TOK_LITERAL, /* string, number, TRUE/FALSE, '?' placeholder: printed '?' */
	TOK_PARAM,   /* $1: kept verbatim */
	TOK_OP,	     /* operator or punctuation: kept verbatim */
};

struct sql_token {
	size_t start;	     /* offset in the input */
	size_t len;	     /* bytes */
	size_t pair;	     /* for '(': index of its ')', or the token count when unclosed */
	unsigned char kind;  /* enum tok_kind */
	unsigned char flags; /* KW_* when keyword */
	bool keyword;	     /* TOK_WORD in sql_keywords[] */
};

struct sql_tokens {
	struct sql_token *v;
	size_t n;
	size_t cap;
	size_t n_open; /* '(' and '[' tokens: bounds the nesting depth */
};

/* Multi-byte operators, longest first; everything else is one byte a token. */
static const char *const sql_ops3[] = {"->>", "#>>", "<=>", "<->", "<#>", "!~*"};
static const char *const sql_ops2[] = {"<=", ">=", "<>", "!=", "::", "||", "->", "#>", "@>",
				       "<@", ":=", "<<", ">>", "&&", "=>", "!~", "~*", "@@"};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Bytes of the operator at @s (@avail bytes left), at least 1. */
static size_t op_len(const char *s, size_t avail, enum sql_dialect dialect)
{
	for (size_t i = 0; i < ARRAY_LEN(sql_ops3) && avail >= 3; i++) {
		/* in MySQL '#' starts a comment, so it cannot be inside an operator */
		if (dialect == SQL_DIALECT_MYSQL && memchr(sql_ops3[i], '#', 3))
			continue;
		if (memcmp(s, sql_ops3[i], 3) == 0)
			return 3;
	}
	for (size_t i = 0; i < ARRAY_LEN(sql_ops2) && avail >= 2; i++) {
		if (memcmp(s, sql_ops2[i], 2) == 0)
			return 2;
	}
	return 1;
}

/*
 * End of a quoted run opened at @p by the quote byte s[@p]: a doubled quote is an escaped
 * quote; with @backslash a backslash escapes the next byte. Unterminated: the end of input.
 */
static size_t skip_quoted(const char *s, size_t len, size_t p, bool backslash)
{
	char q = s[p];
	size_t i = p + 1;

	while (i < len) {
		if (backslash && s[i] == '\\') {
			i += 2;
			continue;
		}
		if (s[i] == q) {
			if (i + 1 < len && s[i + 1] == q) {
				i += 2;
				continue;
			}
			return i + 1;
		}
		i++;
	}
	return len;
}

/* End of a block comment opened at @p (slash, star); PostgreSQL nests them. */
static size_t skip_block_comment(const char *s, size_t len, size_t p, bool nested)
{
	size_t depth = 1, i = p + 2;

	while (i < len) {
		if (s[i] == '*' && i + 1 < len && s[i + 1] == '/') {
			i += 2;
			if (--depth == 0)
				return i;
			continue;
		}
		if (nested && s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			depth++;
			i += 2;
			continue;
		}
		i++;
	}
	return len;
}

/*
 * A dollar quote opened at @p: "$$" or "$tag$". Sets *@ret_end past the closing delimiter (the
 * end of input when unclosed) and returns true; false when @p does not open one.
 */
static bool dollar_quote(const char *s, size_t len, size_t p, size_t *ret_end)
{
	size_t i = p + 1, tag_len;
	const char *close;

	if (i < len && is_digit((unsigned char)s[i]))
		return false; /* $1 is a parameter */
	while (i < len && is_tag_char((unsigned char)s[i]))
		i++;
	if (i >= len || s[i] != '$')
		return false;
	tag_len = i - p + 1; /* "$tag$" */
	/* memmem is linear (two-way): no quadratic search on adversarial tags */
	close = memmem(s + i + 1, len - i - 1, s + p, tag_len);
	*ret_end = close ? (size_t)(close - s) + tag_len : len;
	return true;
}

/* End of a number starting at @p: digits, '.', exponents; 0x followed by letters and digits. */
static size_t skip_number(const char *s, size_t len, size_t p)
{
	size_t i = p;

	if (s[p] == '0' && p + 1 < len && (s[p + 1] == 'x' || s[p + 1] == 'X')) {
		i = p + 2;
		while (i < len && (is_alpha((unsigned char)s[i]) || is_digit((unsigned char)s[i])))
			i++;
		return i;
	}
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (is_digit(c) || c == '.') {
			i++;
		} else if (c == 'e' || c == 'E') {
			size_t j = i + 1;

			if (j < len && (s[j] == '+' || s[j] == '-'))
				j++;
			if (j >= len || !is_digit((unsigned char)s[j]))
				break; /* not an exponent: the 'e' starts an identifier */
			i = j;
		} else {
			break;
		}
	}
	return i;
}

static int tokens_push(struct sql_tokens *t, size_t start, size_t len, enum tok_kind kind)
{
	struct sql_token *tok;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct sql_token *v;

		if (cap > SIZE_MAX / sizeof(*v))
			return -ENOMEM;
		v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	tok = &t->v[t->n++];
	tok->start = start;
	tok->len = len;
	tok->pair = 0;
	tok->kind = kind;
	tok->flags = 0;
	tok->keyword = false;
	return 0;
}

/* A word just lexed at @p: the single-letter string prefixes E X B N, and U& */
static bool string_prefix(const char *s, size_t len, size_t p, size_t word_len, size_t *ret_quote)
{
	char c = ascii_upper(s[p]);

	if (word_len != 1)
		return false;
	if ((c == 'E' || c == 'X' || c == 'B' || c == 'N') && p + 1 < len && s[p + 1] == '\'') {
		*ret_quote = p + 1;
		return true;
	}
	if (c == 'U' && p + 2 < len && s[p + 1] == '&' && s[p + 2] == '\'') {
		*ret_quote = p + 2;
		return true;
	}
	return false;
}

/* Cut @s into tokens (rules 1-9 of docs/normalization.md). */
static int tokenize(const char *s, size_t len, enum sql_dialect dialect, struct sql_tokens *ret)
{
	bool mysql = dialect == SQL_DIALECT_MYSQL;
	size_t p = 0;
	int err;

	while (p < len) {
		unsigned char c = (unsigned char)s[p];
		unsigned char next = p + 1 < len ? (unsigned char)s[p + 1] : 0;
		size_t end, quote;
		enum tok_kind kind = TOK_OP;

		if (is_space(c)) {
			p++;
			continue;
		}
		if ((c == '-' && next == '-') || (mysql && c == '#')) {
			const char *nl = memchr(s + p, '\n', len - p);

			p = nl ? (size_t)(nl - s) + 1 : len;
			continue;
		}
		if (c == '/' && next == '*') {
			p = skip_block_comment(s, len, p, !mysql);
			continue;
		}

		if (c == '\'') {
			end = skip_quoted(s, len, p, mysql);
			kind = TOK_LITERAL;
		} else if (c == '"') {
			end = skip_quoted(s, len, p, mysql);
			kind = mysql ? TOK_LITERAL : TOK_QIDENT;
		} else if (c == '`' && mysql) {
			end = skip_quoted(s, len, p, false);
			kind = TOK_QIDENT;
		} else if (c == '$' && is_digit(next)) {
			end = p + 1;
			while (end < len && is_digit((unsigned char)s[end]))
				end++;
			kind = TOK_PARAM;
		} else if (c == '$' && dollar_quote(s, len, p, &end)) {
			kind = TOK_LITERAL;
		} else if (is_digit(c) || (c == '.' && is_digit(next))) {
			end = skip_number(s, len, p);
			kind = TOK_LITERAL;
		} else if (c == '?') {
			end = p + 1;
			kind = TOK_LITERAL;
		} else if (is_ident_start(c)) {
			end = p + 1;
			while (end < len && is_ident_char((unsigned char)s[end]))
				end++;
			if (string_prefix(s, len, p, end - p, &quote)) {
				/* E'..' takes backslash escapes; MySQL strings always do */
				end = skip_quoted(s, len, quote, mysql || ascii_upper(s[p]) == 'E');
				kind = TOK_LITERAL;
			} else if ((end - p == 4 && strncasecmp(s + p, "TRUE", 4) == 0) ||
				   (end - p == 5 && strncasecmp(s + p, "FALSE", 5) == 0)) {
				kind = TOK_LITERAL;
			} else {
				kind = TOK_WORD;
			}
		} else {
			end = p + op_len(s + p, len - p, dialect);
		}

		err = tokens_push(ret, p, end - p, kind);
		if (err)
			return err;
		if (kind == TOK_WORD) {
			const struct sql_keyword *kw = keyword_lookup(s + p, end - p);
			struct sql_token *tok = &ret->v[ret->n - 1];

			if (kw) {
				tok->keyword = true;
				tok->flags = kw->flags;
			}
		}
		if (kind == TOK_OP && end - p == 1 && (c == '(' || c == '['))
			ret->n_open++;
		p = end;
	}
	return 0;
}

/* Pair every '(' with its ')' (brackets are not paired): lets the analyzer skip a group. */
static int pair_parens(struct sql_tokens *t, const char *s)
{
	size_t *stack, top = 0;

	stack = malloc((t->n_open + 1) * sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		struct sql_token *tok = &t->v[i];

		if (tok->kind != TOK_OP || tok->len != 1)
			continue;
		if (s[tok->start] == '(') {
			tok->pair = t->n;
			stack[top++] = i;
		} else if (s[tok->start] == ')' && top > 0) {
			t->v[stack[--top]].pair = i;
		}
	}
	free(stack);
	return 0;
}

/* ---- token predicates ---- */

static bool tok_is_op(const struct sql_token *t, const char *s, const char *op)
{
	size_t n = strlen(op);

	return t->kind == TOK_OP && t->len == n && memcmp(s + t->start, op, n) == 0;
}

static bool tok_is_word(const struct sql_token *t, const char *s, const char *word)
{
	size_t n = strlen(word);

	return t->kind == TOK_WORD && t->len == n && strncasecmp(s + t->start, word, n) == 0;
}

static bool tok_in(const struct sql_token *t, const char *s, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (tok_is_word(t, s, words[i]))
			return true;
	}
	return false;
}

static bool tok_is_open(const struct sql_token *t, const char *s)
{
	return tok_is_op(t, s, "(") || tok_is_op(t, s, "[");
}

static bool tok_is_close(const struct sql_token *t, const char *s)
{
	return tok_is_op(t, s, ")") || tok_is_op(t, s, "]");
}

/* '(' after this token is a call's argument list (function, type modifier), not a subquery */
static bool tok_calls(const struct sql_token *t)
{
	if (t->kind == TOK_QIDENT)
		return true;
	if (t->kind != TOK_WORD)
		return false;
	return !t->keyword || (t->flags & KW_FUNC);
}

/* ---- printer ---- */

/* what the IN-list collapse needs to remember of the last two tokens printed */
enum in_mark { IN_OTHER, IN_LITERAL, IN_COMMA };

/* where a '(' after a name is a column list (INSERT INTO t (a)), printed with a space */
enum rel_state { REL_NONE, REL_EXPECT_NAME, REL_IN_NAME };

struct printer {
	const char *s;
	enum sql_dialect dialect;
	bool raw;
	char *out;
	size_t len;
	const struct sql_token *prev; /* last token printed, NULL at the start */
	bool prev_unary_minus;
	enum rel_state rel;
	enum in_mark mark, mark2; /* last and second to last token */
	size_t comma_at;	  /* output length before the last ',' */
	size_t depth;
	bool *in_list; /* [depth]: this level was opened by "IN (" */
};

/* Rule 1: whether a space goes between the last printed token and @t. */
static bool needs_space(const struct printer *pr, const struct sql_token *t)
{
	const struct sql_token *prev = pr->prev;
	const char *s = pr->s;

	if (!prev)
		return false;
	if (tok_is_open(prev, s))
		return false;
	if (tok_is_close(t, s) || tok_is_op(t, s, ",") || tok_is_op(t, s, ";") ||
	    tok_is_op(t, s, "["))
		return false;
	/* ": ::" stays apart: ":::" would lex as ":: :" */
	if (tok_is_op(t, s, "::") && tok_is_op(prev, s, ":"))
		return true;
	if (tok_is_op(prev, s, ".") || tok_is_op(prev, s, "::") || tok_is_op(t, s, ".") ||
	    tok_is_op(t, s, "::"))
		return false;
	if (tok_is_op(t, s, "(") && tok_calls(prev) && pr->rel != REL_IN_NAME)
		return false;
	if (pr->prev_unary_minus && t->kind == TOK_LITERAL)
		return false;
	/* MySQL variables: @v, @@session.v */
	if (pr->dialect == SQL_DIALECT_MYSQL &&
	    (tok_is_op(prev, s, "@") || tok_is_op(prev, s, "@@")) &&
	    (t->kind == TOK_WORD || t->kind == TOK_QIDENT))
		return false;
	return true;
}

/* A '-' is unary at the start, after an operator other than a closer, or after a keyword. */
static bool minus_is_unary(const struct printer *pr)
{
	const struct sql_token *prev = pr->prev;

	if (!prev)
		return true;
	if (prev->kind == TOK_OP)
		return !tok_is_close(prev, pr->s);
	if (prev->kind == TOK_WORD)
		return prev->keyword && !(prev->flags & KW_VALUE);
	return false;
}

static void print_token(struct printer *pr, const struct sql_token *t)
{
	const char *src = pr->s + t->start;

	if (needs_space(pr, t))
		pr->out[pr->len++] = ' ';
	if (t->kind == TOK_LITERAL && !pr->raw) {
		pr->out[pr->len++] = '?';
	} else if (t->keyword) {
		for (size_t i = 0; i < t->len; i++)
			pr->out[pr->len++] = ascii_upper(src[i]);
	} else {
		/* a quoted token may hold NUL bytes: whitespace, as everywhere else */
		for (size_t i = 0; i < t->len; i++)
			pr->out[pr->len++] = src[i] ? src[i] : ' ';
	}
}

static void update_rel_state(struct printer *pr, const struct sql_token *t)
{
	static const char *const rel_keywords[] = {"INTO", "TABLE", "COPY"};
	static const char *const rel_skip[] = {"IF", "NOT", "EXISTS", "ONLY"};
	const char *s = pr->s;

	if (tok_in(t, s, rel_keywords, ARRAY_LEN(rel_keywords)))
		pr->rel = REL_EXPECT_NAME;
	else if (pr->rel == REL_EXPECT_NAME && tok_in(t, s, rel_skip, ARRAY_LEN(rel_skip)))
		pr->rel = REL_EXPECT_NAME;
	else if (pr->rel == REL_EXPECT_NAME && (t->kind == TOK_WORD || t->kind == TOK_QIDENT))
		pr->rel = REL_IN_NAME;
	else if (pr->rel == REL_IN_NAME && tok_is_op(t, s, "."))
		pr->rel = REL_EXPECT_NAME;
	else
		pr->rel = REL_NONE;
}

/* Print every token: rules 1, 3-10 of docs/normalization.md. */
static void print_tokens(struct printer *pr, const struct sql_tokens *toks)
{
	const char *s = pr->s;

	for (size_t i = 0; i < toks->n; i++) {
		const struct sql_token *t = &toks->v[i];
		bool unary_minus = false;

		/* rule 8: "? , ?" at an IN list's own level drops the second literal and comma */
		if (t->kind == TOK_LITERAL && !pr->raw && pr->depth > 0 && pr->in_list[pr->depth] &&
		    pr->mark == IN_COMMA && pr->mark2 == IN_LITERAL) {
			pr->len = pr->comma_at;
			/* the output ends with the previous literal again: stand in for it */
			pr->prev = t;
			pr->prev_unary_minus = false;
			pr->rel = REL_NONE;
			pr->mark = IN_LITERAL;
			pr->mark2 = IN_OTHER;
			continue;
		}

		/* rule 4: a sign directly before a number, after punctuation (not a closer) or at
		 * the start, is part of the literal: "a + -5" -> "a + ?", as the kernel's
		 * fingerprint hashes it (probes/sql/sql_fingerprint.h, sql_fp_unary_context) */
		if (!pr->raw && tok_is_op(t, s, "-") && i + 1 < toks->n &&
		    toks->v[i + 1].kind == TOK_LITERAL && toks->v[i + 1].start == t->start + 1 &&
		    s[t->start + 1] >= '0' && s[t->start + 1] <= '9' &&
		    (!pr->prev || (pr->prev->kind == TOK_OP && !tok_is_close(pr->prev, s))))
			continue;
		if (tok_is_op(t, s, "-"))
			unary_minus = minus_is_unary(pr);
		if (tok_is_op(t, s, ","))
			pr->comma_at = pr->len;
		print_token(pr, t);

		if (tok_is_open(t, s)) {
			pr->depth++;
			pr->in_list[pr->depth] = tok_is_op(t, s, "(") && pr->prev &&
						 pr->prev->keyword &&
						 tok_is_word(pr->prev, s, "IN");
		} else if (tok_is_close(t, s) && pr->depth > 0) {
			pr->depth--;
		}

		pr->mark2 = pr->mark;
		if (t->kind == TOK_LITERAL)
			pr->mark = IN_LITERAL;
		else if (tok_is_op(t, s, ","))
			pr->mark = IN_COMMA;
		else
			pr->mark = IN_OTHER;
		update_rel_state(pr, t);
		pr->prev_unary_minus = unary_minus;
		pr->prev = t;
	}
	pr->out[pr->len] = '\0';
}

/* ---- analyzer: operation, collection, summary ---- */

#define MAX_NAMES 128  /* tables and CTE names remembered; a summary holds fewer */
#define NAME_POOL 8192 /* bytes for their text */

struct name_list {
	size_t off[MAX_NAMES];
	size_t len[MAX_NAMES];
	size_t n;
	bool overflow; /* a name was not stored: the list is incomplete */
};

struct analyzer {
	const char *s;
	const struct sql_token *t;
	size_t n; /* tokens of the first statement */
	char pool[NAME_POOL];
	size_t pool_len;
	struct name_list tables; /* distinct, in order of appearance, CTE names excluded */
	struct name_list ctes;
	size_t verb;  /* index of the main statement's verb */
	size_t depth; /* parenthesis depth of the token being looked at */
	size_t verb_depth;
	bool have_main; /* main[] holds the first table after the verb */
	char main[SQL_COLLECTION_MAX];
	unsigned int n_level; /* distinct tables at the verb's own level, counted up to 2 */
	char level_first[SQL_COLLECTION_MAX];
	bool on_names_table; /* CREATE INDEX ... ON t */
	bool on_done;
	struct {
		bool stmt;	/* tables can be named at this level (not in call arguments) */
		bool from_list; /* a ',' here introduces another table */
	} *levels;
};

static bool is_word_at(const struct analyzer *a, size_t i, const char *word)
{
	return i < a->n && tok_is_word(&a->t[i], a->s, word);
}

static bool is_op_at(const struct analyzer *a, size_t i, const char *op)
{
	return i < a->n && tok_is_op(&a->t[i], a->s, op);
}

/* a table name part: unreserved word or quoted identifier */
static bool is_name_at(const struct analyzer *a, size_t i)
{
	const struct sql_token *t;

	if (i >= a->n)
		return false;
	t = &a->t[i];
	if (t->kind == TOK_QIDENT)
		return true;
	return t->kind == TOK_WORD && !(t->keyword && (t->flags & KW_RESERVED));
}

/*
 * Append name part @i to @buf as db.query.text shows it, unquoted ("My ""T""" -> My "T");
 * false when it does not fit.
 */
static bool append_name_part(const struct analyzer *a, size_t i, char *buf, size_t *len, size_t cap)
{
	const struct sql_token *t = &a->t[i];
	const char *src = a->s + t->start;
	size_t n = t->len;

	if (t->kind == TOK_WORD) {
		if (*len + n > cap)
			return false;
		/* as printed: a keyword used as a name (FROM time) is upper case in the text too */
		for (size_t k = 0; k < n; k++)
			buf[*len + k] = t->keyword ? ascii_upper(src[k]) : src[k];
		*len += n;
		return true;
	}
	/* quoted: drop the quotes, undouble inner ones (an unclosed one has no closing quote) */
	{
		char q = src[0];
		size_t end = (n >= 2 && src[n - 1] == q) ? n - 1 : n;

		for (size_t k = 1; k < end; k++) {
			if (src[k] == q && k + 1 < end && src[k + 1] == q)
				k++;
			if (*len + 1 > cap)
				return false;
			buf[(*len)++] = src[k] ? src[k] : ' '; /* NUL is whitespace */
		}
	}
	return true;
}

static bool names_has(const struct analyzer *a, const struct name_list *l, const char *name,
		      size_t len)
{
	for (size_t k = 0; k < l->n; k++) {
		if (l->len[k] == len && memcmp(a->pool + l->off[k], name, len) == 0)
			return true;
	}
	return false;
}

static void names_add(struct analyzer *a, struct name_list *l, const char *name, size_t len)
{
	if (names_has(a, l, name, len))
		return;
	if (l->n == MAX_NAMES || a->pool_len + len > NAME_POOL) {
		l->overflow = true;
		return;
	}
	memcpy(a->pool + a->pool_len, name, len);
	l->off[l->n] = a->pool_len;
	l->len[l->n] = len;
	l->n++;
	a->pool_len += len;
}

/*
 * A table reference at token @i: optional ONLY / IF [NOT] EXISTS / MySQL modifiers / INTO,
 * then name [. name]... With !@paren_ok a '(' right after the name makes it a function call
 * (FROM generate_series(...)), not a table. Records the table; returns the index after the
 * name, or @i when there is none.
 */
static size_t table_ref(struct analyzer *a, size_t i, bool paren_ok)
{
	static const char *const skip[] = {"ONLY",	    "IF",	    "NOT",
					   "EXISTS",	    "LOW_PRIORITY", "DELAYED",
					   "HIGH_PRIORITY", "IGNORE",	    "INTO"};
	char name[SQL_SUMMARY_MAX];
	size_t len = 0, j = i;
	bool fits;

	while (j < a->n && tok_in(&a->t[j], a->s, skip, ARRAY_LEN(skip)))
		j++;
	if (!is_name_at(a, j))
		return i;
	fits = append_name_part(a, j, name, &len, sizeof(name) - 1);
	j++;
	while (is_op_at(a, j, ".") && is_name_at(a, j + 1)) {
		fits = fits && len + 1 < sizeof(name);
		if (fits)
			name[len++] = '.';
		fits = fits && append_name_part(a, j + 1, name, &len, sizeof(name) - 1);
		j += 2;
	}
	if (!paren_ok && is_op_at(a, j, "("))
		return i;
	if (len == 0)
		return i; /* "" is no name */
	if (!fits) {
		/* longer than any summary: remembered only as "there was another table" */
		a->tables.overflow = true;
		return j;
	}
	if (names_has(a, &a->ctes, name, len))
		return j;
	if (i > a->verb && a->depth == a->verb_depth && a->n_level < 2) {
		/* read statements: the main table is the only one at the verb's level */
		if (a->n_level == 0) {
			a->n_level = 1;
			if (len < sizeof(a->level_first)) {
				memcpy(a->level_first, name, len);
				a->level_first[len] = '\0';
			}
		} else if (strlen(a->level_first) != len || memcmp(a->level_first, name, len)) {
			a->n_level = 2;
		}
	}
	if (!a->have_main && i > a->verb) {
		/* the statement's target; too long a name leaves the collection empty */
		a->have_main = true;
		if (len < sizeof(a->main)) {
			memcpy(a->main, name, len);
			a->main[len] = '\0';
		}
	}
	names_add(a, &a->tables, name, len);
	return j;
}

/* WITH [RECURSIVE] name [(cols)] AS [NOT] [MATERIALIZED] (...) [, ...]: remember the names. */
static void collect_ctes(struct analyzer *a, size_t i)
{
	size_t j = i + 1;

	if (is_word_at(a, j, "RECURSIVE"))
		j++;
	while (is_name_at(a, j)) {
		char name[SQL_SUMMARY_MAX];
		size_t len = 0;

		if (append_name_part(a, j, name, &len, sizeof(name) - 1))
			names_add(a, &a->ctes, name, len);
		j++;
		if (is_op_at(a, j, "("))
			j = a->t[j].pair + 1;
		if (!is_word_at(a, j, "AS"))
			return;
		j++;
		while (is_word_at(a, j, "NOT") || is_word_at(a, j, "MATERIALIZED"))
			j++;
		if (!is_op_at(a, j, "("))
			return;
		j = a->t[j].pair + 1;
		if (!is_op_at(a, j, ","))
			return;
		j++;
	}
}

/* Walk the first statement for table names (see docs/normalization.md, "Collection"). */
static void find_tables(struct analyzer *a)
{
	static const char *const clause_end[] = {
		"WHERE", "GROUP",     "ORDER",	"HAVING",    "LIMIT", "OFFSET", "WINDOW",
		"UNION", "INTERSECT", "EXCEPT", "RETURNING", "SET",   "VALUES", "SELECT",
		"FOR",	 "FETCH",     "INTO",	"ADD",	     "ALTER", "DROP",	"RENAME",
	};
	static const char *const view_after[] = {"CREATE", "REPLACE", "MATERIALIZED", "ALTER",
						 "DROP",   "TEMP",    "TEMPORARY",    "RECURSIVE"};
	const char *s = a->s;
	size_t depth = 0;

	a->levels[0].stmt = true;
	a->levels[0].from_list = false;
	for (size_t i = 0; i < a->n; i++) {
		const struct sql_token *t = &a->t[i];
		const struct sql_token *prev = i > 0 ? &a->t[i - 1] : NULL;
		bool prev_word = prev && prev->kind == TOK_WORD;
		size_t j = i;

		if (i == a->verb)
			a->verb_depth = depth;
		a->depth = depth;
		if (tok_is_open(t, s)) {
			depth++;
			a->levels[depth].stmt =
				tok_is_op(t, s, "(") && a->levels[depth - 1].stmt &&
				!(prev && tok_calls(prev) && !(prev->flags & KW_SUBQUERY));
			/* a subquery inside call arguments: coalesce((SELECT ...), 0) */
			if (!a->levels[depth].stmt && tok_is_op(t, s, "(") && i + 1 < a->n &&
			    (is_word_at(a, i + 1, "SELECT") || is_word_at(a, i + 1, "WITH")))
				a->levels[depth].stmt = true;
			a->levels[depth].from_list = false;
			continue;
		}
		if (tok_is_close(t, s)) {
			if (depth > 0)
				depth--;
			continue;
		}
		if (!a->levels[depth].stmt)
			continue;
		if (tok_is_op(t, s, ",") && a->levels[depth].from_list) {
			j = table_ref(a, i + 1, false);
		} else if (t->kind != TOK_WORD) {
			continue;
		} else if (tok_is_word(t, s, "FROM")) {
			if (prev && tok_is_word(prev, s, "DISTINCT"))
				continue; /* IS [NOT] DISTINCT FROM */
			j = table_ref(a, i + 1, false);
			a->levels[depth].from_list = true;
		} else if (tok_is_word(t, s, "JOIN") || tok_is_word(t, s, "STRAIGHT_JOIN")) {
			j = table_ref(a, i + 1, false);
		} else if (tok_is_word(t, s, "USING")) {
			j = table_ref(a, i + 1, false);
			if (j != i + 1)
				a->levels[depth].from_list = true;
		} else if ((tok_is_word(t, s, "UPDATE") || tok_is_word(t, s, "TRUNCATE") ||
			    tok_is_word(t, s, "LOCK")) &&
			   !prev_word) {
			/* statement verbs only: not FOR UPDATE, DO UPDATE, KEY UPDATE */
			j = table_ref(a, i + 1, false);
			a->levels[depth].from_list = true;
		} else if ((tok_is_word(t, s, "INSERT") || tok_is_word(t, s, "REPLACE") ||
			    tok_is_word(t, s, "MERGE") || tok_is_word(t, s, "COPY")) &&
			   !prev_word) {
			j = table_ref(a, i + 1, true);
		} else if (tok_is_word(t, s, "TABLE") || tok_is_word(t, s, "TABLES")) {
			if (prev && tok_is_word(prev, s, "RETURNS"))
				continue;
			j = table_ref(a, i + 1, true);
			a->levels[depth].from_list = true;
		} else if (tok_is_word(t, s, "VIEW") && prev &&
			   tok_in(prev, s, view_after, ARRAY_LEN(view_after))) {
			j = table_ref(a, i + 1, true);
		} else if (tok_is_word(t, s, "ON") && a->on_names_table && !a->on_done &&
			   depth == 0) {
			a->on_done = true;
			j = table_ref(a, i + 1, true);
		} else if (tok_is_word(t, s, "WITH")) {
			collect_ctes(a, i);
		} else if (tok_in(t, s, clause_end, ARRAY_LEN(clause_end))) {
			a->levels[depth].from_list = false;
		}
		/* skip the name just read; the loop's i++ lands on the token after it */
		if (j > i + 1)
			i = j - 1;
	}
}

/* Copy @len bytes of @src upper-cased into @dst (@cap bytes); false when it does not fit. */
static bool copy_upper(char *dst, size_t cap, const char *src, size_t len)
{
	if (len + 1 > cap)
		return false;
	for (size_t i = 0; i < len; i++)
		dst[i] = ascii_upper(src[i]);
	dst[len] = '\0';
	return true;
}

/* Append " word" upper-cased to the operation name when it fits. */
static void op_append(char *op, const struct analyzer *a, size_t i)
{
	size_t used = strlen(op);
	const struct sql_token *t = &a->t[i];

	if (used + 1 + t->len + 1 > SQL_OPERATION_MAX)
		return;
	op[used] = ' ';
	copy_upper(op + used + 1, SQL_OPERATION_MAX - used - 1, a->s + t->start, t->len);
}

/*
 * db.operation.name from the first word at @i: two-word forms for DDL objects and START
 * TRANSACTION, the main verb after WITH's CTEs. Sets a->verb; returns false when the
 * statement does not start with a keyword.
 */
static bool find_operation(struct analyzer *a, size_t i, char *op)
{
	static const char *const ddl[] = {"CREATE", "DROP", "ALTER", "TRUNCATE"};
	static const char *const ddl_modifiers[] = {
		"OR",	      "REPLACE", "UNIQUE",   "TEMP",	   "TEMPORARY",
		"UNLOGGED",   "GLOBAL",	 "LOCAL",    "RECURSIVE",  "TRUSTED",
		"PROCEDURAL", "SPATIAL", "FULLTEXT", "CONSTRAINT",
	};
	static const char *const ddl_objects[] = {
		"TABLE",    "INDEX",	  "VIEW",      "SEQUENCE",    "SCHEMA",	      "DATABASE",
		"FUNCTION", "PROCEDURE",  "TRIGGER",   "TYPE",	      "EXTENSION",    "ROLE",
		"USER",	    "DOMAIN",	  "POLICY",    "RULE",	      "TABLESPACE",   "AGGREGATE",
		"OPERATOR", "SERVER",	  "COLLATION", "PUBLICATION", "SUBSCRIPTION", "STATISTICS",
		"LANGUAGE", "CONVERSION", "SYSTEM",    "EVENT",	      "MATERIALIZED", "FOREIGN",
	};
	static const char *const main_verbs[] = {"SELECT", "INSERT", "UPDATE", "DELETE",
						 "MERGE",  "VALUES", "TABLE"};
	const struct sql_token *t;

	a->verb = i;
	if (i >= a->n)
		return false;
	t = &a->t[i];
	if (t->kind != TOK_WORD || !t->keyword)
		return false;
	copy_upper(op, SQL_OPERATION_MAX, a->s + t->start, t->len);

	if (tok_in(t, a->s, ddl, ARRAY_LEN(ddl))) {
		size_t j = i + 1;

		while (j < a->n && tok_in(&a->t[j], a->s, ddl_modifiers, ARRAY_LEN(ddl_modifiers)))
			j++;
		if (j < a->n && tok_in(&a->t[j], a->s, ddl_objects, ARRAY_LEN(ddl_objects))) {
			op_append(op, a, j);
			/* MATERIALIZED VIEW, FOREIGN TABLE */
			if ((is_word_at(a, j, "MATERIALIZED") || is_word_at(a, j, "FOREIGN")) &&
			    j + 1 < a->n && a->t[j + 1].kind == TOK_WORD)
				op_append(op, a, j + 1);
			if (is_word_at(a, j, "INDEX") || is_word_at(a, j, "TRIGGER") ||
			    is_word_at(a, j, "POLICY"))
				a->on_names_table = true;
		}
	} else if (tok_is_word(t, a->s, "START") && is_word_at(a, i + 1, "TRANSACTION")) {
		op_append(op, a, i + 1);
	} else if (tok_is_word(t, a->s, "WITH")) {
		/* the CTE bodies are parenthesized: the main verb is the first one at this level */
		for (size_t j = i + 1; j < a->n; j++) {
			if (is_op_at(a, j, "(")) {
				j = a->t[j].pair;
				continue;
			}
			if (tok_in(&a->t[j], a->s, main_verbs, ARRAY_LEN(main_verbs))) {
				copy_upper(op, SQL_OPERATION_MAX, a->s + a->t[j].start,
					   a->t[j].len);
				a->verb = j;
				break;
			}
		}
	}
	return true;
}

/* the operation changes a table: its collection is its target, not "the only table" */
static bool writes_table(const struct analyzer *a)
{
	static const char *const writers[] = {"INSERT", "REPLACE", "UPDATE",   "DELETE",
					      "MERGE",	"COPY",	   "TRUNCATE", "LOCK",
					      "CREATE", "ALTER",   "DROP"};

	return a->verb < a->n && tok_in(&a->t[a->verb], a->s, writers, ARRAY_LEN(writers));
}

/* Append " @len bytes of @src" to the summary unless that would cut it. */
static bool summary_append(char *summary, const char *src, size_t len)
{
	size_t used = strlen(summary);
	size_t sep = used ? 1 : 0;

	if (used + sep + len + 1 > SQL_SUMMARY_MAX)
		return false;
	if (sep)
		summary[used++] = ' ';
	memcpy(summary + used, src, len);
	summary[used + len] = '\0';
	return true;
}

static int analyze(const char *s, const struct sql_tokens *toks, struct sql_normalized *ret)
{
	struct analyzer *a;
	size_t start = 0, depth = 0, n = 0;
	bool have_op;

	/* the first statement: up to a ';' outside parentheses */
	for (n = 0; n < toks->n; n++) {
		const struct sql_token *t = &toks->v[n];

		if (tok_is_open(t, s))
			depth++;
		else if (tok_is_close(t, s) && depth > 0)
			depth--;
		else if (tok_is_op(t, s, ";") && depth == 0 && n > start)
			break;
		else if (tok_is_op(t, s, ";") && depth == 0)
			start = n + 1; /* leading empty statements */
	}

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->levels = calloc(toks->n_open + 1, sizeof(*a->levels));
	if (!a->levels) {
		free(a);
		return -ENOMEM;
	}
	a->s = s;
	a->t = toks->v;
	a->n = n;

	/* the verb: skip the '(' of "(SELECT ...) UNION ..." */
	while (start < n && tok_is_op(&a->t[start], s, "("))
		start++;
	have_op = find_operation(a, start, ret->operation);
	find_tables(a);

	if (have_op) {
		summary_append(ret->summary, ret->operation, strlen(ret->operation));
		for (size_t k = 0; k < a->tables.n; k++) {
			if (!summary_append(ret->summary, a->pool + a->tables.off[k],
					    a->tables.len[k]))
				break;
		}
	} else if (start < n && a->t[start].kind == TOK_WORD) {
		/* no known verb: the first word alone */
		copy_upper(ret->summary, SQL_SUMMARY_MAX, s + a->t[start].start, a->t[start].len);
	}

	if (have_op && writes_table(a)) {
		memcpy(ret->collection, a->main, sizeof(ret->collection));
	} else if (a->n_level == 1) {
		memcpy(ret->collection, a->level_first, sizeof(ret->collection));
	} else if (a->n_level == 0 && a->tables.n == 1 && !a->tables.overflow &&
		   a->tables.len[0] < SQL_COLLECTION_MAX) {
		memcpy(ret->collection, a->pool + a->tables.off[0], a->tables.len[0]);
		ret->collection[a->tables.len[0]] = '\0';
	}

	free(a->levels);
	free(a);
	return 0;
}

/* ---- API ---- */

int sql_normalize(const char *text, size_t len, enum sql_dialect dialect, bool raw,
		  struct sql_normalized *ret)
{
	struct sql_tokens toks = {0};
	struct printer pr = {0};
	int err;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if ((!text && len) || (dialect != SQL_DIALECT_POSTGRESQL && dialect != SQL_DIALECT_MYSQL))
		return -EINVAL;
	/* every token is at least one byte and gets at most one space before it */
	if (len > (SIZE_MAX - 1) / 2)
		return -ENOMEM;

	err = tokenize(text ? text : "", len, dialect, &toks);
	if (err)
		goto out_tokens;
	err = pair_parens(&toks, text);
	if (err)
		goto out_tokens;

	pr.s = text;
	pr.dialect = dialect;
	pr.raw = raw;
	pr.out = malloc(2 * len + 1);
	pr.in_list = calloc(toks.n_open + 1, sizeof(*pr.in_list));
	if (!pr.out || !pr.in_list) {
		err = -ENOMEM;
		goto out_print;
	}
	print_tokens(&pr, &toks);

	err = analyze(text, &toks, ret);
	if (err)
		goto out_print;
	ret->text = pr.out;
	pr.out = NULL;

out_print:
	free(pr.in_list);
	free(pr.out);
out_tokens:
	free(toks.v);
	if (err)
		memset(ret, 0, sizeof(*ret));
	return err;
}

void sql_normalized_free(struct sql_normalized *n)
{
	if (!n)
		return;
	free(n->text);
	memset(n, 0, sizeof(*n));
}
