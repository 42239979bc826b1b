/*
 * keys.c - the key hierarchy and value encryption.
 *
 *   root key (32 bytes, key file, 0600)
 *     wraps, in table `keys`:
 *       the audit key  -> derives the chain key (links audit events) and
 *                         the fingerprint key (keyed hash of delivered values)
 *       data keys      -> encrypt secret values; the newest is current
 *
 * Wrapping and values both use XChaCha20-Poly1305 with a random 192-bit
 * nonce stored in front of the ciphertext. The associated data binds a
 * wrapped key to its id and kind, and a value to its workspace, provider,
 * secret name, version and data key id, so a ciphertext copied into
 * another row fails authentication instead of decrypting as the wrong
 * secret. Replacing the root key re-wraps the small `keys` table only;
 * derived audit keys therefore survive `key rekey`.
 *
 * `key rekey` runs in three steps so that at every instant the key file
 * on disk opens the store, for every process and across a crash:
 *   1. one transaction stores each key wrapped under the new root key in
 *      `wrapped_next`, beside the old wrapping;
 *   2. the new key file is renamed over the configured one;
 *   3. one transaction moves `wrapped_next` into `wrapped`.
 * Unwrapping tries both columns, so between the steps either key works.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

#define NPUB crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define WRAPPED_BYTES (NPUB + STORE_KEY_BYTES + ABYTES)

int store_key_file_read(const char *path, uint8_t *key)
{
	uint8_t extra;
	ssize_t n;
	int fd, rc;

	if ((rc = store_check_file("key file", path, true)))
		return rc;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return store_fail(-errno, "cannot read key file '%s': %s", path, strerror(errno));
	n = read(fd, key, STORE_KEY_BYTES);
	if (n == STORE_KEY_BYTES && read(fd, &extra, 1) == 0) {
		close(fd);
		return 0;
	}
	close(fd);
	sodium_memzero(key, STORE_KEY_BYTES);
	return store_fail(-EINVAL, "key file '%s' is not a 32-byte key", path);
}

/* A new random root key, written O_EXCL with mode 0600 and synced. */
int store_key_file_create(const char *path, uint8_t *key)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		if (errno == EEXIST)
			return store_fail(-EEXIST, "key file '%s' already exists; refusing to overwrite it",
					  path);
		return store_fail(-errno, "cannot create key file '%s': %s", path, strerror(errno));
	}
	randombytes_buf(key, STORE_KEY_BYTES);
	if (write(fd, key, STORE_KEY_BYTES) != STORE_KEY_BYTES || fsync(fd) < 0) {
		int err = errno ? errno : EIO;
		close(fd);
		unlink(path);
		return store_fail(-err, "cannot write key file '%s': %s", path, strerror(err));
	}
	close(fd);
	return 0;
}

static void key_ad(char *ad, size_t cap, int64_t id, const char *kind)
{
	snprintf(ad, cap, "scopehold-key\x1f%lld\x1f%s", (long long)id, kind);
}

int store_key_wrap(const uint8_t *root, int64_t id, const char *kind,
		   const uint8_t *key, uint8_t *out, size_t *outlen)
{
	char ad[64];
	unsigned long long clen;

	key_ad(ad, sizeof ad, id, kind);
	randombytes_buf(out, NPUB);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + NPUB, &clen, key, STORE_KEY_BYTES,
						   (const uint8_t *)ad, strlen(ad), NULL, out, root);
	*outlen = NPUB + (size_t)clen;
	return 0;
}

int store_key_unwrap(const uint8_t *root, int64_t id, const char *kind,
		     const uint8_t *in, size_t inlen, uint8_t *key)
{
	char ad[64];
	unsigned long long mlen;

	if (inlen != WRAPPED_BYTES)
		return -EKEYREJECTED;
	key_ad(ad, sizeof ad, id, kind);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, &mlen, NULL, in + NPUB, inlen - NPUB,
						       (const uint8_t *)ad, strlen(ad), in, root) != 0)
		return -EKEYREJECTED;
	return 0;
}

/* Unwrap the key whose wrappings are columns col and col + 1 of row s. */
static int unwrap_row(const uint8_t *root, int64_t id, const char *kind,
		      sqlite3_stmt *s, int col, uint8_t *key)
{
	if (store_key_unwrap(root, id, kind, sqlite3_column_blob(s, col),
			     (size_t)sqlite3_column_bytes(s, col), key) == 0)
		return 0;
	if (sqlite3_column_type(s, col + 1) != SQLITE_NULL &&
	    store_key_unwrap(root, id, kind, sqlite3_column_blob(s, col + 1),
			     (size_t)sqlite3_column_bytes(s, col + 1), key) == 0)
		return 0;
	return -EKEYREJECTED;
}

