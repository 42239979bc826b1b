/*
 * cache.c - the mount's read cache: what the store answered, kept until
 * anything in the store changes.
 *
 * Every open walks MOUNT/AGENT/PROVIDER/NAME, and each step asked SQLite
 * again: a read transaction (file locks) and a few indexed lookups, most
 * of what scopeholdfs cost above bare FUSE once the audit left SQLite.
 * The answers only change when some process commits to the store, and
 * the engine offers a change stamp that moves with every commit of every
 * process (sql_watch_stamp; for SQLite the 48-byte WAL-index header in
 * STORE-shm, see sql_sqlite.c). The cache compares that stamp with the
 * one it saw when it read its entries: any difference drops every entry
 * before the next answer. Reading the stamp is a memory read, no system
 * call.
 *
 * The stamp is read before the store is, so an entry can only be older
 * than its stamp says, never newer: a commit racing a read makes the
 * next check miss, never hit stale data. The cache has its own lock, so
 * a hit needs neither the handle's lock nor the engine - opens go on
 * while the daemon imports the journal or SQLite checkpoints - and an
 * answer is stored only under the generation its reader saw before
 * reading: if another thread has seen the stamp move meanwhile, it is
 * dropped. A revoke is therefore seen by the first open that starts
 * after `shadm revoke` returns. Answers that depend on the time (expiry)
 * keep the raw fields and are decided anew on each hit.
 *
 * One kind of commit keeps the entries: the daemon's own journal import,
 * which writes only the audit trail and the journal's position, tables
 * no answer here is read from. Imports come several times a second
 * under load, and each used to drop every entry, so the opens right
 * after it missed and waited for the store's lock behind the next
 * import. The import reads the stamp once it holds the engine's write
 * lock (store_cache_own_begin), and after its commit moves the cache to
 * the new stamp only if the engine proves exactly one commit happened in
 * between (sql_watch_next: SQLite counts commits in the stamp) - so a
 * commit of anyone else, even one right after ours, still drops
 * everything (store_cache_own_commit).
 *
 * An engine without such a stamp (sql_watch_start fails) leaves the
 * cache off. PostgreSQL's stamp moves with the change notifications its
 * listener receives, and is refused (false: no hit, no fill) whenever
 * that listener's lease has run out (sql_pgsql_watch.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

struct store_cache_entry {
	enum store_cache_kind kind;
	int rc;
	char *key;
	size_t len;
	max_align_t data[];
};

static uint64_t cache_hash(enum store_cache_kind kind, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

	for (; *key; key++) {
		h ^= (uint8_t)*key;
		h *= 1099511628211ULL;
	}
	return h;
}

int store_cache_start(struct store *st)
{
	if (sql_watch_start(st->db) < 0)
		return 0;
	pthread_mutex_lock(&st->cache.mu);
	st->cache.stamp_ok = false;
	st->cache.on = true;
	pthread_mutex_unlock(&st->cache.mu);
	return 0;
}

/* cache.mu held */
static void cache_clear_locked(struct store_cache *c)
{
	for (int i = 0; i < STORE_CACHE_SLOTS; i++) {
		struct store_cache_entry *e = c->slot[i];
		if (e) {
			free(e->key);
			free(e);
			c->slot[i] = NULL;
		}
	}
	c->gen++;
}

bool store_cache_own_begin(struct store *st, uint8_t before[SQL_STAMP_BYTES])
{
	return st->cache.on && sql_watch_stamp(st->db, before);
}

void store_cache_own_commit(struct store *st, const uint8_t before[SQL_STAMP_BYTES])
{
	struct store_cache *c = &st->cache;
	uint8_t after[SQL_STAMP_BYTES];

	pthread_mutex_lock(&c->mu);
	/*
	 * Only if the entries were read under `before` (nobody has seen the
	 * stamp move yet) and the one commit since is ours: then they are as
	 * true under `after`. Otherwise the next check drops them as usual.
	 */
	if (c->on && c->stamp_ok && memcmp(c->stamp, before, SQL_STAMP_BYTES) == 0 &&
	    sql_watch_stamp(st->db, after) && sql_watch_next(st->db, before, after))
		memcpy(c->stamp, after, SQL_STAMP_BYTES);
	pthread_mutex_unlock(&c->mu);
}

void store_cache_clear(struct store *st)
{
	pthread_mutex_lock(&st->cache.mu);
	cache_clear_locked(&st->cache);
	pthread_mutex_unlock(&st->cache.mu);
}

/* cache.mu held: drop everything if the stamp moved; the generation, 0 when unknown */
static uint64_t cache_check_locked(struct store *st)
{
	struct store_cache *c = &st->cache;
	uint8_t a[SQL_STAMP_BYTES];

	if (!c->on)
		return 0;
	if (!sql_watch_stamp(st->db, a)) {     /* a writer is mid-update */
		if (c->stamp_ok)
			cache_clear_locked(c);
		c->stamp_ok = false;
		return 0;
	}
	if (!c->stamp_ok || memcmp(a, c->stamp, SQL_STAMP_BYTES) != 0) {
		cache_clear_locked(c);
		memcpy(c->stamp, a, SQL_STAMP_BYTES);
		c->stamp_ok = true;
	}
	return c->gen;
}

bool store_cache_lookup(struct store *st, enum store_cache_kind kind, const char *key,
			uint64_t *gen, int *rc, void **copy, size_t *len)
{
	struct store_cache_entry *e;
	bool hit = false;

	*copy = NULL;
	*len = 0;
	pthread_mutex_lock(&st->cache.mu);
	*gen = cache_check_locked(st);
	if (*gen == 0)
		goto out;
	e = st->cache.slot[cache_hash(kind, key) % STORE_CACHE_SLOTS];
	if (!e || e->kind != kind || strcmp(e->key, key) != 0)
		goto out;
	if (e->len && !(*copy = malloc(e->len)))
		goto out;           /* out of memory: ask the store instead */
	if (e->len)
		memcpy(*copy, e->data, e->len);
	*len = e->len;
	*rc = e->rc;
	hit = true;
out:
	pthread_mutex_unlock(&st->cache.mu);
	return hit;
}

void store_cache_put(struct store *st, uint64_t gen, enum store_cache_kind kind, const char *key,
		     int rc, const void *data, size_t len)
{
	struct store_cache_entry *e, **slot;

	/* inside a transaction the reads may see this handle's uncommitted changes */
	if (gen == 0 || sql_in_transaction(st->db))
		return;
	e = malloc(sizeof *e + len);
	if (!e)
		return;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return;
	}
	e->kind = kind;
	e->rc = rc;
	e->len = len;
	if (len)
		memcpy(e->data, data, len);
	pthread_mutex_lock(&st->cache.mu);
	/*
	 * Only under the generation the reader saw before it read the
	 * store: if the stamp moved since, this answer may predate a
	 * commit another thread has already seen.
	 */
	if (gen != st->cache.gen || !st->cache.stamp_ok) {
		pthread_mutex_unlock(&st->cache.mu);
		free(e->key);
		free(e);
		return;
	}
	slot = &st->cache.slot[cache_hash(kind, key) % STORE_CACHE_SLOTS];
	if (*slot) {
		free((*slot)->key);
		free(*slot);
	}
	*slot = e;
	pthread_mutex_unlock(&st->cache.mu);
}
