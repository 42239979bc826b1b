/*
 * rate.c - an agent's rate limit (`shadm agent set NAME --rate N/DURATION`),
 * counted in the memory of the serving daemon.
 *
 * Counting resolves in the store would put a write on every open; the
 * counters live here instead, one slot per agent keyed by its id, under
 * their own small lock so the granted path never waits for the store's.
 * policy_rate_take() does the sliding-window arithmetic. A change of the
 * agent's limit (seen through the facts) starts its counter afresh; a
 * daemon restart does too - the limit bounds one daemon's serving, which
 * is where reads happen.
 */
#include <string.h>
#include <time.h>

#include "store/store_int.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool store_rate_take(struct store *st, const struct store_facts *f, bool *first_refusal)
{
	const struct policy_agent *a = &f->p.agent;
	struct store_rate_slot *slot = NULL;
	uint64_t h = (uint64_t)f->agent_id * 0x9e3779b97f4a7c15ULL;
	bool ok;

	if (first_refusal)
		*first_refusal = false;
	if (a->rate_max <= 0 || a->rate_window <= 0 || f->agent_id <= 0)
		return true;
	pthread_mutex_lock(&st->rate_mu);
	for (int i = 0; i < STORE_RATE_SLOTS; i++) {
		struct store_rate_slot *s = &st->rate[((h >> 56) + (uint64_t)i) % STORE_RATE_SLOTS];
		if (s->agent_id == f->agent_id || s->agent_id == 0) {
			slot = s;
			break;
		}
	}
	if (!slot) {
		/* more limited agents than slots: forget them all rather than let anyone through */
		memset(st->rate, 0, sizeof st->rate);
		slot = &st->rate[0];
	}
	if (slot->agent_id != f->agent_id || slot->r.max != a->rate_max ||
	    slot->r.window_ms != a->rate_window * 1000) {
		memset(slot, 0, sizeof *slot);
		slot->agent_id = f->agent_id;
		slot->r.max = a->rate_max;
		slot->r.window_ms = a->rate_window * 1000;
		slot->r.start_ms = now_ms();
	}
	ok = policy_rate_take(&slot->r, now_ms(), first_refusal);
	pthread_mutex_unlock(&st->rate_mu);
	return ok;
}
