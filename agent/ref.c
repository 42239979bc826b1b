/*
 * ref.c - references and the reads behind them. A reference names a
 * secret as PROVIDER/NAME (or scopehold://PROVIDER/NAME) and always
 * resolves below MOUNT/self/, the calling process's own agent; it is
 * checked completely before any path is built, so `..`, an absolute path
 * or a third component can never steer an open elsewhere. A read is one
 * open of the mount - decided and audited there - into sodium_malloc
 * memory; failures are collected so a command reports every bad reference
 * at once and then refuses to hand anything on (fail closed).
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

bool agent_is_uri(const uint8_t *s, size_t len)
{
	size_t n = strlen(AGENT_URI_PREFIX);

	return len >= n && memcmp(s, AGENT_URI_PREFIX, n) == 0;
}

int agent_ref_parse(const char *s, struct agent_ref *ref, const char **why)
{
	const char *p = s, *slash;
	size_t n = strlen(AGENT_URI_PREFIX), parts = 1, i;

	if (strncmp(s, AGENT_URI_PREFIX, n) == 0)
		p = s + n;
	if (p[0] == '\0') {
		*why = "empty";
		return -EINVAL;
	}
	if (p[0] == '/') {
		*why = "an absolute path; use PROVIDER/NAME";
		return -EINVAL;
	}
	for (i = 0; p[i]; i++)
		parts += p[i] == '/';
	/* Say what is wrong in path terms before the name rules. */
	const char *c = p;
	for (;;) {
		const char *e = strchr(c, '/');
		size_t len = e ? (size_t)(e - c) : strlen(c);

		if (len == 0) {
			*why = "an empty component; use PROVIDER/NAME";
			return -EINVAL;
		}
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.')) {
			*why = "'.' and '..' are not allowed; use PROVIDER/NAME";
			return -EINVAL;
		}
		if (!e)
			break;
		c = e + 1;
	}
	if (parts != 2) {
		*why = "it needs exactly two components, PROVIDER/NAME";
		return -EINVAL;
	}
	slash = strchr(p, '/');
	if (policy_ref_parse(p, false, ref->provider, ref->name) != 0) {
		*why = (size_t)(slash - p) > POLICY_NAME_MAX || strlen(slash + 1) > POLICY_NAME_MAX
			? "a component longer than 128 characters"
			: "names are A-Z a-z 0-9 . _ - , not starting with . or -";
		return -EINVAL;
	}
	return 0;
}

void agent_value_wipe(struct agent_value *v)
{
	sodium_free(v->bytes);            /* wipes the whole allocation; NULL is a no-op */
	v->bytes = NULL;
	v->len = 0;
}

/* Read fd to its end into sodium_malloc memory, growing by doubling. */
static int agent_read_all(int fd, size_t hint, struct agent_value *out)
{
	size_t cap, n = 0;
	uint8_t *buf;

	/* The size is a hint (a rotation may land between stat and read). */
	if (hint > AGENT_VALUE_MAX)
		hint = AGENT_VALUE_MAX;
	cap = hint + 1 > 4096 ? hint + 1 : 4096;
	buf = sodium_malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			uint8_t *bigger;

			if (cap > AGENT_VALUE_MAX) {
				sodium_free(buf);
				return -EFBIG;
			}
			bigger = sodium_malloc(cap * 2);
			if (!bigger) {
				sodium_free(buf);
				return -ENOMEM;
			}
			memcpy(bigger, buf, n);
			sodium_free(buf);
			buf = bigger;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			sodium_free(buf);
			return -e;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	out->bytes = buf;
	out->len = n;
	return 0;
}

int agent_value_read(const char *mount, const struct agent_ref *ref,
		     struct agent_value *out, const char **why)
{
	static char msg[PATH_MAX + 96];
	char path[PATH_MAX];
	struct stat sb;
	int fd, rc;

	out->bytes = NULL;
	out->len = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s/%s", mount, AGENT_SELF,
			     ref->provider, ref->name) >= sizeof(path)) {
		*why = "the mount path is too long";
		return -ENAMETOOLONG;
	}
	/* O_NOFOLLOW: the secret itself is never a link (self is, and is followed). */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0) {
		rc = -errno;
		*why = strerror(-rc);
		if (rc == -ENOENT) {
			snprintf(path, sizeof(path), "%s/%s", mount, AGENT_SELF);
			if (lstat(path, &sb) != 0) {
				snprintf(msg, sizeof(msg),
					 "no agent matches this process (%s does not exist)", path);
				*why = msg;
			}
		}
		return rc;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		*why = "not a secret file";
		return -EINVAL;
	}
	rc = agent_read_all(fd, (size_t)sb.st_size, out);
	close(fd);
	if (rc < 0)
		*why = rc == -EFBIG ? "the value is larger than 16 MiB" : strerror(-rc);
	return rc;
}

int agent_refset_add(struct agent_refset *set, const struct agent_ref *ref, size_t *index)
{
	size_t i;

	for (i = 0; i < set->count; i++) {
		if (strcmp(set->refs[i].provider, ref->provider) == 0 &&
		    strcmp(set->refs[i].name, ref->name) == 0) {
			*index = i;
			return 0;
		}
	}
	if (set->count == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 8;
		struct agent_ref *r = realloc(set->refs, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		set->refs = r;
		set->cap = cap;
	}
	set->refs[set->count] = *ref;
	*index = set->count++;
	return 0;
}

int agent_refset_read(struct agent_refset *set, const char *mount, bool nul_ok)
{
	size_t i;
	int failed = 0;

	set->values = calloc(set->count ? set->count : 1, sizeof(*set->values));
	if (!set->values)
		return agent_fail("out of memory");
	for (i = 0; i < set->count; i++) {
		const struct agent_ref *r = &set->refs[i];
		struct agent_value *v = &set->values[i];
		const char *why;

		if (agent_value_read(mount, r, v, &why) < 0) {
			agent_fail("%s/%s: %s", r->provider, r->name, why);
			failed = 1;
			continue;
		}
		if (!nul_ok && memchr(v->bytes, '\0', v->len)) {
			agent_fail("%s/%s: the value holds a NUL byte, which an environment "
				   "variable cannot carry", r->provider, r->name);
			failed = 1;
		}
	}
	return failed ? AGENT_EXIT_FAIL : 0;
}

void agent_refset_release(struct agent_refset *set)
{
	size_t i;

	if (set->values) {
		for (i = 0; i < set->count; i++)
			agent_value_wipe(&set->values[i]);
	}
	free(set->values);
	free(set->refs);
	memset(set, 0, sizeof(*set));
}
