// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * config.c - builds struct dbtap_config from the built-in defaults, the YAML file, the
 * environment and the command line (in that order of precedence), and explains every bad
 * value in exactly one line.
 *
 * Every setting is one row of config_keys[]: its name is the YAML key, the long flag
 * (--name) and the environment variable (DBTAP_NAME, upper-cased, '-' and '.' as '_'); its
 * type decides how text becomes a value. Adding a setting means adding its field to struct
 * dbtap_config, its default to dbtap_config_defaults() and one KEY() row here.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "userspace/config.h"

#ifndef DBTAP_VERSION
#define DBTAP_VERSION "0.0.0"
#endif
#ifndef DBTAP_GIT_REV
#define DBTAP_GIT_REV "unknown"
#endif

#define PROG_NAME	 "dbtap"
#define ENV_PREFIX	 "DBTAP_"
#define ENV_CONFIG	 "DBTAP_CONFIG"
#define SUBCOMMAND_LIST	 "list"
#define STDOUT_PATH	 "-" /* output-file "-": standard output, as if unset */
#define NAME_MAX_LEN	 64  /* longest key name, env variable or flag we look at */
#define MSG_MAX		 512 /* one error message, without the "dbtap: <where>: " prefix */
#define HINT_MAX_EDITS	 2   /* suggest a known key at most this many edits away */
#define NUMBER_MAX_CHARS 63  /* characters in one number of a duration */
#define HELP_FLAG_COLUMN 34  /* --help: where the description starts */

/* Largest PID the kernel hands out on 64-bit (PID_MAX_LIMIT, include/linux/threads.h). */
#define PID_MAX_LIMIT (4 * 1024 * 1024)

#define DEFAULT_INTERVAL_S	 5.0
#define DEFAULT_SLOW_THRESHOLD_S 0.1
#define DEFAULT_MAX_SERIES	 10000
#define DEFAULT_OTLP_QUEUE_SIZE	 (16u * 1024 * 1024) /* bytes */
#define DEFAULT_OTLP_MAX_REQUEST (4u * 1024 * 1024)  /* bytes */
#define DEFAULT_OTLP_SHUTDOWN_S	 5.0
#define SECONDS_PER_MINUTE	 60
#define SECONDS_PER_HOUR	 3600
#define MAX_INTERVAL_S		 SECONDS_PER_HOUR

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the key table ---- */

enum key_type {
	KEY_DURATION, /* double seconds, dbtap_parse_duration() */
	KEY_UINT,     /* uint32_t, decimal digits only */
	KEY_INT,      /* int, decimal, optional leading '-' */
	KEY_BOOL,     /* bool: true/false, yes/no, on/off, 1/0 (any case) */
	KEY_ENUM,     /* an int-sized enum, one of choices[] (any case) */
	KEY_STRING,   /* char *, owned; "-" leaves it NULL */
	KEY_PID_LIST, /* uint32_t pids[DBTAP_MAX_PIDS] and int n_pids: comma list, repeatable */
	KEY_OUTPUTS,  /* enum dbtap_output output and bool output_otlp: comma list, repeatable */
};

/* Range checks on numeric keys, in the key's own unit (seconds for durations). */
#define RANGE_MIN      (1u << 0) /* value >= min */
#define RANGE_MIN_OPEN (1u << 1) /* with RANGE_MIN: value > min */
#define RANGE_MAX      (1u << 2) /* value <= max */

struct key_choice {
	const char *name;
	int value;
};

struct config_key {
	const char *name; /* YAML key, --flag, DBTAP_ variable */
	enum key_type type;
	size_t offset;	     /* of the field in struct dbtap_config */
	const char *metavar; /* --help: what the value looks like; NULL for booleans */
	const char *help;    /* --help: what it does */
	unsigned int range;  /* RANGE_* */
	double min, max;
	const struct key_choice *choices; /* KEY_ENUM, ends with a NULL name */
	const char *default_text;	  /* --help: when the default value alone does not say it */
	char short_flag;		  /* --help: its one-letter flag, which adds one (-v) */
};

_Static_assert(sizeof(enum dbtap_output) == sizeof(int), "KEY_ENUM stores an int");
_Static_assert(sizeof(enum dbtap_capture_path) == sizeof(int), "KEY_ENUM stores an int");
_Static_assert(sizeof(enum dbtap_otlp_compression) == sizeof(int), "KEY_ENUM stores an int");
_Static_assert(sizeof(enum dbtap_otlp_temporality) == sizeof(int), "KEY_ENUM stores an int");

/* Flags that are not settings, and the short flags. */
#define FLAG_NAME_CONFIG  "config"
#define FLAG_NAME_HELP	  "help"
#define FLAG_NAME_VERSION "version"
#define SHORT_HELP	  'h'
#define SHORT_VERBOSE	  'v'

#define OUTPUT_OTLP "otlp" /* the output that may be given next to table or json */

static const struct key_choice output_choices[] = {
	{"table", DBTAP_OUT_TABLE},
	{"json", DBTAP_OUT_JSON},
	{NULL, 0},
};

static const struct key_choice compression_choices[] = {
	{"gzip", DBTAP_OTLP_COMPRESSION_GZIP},
	{"none", DBTAP_OTLP_COMPRESSION_NONE},
	{NULL, 0},
};

static const struct key_choice temporality_choices[] = {
	{"cumulative", DBTAP_OTLP_CUMULATIVE},
	{"delta", DBTAP_OTLP_DELTA},
	{NULL, 0},
};

static const struct key_choice capture_choices[] = {
	{"auto", DBTAP_CAPTURE_AUTO},
	{"socket", DBTAP_CAPTURE_SOCKET},
	{"syscall", DBTAP_CAPTURE_SYSCALL},
	{NULL, 0},
};

