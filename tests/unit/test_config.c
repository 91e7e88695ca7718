// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * test_config.c - unit tests of userspace/config.c: defaults, every flag, YAML key and
 * environment variable, their precedence, every error line, --help, --version, the list
 * subcommand and dbtap_parse_duration().
 *
 * Each case runs dbtap_config_parse() on its own argv, environment and YAML file (written to
 * a temporary file whose path replaces "{cfg}" in the case's strings) and compares the result
 * as the fields that differ from the defaults ("interval=0.25 output=json"), so a case also
 * proves that nothing else changed.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "userspace/config.h"

#ifndef DBTAP_VERSION
#define DBTAP_VERSION "0.0.0"
#endif
#ifndef DBTAP_GIT_REV
#define DBTAP_GIT_REV "unknown"
#endif

#define MAX_ARGS       24
#define MAX_ENV	       8
#define CFG_TOKEN      "{cfg}"
#define DUMP_MAX       2048
#define TOO_MANY_PIDS  (DBTAP_MAX_PIDS + 1)
#define PID_LIST_CHARS (TOO_MANY_PIDS * 4 + 16)

/* "1,2,...,64" (the most PIDs allowed), "1,...,65" (one too many), and "pids=1,...,64". */
static char pids_max[PID_LIST_CHARS - 8];
static char pids_too_many[PID_LIST_CHARS];
static char env_pids_max[PID_LIST_CHARS + 16];
static char env_pids_too_many[PID_LIST_CHARS + 16];
static char want_pids_max[PID_LIST_CHARS + 16];

struct parse_case {
	const char *name;
	const char *args[MAX_ARGS]; /* after argv[0] "dbtap"; NULL ends them */
	const char *env[MAX_ENV];   /* "NAME=value"; NULL ends them */
	const char *yaml;	    /* file contents, or NULL for no file */
	const char *want;	    /* rc 0: fields that differ from the defaults; else the error */
};

/* ---- helpers ---- */

/* @s with every CFG_TOKEN replaced by @path (malloc'd). */
static char *subst(const char *s, const char *path)
{
	size_t cap = strlen(s) + 1, n = 0;
	const char *p = s, *hit;
	char *out;

	for (hit = strstr(p, CFG_TOKEN); hit; hit = strstr(hit + 1, CFG_TOKEN))
		cap += strlen(path);
	out = malloc(cap);
	assert_non_null(out);
	while ((hit = strstr(p, CFG_TOKEN))) {
		memcpy(out + n, p, hit - p);
		n += hit - p;
		memcpy(out + n, path, strlen(path));
		n += strlen(path);
		p = hit + strlen(CFG_TOKEN);
	}
	strcpy(out + n, p);
	return out;
}

static const char *output_name(enum dbtap_output o)
{
	return o == DBTAP_OUT_TABLE ? "table" : o == DBTAP_OUT_JSON ? "json" : "auto";
}

static const char *capture_name(enum dbtap_capture_path c)
{
	return c == DBTAP_CAPTURE_SOCKET    ? "socket"
	       : c == DBTAP_CAPTURE_SYSCALL ? "syscall"
					    : "auto";
}

/* Every field of @cfg as "name=value", one per row of @rows (each DUMP_MAX bytes). */
#define N_FIELDS 21
static void dump_fields(const struct dbtap_config *cfg, char rows[N_FIELDS][DUMP_MAX])
{
	size_t used = 0;
	int i, r = 0;

	snprintf(rows[r++], DUMP_MAX, "command=%s",
		 cfg->command == DBTAP_CMD_LIST ? "list" : "run");
	snprintf(rows[r++], DUMP_MAX, "interval=%.9g", cfg->interval_s);
	snprintf(rows[r++], DUMP_MAX, "duration=%.9g", cfg->duration_s);
	snprintf(rows[r++], DUMP_MAX, "output=%s", output_name(cfg->output));
	snprintf(rows[r++], DUMP_MAX, "output_otlp=%s", cfg->output_otlp ? "true" : "false");
	snprintf(rows[r++], DUMP_MAX, "otlp_endpoint=%s",
		 cfg->otlp_endpoint ? cfg->otlp_endpoint : "(null)");
	snprintf(rows[r++], DUMP_MAX, "otlp_headers=%s",
		 cfg->otlp_headers ? cfg->otlp_headers : "(null)");
	snprintf(rows[r++], DUMP_MAX, "otlp_timeout=%.9g", cfg->otlp_timeout_s);
	snprintf(rows[r++], DUMP_MAX, "otlp_compression=%d", (int)cfg->otlp_compression);
	snprintf(rows[r++], DUMP_MAX, "otlp_temporality=%d", (int)cfg->otlp_temporality);
	snprintf(rows[r++], DUMP_MAX, "otlp_queue_size=%u", cfg->otlp_queue_size);
	snprintf(rows[r++], DUMP_MAX, "output_file=%s",
		 cfg->output_file ? cfg->output_file : "(null)");
	used = snprintf(rows[r], DUMP_MAX, "pids=");
	for (i = 0; i < cfg->n_pids; i++)
		used += snprintf(rows[r] + used, DUMP_MAX - used, "%s%u", i ? "," : "",
				 cfg->pids[i]);
	r++;
	snprintf(rows[r++], DUMP_MAX, "sample_rate=%u", cfg->sample_rate);
	snprintf(rows[r++], DUMP_MAX, "slow_threshold=%.9g", cfg->slow_threshold_s);
	snprintf(rows[r++], DUMP_MAX, "raw_text=%s", cfg->raw_text ? "true" : "false");
	snprintf(rows[r++], DUMP_MAX, "capture=%s", capture_name(cfg->capture));
	snprintf(rows[r++], DUMP_MAX, "max_series=%u", cfg->max_series);
	snprintf(rows[r++], DUMP_MAX, "bpf_stats=%s", cfg->bpf_stats ? "true" : "false");
	snprintf(rows[r++], DUMP_MAX, "config_file=%s",
		 cfg->config_file ? cfg->config_file : "(null)");
	snprintf(rows[r++], DUMP_MAX, "verbose=%d", cfg->verbose);
	assert_int_equal(r, N_FIELDS);
}

/* The fields of @cfg that differ from dbtap_config_defaults(), space-separated (malloc'd). */
static char *diff_from_defaults(const struct dbtap_config *cfg)
{
	static char got[N_FIELDS][DUMP_MAX], def[N_FIELDS][DUMP_MAX];
	struct dbtap_config defaults;
	size_t cap = N_FIELDS * DUMP_MAX, used = 0;
	char *out = calloc(1, cap);
	int i;

	assert_non_null(out);
	dbtap_config_defaults(&defaults);
	dump_fields(cfg, got);
	dump_fields(&defaults, def);
	for (i = 0; i < N_FIELDS; i++)
		if (strcmp(got[i], def[i]) != 0)
			used += snprintf(out + used, cap - used, "%s%s", used ? " " : "", got[i]);
	return out;
}

struct run_result {
	int rc;
	struct dbtap_config cfg;
	char *out, *err; /* what the parser wrote to @out and @err */
	char path[64];	 /* the YAML file, "" when none */
};

/* Runs dbtap_config_parse() for @c; the caller checks and calls run_done(). */
static void run_case(const struct parse_case *c, struct run_result *r)
{
	char *argv[MAX_ARGS + 2], *envp[MAX_ENV + 1];
	size_t out_len, err_len;
	FILE *out, *err;
	int argc = 0, n = 0, fd;

	memset(r, 0, sizeof(*r));
	if (c->yaml) {
		snprintf(r->path, sizeof(r->path), "/tmp/dbtap-test-config-XXXXXX.yaml");
		fd = mkstemps(r->path, strlen(".yaml"));
		assert_true(fd >= 0);
		assert_int_equal(write(fd, c->yaml, strlen(c->yaml)), (ssize_t)strlen(c->yaml));
		close(fd);
	}
	argv[argc++] = subst("dbtap", r->path);
	for (; c->args[argc - 1]; argc++)
		argv[argc] = subst(c->args[argc - 1], r->path);
	argv[argc] = NULL;
	for (; c->env[n]; n++)
		envp[n] = subst(c->env[n], r->path);
	envp[n] = NULL;

	out = open_memstream(&r->out, &out_len);
	err = open_memstream(&r->err, &err_len);
	assert_non_null(out);
	assert_non_null(err);
	r->rc = dbtap_config_parse(&r->cfg, argc, argv, envp, out, err);
	fclose(out);
	fclose(err);
	if (r->path[0])
		unlink(r->path); /* now, so that a failed assertion leaves no file behind */

	while (argc--)
		free(argv[argc]);
	while (n--)
		free(envp[n]);
}

static void run_done(struct run_result *r)
{
	dbtap_config_free(&r->cfg);
	free(r->out);
	free(r->err);
}

/* Runs every case of @cases that must succeed and compares the fields it changed. */
static void check_ok_cases(const struct parse_case *cases, size_t n)
{
	struct run_result r;
	size_t i;

	for (i = 0; i < n; i++) {
		char *want, *got;

		run_case(&cases[i], &r);
		want = subst(cases[i].want, r.path);
		got = diff_from_defaults(&r.cfg);
		if (r.rc != 0 || strcmp(got, want) != 0 || r.err[0] || r.out[0])
			print_error("case \"%s\": rc %d, got \"%s\", want \"%s\", err \"%s\"\n",
				    cases[i].name, r.rc, got, want, r.err);
		assert_int_equal(r.rc, 0);
		assert_string_equal(got, want);
		assert_string_equal(r.err, "");
		assert_string_equal(r.out, "");
		free(want);
		free(got);
		run_done(&r);
	}
}

/* Runs every case of @cases that must fail: -EINVAL, exactly one line, defaults left. */
static void check_error_cases(const struct parse_case *cases, size_t n)
{
	struct run_result r;
	size_t i;

	for (i = 0; i < n; i++) {
		char *want, *got, *line;

		run_case(&cases[i], &r);
		want = subst(cases[i].want, r.path);
		line = malloc(strlen(want) + 2);
		assert_non_null(line);
		sprintf(line, "%s\n", want);
		if (r.rc != -EINVAL || strcmp(r.err, line) != 0)
			print_error("case \"%s\": rc %d, err \"%s\", want \"%s\"\n", cases[i].name,
				    r.rc, r.err, want);
		assert_int_equal(r.rc, -EINVAL);
		assert_string_equal(r.err, line);
		assert_string_equal(r.out, "");
		/* A failed parse owns nothing and leaves the defaults. */
		assert_null(r.cfg.output_file);
		assert_null(r.cfg.config_file);
		got = diff_from_defaults(&r.cfg);
		assert_string_equal(got, "");
		free(got);
		free(line);
		free(want);
		run_done(&r);
	}
}

#define ARGS(...) {__VA_ARGS__, NULL}
#define ENV(...)  {__VA_ARGS__, NULL}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct dbtap_config cfg;

	dbtap_config_defaults(&cfg);
	assert_int_equal(cfg.command, DBTAP_CMD_RUN);
	assert_true(cfg.interval_s == 5.0);
	assert_true(cfg.duration_s == 0.0);
	assert_int_equal(cfg.output, DBTAP_OUT_AUTO);
	assert_null(cfg.output_file);
	assert_int_equal(cfg.n_pids, 0);
	assert_int_equal(cfg.sample_rate, 0);
	assert_true(cfg.slow_threshold_s == 0.1);
	assert_false(cfg.raw_text);
	assert_int_equal(cfg.capture, DBTAP_CAPTURE_AUTO);
	assert_int_equal(cfg.max_series, 10000);
	assert_false(cfg.bpf_stats); /* host-wide cost: only on request */
	assert_null(cfg.config_file);
	assert_int_equal(cfg.verbose, 0);
	dbtap_config_free(&cfg);
	dbtap_config_free(NULL);
}

