/* The OTLP/HTTP test receiver (tests/otlp-receiver/receiver.js, Node.js) from C tests: install
 * its npm dependencies when missing (npm ci, once), start it on a free loopback port, tell it
 * how to answer, take it down and up, read what it recorded, stop it by PID. */
#ifndef DBTAP_TESTS_OTLP_RECEIVER_H
#define DBTAP_TESTS_OTLP_RECEIVER_H

#include <stdint.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

struct otlp_receiver {
	pid_t pid;	    /* 0 when not running */
	int port;	    /* 127.0.0.1 port */
	char endpoint[64];  /* "http://127.0.0.1:PORT": the --otlp-endpoint base */
	char dir[256];	    /* temp dir: records, port file, log */
	char out_path[300]; /* one JSON line per request received */
	char log_path[300]; /* the receiver's stdout and stderr */
	char port_path[300];
};

/* Install node_modules when missing, start the receiver, wait (30 s) until it listens.
 * 0 or -errno (the log is printed on failure). */
int otlp_receiver_start(struct otlp_receiver *r);
/* SIGTERM by PID (SIGKILL after 5 s). Idempotent. */
void otlp_receiver_stop(struct otlp_receiver *r);
/* Answer the next @count requests (0 = until told otherwise) with @mode: "ok", "503", "429",
 * "400", "partial"; @retry_after > 0 adds Retry-After to 503/429. 0 or -errno. */
int otlp_receiver_mode(struct otlp_receiver *r, const char *mode, int retry_after, int count);
/* Close the listening socket and every connection (connections are refused), or listen again
 * on the same port (waits until it accepts connections). 0 or -errno. */
int otlp_receiver_down(struct otlp_receiver *r);
int otlp_receiver_up(struct otlp_receiver *r);
/* Every recorded request as a cJSON array of objects (caller deletes); NULL when unreadable. */
cJSON *otlp_receiver_requests(const struct otlp_receiver *r);

#endif /* DBTAP_TESTS_OTLP_RECEIVER_H */