/*
 * Before wrapping a new key, take the root key from the key file as it is
 * now and check it opens the audit key: a `key rekey` by another process
 * may have replaced the root key since this handle read it, and a key
 * wrapped under a retired root key would be lost.
 */
static int root_key_refresh(struct store *st)
{
	uint8_t *k = sodium_malloc(STORE_KEY_BYTES);
	sqlite3_stmt *s;
	int rc;

	if (!k)
		return store_fail(-ENOMEM, "out of memory");
	if ((rc = store_key_file_read(st->cfg.key_file, st->root_key)))
		goto out;
	s = store_stmt(st, "SELECT id, wrapped, wrapped_next FROM keys WHERE kind = 'audit'"
			   " ORDER BY id LIMIT 1");
	if (!s) {
		rc = -EIO;
		goto out;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		rc = unwrap_row(st->root_key, sqlite3_column_int64(s, 0), "audit", s, 1, k) ?
		     store_fail(-EKEYREJECTED, "this key does not open this store") : 0;
	else
		rc = store_fail_db(st, rc, "cannot read the store");
	sqlite3_reset(s);
out:
	sodium_free(k);
	return rc;
}

/* Insert a freshly generated key of `kind`, wrapped under the root key. */
static int key_insert(struct store *st, const char *kind, uint8_t *key, int64_t *id_out)
{
	uint8_t wrapped[WRAPPED_BYTES];
	size_t wlen;
	sqlite3_stmt *s;
	int64_t id;
	int rc;

	if (!st->creating && (rc = root_key_refresh(st)))
		return rc;

	s = store_stmt(st, "INSERT INTO keys(kind, wrapped, created) VALUES (?1, zeroblob(?2), ?3)");
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, WRAPPED_BYTES);
	sqlite3_bind_int64(s, 3, store_now());
	if ((rc = store_step_done(st, s, "cannot write a key")))
		return rc;
	id = sqlite3_last_insert_rowid(st->db);
	randombytes_buf(key, STORE_KEY_BYTES);
	store_key_wrap(st->root_key, id, kind, key, wrapped, &wlen);
	s = store_stmt(st, "UPDATE keys SET wrapped = ?1 WHERE id = ?2");
	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, wrapped, (int)wlen, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, id);
	if ((rc = store_step_done(st, s, "cannot write a key")))
		return rc;
	*id_out = id;
	return 0;
}

static void derive_audit_keys(struct store *st, const uint8_t *audit_key)
{
	crypto_kdf_derive_from_key(st->chain_key, STORE_KEY_BYTES, 1, "SHchain_", audit_key);
	crypto_kdf_derive_from_key(st->fp_key, STORE_KEY_BYTES, 2, "SHfinger", audit_key);
}

/*
 * Unwrap the audit key - the proof that this root key opens this store -
 * and derive the chain and fingerprint keys. A store without keys (only
 * during init, inside its transaction) gets its audit and first data key.
 */
int store_keys_load(struct store *st)
{
	sqlite3_stmt *s;
	uint8_t *ak;
	int64_t id;
	int rc;

	ak = sodium_malloc(STORE_KEY_BYTES);
	if (!ak)
		return store_fail(-ENOMEM, "out of memory");
	s = store_stmt(st, "SELECT id, wrapped, wrapped_next FROM keys WHERE kind = 'audit'"
			   " ORDER BY id LIMIT 1");
	if (!s) {
		rc = -EIO;
		goto out;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		rc = unwrap_row(st->root_key, id, "audit", s, 1, ak);
		/*
		 * The key file was read before this row: a `key rekey` that
		 * finished in between leaves us holding the retired key. The
		 * file on disk always opens the store, so read it again.
		 */
		for (int tries = 0; rc && tries < 5; tries++) {
			if (store_key_file_read(st->cfg.key_file, st->root_key))
				break;
			rc = unwrap_row(st->root_key, id, "audit", s, 1, ak);
		}
		sqlite3_reset(s);
		if (rc) {
			rc = store_fail(-EKEYREJECTED, "this key does not open this store");
			goto out;
		}
	} else if (rc == SQLITE_DONE) {
		sqlite3_reset(s);
		if (st->creating) {
			uint8_t *dk = sodium_malloc(STORE_KEY_BYTES);
			if (!dk) {
				rc = store_fail(-ENOMEM, "out of memory");
				goto out;
			}
			rc = key_insert(st, "audit", ak, &id);
			if (!rc)
				rc = key_insert(st, "data", dk, &id);
			sodium_free(dk);
			if (rc)
				goto out;
		} else {
			rc = store_fail(-EBADMSG, "store '%s' is corrupt or not a ScopeHold store",
					st->cfg.store_path);
			goto out;
		}
	} else {
		sqlite3_reset(s);
		rc = rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ?
		     store_fail(-EBADMSG, "store '%s' is corrupt or not a ScopeHold store",
				st->cfg.store_path) :
		     store_fail_db(st, rc, "cannot read the store");
		goto out;
	}
	derive_audit_keys(st, ak);
	rc = 0;
out:
	sodium_free(ak);
	return rc;
}