static void test_no_arguments_gives_defaults(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "nothing", { NULL }, { NULL }, NULL, "" },
		{ "unrelated environment", { NULL }, ENV("PATH=/bin", "DBTAP=1", "DBTAP_=2"),
		  NULL, "" },
		{ "empty variables are unset", { NULL },
		  ENV("DBTAP_INTERVAL=", "DBTAP_OUTPUT=", "DBTAP_CONFIG="), NULL, "" },
		{ "unknown DBTAP_ variable ignored", { NULL }, ENV("DBTAP_INTERVALL=abc"), NULL,
		  "" },
		{ "variable names are exact", { NULL }, ENV("DBTAP_INTERVAL2=7", "dbtap_interval=7"),
		  NULL, "" },
	};
	/* clang-format on */

	check_ok_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- every flag ---- */

static void test_flags(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "--interval", ARGS("--interval", "250ms"), { NULL }, NULL, "interval=0.25" },
		{ "--interval=", ARGS("--interval=1.5s"), { NULL }, NULL, "interval=1.5" },
		{ "--interval 1h", ARGS("--interval", "1h"), { NULL }, NULL, "interval=3600" },
		{ "--interval plain", ARGS("--interval", "2"), { NULL }, NULL, "interval=2" },
		{ "--duration", ARGS("--duration", "2m"), { NULL }, NULL, "duration=120" },
		{ "--output json", ARGS("--output", "json"), { NULL }, NULL, "output=json" },
		{ "--output=table", ARGS("--output=table"), { NULL }, NULL, "output=table" },
		{ "--output JSON", ARGS("--output", "JSON"), { NULL }, NULL, "output=json" },
		{ "--output otlp", ARGS("--output", "otlp"), { NULL }, NULL, "output_otlp=true" },
		{ "--output otlp and json", ARGS("--output", "otlp", "--output", "json"), { NULL },
		  NULL, "output=json output_otlp=true" },
		{ "--output comma list", ARGS("--output=table, OTLP"), { NULL }, NULL,
		  "output=table output_otlp=true" },
		{ "--output flags replace env", ARGS("--output", "json"), ENV("DBTAP_OUTPUT=otlp"),
		  NULL, "output=json" },
		{ "otlp keys", ARGS("--otlp-endpoint", "http://c:4318", "--otlp-headers", "a=1,b=2",
				    "--otlp-timeout", "2500ms", "--otlp-compression", "none",
				    "--otlp-temporality", "delta", "--otlp-queue-size", "65536"),
		  { NULL }, NULL,
		  "otlp_endpoint=http://c:4318 otlp_headers=a=1,b=2 otlp_timeout=2.5 "
		  "otlp_compression=2 otlp_temporality=1 otlp_queue_size=65536" },
		{ "otlp env", { NULL }, ENV("DBTAP_OTLP_COMPRESSION=gzip"), NULL,
		  "otlp_compression=1" },
		{ "--output-file", ARGS("--output-file", "/tmp/x.json"), { NULL }, NULL,
		  "output_file=/tmp/x.json" },
		{ "--output-file last wins", ARGS("--output-file=/a", "--output-file", "/b"),
		  { NULL }, NULL, "output_file=/b" },
		{ "--output-file - is stdout", ARGS("--output-file=/a", "--output-file", "-"),
		  { NULL }, NULL, "" },
		{ "--pid", ARGS("--pid", "1234"), { NULL }, NULL, "pids=1234" },
		{ "--pid list", ARGS("--pid", "1,2,3"), { NULL }, NULL, "pids=1,2,3" },
		{ "--pid spaces", ARGS("--pid", " 7 , 8"), { NULL }, NULL, "pids=7,8" },
		{ "--pid repeated", ARGS("--pid", "1", "--pid=2,3"), { NULL }, NULL, "pids=1,2,3" },
		{ "--pid duplicates", ARGS("--pid", "5,5", "--pid", "5"), { NULL }, NULL,
		  "pids=5" },
		{ "--pid largest", ARGS("--pid", "4194304"), { NULL }, NULL, "pids=4194304" },
		{ "--pid 64 of them", ARGS("--pid", pids_max), { NULL }, NULL, want_pids_max },
		{ "--sample-rate", ARGS("--sample-rate", "100"), { NULL }, NULL, "sample_rate=100" },
		{ "--sample-rate max", ARGS("--sample-rate=4294967295"), { NULL }, NULL,
		  "sample_rate=4294967295" },
		{ "--sample-rate 0", ARGS("--sample-rate", "0"), { NULL }, NULL, "" },
		{ "--slow-threshold", ARGS("--slow-threshold", "100us"), { NULL }, NULL,
		  "slow_threshold=0.0001" },
		{ "--slow-threshold 0", ARGS("--slow-threshold", "0"), { NULL }, NULL,
		  "slow_threshold=0" },
		{ "--raw-text", ARGS("--raw-text"), { NULL }, NULL, "raw_text=true" },
		{ "--raw-text=yes", ARGS("--raw-text=yes"), { NULL }, NULL, "raw_text=true" },
		{ "--raw-text=off", ARGS("--raw-text", "--raw-text=off"), { NULL }, NULL, "" },
		{ "--raw-text=ON", ARGS("--raw-text=ON"), { NULL }, NULL, "raw_text=true" },
		{ "--capture socket", ARGS("--capture", "socket"), { NULL }, NULL,
		  "capture=socket" },
		{ "--capture syscall", ARGS("--capture=syscall"), { NULL }, NULL,
		  "capture=syscall" },
		{ "--capture auto", ARGS("--capture", "syscall", "--capture", "auto"), { NULL },
		  NULL, "" },
		{ "--max-series", ARGS("--max-series", "1"), { NULL }, NULL, "max_series=1" },
		{ "--bpf-stats", ARGS("--bpf-stats"), { NULL }, NULL, "bpf_stats=true" },
		{ "--bpf-stats=on", ARGS("--bpf-stats=on"), { NULL }, NULL, "bpf_stats=true" },
		{ "--bpf-stats=false", ARGS("--bpf-stats", "--bpf-stats=false"), { NULL }, NULL,
		  "" },
		{ "--verbose", ARGS("--verbose", "3"), { NULL }, NULL, "verbose=3" },
		{ "-v", ARGS("-v"), { NULL }, NULL, "verbose=1" },
		{ "-vv -v", ARGS("-vv", "-v"), { NULL }, NULL, "verbose=3" },
		{ "--verbose then -v", ARGS("--verbose=2", "-v"), { NULL }, NULL, "verbose=3" },
		{ "-v then --verbose", ARGS("-v", "--verbose", "0"), { NULL }, NULL, "" },
		{ "list", ARGS("list"), { NULL }, NULL, "command=list" },
		{ "list with flags", ARGS("list", "--output", "json", "-v"), { NULL }, NULL,
		  "command=list output=json verbose=1" },
		{ "all at once",
		  ARGS("--interval", "10s", "--duration=1m30s", "--output", "json",
		       "--output-file", "out.json", "--pid", "10,20", "--sample-rate", "8",
		       "--slow-threshold", "250ms", "--raw-text", "--capture", "socket",
		       "--max-series", "500", "-v"),
		  { NULL }, NULL,
		  "interval=10 duration=90 output=json output_file=out.json pids=10,20 "
		  "sample_rate=8 slow_threshold=0.25 raw_text=true capture=socket max_series=500 "
		  "verbose=1" },
	};
	/* clang-format on */

	check_ok_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- every YAML key ---- */

