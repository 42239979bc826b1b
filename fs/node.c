/*
 * node.c - the inode table of the low-level FUSE interface.
 *
 * The kernel names files by node id. Each id handed out in a LOOKUP reply
 * stands for one mount-relative path (ROOT, SELF, AGENT, AGENT/PROVIDER or
 * AGENT/PROVIDER/NAME) and lives until the kernel forgets it: the table
 * counts lookups and frees a node when the count returns to zero. The same
 * path always maps to the same live node, so a LOOKUP that revalidates a
 * cached entry gets the id the kernel already holds, and the inode number
 * shown by stat(2) stays stable for as long as the kernel remembers the
 * name. A node only names a path: it holds no decision, no attribute and
 * no value, so nothing one caller was allowed can be replayed to another.
 * The one thing kept per node is which version of a secret's value the
 * page cache was last filled from (`[mount] cache = kernel`).
 */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NODE_BUCKETS 4096

struct node_entry {
	struct fs_path path;
	uint64_t nlookup;            /* lookups the kernel has not forgotten */
	uint64_t number;             /* st_ino: stable while the node lives */
	int64_t cached_version;      /* cache = kernel: version the pages hold, 0 = none */
	size_t cached_len;
	struct node_entry *next;        /* hash chain */
};

static struct node_entry *buckets[NODE_BUCKETS];
static pthread_mutex_t node_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t node_numbers = FUSE_ROOT_ID;   /* the root is 1, nodes count up from 2 */
static size_t node_count;

/* FNV-1a over the parts of the path that tell two nodes apart. */
static unsigned node_hash(const struct fs_path *p)
{
	uint32_t h = 2166136261u ^ (uint32_t)p->node;
	const char *parts[3] = { p->agent, p->provider, p->name };
	for (int i = 0; i < 3; i++) {
		for (const char *s = parts[i]; *s; s++)
			h = (h ^ (uint8_t)*s) * 16777619u;
		h = (h ^ '/') * 16777619u;
	}
	return h % NODE_BUCKETS;
}

static bool node_same(const struct fs_path *a, const struct fs_path *b)
{
	return a->node == b->node && strcmp(a->agent, b->agent) == 0 &&
	       strcmp(a->provider, b->provider) == 0 && strcmp(a->name, b->name) == 0;
}

int fs_node_ref(const struct fs_path *p, uint64_t *ino, uint64_t *number)
{
	unsigned b = node_hash(p);
	pthread_mutex_lock(&node_lock);
	struct node_entry *n = buckets[b];
	while (n && !node_same(&n->path, p))
		n = n->next;
	if (!n) {
		n = calloc(1, sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&node_lock);
			return -ENOMEM;
		}
		n->path = *p;
		n->number = ++node_numbers;
		n->next = buckets[b];
		buckets[b] = n;
		node_count++;
	}
	n->nlookup++;
	*ino = (uint64_t)(uintptr_t)n;
	*number = n->number;
	pthread_mutex_unlock(&node_lock);
	return 0;
}

/* The node behind an id the kernel sent; the kernel keeps it alive meanwhile. */
static struct node_entry *node_of(uint64_t ino)
{
	return (struct node_entry *)(uintptr_t)ino;
}

int fs_node_path(uint64_t ino, struct fs_path *p, uint64_t *number)
{
	if (ino == FUSE_ROOT_ID) {
		memset(p, 0, sizeof(*p));
		p->node = FS_NODE_ROOT;
		*number = FUSE_ROOT_ID;
		return 0;
	}
	if (ino == 0)
		return -ENOENT;
	pthread_mutex_lock(&node_lock);
	const struct node_entry *n = node_of(ino);
	*p = n->path;
	*number = n->number;
	pthread_mutex_unlock(&node_lock);
	return 0;
}

void fs_node_forget(uint64_t ino, uint64_t nlookup)
{
	if (ino == FUSE_ROOT_ID || ino == 0)
		return;
	struct node_entry *n = node_of(ino);
	pthread_mutex_lock(&node_lock);
	n->nlookup = nlookup >= n->nlookup ? 0 : n->nlookup - nlookup;
	if (n->nlookup == 0) {
		struct node_entry **pp = &buckets[node_hash(&n->path)];
		while (*pp && *pp != n)
			pp = &(*pp)->next;
		if (*pp)
			*pp = n->next;
		node_count--;
		free(n);
	}
	pthread_mutex_unlock(&node_lock);
}

bool fs_node_cache_valid(uint64_t ino, int64_t version, size_t len)
{
	if (ino == FUSE_ROOT_ID || ino == 0)
		return false;
	pthread_mutex_lock(&node_lock);
	struct node_entry *n = node_of(ino);
	bool same = n->cached_version == version && n->cached_len == len;
	n->cached_version = version;
	n->cached_len = len;
	pthread_mutex_unlock(&node_lock);
	return same;
}

size_t fs_node_count(void)
{
	pthread_mutex_lock(&node_lock);
	size_t n = node_count;
	pthread_mutex_unlock(&node_lock);
	return n;
}

void fs_node_free_all(void)
{
	pthread_mutex_lock(&node_lock);
	for (size_t b = 0; b < NODE_BUCKETS; b++) {
		while (buckets[b]) {
			struct node_entry *n = buckets[b];
			buckets[b] = n->next;
			free(n);
		}
	}
	node_count = 0;
	pthread_mutex_unlock(&node_lock);
}
