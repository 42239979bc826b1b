/*
 * controls.c - the daemon's share of the access controls (issue 12) that
 * is not per request: housekeeping run from the flusher thread about
 * once a second, off every request's path.
 *
 * The executable digests agents resolved from are written here, not on
 * the open path. Task-scoped grants whose process has ended are refused at the next
 * open anyway (the store reads /proc/PID/stat for them); sweeping deletes
 * them from the store, audited as `sweep`, so `shadm grants` does not
 * collect the dead.
 */
#include "fs/fs.h"

#include <time.h>

#define SWEEP_EVERY_SECONDS 2

void fs_controls_tick(struct store *st)
{
	static time_t last_sweep;
	time_t now = time(NULL);
	int64_t swept = 0;

	/* the executables agents resolved from, for new-exe alerts across restarts */
	if (store_controls_flush(st) < 0)
		fs_log_error("cannot record the agents' executables: %s", store_error());
	if (now - last_sweep < SWEEP_EVERY_SECONDS)
		return;
	last_sweep = now;
	if (store_task_sweep(st, &swept) < 0)
		fs_log_error("cannot sweep task grants: %s", store_error());
}