static void test_yaml_keys(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "interval", ARGS("--config", "{cfg}"), { NULL }, "interval: 250ms\n",
		  "interval=0.25 config_file={cfg}" },
		{ "interval plain number", ARGS("--config", "{cfg}"), { NULL }, "interval: 2\n",
		  "interval=2 config_file={cfg}" },
		{ "duration", ARGS("--config={cfg}"), { NULL }, "duration: 1h\n",
		  "duration=3600 config_file={cfg}" },
		{ "output list", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "output: [otlp, json]\n",
		  "output=json output_otlp=true config_file={cfg}" },
		{ "output", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "output: json\n",
		  "output=json config_file={cfg}" },
		{ "output-file", { NULL }, ENV("DBTAP_CONFIG={cfg}"),
		  "output-file: /var/log/dbtap.json\n",
		  "output_file=/var/log/dbtap.json config_file={cfg}" },
		{ "output-file quoted", { NULL }, ENV("DBTAP_CONFIG={cfg}"),
		  "output-file: \"a b.json\"\n", "output_file=a b.json config_file={cfg}" },
		{ "pid scalar", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "pid: 42\n",
		  "pids=42 config_file={cfg}" },
		{ "pid flow sequence", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "pid: [10, 20]\n",
		  "pids=10,20 config_file={cfg}" },
		{ "pid block sequence", { NULL }, ENV("DBTAP_CONFIG={cfg}"),
		  "pid:\n  - 7\n  - 8\n  - 9\n", "pids=7,8,9 config_file={cfg}" },
		{ "pid empty sequence", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "pid: []\n",
		  "config_file={cfg}" },
		{ "sample-rate", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "sample-rate: 7\n",
		  "sample_rate=7 config_file={cfg}" },
		{ "slow-threshold", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "slow-threshold: 1.5s\n",
		  "slow_threshold=1.5 config_file={cfg}" },
		{ "raw-text", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "raw-text: yes\n",
		  "raw_text=true config_file={cfg}" },
		{ "raw-text True", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "raw-text: True\n",
		  "raw_text=true config_file={cfg}" },
		{ "raw-text on", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "raw-text: on\n",
		  "raw_text=true config_file={cfg}" },
		{ "raw-text no", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "raw-text: no\n",
		  "config_file={cfg}" },
		{ "capture", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "capture: syscall\n",
		  "capture=syscall config_file={cfg}" },
		{ "max-series", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "max-series: 500\n",
		  "max_series=500 config_file={cfg}" },
		{ "bpf-stats", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "bpf-stats: true\n",
		  "bpf_stats=true config_file={cfg}" },
		{ "bpf-stats no", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "bpf-stats: no\n",
		  "config_file={cfg}" },
		{ "verbose", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "verbose: 2\n",
		  "config_file={cfg} verbose=2" },
		{ "empty file", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "", "config_file={cfg}" },
		{ "comments only", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "# nothing\n\n",
		  "config_file={cfg}" },
		{ "document markers", { NULL }, ENV("DBTAP_CONFIG={cfg}"),
		  "---\nraw-text: true\n...\n", "raw_text=true config_file={cfg}" },
		{ "full file", { NULL }, ENV("DBTAP_CONFIG={cfg}"),
		  "# dbtap settings\n"
		  "interval: 10s\n"
		  "duration: 0\n"
		  "output: table\n"
		  "output-file: /tmp/dbtap.out\n"
		  "pid: [100, 200]\n"
		  "sample-rate: 1000\n"
		  "slow-threshold: 50ms\n"
		  "raw-text: false\n"
		  "capture: socket\n"
		  "max-series: 2000\n"
		  "bpf-stats: on\n"
		  "verbose: 1\n",
		  "interval=10 output=table output_file=/tmp/dbtap.out pids=100,200 "
		  "sample_rate=1000 slow_threshold=0.05 capture=socket max_series=2000 "
		  "bpf_stats=true config_file={cfg} verbose=1" },
	};
	/* clang-format on */

	check_ok_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- every environment variable ---- */

