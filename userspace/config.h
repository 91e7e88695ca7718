/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * config.h - dbtap's settings: defaults, command line, YAML file, environment.
 *
 * Precedence, lowest first: built-in defaults, the YAML file (--config or DBTAP_CONFIG),
 * environment variables (DBTAP_<KEY> with the key upper-cased and '-' or '.' as '_'), then
 * command-line flags. Every key is documented in docs/configuration.md.
 */
#ifndef DBTAP_CONFIG_H
#define DBTAP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum dbtap_output {
	DBTAP_OUT_AUTO = 0, /* table on a terminal, json otherwise */
	DBTAP_OUT_TABLE = 1,
	DBTAP_OUT_JSON = 2,
};

/* "otlp-compression": the default is gzip, unless OTEL_EXPORTER_OTLP_COMPRESSION says none */
enum dbtap_otlp_compression {
	DBTAP_OTLP_COMPRESSION_DEFAULT = 0,
	DBTAP_OTLP_COMPRESSION_GZIP = 1,
	DBTAP_OTLP_COMPRESSION_NONE = 2,
};

enum dbtap_otlp_temporality {
	DBTAP_OTLP_CUMULATIVE = 0,
	DBTAP_OTLP_DELTA = 1,
};

enum dbtap_capture_path {
	DBTAP_CAPTURE_AUTO = 0,	   /* socket tracepoints when the kernel has them */
	DBTAP_CAPTURE_SOCKET = 1,  /* sock:sock_{send,recv}_length, fail if missing */
	DBTAP_CAPTURE_SYSCALL = 2, /* syscalls:sys_exit_* fallback, forced */
};

enum dbtap_command {
	DBTAP_CMD_RUN = 0,  /* capture and report */
	DBTAP_CMD_LIST = 1, /* print the instances found and how each is attached, then exit */
};

#define DBTAP_MAX_PIDS 64

struct dbtap_config {
	enum dbtap_command command;
	double interval_s;	       /* "interval", --interval, default 5 */
	double duration_s;	       /* "duration", --duration, 0 = until SIGINT/SIGTERM */
	enum dbtap_output output;      /* "output", --output table|json|otlp (repeatable, or a
					* comma list): table or json, the last one given */
	bool output_otlp;	       /* "otlp" was one of the outputs */
	char *output_file;	       /* "output-file", --output-file PATH, NULL = stdout */
	uint32_t pids[DBTAP_MAX_PIDS]; /* "pid", --pid (repeatable or comma list): only these */
	int n_pids;
	uint32_t sample_rate; /* "sample-rate", --sample-rate N: 1 in N ops, 0 = off; default 0 */
	double slow_threshold_s; /* "slow-threshold", --slow-threshold 100ms, default 0.1 s */
	bool raw_text;		 /* "raw-text", --raw-text: unsanitized text leaves the host */
	enum dbtap_capture_path capture; /* "capture", --capture auto|socket|syscall */
	uint32_t max_series;		 /* "max-series", default 10000: cardinality cap */
	bool bpf_stats; /* "bpf-stats", --bpf-stats: kernel BPF run-time statistics, host-wide
			 * (every program on the host pays for them), default false */
	/* OTLP export (docs/otlp.md); NULL/0 = the OTEL_* variable or the default */
	char *otlp_endpoint;	     /* "otlp-endpoint": base URL, /v1/<signal> appended */
	char *otlp_metrics_endpoint; /* "otlp-metrics-endpoint": full URL */
	char *otlp_traces_endpoint;  /* "otlp-traces-endpoint" */
	char *otlp_logs_endpoint;    /* "otlp-logs-endpoint" */
	char *otlp_headers;	     /* "otlp-headers": k=v,k2=v2 */
	double otlp_timeout_s;	     /* "otlp-timeout": per request */
	enum dbtap_otlp_compression otlp_compression; /* "otlp-compression": gzip|none */
	enum dbtap_otlp_temporality otlp_temporality; /* "otlp-temporality": cumulative|delta */
	char *otlp_service_name;		      /* "otlp-service-name" */
	char *otlp_resource_attributes;		      /* "otlp-resource-attributes": k=v,k2=v2 */
	char *otlp_ca_file;			      /* "otlp-ca-file" */
	char *otlp_client_cert;			      /* "otlp-client-cert" */
	char *otlp_client_key;			      /* "otlp-client-key" */
	uint32_t otlp_queue_size;		      /* "otlp-queue-size": bytes, default 16 MiB */
	uint32_t otlp_max_request_size; /* "otlp-max-request-size": bytes, default 4 MiB */
	double otlp_flush_timeout_s;	/* "otlp-flush-timeout": flush deadline, default 5 s */
	char *config_file;		/* --config FILE / DBTAP_CONFIG */
	int verbose;			/* -v, repeatable */
};

/* Defaults into @cfg (which owns nothing yet). */
void dbtap_config_defaults(struct dbtap_config *cfg);

/*
 * Parse @argc/@argv (including a leading "list" subcommand), the YAML file and the
 * environment @envp into @cfg, in the precedence above. Returns 0, 1 when --help or
 * --version was printed to @out (the caller exits 0), or -EINVAL after writing one message
 * to @err naming the key (or flag) and the bad value (the caller exits 2).
 */
int dbtap_config_parse(struct dbtap_config *cfg, int argc, char **argv, char **envp, FILE *out,
		       FILE *err);

/* Frees what dbtap_config_parse() allocated. Accepts NULL. */
void dbtap_config_free(struct dbtap_config *cfg);

/* Parses "250ms", "1.5s", "2m", "100us", or a plain number of seconds. -EINVAL on junk. */
int dbtap_parse_duration(const char *s, double *ret_seconds);

#endif /* DBTAP_CONFIG_H */
