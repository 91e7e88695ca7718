/* The null agent of `make bench`: a process that behaves like build/dbtap from the outside
 * (same flags, "dbtap: ready" on stderr, a dbtap.self JSON line every interval, a final
 * interval and exit 0 at SIGINT/SIGTERM) but loads and attaches nothing, so that its runs give
 * the noise floor of the machine next to every dbtap figure. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_S 5.0
#define MAX_INTERVAL_S	   3600.0
#define NS_PER_S	   1000000000LL
#define US_PER_S	   1000000.0
#define MS_PER_S	   1000.0
#define NS_PER_MS	   1000000L
#define STATUS_LINE_MAX	   256
#define KIB		   1024LL

struct options {
	double interval_s;
	const char *output_file; /* NULL or "-" = stdout */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: null-agent [--interval DURATION] [--output json] [--output-file PATH]\n"
		"                  [--pid PID] [any other dbtap flag, ignored]\n"
		"Attaches nothing; prints \"dbtap: ready\" on stderr, a dbtap.self JSON line per\n"
		"interval, and stops at SIGINT/SIGTERM after a final interval.\n");
}

/* "5", "5s", "250ms", "100us" -> seconds; -EINVAL on anything else or out of range. */
static int parse_duration(const char *text, double *ret_s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || v <= 0)
		return -EINVAL;
	if (!strcmp(end, "ms"))
		v /= MS_PER_S;
	else if (!strcmp(end, "us"))
		v /= US_PER_S;
	else if (*end && strcmp(end, "s"))
		return -EINVAL;
	if (v > MAX_INTERVAL_S)
		return -EINVAL;
	*ret_s = v;
	return 0;
}

/* Flags as dbtap takes them ("--flag value" or "--flag=value"); the ones a null agent has no
 * use for are accepted and ignored, so the harness can start either with the same command. */
static int parse_args(int argc, char **argv, struct options *opts)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL, *eq;
		char name[64];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (strncmp(arg, "--", 2)) {
			fprintf(stderr, "null-agent: unexpected argument '%s'\n", arg);
			return -EINVAL;
		}
		eq = strchr(arg, '=');
		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
		if (eq)
			value = eq + 1;
		else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
			value = argv[++i];
		if (!strcmp(name, "--interval")) {
			if (!value || parse_duration(value, &opts->interval_s)) {
				fprintf(stderr, "null-agent: bad --interval '%s'\n",
					value ? value : "");
				return -EINVAL;
			}
		} else if (!strcmp(name, "--output-file")) {
			opts->output_file = value;
		} else if (!strcmp(name, "--output") && value && strcmp(value, "json")) {
			fprintf(stderr, "null-agent: only --output json is supported, not '%s'\n",
				value);
			return -EINVAL;
		}
	}
	return 0;
}

static double timespec_s(const struct timespec *ts)
{
	return ts->tv_sec + ts->tv_nsec / (double)NS_PER_S;
}

/* Own user+system CPU seconds since start. */
static double own_cpu_s(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / US_PER_S + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / US_PER_S;
}

/* Resident memory in bytes (VmRSS of /proc/self/status), 0 when unreadable. */
static long long own_rss_bytes(void)
{
	char line[STATUS_LINE_MAX];
	long long kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib * KIB;
}

/* One dbtap.self line with the keys the bench harness reads (docs/output.md): nothing
 * captured, so every count is zero and there are no BPF programs. */
static int write_self_line(FILE *out, double interval_s, double cpu_s, double cpu_total_s)
{
	struct timespec now;
	struct tm tm;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out,
		"{\"time\":\"%s.%03ldZ\",\"interval_s\":%.3f,\"kind\":\"dbtap.self\","
		"\"capture_path\":\"none\",\"events\":0,\"ops\":0,\"samples\":0,\"texts\":0,"
		"\"ringbuf_events\":0,\"series_dropped\":0,\"samples_dropped\":0,"
		"\"counters\":{},\"drops\":{},\"undecodable\":0,\"bpf_programs\":[],"
		"\"cpu_s\":%.6f,\"cpu_total_s\":%.6f,\"rss_bytes\":%lld}\n",
		stamp, now.tv_nsec / NS_PER_MS, interval_s, cpu_s, cpu_total_s, own_rss_bytes());
	return fflush(out) ? -errno : 0;
}

int main(int argc, char **argv)
{
	struct options opts = {.interval_s = DEFAULT_INTERVAL_S};
	struct timespec start, now;
	double last_cpu = 0, last_end;
	bool stopping = false;
	sigset_t stop_signals;
	FILE *out = stdout;

	if (parse_args(argc, argv, &opts)) {
		usage(stderr);
		return 2;
	}
	if (opts.output_file && strcmp(opts.output_file, "-")) {
		out = fopen(opts.output_file, "w");
		if (!out) {
			fprintf(stderr, "null-agent: open %s: %s\n", opts.output_file,
				strerror(errno));
			return 1;
		}
	}
	/* SIGINT/SIGTERM are taken synchronously with sigtimedwait(), like dbtap's event loop;
	 * reset first, since a shell starts background jobs with SIGINT ignored */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop_signals, NULL);

	clock_gettime(CLOCK_MONOTONIC, &start);
	last_end = timespec_s(&start);
	fprintf(stderr, "dbtap: ready (null agent: nothing attached)\n");

	while (!stopping) {
		double wait_s, cpu;
		struct timespec timeout;

		clock_gettime(CLOCK_MONOTONIC, &now);
		wait_s = last_end + opts.interval_s - timespec_s(&now);
		if (wait_s > 0) {
			timeout.tv_sec = (time_t)wait_s;
			timeout.tv_nsec = (long)((wait_s - timeout.tv_sec) * NS_PER_S);
			if (sigtimedwait(&stop_signals, NULL, &timeout) > 0)
				stopping = true;
			else if (errno != EAGAIN && errno != EINTR)
				break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		cpu = own_cpu_s();
		if (write_self_line(out, timespec_s(&now) - last_end, cpu - last_cpu, cpu)) {
			fprintf(stderr, "null-agent: write: %s\n", strerror(errno));
			return 1;
		}
		last_cpu = cpu;
		last_end = timespec_s(&now);
	}
	if (out != stdout)
		fclose(out);
	return 0;
}
