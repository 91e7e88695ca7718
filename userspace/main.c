// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * main.c - dbtap's entry point: settings, then `dbtap list` or a capture run.
 */
#include <stdio.h>

#include "userspace/agent.h"
#include "userspace/config.h"

extern char **environ;

int main(int argc, char **argv)
{
	struct dbtap_config cfg;
	int ret;

	ret = dbtap_config_parse(&cfg, argc, argv, environ, stdout, stderr);
	if (ret == 1)
		return 0; /* --help or --version */
	if (ret < 0)
		return 2;
	ret = cfg.command == DBTAP_CMD_LIST ? dbtap_agent_list(&cfg) : dbtap_agent_run(&cfg);
	dbtap_config_free(&cfg);
	return ret;
}