/*
 * A data key by id, unwrapped once and cached. If the root key was
 * replaced under a running daemon (`key rekey`), unwrapping a key it has
 * not cached fails: re-read the key file once and try again.
 */
int store_data_key_get(struct store *st, int64_t id, const uint8_t **key)
{
	sqlite3_stmt *s;
	uint8_t *k;
	int i, rc, tries;

	for (i = 0; i < st->ndkeys; i++) {
		if (st->dkeys[i].id == id) {
			*key = st->dkeys[i].key;
			return 0;
		}
	}
	k = sodium_malloc(STORE_KEY_BYTES);
	if (!k)
		return store_fail(-ENOMEM, "out of memory");
	for (tries = 0; tries < 2; tries++) {
		s = store_stmt(st, "SELECT wrapped, wrapped_next FROM keys WHERE id = ?1 AND kind = 'data'");
		if (!s) {
			sodium_free(k);
			return -EIO;
		}
		sqlite3_bind_int64(s, 1, id);
		rc = sqlite3_step(s);
		if (rc != SQLITE_ROW) {
			sqlite3_reset(s);
			sodium_free(k);
			return rc == SQLITE_DONE ? store_fail(-EBADMSG, "data key %lld is missing", (long long)id)
						 : store_fail_db(st, rc, "cannot read the store");
		}
		rc = unwrap_row(st->root_key, id, "data", s, 0, k);
		sqlite3_reset(s);
		if (rc == 0)
			break;
		if (tries == 0 && store_key_file_read(st->cfg.key_file, st->root_key) == 0)
			continue;
		sodium_free(k);
		return store_fail(-EKEYREJECTED, "this key does not open this store");
	}
	/* readers without mu (store_value_open_cached) hold dk_lock */
	pthread_rwlock_wrlock(&st->dk_lock);
	if (st->ndkeys == STORE_DATA_KEY_CACHE) {
		/* rare: many rotations; drop the oldest cached key */
		sodium_free(st->dkeys[0].key);
		memmove(&st->dkeys[0], &st->dkeys[1], sizeof st->dkeys[0] * (STORE_DATA_KEY_CACHE - 1));
		st->ndkeys--;
	}
	st->dkeys[st->ndkeys].id = id;
	st->dkeys[st->ndkeys].key = k;
	st->ndkeys++;
	pthread_rwlock_unlock(&st->dk_lock);
	*key = k;
	return 0;
}

int store_data_key_current(struct store *st, int64_t *id)
{
	sqlite3_stmt *s = store_stmt(st, "SELECT max(id) FROM keys WHERE kind = 'data'");
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW || sqlite3_column_type(s, 0) == SQLITE_NULL) {
		sqlite3_reset(s);
		return rc == SQLITE_ROW ? store_fail(-EBADMSG, "the store has no data key")
					: store_fail_db(st, rc, "cannot read the store");
	}
	*id = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return 0;
}

int store_data_key_new(struct store *st, int64_t *id)
{
	uint8_t *k = sodium_malloc(STORE_KEY_BYTES);
	int rc;

	if (!k)
		return store_fail(-ENOMEM, "out of memory");
	rc = key_insert(st, "data", k, id);
	sodium_free(k);     /* fetched again (and cached) on first use */
	return rc;
}