static void test_env(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "DBTAP_INTERVAL", { NULL }, ENV("DBTAP_INTERVAL=100ms"), NULL, "interval=0.1" },
		{ "DBTAP_DURATION", { NULL }, ENV("DBTAP_DURATION=30"), NULL, "duration=30" },
		{ "DBTAP_OUTPUT", { NULL }, ENV("DBTAP_OUTPUT=json"), NULL, "output=json" },
		{ "DBTAP_OUTPUT_FILE", { NULL }, ENV("DBTAP_OUTPUT_FILE=/tmp/o"), NULL,
		  "output_file=/tmp/o" },
		{ "DBTAP_PID", { NULL }, ENV("DBTAP_PID=3,4"), NULL, "pids=3,4" },
		{ "DBTAP_PID 64", { NULL }, ENV(env_pids_max), NULL, want_pids_max },
		{ "DBTAP_SAMPLE_RATE", { NULL }, ENV("DBTAP_SAMPLE_RATE=16"), NULL,
		  "sample_rate=16" },
		{ "DBTAP_SLOW_THRESHOLD", { NULL }, ENV("DBTAP_SLOW_THRESHOLD=2s"), NULL,
		  "slow_threshold=2" },
		{ "DBTAP_RAW_TEXT", { NULL }, ENV("DBTAP_RAW_TEXT=1"), NULL, "raw_text=true" },
		{ "DBTAP_RAW_TEXT true", { NULL }, ENV("DBTAP_RAW_TEXT=true"), NULL,
		  "raw_text=true" },
		{ "DBTAP_CAPTURE", { NULL }, ENV("DBTAP_CAPTURE=socket"), NULL, "capture=socket" },
		{ "DBTAP_MAX_SERIES", { NULL }, ENV("DBTAP_MAX_SERIES=99"), NULL, "max_series=99" },
		{ "DBTAP_BPF_STATS", { NULL }, ENV("DBTAP_BPF_STATS=1"), NULL, "bpf_stats=true" },
		{ "DBTAP_BPF_STATS off", { NULL }, ENV("DBTAP_BPF_STATS=off"), NULL, "" },
		{ "DBTAP_VERBOSE", { NULL }, ENV("DBTAP_VERBOSE=4"), NULL, "verbose=4" },
		{ "DBTAP_CONFIG", { NULL }, ENV("DBTAP_CONFIG={cfg}"), "verbose: 1\n",
		  "config_file={cfg} verbose=1" },
	};
	/* clang-format on */

	check_ok_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- precedence: defaults < file < environment < flags ---- */

