/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * table.h - the live terminal view: every interval, clear the screen and print a header line
 * and the queries that took the most time in that interval. Layout in docs/output.md.
 */
#ifndef DBTAP_EXPORTERS_TABLE_H
#define DBTAP_EXPORTERS_TABLE_H

#include <stdio.h>

#include "userspace/series.h"

struct dbtap_table; /* opaque */

/*
 * New live table on @fp (a terminal; never closed by the table). @rows is the most query rows
 * shown; 0 fits the terminal height (ioctl TIOCGWINSZ at every write, 20 when @fp is not a
 * terminal). The width always follows the terminal, 120 columns when it is not one. Returns
 * NULL with errno set (EINVAL for a NULL @fp or negative @rows, ENOMEM).
 */
struct dbtap_table *dbtap_table_new(FILE *fp, int rows);

/*
 * Redraw the table for @snap and fflush. Returns 0, -EINVAL for NULL arguments, -ENOMEM, or
 * the -errno of the failed write (-EIO when stdio did not say).
 */
int dbtap_table_write(struct dbtap_table *t, const struct dbtap_snapshot *snap);

/* Free the table (not its stream); accepts NULL. */
void dbtap_table_free(struct dbtap_table *t);

#endif /* DBTAP_EXPORTERS_TABLE_H */