#define KEY(key_name, key_type, field, key_metavar, key_help, ...) \
	{.name = key_name,                                         \
	 .type = key_type,                                         \
	 .offset = offsetof(struct dbtap_config, field),           \
	 .metavar = key_metavar,                                   \
	 .help = key_help,                                         \
	 __VA_ARGS__}

static const struct config_key config_keys[] = {
	KEY("interval", KEY_DURATION, interval_s, "DURATION", "time between reports, at most 1h",
	    .range = RANGE_MIN | RANGE_MIN_OPEN | RANGE_MAX, .min = 0, .max = MAX_INTERVAL_S),
	KEY("duration", KEY_DURATION, duration_s, "DURATION",
	    "stop after this long, 0 = at SIGINT"),
	KEY("output", KEY_OUTPUTS, output, "table|json|otlp", "report format, +otlp",
	    .choices = output_choices, .default_text = "table on a terminal, else json"),
	KEY("output-file", KEY_STRING, output_file, "PATH", "write reports to PATH, - = stdout",
	    .default_text = "stdout"),
	KEY("pid", KEY_PID_LIST, pids, "PID[,PID]", "watch only these servers (repeatable)",
	    .default_text = "all found"),
	KEY("sample-rate", KEY_UINT, sample_rate, "N", "sample 1 in N queries, 0 = off"),
	KEY("slow-threshold", KEY_DURATION, slow_threshold_s, "DURATION",
	    "sample queries slower than this"),
	KEY("raw-text", KEY_BOOL, raw_text, NULL, "export query text with its literals"),
	KEY("capture", KEY_ENUM, capture, "auto|socket|syscall", "capture path",
	    .choices = capture_choices),
	KEY("max-series", KEY_UINT, max_series, "N", "most series kept at once", .range = RANGE_MIN,
	    .min = 1),
	KEY("bpf-stats", KEY_BOOL, bpf_stats, NULL, "count BPF run time (host-wide cost)"),
	KEY("otlp-endpoint", KEY_STRING, otlp_endpoint, "URL", "OTLP/HTTP base URL",
	    .default_text = "http://localhost:4318"),
	KEY("otlp-metrics-endpoint", KEY_STRING, otlp_metrics_endpoint, "URL",
	    "OTLP metrics URL, used as given", .default_text = "base + /v1/metrics"),
	KEY("otlp-traces-endpoint", KEY_STRING, otlp_traces_endpoint, "URL",
	    "OTLP traces URL, used as given", .default_text = "base + /v1/traces"),
	KEY("otlp-logs-endpoint", KEY_STRING, otlp_logs_endpoint, "URL",
	    "OTLP logs URL, used as given", .default_text = "base + /v1/logs"),
	KEY("otlp-headers", KEY_STRING, otlp_headers, "K=V[,K=V]", "headers of OTLP requests"),
	KEY("otlp-timeout", KEY_DURATION, otlp_timeout_s, "DURATION", "timeout of one OTLP request",
	    .range = RANGE_MIN | RANGE_MIN_OPEN | RANGE_MAX, .min = 0, .max = MAX_INTERVAL_S,
	    .default_text = "10s"),
	KEY("otlp-compression", KEY_ENUM, otlp_compression, "gzip|none", "OTLP body compression",
	    .choices = compression_choices, .default_text = "gzip"),
	KEY("otlp-temporality", KEY_ENUM, otlp_temporality, "MODE",
	    "OTLP metric temporality: cumulative|delta", .choices = temporality_choices),
	KEY("otlp-service-name", KEY_STRING, otlp_service_name, "NAME",
	    "service.name of the databases", .default_text = "<system>@<addr>:<port>"),
	KEY("otlp-resource-attributes", KEY_STRING, otlp_resource_attributes, "LIST",
	    "K=V[,K=V] added to OTLP resources"),
	KEY("otlp-ca-file", KEY_STRING, otlp_ca_file, "PATH", "CA bundle to verify the endpoint",
	    .default_text = "system CAs"),
	KEY("otlp-client-cert", KEY_STRING, otlp_client_cert, "PATH",
	    "TLS client certificate (PEM)"),
	KEY("otlp-client-key", KEY_STRING, otlp_client_key, "PATH", "TLS client key (PEM)"),
	KEY("otlp-queue-size", KEY_UINT, otlp_queue_size, "BYTES",
	    "OTLP queue bound, oldest dropped", .range = RANGE_MIN, .min = 1024),
	KEY("otlp-max-request-size", KEY_UINT, otlp_max_request_size, "BYTES",
	    "split larger OTLP requests (JSON)", .range = RANGE_MIN, .min = 1024),
	KEY("otlp-flush-timeout", KEY_DURATION, otlp_flush_timeout_s, "DURATION",
	    "at exit, time to send the queue", .range = RANGE_MIN | RANGE_MIN_OPEN | RANGE_MAX,
	    .min = 0, .max = MAX_INTERVAL_S),
	KEY("verbose", KEY_INT, verbose, "N", "log detail, -v adds one", .range = RANGE_MIN,
	    .min = 0, .short_flag = SHORT_VERBOSE),
};

static const char *const bool_true_words[] = {"true", "yes", "on", "1"};
static const char *const bool_false_words[] = {"false", "no", "off", "0"};

/* ---- messages ---- */