static void test_precedence(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "file over defaults", ARGS("--config", "{cfg}"), { NULL }, "interval: 2s\n",
		  "interval=2 config_file={cfg}" },
		{ "env over file", ARGS("--config", "{cfg}"), ENV("DBTAP_INTERVAL=3s"),
		  "interval: 2s\n", "interval=3 config_file={cfg}" },
		{ "flag over env", ARGS("--interval", "4s"), ENV("DBTAP_INTERVAL=3s"), NULL,
		  "interval=4" },
		{ "flag over file", ARGS("--config", "{cfg}", "--interval", "4s"), { NULL },
		  "interval: 2s\n", "interval=4 config_file={cfg}" },
		{ "flag over env over file", ARGS("--interval=4s", "--config={cfg}"),
		  ENV("DBTAP_INTERVAL=3s"), "interval: 2s\n", "interval=4 config_file={cfg}" },
		{ "each layer keeps the keys the others leave",
		  ARGS("--config", "{cfg}", "--output", "table"),
		  ENV("DBTAP_OUTPUT=json", "DBTAP_RAW_TEXT=yes"),
		  "output: json\nmax-series: 7\nraw-text: false\n",
		  "output=table raw_text=true max_series=7 config_file={cfg}" },
		{ "env PIDs replace file PIDs", ARGS("--config", "{cfg}"), ENV("DBTAP_PID=3"),
		  "pid: [1, 2]\n", "pids=3 config_file={cfg}" },
		{ "flag PIDs replace env PIDs", ARGS("--pid", "4", "--pid", "5"),
		  ENV("DBTAP_PID=3"), NULL, "pids=4,5" },
		{ "-v adds to the file's verbose", ARGS("-v"), ENV("DBTAP_CONFIG={cfg}"),
		  "verbose: 2\n", "config_file={cfg} verbose=3" },
		{ "-v adds to the env's verbose", ARGS("-vv"), ENV("DBTAP_VERBOSE=1"), NULL,
		  "verbose=3" },
		{ "flag false over env true", ARGS("--raw-text=false"), ENV("DBTAP_RAW_TEXT=on"),
		  NULL, "" },
		{ "bpf-stats: env over file", ARGS("--config", "{cfg}"), ENV("DBTAP_BPF_STATS=yes"),
		  "bpf-stats: false\n", "bpf_stats=true config_file={cfg}" },
		{ "bpf-stats: flag over env", ARGS("--bpf-stats=0"), ENV("DBTAP_BPF_STATS=true"),
		  NULL, "" },
		{ "flag - over file path", ARGS("--output-file", "-"), ENV("DBTAP_CONFIG={cfg}"),
		  "output-file: /tmp/x\n", "config_file={cfg}" },
		{ "--config over DBTAP_CONFIG", ARGS("--config", "{cfg}"),
		  ENV("DBTAP_CONFIG=/nonexistent/dbtap.yaml"), "raw-text: true\n",
		  "raw_text=true config_file={cfg}" },
		{ "last --config wins", ARGS("--config", "/nonexistent/a.yaml", "--config", "{cfg}"),
		  { NULL }, "raw-text: true\n", "raw_text=true config_file={cfg}" },
	};
	/* clang-format on */

	check_ok_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- every error path ---- */

