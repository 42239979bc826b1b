/*
 * cache.c - the mount's read cache: what the store answered, kept until
 * anything in the store changes.
 *
 * Every open walks MOUNT/AGENT/PROVIDER/NAME, and each step asked SQLite
 * again: a read transaction (file locks) and a few indexed lookups, most
 * of what scopeholdfs cost above bare FUSE once the audit left SQLite.
 * The answers only change when some process commits to the store, and
 * every commit of every process rewrites the WAL-index header in the
 * shared memory SQLite keeps beside the store (STORE-shm, format in
 * SQLite's "WAL-index format" documentation). The cache compares that
 * 48-byte header with the one it saw when it read its entries: any
 * difference - a commit (new frame count and checksums) or a WAL reset
 * (new salts) - drops every entry before the next answer. Reading the
 * header is a memory read, no system call.
 *
 * The header is read before the store is, so an entry can only be older
 * than its stamp says, never newer: a commit racing a read makes the
 * next check miss, never hit stale data. The cache has its own lock, so
 * a hit needs neither the handle's lock nor SQLite - opens go on while
 * the daemon imports the journal or SQLite checkpoints - and an answer
 * is stored only under the generation its reader saw before reading:
 * if another thread has seen the header move meanwhile, it is dropped. A revoke is therefore seen by
 * the first open that starts after `shadm revoke` returns. Answers that
 * depend on the time (expiry) keep the raw fields and are decided anew
 * on each hit.
 *
 * The header is mapped through SQLite's own VFS (xShmMap on the main
 * database file), so this is the mapping SQLite itself uses; where the
 * VFS has no shared memory the cache stays off.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define CACHE_HDR 48

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
	sqlite3_file *fp = NULL;
	void volatile *p = NULL;

	if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_FILE_POINTER, &fp) != SQLITE_OK ||
	    !fp || !fp->pMethods || fp->pMethods->iVersion < 2 || !fp->pMethods->xShmMap)
		return 0;
	/* region 0 is mapped by every WAL read; do not create or extend it */
	if (fp->pMethods->xShmMap(fp, 0, 32768, 0, &p) != SQLITE_OK || !p)
		return 0;
	pthread_mutex_lock(&st->cache.mu);
	st->cache.shm = p;
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

void store_cache_clear(struct store *st)
{
	pthread_mutex_lock(&st->cache.mu);
	cache_clear_locked(&st->cache);
	pthread_mutex_unlock(&st->cache.mu);
}

/* cache.mu held: drop everything if the header moved; the generation, 0 when unknown */
static uint64_t cache_check_locked(struct store_cache *c)
{
	uint8_t a[CACHE_HDR], b[CACHE_HDR];
	const volatile uint8_t *h = c->shm;

	if (!c->on)
		return 0;
	/* SQLite writes copy 2, a barrier, then copy 1: read in reverse */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 0; i < CACHE_HDR; i++)
		a[i] = h[i];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (int i = 0; i < CACHE_HDR; i++)
		b[i] = h[CACHE_HDR + i];
	/* isInit (byte 12) unset or copies that differ: a writer is mid-update */
	if (memcmp(a, b, CACHE_HDR) != 0 || a[12] == 0) {
		if (c->stamp_ok)
			cache_clear_locked(c);
		c->stamp_ok = false;
		return 0;
	}
	if (!c->stamp_ok || memcmp(a, c->stamp, CACHE_HDR) != 0) {
		cache_clear_locked(c);
		memcpy(c->stamp, a, CACHE_HDR);
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
	*gen = cache_check_locked(&st->cache);
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
	if (gen == 0 || !sqlite3_get_autocommit(st->db))
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
	 * store: if the header moved since, this answer may predate a
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