/* Writes one error line, "dbtap: " + @fmt + "\n", to @err (when there is one). */
static void report(FILE *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(FILE *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	fputs(PROG_NAME ": ", err);
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputc('\n', err);
}

/* Formats why a value is bad into @msg (MSG_MAX bytes); returns -EINVAL to pass on. */
static int bad_value(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_value(char *msg, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, MSG_MAX, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Optimal string alignment distance (insertions, deletions, substitutions and swaps of two
 * neighbours) between @a and @b, for "did you mean" hints. Names longer than NAME_MAX_LEN
 * are never close to anything.
 */
static int edit_distance(const char *a, const char *b)
{
	int rows[3][NAME_MAX_LEN + 1];
	size_t la = strlen(a), lb = strlen(b), i, j;
	int *prev2 = rows[0], *prev = rows[1], *cur = rows[2], *tmp;

	if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
		return INT_MAX;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1];
			int best = prev[j - 1] + cost;

			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		tmp = prev2;
		prev2 = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[lb];
}

/* The closest of @candidates to @name within HINT_MAX_EDITS, or NULL; ties go to the first. */
static const char *closest_name(const char *name, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	int best_distance = HINT_MAX_EDITS + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		int d = edit_distance(name, candidates[i]);

		if (d < best_distance) {
			best = candidates[i];
			best_distance = d;
		}
	}
	return best;
}

/* Known key names, plus the extra flag names when @with_flags, into @names; returns count. */
static size_t known_names(const char **names, bool with_flags)
{
	size_t n = 0, i;

	for (i = 0; i < ARRAY_SIZE(config_keys); i++)
		names[n++] = config_keys[i].name;
	if (with_flags) {
		names[n++] = FLAG_NAME_CONFIG;
		names[n++] = FLAG_NAME_HELP;
		names[n++] = FLAG_NAME_VERSION;
	}
	return n;
}

#define KNOWN_NAMES_MAX (ARRAY_SIZE(config_keys) + 3)

static const struct config_key *key_find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(config_keys); i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* ---- text to values ---- */

/* Duration units, largest first; an alias is read but never written. */
static const struct duration_unit {
	const char *name;
	double seconds;
	bool alias;
} duration_units[] = {
	{"h", SECONDS_PER_HOUR, false},
	{"m", SECONDS_PER_MINUTE, false},
	{"s", 1, false},
	{"ms", 1e-3, false},
	{"us", 1e-6, false},
	{"\u00b5s", 1e-6, true}, /* µs */
	{"ns", 1e-9, false},
};

/* Writes @seconds in the largest unit that keeps it whole ("5s", "100ms", "1h"). */
static void format_duration(double seconds, char *buf, size_t size)
{
	const struct duration_unit *units = duration_units;
	size_t i;

	if (seconds == 0) {
		snprintf(buf, size, "0");
		return;
	}
	for (i = 0; i < ARRAY_SIZE(duration_units); i++) {
		double v = seconds / units[i].seconds;

		if (!units[i].alias && v >= 1 && fabs(v - round(v)) < 1e-9 * v) {
			snprintf(buf, size, "%.0f%s", round(v), units[i].name);
			return;
		}
	}
	snprintf(buf, size, "%gs", seconds);
}

/*
 * The value of @len bytes of "<digits>[.<digits>]" at @s. Done by hand, not with strtod(),
 * whose decimal point follows the locale (LC_NUMERIC) a terminal UI may have set.
 */
static double parse_decimal(const char *s, size_t len)
{
	double mantissa = 0, scale = 1;
	bool fraction = false;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			fraction = true;
			continue;
		}
		mantissa = mantissa * 10 + (s[i] - '0');
		if (fraction)
			scale *= 10;
	}
	return mantissa / scale;
}

int dbtap_parse_duration(const char *s, double *ret_seconds)
{
	const struct duration_unit *units = duration_units;
	double total = 0;
	const char *p = s;
	int terms = 0;

	if (!s || !*s)
		return -EINVAL;
	/* One or more "<digits>[.<digits>]<unit>" terms ("1m30s"), or one plain number. */
	while (*p) {
		const char *start = p, *unit;
		size_t digits = 0, len, i;
		bool found = false;

		while (isdigit((unsigned char)*p)) {
			p++;
			digits++;
		}
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				p++;
				digits++;
			}
		}
		len = p - start;
		if (!digits || len > NUMBER_MAX_CHARS)
			return -EINVAL;

		unit = p;
		while (*p && !isdigit((unsigned char)*p) && *p != '.')
			p++;
		if (p == unit) {
			/* A plain number of seconds stands alone. */
			if (terms || *p)
				return -EINVAL;
			total = parse_decimal(start, len);
			terms++;
			break;
		}
		for (i = 0; i < ARRAY_SIZE(duration_units); i++) {
			if (strlen(units[i].name) == (size_t)(p - unit) &&
			    memcmp(units[i].name, unit, p - unit) == 0) {
				total += parse_decimal(start, len) * units[i].seconds;
				found = true;
				break;
			}
		}
		if (!found)
			return -EINVAL;
		terms++;
	}
	if (!isfinite(total))
		return -EINVAL;
	*ret_seconds = total;
	return 0;
}