static void test_flag_errors(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "bad duration", ARGS("--interval", "5x"), { NULL }, NULL,
		  "dbtap: --interval: invalid duration \"5x\"" },
		{ "negative duration", ARGS("--interval", "-1s"), { NULL }, NULL,
		  "dbtap: --interval: invalid duration \"-1s\"" },
		{ "zero interval", ARGS("--interval", "0"), { NULL }, NULL,
		  "dbtap: --interval: value \"0\" out of range (must be > 0 and <= 1h)" },
		{ "interval over an hour", ARGS("--interval=61m"), { NULL }, NULL,
		  "dbtap: --interval: value \"61m\" out of range (must be > 0 and <= 1h)" },
		{ "bad --duration", ARGS("--duration", "abc"), { NULL }, NULL,
		  "dbtap: --duration: invalid duration \"abc\"" },
		{ "negative --duration", ARGS("--duration", "-5"), { NULL }, NULL,
		  "dbtap: --duration: invalid duration \"-5\"" },
		{ "bad --slow-threshold", ARGS("--slow-threshold", "1ss"), { NULL }, NULL,
		  "dbtap: --slow-threshold: invalid duration \"1ss\"" },
		{ "unknown flag with hint", ARGS("--intervall", "5s"), { NULL }, NULL,
		  "dbtap: unknown flag \"--intervall\" (did you mean \"--interval\"?)" },
		{ "unknown flag swapped letters", ARGS("--ouptut=json"), { NULL }, NULL,
		  "dbtap: unknown flag \"--ouptut\" (did you mean \"--output\"?)" },
		{ "unknown flag near --config", ARGS("--confg", "x"), { NULL }, NULL,
		  "dbtap: unknown flag \"--confg\" (did you mean \"--config\"?)" },
		{ "unknown flag", ARGS("--bogus"), { NULL }, NULL, "dbtap: unknown flag \"--bogus\"" },
		{ "unknown short flag", ARGS("-x"), { NULL }, NULL, "dbtap: unknown flag \"-x\"" },
		{ "unknown short flag after v", ARGS("-vq"), { NULL }, NULL,
		  "dbtap: unknown flag \"-q\"" },
		{ "bare --", ARGS("--"), { NULL }, NULL, "dbtap: unknown flag \"--\"" },
		{ "missing value", ARGS("--interval"), { NULL }, NULL,
		  "dbtap: --interval: missing value" },
		{ "missing --config value", ARGS("--config"), { NULL }, NULL,
		  "dbtap: --config: missing value" },
		{ "--help with a value", ARGS("--help=1"), { NULL }, NULL,
		  "dbtap: --help: takes no value" },
		{ "stray argument", ARGS("foo"), { NULL }, NULL,
		  "dbtap: unexpected argument \"foo\"" },
		{ "list not first", ARGS("--raw-text", "list"), { NULL }, NULL,
		  "dbtap: unexpected argument \"list\" (the subcommand goes first)" },
		{ "boolean value without =", ARGS("--raw-text", "false"), { NULL }, NULL,
		  "dbtap: unexpected argument \"false\" (write --raw-text=false)" },
		{ "bad enum", ARGS("--output", "xml"), { NULL }, NULL,
		  "dbtap: --output: invalid value \"xml\" (expected table, json or otlp)" },
		{ "bad bpf-stats", ARGS("--bpf-stats=maybe"), { NULL }, NULL,
		  "dbtap: --bpf-stats: invalid boolean \"maybe\" (expected true/false, yes/no, "
		  "on/off or 1/0)" },
		{ "bpf-stats value without =", ARGS("--bpf-stats", "yes"), { NULL }, NULL,
		  "dbtap: unexpected argument \"yes\" (write --bpf-stats=yes)" },
		{ "bad capture", ARGS("--capture=ebpf"), { NULL }, NULL,
		  "dbtap: --capture: invalid value \"ebpf\" (expected auto, socket or syscall)" },
		{ "bad boolean", ARGS("--raw-text=maybe"), { NULL }, NULL,
		  "dbtap: --raw-text: invalid boolean \"maybe\" (expected true/false, yes/no, "
		  "on/off or 1/0)" },
		{ "bad PID", ARGS("--pid", "abc"), { NULL }, NULL, "dbtap: --pid: invalid PID \"abc\"" },
		{ "PID zero", ARGS("--pid", "0"), { NULL }, NULL,
		  "dbtap: --pid: invalid PID \"0\" (must be 1 to 4194304)" },
		{ "PID too large", ARGS("--pid", "4194305"), { NULL }, NULL,
		  "dbtap: --pid: invalid PID \"4194305\" (must be 1 to 4194304)" },
		{ "negative PID", ARGS("--pid", "1,-2"), { NULL }, NULL,
		  "dbtap: --pid: invalid PID \"-2\"" },
		{ "empty PID in list", ARGS("--pid", "1,,2"), { NULL }, NULL,
		  "dbtap: --pid: invalid PID \"\"" },
		{ "too many PIDs", ARGS("--pid", pids_too_many), { NULL }, NULL,
		  "dbtap: --pid: too many PIDs (at most 64)" },
		{ "too many PIDs over repeats", ARGS("--pid", pids_max, "--pid", "65"), { NULL },
		  NULL, "dbtap: --pid: too many PIDs (at most 64)" },
		{ "negative sample rate", ARGS("--sample-rate", "-1"), { NULL }, NULL,
		  "dbtap: --sample-rate: invalid unsigned integer \"-1\"" },
		{ "sample rate overflow", ARGS("--sample-rate", "4294967296"), { NULL }, NULL,
		  "dbtap: --sample-rate: invalid unsigned integer \"4294967296\"" },
		{ "sample rate junk", ARGS("--sample-rate", "10x"), { NULL }, NULL,
		  "dbtap: --sample-rate: invalid unsigned integer \"10x\"" },
		{ "zero max-series", ARGS("--max-series", "0"), { NULL }, NULL,
		  "dbtap: --max-series: value \"0\" out of range (must be >= 1)" },
		{ "negative verbose", ARGS("--verbose", "-1"), { NULL }, NULL,
		  "dbtap: --verbose: value \"-1\" out of range (must be >= 0)" },
		{ "verbose junk", ARGS("--verbose=lots"), { NULL }, NULL,
		  "dbtap: --verbose: invalid integer \"lots\"" },
		{ "empty output file", ARGS("--output-file="), { NULL }, NULL,
		  "dbtap: --output-file: empty value" },
		{ "missing config file", ARGS("--config", "/nonexistent/dbtap.yaml"), { NULL }, NULL,
		  "dbtap: config /nonexistent/dbtap.yaml: No such file or directory" },
		{ "missing DBTAP_CONFIG file", { NULL }, ENV("DBTAP_CONFIG=/nonexistent/d.yaml"),
		  NULL, "dbtap: config /nonexistent/d.yaml: No such file or directory" },
		{ "first bad flag wins", ARGS("--output", "xml", "--interval", "5x"), { NULL }, NULL,
		  "dbtap: --output: invalid value \"xml\" (expected table, json or otlp)" },
		{ "flag error after good file", ARGS("--config", "{cfg}", "--interval", "0s"),
		  { NULL }, "output-file: /tmp/x\n",
		  "dbtap: --interval: value \"0s\" out of range (must be > 0 and <= 1h)" },
	};
	/* clang-format on */

	check_error_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_env_errors(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "bad duration", { NULL }, ENV("DBTAP_INTERVAL=abc"), NULL,
		  "dbtap: environment DBTAP_INTERVAL: invalid duration \"abc\"" },
		{ "zero interval", { NULL }, ENV("DBTAP_INTERVAL=0ms"), NULL,
		  "dbtap: environment DBTAP_INTERVAL: value \"0ms\" out of range (must be > 0 and "
		  "<= 1h)" },
		{ "bad enum", { NULL }, ENV("DBTAP_OUTPUT=xml"), NULL,
		  "dbtap: environment DBTAP_OUTPUT: invalid value \"xml\" (expected table, json or otlp)" },
		{ "bad PID", { NULL }, ENV("DBTAP_PID=1,x"), NULL,
		  "dbtap: environment DBTAP_PID: invalid PID \"x\"" },
		{ "too many PIDs", { NULL }, ENV(env_pids_too_many), NULL,
		  "dbtap: environment DBTAP_PID: too many PIDs (at most 64)" },
		{ "bad boolean", { NULL }, ENV("DBTAP_RAW_TEXT=2"), NULL,
		  "dbtap: environment DBTAP_RAW_TEXT: invalid boolean \"2\" (expected true/false, "
		  "yes/no, on/off or 1/0)" },
		{ "bad bpf-stats", { NULL }, ENV("DBTAP_BPF_STATS=maybe"), NULL,
		  "dbtap: environment DBTAP_BPF_STATS: invalid boolean \"maybe\" (expected "
		  "true/false, yes/no, on/off or 1/0)" },
		{ "bad uint", { NULL }, ENV("DBTAP_MAX_SERIES= 5"), NULL,
		  "dbtap: environment DBTAP_MAX_SERIES: invalid unsigned integer \" 5\"" },
		{ "env error before flags", ARGS("--interval", "1s"), ENV("DBTAP_DURATION=1y"), NULL,
		  "dbtap: environment DBTAP_DURATION: invalid duration \"1y\"" },
	};
	/* clang-format on */

	check_error_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_yaml_errors(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "unknown key with hint", ARGS("--config", "{cfg}"), { NULL },
		  "output: json\n\nintervall: 3s\n",
		  "dbtap: config {cfg}:3: unknown key \"intervall\" (did you mean \"interval\"?)" },
		{ "unknown key two edits away", ARGS("--config", "{cfg}"), { NULL },
		  "max_serie: 3\n",
		  "dbtap: config {cfg}:1: unknown key \"max_serie\" (did you mean \"max-series\"?)" },
		{ "unknown key no hint", ARGS("--config", "{cfg}"), { NULL }, "colour: red\n",
		  "dbtap: config {cfg}:1: unknown key \"colour\"" },
		{ "config is no YAML key", ARGS("--config", "{cfg}"), { NULL }, "config: x.yaml\n",
		  "dbtap: config {cfg}:1: unknown key \"config\"" },
		{ "bad duration", ARGS("--config", "{cfg}"), { NULL },
		  "raw-text: true\ninterval: 5x\n",
		  "dbtap: config {cfg}:2: key \"interval\": invalid duration \"5x\"" },
		{ "zero interval", ARGS("--config", "{cfg}"), { NULL }, "interval: 0\n",
		  "dbtap: config {cfg}:1: key \"interval\": value \"0\" out of range (must be > 0 "
		  "and <= 1h)" },
		{ "negative sample rate", ARGS("--config", "{cfg}"), { NULL }, "sample-rate: -4\n",
		  "dbtap: config {cfg}:1: key \"sample-rate\": invalid unsigned integer \"-4\"" },
		{ "bad enum", ARGS("--config", "{cfg}"), { NULL }, "capture: kprobe\n",
		  "dbtap: config {cfg}:1: key \"capture\": invalid value \"kprobe\" (expected auto, "
		  "socket or syscall)" },
		{ "bad boolean", ARGS("--config", "{cfg}"), { NULL }, "raw-text: maybe\n",
		  "dbtap: config {cfg}:1: key \"raw-text\": invalid boolean \"maybe\" (expected "
		  "true/false, yes/no, on/off or 1/0)" },
		{ "bad bpf-stats", ARGS("--config", "{cfg}"), { NULL }, "bpf-stats: maybe\n",
		  "dbtap: config {cfg}:1: key \"bpf-stats\": invalid boolean \"maybe\" (expected "
		  "true/false, yes/no, on/off or 1/0)" },
		{ "bpf_stats is spelled bpf-stats", ARGS("--config", "{cfg}"), { NULL },
		  "bpf_stats: maybe\n",
		  "dbtap: config {cfg}:1: unknown key \"bpf_stats\" (did you mean "
		  "\"bpf-stats\"?)" },
		{ "sequence for a scalar key", ARGS("--config", "{cfg}"), { NULL },
		  "interval: [1, 2]\n",
		  "dbtap: config {cfg}:1: key \"interval\": expected a single value, got a sequence" },
		{ "mapping for a scalar key", ARGS("--config", "{cfg}"), { NULL },
		  "output:\n  format: json\n",
		  "dbtap: config {cfg}:2: key \"output\": expected an output or a list of outputs, "
		  "got a mapping" },
		{ "mapping for pid", ARGS("--config", "{cfg}"), { NULL }, "pid: {a: 1}\n",
		  "dbtap: config {cfg}:1: key \"pid\": expected a PID or a list of PIDs, got a "
		  "mapping" },
		{ "nested sequence in pid", ARGS("--config", "{cfg}"), { NULL },
		  "pid:\n  - 1\n  - [2]\n",
		  "dbtap: config {cfg}:3: key \"pid\": expected a PID, got a sequence" },
		{ "bad PID in sequence", ARGS("--config", "{cfg}"), { NULL }, "pid:\n  - 1\n  - x\n",
		  "dbtap: config {cfg}:3: key \"pid\": invalid PID \"x\"" },
		{ "PID zero", ARGS("--config", "{cfg}"), { NULL }, "pid: 0\n",
		  "dbtap: config {cfg}:1: key \"pid\": invalid PID \"0\" (must be 1 to 4194304)" },
		{ "missing value", ARGS("--config", "{cfg}"), { NULL }, "interval:\n",
		  "dbtap: config {cfg}:1: key \"interval\": missing value" },
		{ "null value", ARGS("--config", "{cfg}"), { NULL }, "output-file: ~\n",
		  "dbtap: config {cfg}:1: key \"output-file\": missing value" },
		{ "empty string path", ARGS("--config", "{cfg}"), { NULL }, "output-file: \"\"\n",
		  "dbtap: config {cfg}:1: key \"output-file\": empty value" },
		{ "NUL in value", ARGS("--config", "{cfg}"), { NULL }, "interval: \"5s\\0x\"\n",
		  "dbtap: config {cfg}:1: key \"interval\": value contains a NUL byte" },
		{ "duplicate key", ARGS("--config", "{cfg}"), { NULL },
		  "raw-text: on\nraw-text: off\n",
		  "dbtap: config {cfg}:2: duplicate key \"raw-text\" (first on line 1)" },
		{ "key is a sequence", ARGS("--config", "{cfg}"), { NULL }, "? [a]\n: 1\n",
		  "dbtap: config {cfg}:1: expected a key name, got a sequence" },
		{ "top level is a sequence", ARGS("--config", "{cfg}"), { NULL }, "- 1\n- 2\n",
		  "dbtap: config {cfg}:1: expected a mapping of settings at the top level, got a "
		  "sequence" },
		{ "top level is a scalar", ARGS("--config", "{cfg}"), { NULL }, "interval\n",
		  "dbtap: config {cfg}:1: expected a mapping of settings at the top level, got a "
		  "scalar" },
		{ "malformed: mapping in a scalar", ARGS("--config", "{cfg}"), { NULL },
		  "interval: 5s\n  bad: [\n",
		  "dbtap: config {cfg}:2: mapping values are not allowed in this context" },
		{ "malformed: open flow sequence", ARGS("--config", "{cfg}"), { NULL },
		  "pid: [1\n",
		  "dbtap: config {cfg}:2: did not find expected ',' or ']' (while parsing a flow "
		  "sequence at line 1)" },
		{ "malformed: unclosed quote", ARGS("--config", "{cfg}"), { NULL },
		  "raw-text: true\noutput: \"json\n",
		  "dbtap: config {cfg}:3: found unexpected end of stream (while scanning a quoted "
		  "scalar at line 2)" },
		{ "malformed: tab indentation", ARGS("--config", "{cfg}"), { NULL }, "a: b\n\tc: d\n",
		  "dbtap: config {cfg}:2: found a tab character that violates indentation (while "
		  "scanning a plain scalar at line 1)" },
		{ "malformed: undefined alias", ARGS("--config", "{cfg}"), { NULL }, "interval: *x\n",
		  "dbtap: config {cfg}:1: found undefined alias" },
		{ "two documents", ARGS("--config", "{cfg}"), { NULL },
		  "interval: 1s\n---\ninterval: 2s\n",
		  "dbtap: config {cfg}:2: more than one YAML document" },
		{ "file error before env error", ARGS("--config", "{cfg}"),
		  ENV("DBTAP_OUTPUT=xml"), "colour: red\n",
		  "dbtap: config {cfg}:1: unknown key \"colour\"" },
	};
	/* clang-format on */

	check_error_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- --help, --version ---- */