static size_t value_ad(char *ad, size_t cap, const char *ws, const char *provider,
		       const char *name, int64_t version, int64_t key_id)
{
	int n = snprintf(ad, cap, "scopehold-value\x1f%s\x1f%s\x1f%s\x1f%lld\x1f%lld",
			 ws, provider, name, (long long)version, (long long)key_id);
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

/*
 * Plaintext buffers. Every value handed out lives in sodium_malloc memory
 * (guard pages, mlock, MADV_DONTDUMP). Setting such a buffer up and
 * tearing it down costs an mmap, three mprotects, an mlock and a munmap,
 * each a TLB shootdown across the daemon's threads - more than the rest
 * of an open - and each live one is three more entries in the process's
 * memory map, which vm.max_map_count caps: a reader holding thousands of
 * values open once made every open of every agent fail. So small values
 * are carved out of slabs: one sodium_malloc of VALUE_SLAB_SLOTS slots,
 * guard pages around the whole slab, grown on demand. A freed slot is
 * wiped at once (sodium_memzero over the whole slot); a slab that empties
 * is given back unless it is the only empty one, so an open/close at a
 * slab boundary does not map and unmap every time. Slots of one slab are
 * not guarded from each other: a value is only ever read up to its own
 * length (the mount's read path and every caller here). Values larger
 * than a slot get a buffer of their own; the mount caps how many values
 * one uid holds open ([mount] max_open_per_uid), which bounds those too.
 */
#define VALUE_SLOT 4096
#define VALUE_SLAB_SLOTS 64

struct value_slab {
	uint8_t *mem;                 /* sodium_malloc, VALUE_SLAB_SLOTS * VALUE_SLOT */
	uint64_t used;                /* bit i: slot i is handed out */
	struct value_slab *next;
};

static struct value_slab *value_slabs;
static pthread_mutex_t value_lock = PTHREAD_MUTEX_INITIALIZER;

static int value_slab_empties(void)
{
	int n = 0;

	for (struct value_slab *b = value_slabs; b; b = b->next)
		n += b->used == 0;
	return n;
}

static uint8_t *value_alloc(size_t len)
{
	struct value_slab *b;
	uint8_t *p = NULL;

	if (len > VALUE_SLOT)
		return sodium_malloc(len);
	pthread_mutex_lock(&value_lock);
	for (b = value_slabs; b && b->used == UINT64_MAX; b = b->next)
		;
	if (!b && (b = calloc(1, sizeof *b))) {
		b->mem = sodium_malloc((size_t)VALUE_SLAB_SLOTS * VALUE_SLOT);
		if (b->mem) {
			b->next = value_slabs;
			value_slabs = b;
		} else {
			free(b);
			b = NULL;
		}
	}
	if (b) {
		int i = __builtin_ctzll(~b->used);
		b->used |= UINT64_C(1) << i;
		p = b->mem + (size_t)i * VALUE_SLOT;
	}
	pthread_mutex_unlock(&value_lock);
	return p ? p : sodium_malloc(len);
}

void store_value_free(uint8_t *value, size_t len)
{
	struct value_slab **link, *b;

	(void)len;
	if (!value)
		return;
	pthread_mutex_lock(&value_lock);
	for (link = &value_slabs; (b = *link); link = &b->next) {
		if (value < b->mem || value >= b->mem + (size_t)VALUE_SLAB_SLOTS * VALUE_SLOT)
			continue;
		size_t i = (size_t)(value - b->mem) / VALUE_SLOT;
		sodium_memzero(b->mem + i * VALUE_SLOT, VALUE_SLOT);
		b->used &= ~(UINT64_C(1) << i);
		if (b->used == 0 && value_slab_empties() > 1) {
			*link = b->next;
			sodium_free(b->mem);
			free(b);
		}
		pthread_mutex_unlock(&value_lock);
		return;
	}
	pthread_mutex_unlock(&value_lock);
	sodium_free(value);     /* wipes the whole allocation */
}

int store_value_seal(struct store *st, const char *ws, const char *provider,
		     const char *name, int64_t version, int64_t key_id,
		     const uint8_t *value, size_t len, uint8_t **ct, size_t *ctlen)
{
	char ad[3 * POLICY_NAME_MAX + 80];
	size_t adlen = value_ad(ad, sizeof ad, ws, provider, name, version, key_id);
	const uint8_t *key;
	unsigned long long clen;
	uint8_t *out;
	int rc;

	if ((rc = store_data_key_get(st, key_id, &key)))
		return rc;
	out = malloc(len + STORE_SEAL_OVERHEAD);   /* ciphertext only: no need for locked memory */
	if (!out)
		return store_fail(-ENOMEM, "out of memory");
	randombytes_buf(out, NPUB);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + NPUB, &clen, value, len,
						   (const uint8_t *)ad, adlen, NULL, out, key);
	*ct = out;
	*ctlen = NPUB + (size_t)clen;
	return 0;
}