/* Decimal digits only, no sign or spaces, at most UINT32_MAX. */
static int parse_uint32(const char *s, uint32_t *ret)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Optional '-', then decimal digits, within int. */
static int parse_int(const char *s, int *ret)
{
	const char *digits = s[0] == '-' ? s + 1 : s;
	long v;
	char *end;

	if (!isdigit((unsigned char)digits[0]))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < INT_MIN || v > INT_MAX)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int parse_bool(const char *s, bool *ret)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bool_true_words); i++) {
		if (strcasecmp(s, bool_true_words[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, bool_false_words[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* The name of @value among @choices, "?" when none has it. */
static const char *choice_name(const struct key_choice *choices, int value)
{
	for (; choices->name; choices++)
		if (choices->value == value)
			return choices->name;
	return "?";
}

/* Writes "table or json" / "auto, socket or syscall" for @choices into @buf. */
static void format_choices(const struct key_choice *choices, char *buf, size_t size)
{
	size_t n = 0, i, used = 0;

	while (choices[n].name)
		n++;
	buf[0] = '\0';
	for (i = 0; i < n && used < size; i++) {
		const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";

		used += snprintf(buf + used, size - used, "%s%s", sep, choices[i].name);
	}
}

/* Writes a value of @key's unit for messages: "1h" for a duration, "1" for a number. */
static void format_number(const struct config_key *key, double v, char *buf, size_t size)
{
	if (key->type == KEY_DURATION)
		format_duration(v, buf, size);
	else
		snprintf(buf, size, "%.0f", v);
}

/* Checks @v against @key's range; on failure explains it for @text into @msg. */
static int check_range(const struct config_key *key, double v, const char *text, char *msg)
{
	char lo[NAME_MAX_LEN], hi[NAME_MAX_LEN], rule[2 * NAME_MAX_LEN + 16];
	bool open = key->range & RANGE_MIN_OPEN;
	bool too_low = (key->range & RANGE_MIN) && (open ? v <= key->min : v < key->min);
	bool too_high = (key->range & RANGE_MAX) && v > key->max;

	if (!too_low && !too_high)
		return 0;
	format_number(key, key->min, lo, sizeof(lo));
	format_number(key, key->max, hi, sizeof(hi));
	if ((key->range & RANGE_MIN) && (key->range & RANGE_MAX))
		snprintf(rule, sizeof(rule), "%s %s and <= %s", open ? ">" : ">=", lo, hi);
	else if (key->range & RANGE_MIN)
		snprintf(rule, sizeof(rule), "%s %s", open ? ">" : ">=", lo);
	else
		snprintf(rule, sizeof(rule), "<= %s", hi);
	return bad_value(msg, "value \"%s\" out of range (must be %s)", text, rule);
}

/* ---- setting keys ---- */

static void *field_of(struct dbtap_config *cfg, const struct config_key *key)
{
	return (char *)cfg + key->offset;
}

/* Empties @key's list, so that a higher layer replaces a lower one's PIDs. */
static void key_reset_list(struct dbtap_config *cfg, const struct config_key *key)
{
	if (key->type == KEY_PID_LIST)
		cfg->n_pids = 0;
	if (key->type == KEY_OUTPUTS) {
		cfg->output = DBTAP_OUT_AUTO;
		cfg->output_otlp = false;
	}
}

/* Adds one output name given as @len bytes at @text: otlp, or table/json (the last wins). */
static int output_list_add(struct dbtap_config *cfg, const struct config_key *key, const char *text,
			   size_t len, char *msg)
{
	char item[NAME_MAX_LEN];
	size_t i;

	while (len && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	if (len < sizeof(item)) {
		memcpy(item, text, len);
		item[len] = '\0';
		if (strcasecmp(item, OUTPUT_OTLP) == 0) {
			cfg->output_otlp = true;
			return 0;
		}
		for (i = 0; key->choices[i].name; i++) {
			if (strcasecmp(item, key->choices[i].name) == 0) {
				cfg->output = key->choices[i].value;
				return 0;
			}
		}
	}
	return bad_value(msg, "invalid value \"%.*s\" (expected table, json or otlp)", (int)len,
			 text);
}

/* Adds one PID given as @len bytes at @text; duplicates are kept once. */
static int pid_list_add(struct dbtap_config *cfg, const char *text, size_t len, char *msg)
{
	char item[NAME_MAX_LEN];
	uint32_t pid;
	int i;

	while (len && isspace((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	if (len >= sizeof(item))
		return bad_value(msg, "invalid PID \"%.*s\"", (int)len, text);
	memcpy(item, text, len);
	item[len] = '\0';
	if (parse_uint32(item, &pid))
		return bad_value(msg, "invalid PID \"%s\"", item);
	if (pid < 1 || pid > PID_MAX_LIMIT)
		return bad_value(msg, "invalid PID \"%s\" (must be 1 to %d)", item, PID_MAX_LIMIT);
	for (i = 0; i < cfg->n_pids; i++)
		if (cfg->pids[i] == pid)
			return 0;
	if (cfg->n_pids >= DBTAP_MAX_PIDS)
		return bad_value(msg, "too many PIDs (at most %d)", DBTAP_MAX_PIDS);
	cfg->pids[cfg->n_pids++] = pid;
	return 0;
}

/*
 * Sets @key in @cfg from @text (PID lists: appends the comma-separated PIDs). Returns 0,
 * -ENOMEM, or -EINVAL with the reason in @msg (MSG_MAX bytes), e.g. `invalid duration "5x"`.
 */
static int key_set(struct dbtap_config *cfg, const struct config_key *key, const char *text,
		   char *msg)
{
	void *field = field_of(cfg, key);
	char expected[NAME_MAX_LEN * 2];
	const char *item, *comma;
	double seconds;
	uint32_t u;
	bool b;
	size_t i;
	int v, err;

	switch (key->type) {
	case KEY_DURATION:
		if (dbtap_parse_duration(text, &seconds))
			return bad_value(msg, "invalid duration \"%s\"", text);
		err = check_range(key, seconds, text, msg);
		if (err)
			return err;
		*(double *)field = seconds;
		return 0;
	case KEY_UINT:
		if (parse_uint32(text, &u))
			return bad_value(msg, "invalid unsigned integer \"%s\"", text);
		err = check_range(key, u, text, msg);
		if (err)
			return err;
		*(uint32_t *)field = u;
		return 0;
	case KEY_INT:
		if (parse_int(text, &v))
			return bad_value(msg, "invalid integer \"%s\"", text);
		err = check_range(key, v, text, msg);
		if (err)
			return err;
		*(int *)field = v;
		return 0;
	case KEY_BOOL:
		if (parse_bool(text, &b))
			return bad_value(msg,
					 "invalid boolean \"%s\" (expected true/false, yes/no, "
					 "on/off or 1/0)",
					 text);
		*(bool *)field = b;
		return 0;
	case KEY_ENUM:
		for (i = 0; key->choices[i].name; i++) {
			if (strcasecmp(text, key->choices[i].name) == 0) {
				*(int *)field = key->choices[i].value;
				return 0;
			}
		}
		format_choices(key->choices, expected, sizeof(expected));
		return bad_value(msg, "invalid value \"%s\" (expected %s)", text, expected);
	case KEY_STRING:
		if (!*text)
			return bad_value(msg, "empty value");
		free(*(char **)field);
		*(char **)field = NULL;
		if (strcmp(text, STDOUT_PATH) == 0)
			return 0;
		*(char **)field = strdup(text);
		return *(char **)field ? 0 : -ENOMEM;
	case KEY_PID_LIST:
		for (item = text;; item = comma + 1) {
			comma = strchr(item, ',');
			err = pid_list_add(cfg, item, comma ? (size_t)(comma - item) : strlen(item),
					   msg);
			if (err || !comma)
				return err;
		}
	case KEY_OUTPUTS:
		for (item = text;; item = comma + 1) {
			comma = strchr(item, ',');
			err = output_list_add(cfg, key, item,
					      comma ? (size_t)(comma - item) : strlen(item), msg);
			if (err || !comma)
				return err;
		}
	}
	return bad_value(msg, "unsupported key type %d", key->type);
}

/* ---- defaults ---- */

void dbtap_config_defaults(struct dbtap_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->command = DBTAP_CMD_RUN;
	cfg->interval_s = DEFAULT_INTERVAL_S;
	cfg->duration_s = 0;
	cfg->output = DBTAP_OUT_AUTO;
	cfg->output_file = NULL;
	cfg->n_pids = 0;
	cfg->sample_rate = 0;
	cfg->slow_threshold_s = DEFAULT_SLOW_THRESHOLD_S;
	cfg->raw_text = false;
	cfg->capture = DBTAP_CAPTURE_AUTO;
	cfg->max_series = DEFAULT_MAX_SERIES;
	cfg->bpf_stats = false;
	cfg->otlp_queue_size = DEFAULT_OTLP_QUEUE_SIZE;
	cfg->otlp_max_request_size = DEFAULT_OTLP_MAX_REQUEST;
	cfg->otlp_flush_timeout_s = DEFAULT_OTLP_SHUTDOWN_S;
	cfg->config_file = NULL;
	cfg->verbose = 0;
}

void dbtap_config_free(struct dbtap_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->output_file);
	cfg->output_file = NULL;
	free(cfg->config_file);
	cfg->config_file = NULL;
	free(cfg->otlp_endpoint);
	free(cfg->otlp_metrics_endpoint);
	free(cfg->otlp_traces_endpoint);
	free(cfg->otlp_logs_endpoint);
	free(cfg->otlp_headers);
	free(cfg->otlp_service_name);
	free(cfg->otlp_resource_attributes);
	free(cfg->otlp_ca_file);
	free(cfg->otlp_client_cert);
	free(cfg->otlp_client_key);
	cfg->otlp_endpoint = cfg->otlp_metrics_endpoint = cfg->otlp_traces_endpoint = NULL;
	cfg->otlp_logs_endpoint = cfg->otlp_headers = cfg->otlp_service_name = NULL;
	cfg->otlp_resource_attributes = cfg->otlp_ca_file = cfg->otlp_client_cert = NULL;
	cfg->otlp_client_key = NULL;
}

/* ---- the YAML file ---- */

static const char *yaml_node_kind(const yaml_node_t *node)
{
	return node->type == YAML_SEQUENCE_NODE	 ? "sequence"
	       : node->type == YAML_MAPPING_NODE ? "mapping"
						 : "scalar";
}

/* True for a scalar YAML reads as null: `key:`, `key: ~`, `key: null`, unquoted. */
static bool yaml_scalar_is_null(const yaml_node_t *node)
{
	static const char *const null_words[] = {"", "~", "null", "Null", "NULL"};
	size_t i;

	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (i = 0; i < ARRAY_SIZE(null_words); i++)
		if (strcmp((const char *)node->data.scalar.value, null_words[i]) == 0)
			return true;
	return false;
}

/* Sets @key from one scalar @node; reports `config FILE:LINE: key "K": ...` on failure. */
static int yaml_set_scalar(struct dbtap_config *cfg, const struct config_key *key,
			   const yaml_node_t *node, const char *path, FILE *err)
{
	const char *text = (const char *)node->data.scalar.value;
	size_t line = node->start_mark.line + 1;
	char msg[MSG_MAX];
	int rc;

	if (yaml_scalar_is_null(node)) {
		report(err, "config %s:%zu: key \"%s\": missing value", path, line, key->name);
		return -EINVAL;
	}
	if (strlen(text) != node->data.scalar.length) {
		report(err, "config %s:%zu: key \"%s\": value contains a NUL byte", path, line,
		       key->name);
		return -EINVAL;
	}
	rc = key_set(cfg, key, text, msg);
	if (rc == -EINVAL)
		report(err, "config %s:%zu: key \"%s\": %s", path, line, key->name, msg);
	return rc;
}

/* Applies one `key: value` pair of the top-level mapping. */
static int yaml_apply_pair(struct dbtap_config *cfg, yaml_document_t *doc, yaml_node_pair_t *pair,
			   size_t *first_line, const char *path, FILE *err)
{
	const char *names[KNOWN_NAMES_MAX], *hint, *name;
	yaml_node_t *key_node = yaml_document_get_node(doc, pair->key);
	yaml_node_t *value = yaml_document_get_node(doc, pair->value);
	const struct config_key *key;
	size_t line = key_node->start_mark.line + 1, idx;
	yaml_node_item_t *item;
	int rc;

	if (key_node->type != YAML_SCALAR_NODE) {
		report(err, "config %s:%zu: expected a key name, got a %s", path, line,
		       yaml_node_kind(key_node));
		return -EINVAL;
	}
	name = (const char *)key_node->data.scalar.value;
	key = key_find(name);
	if (!key) {
		hint = closest_name(name, names, known_names(names, false));
		if (hint)
			report(err, "config %s:%zu: unknown key \"%s\" (did you mean \"%s\"?)",
			       path, line, name, hint);
		else
			report(err, "config %s:%zu: unknown key \"%s\"", path, line, name);
		return -EINVAL;
	}
	idx = key - config_keys;
	if (first_line[idx]) {
		report(err, "config %s:%zu: duplicate key \"%s\" (first on line %zu)", path, line,
		       name, first_line[idx]);
		return -EINVAL;
	}
	first_line[idx] = line;

	if ((key->type != KEY_PID_LIST && key->type != KEY_OUTPUTS) ||
	    value->type == YAML_SCALAR_NODE) {
		if (value->type != YAML_SCALAR_NODE) {
			report(err, "config %s:%zu: key \"%s\": expected a single value, got a %s",
			       path, (size_t)value->start_mark.line + 1, name,
			       yaml_node_kind(value));
			return -EINVAL;
		}
		key_reset_list(cfg, key);
		return yaml_set_scalar(cfg, key, value, path, err);
	}
	if (value->type != YAML_SEQUENCE_NODE) {
		report(err, "config %s:%zu: key \"%s\": expected %s, got a %s", path,
		       (size_t)value->start_mark.line + 1, name,
		       key->type == KEY_PID_LIST ? "a PID or a list of PIDs"
						 : "an output or a list of outputs",
		       yaml_node_kind(value));
		return -EINVAL;
	}
	key_reset_list(cfg, key);
	for (item = value->data.sequence.items.start; item < value->data.sequence.items.top;
	     item++) {
		yaml_node_t *node = yaml_document_get_node(doc, *item);

		if (node->type != YAML_SCALAR_NODE) {
			report(err, "config %s:%zu: key \"%s\": expected a %s, got a %s", path,
			       (size_t)node->start_mark.line + 1, name,
			       key->type == KEY_PID_LIST ? "PID" : "value", yaml_node_kind(node));
			return -EINVAL;
		}
		rc = yaml_set_scalar(cfg, key, node, path, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* Reports libyaml's own explanation of why @path is not YAML. */
static void yaml_report_parser_error(const yaml_parser_t *parser, const char *path, FILE *err)
{
	const char *problem = parser->problem ? parser->problem : "cannot parse";

	if (parser->error == YAML_READER_ERROR)
		report(err, "config %s: %s at byte %zu", path, problem, parser->problem_offset);
	else if (parser->error == YAML_MEMORY_ERROR)
		report(err, "config %s: out of memory", path);
	else if (parser->context)
		report(err, "config %s:%zu: %s (%s at line %zu)", path,
		       parser->problem_mark.line + 1, problem, parser->context,
		       parser->context_mark.line + 1);
	else
		report(err, "config %s:%zu: %s", path, parser->problem_mark.line + 1, problem);
}

/* Applies the document in @doc: empty, or a mapping of known keys. */
static int yaml_apply_document(struct dbtap_config *cfg, yaml_document_t *doc, const char *path,
			       FILE *err)
{
	size_t first_line[ARRAY_SIZE(config_keys)] = {0};
	yaml_node_t *root = yaml_document_get_root_node(doc);
	yaml_node_pair_t *pair;
	int rc;

	if (!root)
		return 0;
	if (root->type != YAML_MAPPING_NODE) {
		report(err,
		       "config %s:%zu: expected a mapping of settings at the top level, got a %s",
		       path, root->start_mark.line + 1, yaml_node_kind(root));
		return -EINVAL;
	}
	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		rc = yaml_apply_pair(cfg, doc, pair, first_line, path, err);
		if (rc)
			return rc;
	}
	return 0;
}

/* Reads the YAML file @path into @cfg; one document with a top-level mapping. */
static int config_load_file(struct dbtap_config *cfg, const char *path, FILE *err)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *extra_root;
	FILE *f;
	int rc;

	f = fopen(path, "r");
	if (!f) {
		report(err, "config %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (!yaml_parser_initialize(&parser)) {
		rc = -ENOMEM;
		goto out_close;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		yaml_report_parser_error(&parser, path, err);
		rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
		goto out_parser;
	}
	rc = yaml_apply_document(cfg, &doc, path, err);
	yaml_document_delete(&doc);
	if (rc)
		goto out_parser;

	/* A second document would be silently ignored: refuse it. */
	if (!yaml_parser_load(&parser, &extra)) {
		yaml_report_parser_error(&parser, path, err);
		rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
		goto out_parser;
	}
	extra_root = yaml_document_get_root_node(&extra);
	if (extra_root) {
		report(err, "config %s:%zu: more than one YAML document", path,
		       extra.start_mark.line + 1);
		rc = -EINVAL;
	}
	yaml_document_delete(&extra);
out_parser:
	yaml_parser_delete(&parser);
out_close:
	fclose(f);
	return rc;
}

/* ---- the environment ---- */

/* The value of @name in @envp, or NULL when unset or empty. */
static const char *env_lookup(char **envp, const char *name)
{
	size_t len = strlen(name);

	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return (*envp)[len + 1] ? *envp + len + 1 : NULL;
	return NULL;
}

/* DBTAP_ + @key upper-cased with '-' and '.' as '_' ("slow-threshold": DBTAP_SLOW_THRESHOLD). */
static void env_name(const struct config_key *key, char *buf, size_t size)
{
	size_t n = snprintf(buf, size, ENV_PREFIX "%s", key->name), i;

	for (i = strlen(ENV_PREFIX); i < n && i < size; i++)
		buf[i] = buf[i] == '-' || buf[i] == '.' ? '_' : toupper((unsigned char)buf[i]);
}

static int config_load_env(struct dbtap_config *cfg, char **envp, FILE *err)
{
	char name[NAME_MAX_LEN + sizeof(ENV_PREFIX)], msg[MSG_MAX];
	const char *value;
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(config_keys); i++) {
		env_name(&config_keys[i], name, sizeof(name));
		value = env_lookup(envp, name);
		if (!value)
			continue;
		key_reset_list(cfg, &config_keys[i]);
		rc = key_set(cfg, &config_keys[i], value, msg);
		if (rc == -EINVAL)
			report(err, "environment %s: %s", name, msg);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- the command line ---- */

enum flag_kind {
	FLAG_KEY,     /* --<key> VALUE, --<key>=VALUE, --<bool key>[=VALUE] */
	FLAG_VERBOSE, /* -v, -vv: count in .count */
	FLAG_CONFIG,  /* --config FILE */
	FLAG_HELP,    /* --help, -h */
	FLAG_VERSION, /* --version */
};

struct flag {
	enum flag_kind kind;
	const struct config_key *key; /* FLAG_KEY */
	const char *value;	      /* FLAG_KEY, FLAG_CONFIG; NULL for a bare boolean */
	int count;		      /* FLAG_VERBOSE */
	char name[NAME_MAX_LEN + 3];  /* as written, without "=VALUE", for messages */
};

/* Reads the short flags in @arg ("-v", "-vv", "-h"). */
static int flag_short(const char *arg, struct flag *ret, FILE *err)
{
	const char *c;

	snprintf(ret->name, sizeof(ret->name), "%s", arg);
	ret->kind = FLAG_VERBOSE;
	ret->count = 0;
	for (c = arg + 1; *c; c++) {
		if (*c == SHORT_HELP) {
			ret->kind = FLAG_HELP;
			return 0;
		}
		if (*c != SHORT_VERBOSE) {
			report(err, "unknown flag \"-%c\"", *c);
			return -EINVAL;
		}
		ret->count++;
	}
	return 0;
}

/* Reports a word that is no flag; @prev is the flag before it (kind FLAG_KEY or not). */
static void report_stray_argument(const char *arg, const struct flag *prev, FILE *err)
{
	bool b;

	if (strcmp(arg, SUBCOMMAND_LIST) == 0)
		report(err, "unexpected argument \"%s\" (the subcommand goes first)", arg);
	else if (prev->kind == FLAG_KEY && prev->key->type == KEY_BOOL && !prev->value &&
		 !parse_bool(arg, &b))
		report(err, "unexpected argument \"%s\" (write %s=%s)", arg, prev->name, arg);
	else
		report(err, "unexpected argument \"%s\"", arg);
}

/*
 * Reads the flag at argv[*i] into @ret (which holds the flag before it) and moves *i past
 * it and its value. Reports unknown flags (with a hint), missing values and stray arguments
 * to @err and returns -EINVAL.
 */
static int flag_next(int argc, char **argv, int *i, struct flag *ret, FILE *err)
{
	const char *names[KNOWN_NAMES_MAX], *arg = argv[*i], *eq, *hint, *name;
	size_t len;

	(*i)++;
	if (arg[0] != '-' || arg[1] == '\0') {
		report_stray_argument(arg, ret, err);
		return -EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	if (arg[1] != '-')
		return flag_short(arg, ret, err);

	name = arg + 2;
	eq = strchr(name, '=');
	len = eq ? (size_t)(eq - name) : strlen(name);
	snprintf(ret->name, sizeof(ret->name), "--%.*s", (int)len, name);
	if (len == 0 || len > NAME_MAX_LEN) {
		report(err, "unknown flag \"%s\"", ret->name);
		return -EINVAL;
	}
	if (strncmp(name, FLAG_NAME_HELP, len) == 0 && !FLAG_NAME_HELP[len]) {
		ret->kind = FLAG_HELP;
	} else if (strncmp(name, FLAG_NAME_VERSION, len) == 0 && !FLAG_NAME_VERSION[len]) {
		ret->kind = FLAG_VERSION;
	} else if (strncmp(name, FLAG_NAME_CONFIG, len) == 0 && !FLAG_NAME_CONFIG[len]) {
		ret->kind = FLAG_CONFIG;
	} else {
		char key_name[NAME_MAX_LEN + 1];

		memcpy(key_name, name, len);
		key_name[len] = '\0';
		ret->kind = FLAG_KEY;
		ret->key = key_find(key_name);
		if (!ret->key) {
			hint = closest_name(key_name, names, known_names(names, true));
			if (hint)
				report(err, "unknown flag \"%s\" (did you mean \"--%s\"?)",
				       ret->name, hint);
			else
				report(err, "unknown flag \"%s\"", ret->name);
			return -EINVAL;
		}
	}

	if (ret->kind == FLAG_HELP || ret->kind == FLAG_VERSION) {
		if (eq) {
			report(err, "%s: takes no value", ret->name);
			return -EINVAL;
		}
		return 0;
	}
	if (eq) {
		ret->value = eq + 1;
		return 0;
	}
	if (ret->key && ret->key->type == KEY_BOOL)
		return 0; /* a bare boolean flag means true; other values only with '=' */
	if (*i >= argc) {
		report(err, "%s: missing value", ret->name);
		return -EINVAL;
	}
	ret->value = argv[(*i)++];
	return 0;
}

/* Writes the --help text: every flag on one line with its default. */
static void print_usage(FILE *out)
{
	const char *const bool_metavar = "[=BOOL]";
	char left[NAME_MAX_LEN * 2], def[NAME_MAX_LEN * 2];
	struct dbtap_config defaults;
	const struct config_key *key;
	size_t i;

	dbtap_config_defaults(&defaults);
	fprintf(out,
		"Usage: " PROG_NAME " [" SUBCOMMAND_LIST "] [OPTIONS]\n"
		"Watch database servers from the kernel: every query's count, latency and "
		"errors.\n\n"
		"Commands:\n"
		"  %-*s%s\n\n"
		"Options:\n",
		HELP_FLAG_COLUMN - 2, SUBCOMMAND_LIST,
		"print the servers found and how each is attached, then exit");
	snprintf(left, sizeof(left), "  --" FLAG_NAME_CONFIG " FILE");
	fprintf(out, "%-*s%s\n", HELP_FLAG_COLUMN, left,
		"YAML settings file, env " ENV_CONFIG " [default: none]");
	for (i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const void *field;

		key = &config_keys[i];
		field = (const char *)&defaults + key->offset;
		if (key->short_flag)
			snprintf(left, sizeof(left), "  -%c, --%s %s", key->short_flag, key->name,
				 key->metavar);
		else if (key->metavar)
			snprintf(left, sizeof(left), "  --%s %s", key->name, key->metavar);
		else
			snprintf(left, sizeof(left), "  --%s%s", key->name, bool_metavar);
		if (key->default_text)
			snprintf(def, sizeof(def), "%s", key->default_text);
		else if (key->type == KEY_DURATION)
			format_duration(*(const double *)field, def, sizeof(def));
		else if (key->type == KEY_UINT)
			snprintf(def, sizeof(def), "%u", *(const uint32_t *)field);
		else if (key->type == KEY_INT)
			snprintf(def, sizeof(def), "%d", *(const int *)field);
		else if (key->type == KEY_BOOL)
			snprintf(def, sizeof(def), "%s", *(const bool *)field ? "true" : "false");
		else if (key->type == KEY_ENUM)
			snprintf(def, sizeof(def), "%s",
				 choice_name(key->choices, *(const int *)field));
		else
			snprintf(def, sizeof(def), "none");
		fprintf(out, "%-*s%s [default: %s]\n", HELP_FLAG_COLUMN, left, key->help, def);
	}
	fprintf(out, "%-*s%s\n", HELP_FLAG_COLUMN, "  -h, --" FLAG_NAME_HELP,
		"print this help and exit");
	fprintf(out, "%-*s%s\n", HELP_FLAG_COLUMN, "  --" FLAG_NAME_VERSION,
		"print the version and exit");
	fprintf(out, "\nEvery option but --config, --help and --version is also a YAML key "
		     "(interval: 5s) and an\n"
		     "environment variable (DBTAP_INTERVAL=5s). Flags beat the environment, which "
		     "beats the file.\n"
		     "DURATION: 250ms, 1.5s, 2m, 100us, 1h, 1m30s or a plain number of seconds.\n");
}

int dbtap_config_parse(struct dbtap_config *cfg, int argc, char **argv, char **envp, FILE *out,
		       FILE *err)
{
	const char *config_path = NULL;
	bool pids_from_flags = false, outputs_from_flags = false;
	char msg[MSG_MAX];
	struct flag flag = {.kind = FLAG_HELP};
	int first = 1, i, rc;

	dbtap_config_defaults(cfg);
	if (argc > 1 && strcmp(argv[1], SUBCOMMAND_LIST) == 0) {
		cfg->command = DBTAP_CMD_LIST;
		first = 2;
	}

	/* Pass 1: check every flag, act on --help and --version, find --config. */
	for (i = first; i < argc;) {
		rc = flag_next(argc, argv, &i, &flag, err);
		if (rc)
			goto fail;
		if (flag.kind == FLAG_HELP) {
			if (out)
				print_usage(out);
			return 1;
		}
		if (flag.kind == FLAG_VERSION) {
			if (out)
				fprintf(out, PROG_NAME " " DBTAP_VERSION " (" DBTAP_GIT_REV ")\n");
			return 1;
		}
		if (flag.kind == FLAG_CONFIG)
			config_path = flag.value;
	}

	if (!config_path)
		config_path = env_lookup(envp, ENV_CONFIG);
	if (config_path) {
		cfg->config_file = strdup(config_path);
		if (!cfg->config_file) {
			rc = -ENOMEM;
			goto fail;
		}
		rc = config_load_file(cfg, config_path, err);
		if (rc)
			goto fail;
	}

	rc = config_load_env(cfg, envp, err);
	if (rc)
		goto fail;

	/* Pass 2: the flags' values, in order, over everything else. */
	for (i = first; i < argc;) {
		rc = flag_next(argc, argv, &i, &flag, err);
		if (rc)
			goto fail;
		if (flag.kind == FLAG_VERBOSE) {
			cfg->verbose = cfg->verbose > INT_MAX - flag.count
					       ? INT_MAX
					       : cfg->verbose + flag.count;
			continue;
		}
		if (flag.kind != FLAG_KEY)
			continue;
		if (flag.key->type == KEY_PID_LIST && !pids_from_flags) {
			key_reset_list(cfg, flag.key);
			pids_from_flags = true;
		}
		if (flag.key->type == KEY_OUTPUTS && !outputs_from_flags) {
			key_reset_list(cfg, flag.key);
			outputs_from_flags = true;
		}
		rc = key_set(cfg, flag.key, flag.value ? flag.value : "true", msg);
		if (rc == -EINVAL)
			report(err, "%s: %s", flag.name, msg);
		if (rc)
			goto fail;
	}
	return 0;

fail:
	dbtap_config_free(cfg);
	dbtap_config_defaults(cfg);
	return rc;
}