static void test_help(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "--help", ARGS("--help"), { NULL }, NULL, NULL },
		{ "-h", ARGS("-h"), { NULL }, NULL, NULL },
		{ "-vh", ARGS("-vh"), { NULL }, NULL, NULL },
		{ "list --help", ARGS("list", "--help"), { NULL }, NULL, NULL },
		{ "--help after flags", ARGS("--interval", "2s", "--help", "--bogus"), { NULL }, NULL,
		  NULL },
		{ "--help skips the file", ARGS("--config", "/nonexistent/x.yaml", "--help"),
		  ENV("DBTAP_INTERVAL=junk"), NULL, NULL },
	};
	/* clang-format on */
	/* Each of these is a whole line of the help text. */
	/* clang-format off */
	static const char *const lines[] = {
		"Usage: dbtap [list] [OPTIONS]",
		"  --config FILE                   YAML settings file, env DBTAP_CONFIG [default: none]",
		"  --interval DURATION             time between reports, at most 1h [default: 5s]",
		"  --duration DURATION             stop after this long, 0 = at SIGINT [default: 0]",
		"  --output table|json|otlp        report format, +otlp [default: table on a terminal, "
		"else json]",
		"  --otlp-temporality MODE         OTLP metric temporality: cumulative|delta [default: "
		"cumulative]",
		"  --output-file PATH              write reports to PATH, - = stdout [default: stdout]",
		"  --pid PID[,PID]                 watch only these servers (repeatable) [default: all "
		"found]",
		"  --sample-rate N                 sample 1 in N queries, 0 = off [default: 0]",
		"  --slow-threshold DURATION       sample queries slower than this [default: 100ms]",
		"  --raw-text[=BOOL]               export query text with its literals [default: "
		"false]",
		"  --capture auto|socket|syscall   capture path [default: auto]",
		"  --max-series N                  most series kept at once [default: 10000]",
		"  --bpf-stats[=BOOL]              count BPF run time (host-wide cost) [default: "
		"false]",
		"  -v, --verbose N                 log detail, -v adds one [default: 0]",
		"  -h, --help                      print this help and exit",
		"  --version                       print the version and exit",
	};
	/* clang-format on */
	struct run_result r;
	size_t i, j;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], &r);
		if (r.rc != 1)
			print_error("case \"%s\": rc %d, err \"%s\"\n", cases[i].name, r.rc, r.err);
		assert_int_equal(r.rc, 1);
		assert_string_equal(r.err, "");
		assert_int_equal(strncmp(r.out, "Usage: dbtap [list] [OPTIONS]\n", 30), 0);
		for (j = 0; j < sizeof(lines) / sizeof(lines[0]); j++) {
			char *line = malloc(strlen(lines[j]) + 3);

			assert_non_null(line);
			sprintf(line, "\n%s\n", lines[j]);
			if (j == 0)
				assert_int_equal(strncmp(r.out, line + 1, strlen(line + 1)), 0);
			else if (!strstr(r.out, line))
				fail_msg("help lacks the line \"%s\"", lines[j]);
			free(line);
		}
		/* Every line fits in 100 columns. */
		for (const char *p = r.out, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			assert_non_null(nl);
			assert_true(nl - p <= 100);
		}
		run_done(&r);
	}
}