static int value_decrypt(const uint8_t *key, const char *ws, const char *provider,
			 const char *name, int64_t version, int64_t key_id,
			 const uint8_t *ct, size_t ctlen, uint8_t **value, size_t *len)
{
	char ad[3 * POLICY_NAME_MAX + 80];
	size_t adlen = value_ad(ad, sizeof ad, ws, provider, name, version, key_id);
	unsigned long long mlen;
	uint8_t *out;

	if (ctlen < STORE_SEAL_OVERHEAD)
		return store_fail(-EBADMSG, "'%s/%s' version %lld failed its integrity check",
				  provider, name, (long long)version);
	/* +1 so a zero-length value still gets a real allocation */
	out = value_alloc(ctlen - STORE_SEAL_OVERHEAD + 1);
	if (!out)
		return store_fail(-ENOMEM, "out of memory");
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct + NPUB, ctlen - NPUB,
						       (const uint8_t *)ad, adlen, ct, key) != 0) {
		store_value_free(out, 0);
		return store_fail(-EBADMSG, "'%s/%s' version %lld failed its integrity check",
				  provider, name, (long long)version);
	}
	*value = out;
	*len = (size_t)mlen;
	return 0;
}

int store_value_open(struct store *st, const char *ws, const char *provider,
		     const char *name, int64_t version, int64_t key_id,
		     const uint8_t *ct, size_t ctlen, uint8_t **value, size_t *len)
{
	const uint8_t *key;
	int rc;

	if ((rc = store_data_key_get(st, key_id, &key)))
		return rc;
	return value_decrypt(key, ws, provider, name, version, key_id, ct, ctlen, value, len);
}

int store_value_open_cached(struct store *st, const char *ws, const char *provider,
			    const char *name, int64_t version, int64_t key_id,
			    const uint8_t *ct, size_t ctlen, uint8_t **value, size_t *len)
{
	int rc = -EAGAIN;

	pthread_rwlock_rdlock(&st->dk_lock);
	for (int i = 0; i < st->ndkeys; i++) {
		if (st->dkeys[i].id == key_id) {
			rc = value_decrypt(st->dkeys[i].key, ws, provider, name, version, key_id,
					   ct, ctlen, value, len);
			break;
		}
	}
	pthread_rwlock_unlock(&st->dk_lock);
	return rc;
}

void store_fingerprint(struct store *st, const uint8_t *value, size_t len,
		       uint8_t out[STORE_FINGERPRINT_BYTES])
{
	crypto_generichash(out, STORE_FINGERPRINT_BYTES, value, len, st->fp_key, STORE_KEY_BYTES);
}

/* ---- replacing the root key ------------------------------------------------ */

static int same_filesystem(const char *a, const char *b)
{
	char da[PATH_MAX], db[PATH_MAX];
	struct stat sa, sb;

	snprintf(da, sizeof da, "%s", a);
	snprintf(db, sizeof db, "%s", b);
	if (stat(dirname(da), &sa) < 0 || stat(dirname(db), &sb) < 0)
		return 0;
	return sa.st_dev == sb.st_dev;
}

/*
 * Step 1 (next = true): wrapped = wrap(old, key) and wrapped_next =
 * wrap(new, key) for every key - rewriting `wrapped` too, because after
 * an interrupted earlier rekey the key file's key may open only
 * `wrapped_next`, which this step replaces.
 * Step 3 (next = false): wrapped = wrap(new, key), wrapped_next = NULL;
 * keys added meanwhile by other processes are opened with whichever root
 * key wraps them. Each step is one transaction.
 */
static int rewrap_keys(struct store *st, const uint8_t *oldkey, const uint8_t *newkey, bool next)
{
	uint8_t *k = sodium_malloc(STORE_KEY_BYTES), wrapped[WRAPPED_BYTES], keep[WRAPPED_BYTES];
	sqlite3_stmt *s = NULL, *u;
	size_t wlen;
	int rc;

	if (!k)
		return store_fail(-ENOMEM, "out of memory");
	if ((rc = store_tx_start(st)))
		goto out;
	rc = sqlite3_prepare_v2(st->db, "SELECT id, kind, wrapped, wrapped_next FROM keys", -1, &s, NULL);
	if (rc != SQLITE_OK) {
		rc = store_fail_db(st, rc, "cannot read the store");
		goto end;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		const char *kind = (const char *)sqlite3_column_text(s, 1);

		if (unwrap_row(oldkey, id, kind, s, 2, k) && unwrap_row(newkey, id, kind, s, 2, k)) {
			rc = store_fail(-EKEYREJECTED, "this key does not open this store");
			goto end;
		}
		store_key_wrap(newkey, id, kind, k, wrapped, &wlen);
		u = store_stmt(st, next ? "UPDATE keys SET wrapped_next = ?2, wrapped = ?3 WHERE id = ?1"
					: "UPDATE keys SET wrapped = ?2, wrapped_next = NULL WHERE id = ?1");
		if (!u) {
			rc = -EIO;
			goto end;
		}
		sqlite3_bind_int64(u, 1, id);
		sqlite3_bind_blob(u, 2, wrapped, (int)wlen, SQLITE_STATIC);
		if (next) {
			size_t klen;
			store_key_wrap(oldkey, id, kind, k, keep, &klen);
			sqlite3_bind_blob(u, 3, keep, (int)klen, SQLITE_STATIC);
		}
		if ((rc = store_step_done(st, u, "cannot write the store")))
			goto end;
	}
	rc = rc == SQLITE_DONE ? 0 : store_fail_db(st, rc, "cannot read the store");
	if (!rc && next) {
		struct store_event ev;
		store_event_init(st, &ev, "key-rekey");
		rc = store_audit_append(st, &ev);
	}
end:
	sqlite3_finalize(s);
	rc = store_tx_end(st, rc);
out:
	sodium_free(k);
	return rc;
}

int store_key_rekey(struct store *st, const char *new_key_file)
{
	uint8_t *newkey = NULL, *oldkey = NULL;
	bool created = false;
	char dir[PATH_MAX];
	int rc, fd;

	if (!new_key_file || !*new_key_file)
		return store_fail(-EINVAL, "missing new key file");
	if (!strcmp(new_key_file, st->cfg.key_file))
		return store_fail(-EINVAL, "the new key file must differ from '%s'", st->cfg.key_file);
	if (!same_filesystem(new_key_file, st->cfg.key_file))
		return store_fail(-EXDEV, "new key file '%s' must be on the same filesystem as '%s'",
				  new_key_file, st->cfg.key_file);
	newkey = sodium_malloc(STORE_KEY_BYTES);
	oldkey = sodium_malloc(STORE_KEY_BYTES);
	if (!newkey || !oldkey) {
		rc = store_fail(-ENOMEM, "out of memory");
		goto out;
	}
	rc = store_check_file("key file", new_key_file, false);
	if (rc == -ENOENT) {
		if ((rc = store_key_file_create(new_key_file, newkey)))
			goto out;
		created = true;
	} else if (rc == 0) {
		if ((rc = store_key_file_read(new_key_file, newkey)))
			goto out;
	} else {
		goto out;
	}
	/* the key on disk now, which is what every other process opens with */
	if ((rc = store_key_file_read(st->cfg.key_file, oldkey)))
		goto out;

	if ((rc = rewrap_keys(st, oldkey, newkey, true))) {
		if (created)
			unlink(new_key_file);
		goto out;
	}
	if (rename(new_key_file, st->cfg.key_file) < 0) {
		rc = store_fail(-errno, "cannot replace '%s' with '%s': %s; both keys open the store until a rekey completes",
				st->cfg.key_file, new_key_file, strerror(errno));
		goto out;
	}
	snprintf(dir, sizeof dir, "%s", st->cfg.key_file);
	fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	store_lock(st);
	memcpy(st->root_key, newkey, STORE_KEY_BYTES);
	store_unlock(st);
	rc = rewrap_keys(st, oldkey, newkey, false);
	if (rc) {
		char why[256];
		snprintf(why, sizeof why, "%s", store_error());
		rc = store_fail(rc, "the new key is in place, but retiring the old one failed (%s); run the rekey again",
				why);
	}
out:
	sodium_free(newkey);
	sodium_free(oldkey);
	return rc;
}