static void test_version(void **state)
{
	/* clang-format off */
	static const struct parse_case cases[] = {
		{ "--version", ARGS("--version"), { NULL }, NULL, NULL },
		{ "list --version", ARGS("list", "-v", "--version"), { NULL }, NULL, NULL },
	};
	/* clang-format on */
	struct run_result r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], &r);
		assert_int_equal(r.rc, 1);
		assert_string_equal(r.out, "dbtap " DBTAP_VERSION " (" DBTAP_GIT_REV ")\n");
		assert_string_equal(r.err, "");
		run_done(&r);
	}
}

/* No @out or @err: still the same return values, nothing written anywhere. */
static void test_null_streams(void **state)
{
	char *help[] = {"dbtap", "--help", NULL}, *bad[] = {"dbtap", "--bogus", NULL};
	char *ok[] = {"dbtap", "--pid", "9", NULL}, *env[] = {NULL};
	struct dbtap_config cfg;

	assert_int_equal(dbtap_config_parse(&cfg, 2, help, env, NULL, NULL), 1);
	assert_int_equal(dbtap_config_parse(&cfg, 2, bad, env, NULL, NULL), -EINVAL);
	assert_int_equal(dbtap_config_parse(&cfg, 3, ok, NULL, NULL, NULL), 0);
	assert_int_equal(cfg.n_pids, 1);
	assert_int_equal(cfg.pids[0], 9);
	dbtap_config_free(&cfg);
	dbtap_config_free(&cfg); /* a second free is harmless */
}

/* ---- dbtap_parse_duration ---- */

static void test_parse_duration(void **state)
{
	/* clang-format off */
	static const struct {
		const char *text;
		double seconds;
	} good[] = {
		{ "250ms", 0.25 }, { "1.5s", 1.5 }, { "2m", 120 }, { "100us", 100e-6 },
		{ "1h", 3600 }, { "5", 5 }, { "0.5", 0.5 }, { "0", 0 }, { "0s", 0 },
		{ "10ns", 10e-9 }, { ".5s", 0.5 }, { "1.s", 1 }, { "1m30s", 90 },
		{ "1h1m1s", 3661 }, { "3\u00b5s", 3e-6 }, { "007s", 7 }, { "1.25h", 4500 },
		{ "1500ms", 1.5 },
	};
	static const char *const bad[] = {
		"", "s", "5x", "-1s", "+1s", " 5s", "5s ", "1e3", "1.2.3s", "5m5", "inf", "nan",
		"0x10", "5 s", "ms", "1S", "1sec", ".", "1..2s", "1,5s", "5m-1s", "1h 30m", "12d",
		"1e400s", "1000000000000000000000000000000000000000000000000000000000000000000s",
	};
	/* clang-format on */
	double got;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		got = -1;
		if (dbtap_parse_duration(good[i].text, &got) != 0)
			fail_msg("\"%s\" rejected", good[i].text);
		if (fabs(got - good[i].seconds) > 1e-12 * fmax(1, good[i].seconds))
			fail_msg("\"%s\": got %.17g, want %.17g", good[i].text, got,
				 good[i].seconds);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		got = -1;
		if (dbtap_parse_duration(bad[i], &got) != -EINVAL)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(got == -1); /* untouched on error */
	}
	assert_int_equal(dbtap_parse_duration(NULL, &got), -EINVAL);
}

/* Builds the 64- and 65-PID lists the tables refer to. */
static void make_pid_lists(void)
{
	size_t n = 0;
	int i;

	for (i = 1; i <= DBTAP_MAX_PIDS; i++)
		n += snprintf(pids_max + n, sizeof(pids_max) - n, "%s%d", i > 1 ? "," : "", i);
	snprintf(pids_too_many, sizeof(pids_too_many), "%s,%d", pids_max, TOO_MANY_PIDS);
	snprintf(env_pids_max, sizeof(env_pids_max), "DBTAP_PID=%s", pids_max);
	snprintf(env_pids_too_many, sizeof(env_pids_too_many), "DBTAP_PID=%s", pids_too_many);
	snprintf(want_pids_max, sizeof(want_pids_max), "pids=%s", pids_max);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_no_arguments_gives_defaults),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_yaml_keys),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_flag_errors),
		cmocka_unit_test(test_env_errors),
		cmocka_unit_test(test_yaml_errors),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_null_streams),
		cmocka_unit_test(test_parse_duration),
	};

	make_pid_lists();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
