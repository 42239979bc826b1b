/*
 * ls.c - `scopehold ls`: what the calling process can see through the
 * mount. The agent is the target of MOUNT/self; the candidates are the
 * files below it, and their mode says whether a live grant lets this
 * process read them (0400) or they are only candidates (0000). Only
 * directory listings and stat calls are made, so nothing is resolved, no
 * use of a grant is spent and no value is read. The mount shows the
 * length and creation time of the current version; it does not show a
 * grant's expiry or remaining uses, so neither does this.
 */
#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

static const char ls_usage_text[] =
	"usage: scopehold ls [--mount DIR] [--json]\n"
	"  --json         one JSON object: the agent and its candidate secrets\n"
	"  --mount DIR    the ScopeHold mount\n";

struct ls_entry {
	char ref[2 * POLICY_NAME_MAX + 2];
	char provider[POLICY_NAME_MAX + 1];
	char name[POLICY_NAME_MAX + 1];
	bool granted;
	long long length;
	int64_t created;
};

struct ls_list {
	struct ls_entry *e;
	size_t count, cap;
};

static int ls_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ls_entry *)a)->ref, ((const struct ls_entry *)b)->ref);
}

/* The names in directory fd (closed), skipping . and .., into *names (malloc'd strings). */
static int ls_names(int fd, char ***names, size_t *count)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	size_t n = 0, cap = 0;
	char **v = NULL;

	if (!d) {
		int e = errno;
		close(fd);
		return -e;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			char **nv;
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*nv));
			if (!nv)
				break;
			v = nv;
		}
		if (!(v[n] = strdup(de->d_name)))
			break;
		n++;
		errno = 0;
	}
	int e = errno;
	closedir(d);
	*names = v;
	*count = n;
	return e ? -e : 0;
}

static void ls_names_free(char **names, size_t n)
{
	while (n)
		free(names[--n]);
	free(names);
}

static int ls_provider(int selffd, const char *provider, struct ls_list *l)
{
	int fd = openat(selffd, provider, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	char **names = NULL;
	size_t n = 0, i;
	int rc;

	if (fd < 0)
		return -errno;
	rc = ls_names(dup(fd), &names, &n);
	for (i = 0; rc == 0 && i < n; i++) {
		struct stat sb;
		struct ls_entry *e;

		/* A candidate removed between the listing and the stat is simply gone. */
		if (fstatat(fd, names[i], &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (l->count == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 32;
			struct ls_entry *ne = realloc(l->e, cap * sizeof(*ne));
			if (!ne) {
				rc = -ENOMEM;
				break;
			}
			l->e = ne;
			l->cap = cap;
		}
		e = &l->e[l->count++];
		snprintf(e->provider, sizeof(e->provider), "%s", provider);
		snprintf(e->name, sizeof(e->name), "%s", names[i]);
		snprintf(e->ref, sizeof(e->ref), "%s/%s", provider, names[i]);
		e->granted = (sb.st_mode & S_IRUSR) != 0;
		e->length = (long long)sb.st_size;
		e->created = (int64_t)sb.st_mtim.tv_sec;
	}
	ls_names_free(names, n);
	close(fd);
	return rc;
}

static void ls_print_text(const char *agent, const char *mount, const struct ls_list *l)
{
	size_t w = strlen("SECRET"), i;
	char when[32];

	for (i = 0; i < l->count; i++) {
		if (strlen(agent_esc(l->e[i].ref)) > w)
			w = strlen(agent_esc(l->e[i].ref));
	}
	printf("agent: %s (%s/%s)\n", agent_esc(agent), agent_esc(mount), AGENT_SELF);
	if (l->count == 0) {
		printf("no candidate secrets\n");
		return;
	}
	printf("%-*s  %-9s  %8s  %s\n", (int)w, "SECRET", "ACCESS", "LENGTH", "CREATED");
	for (i = 0; i < l->count; i++) {
		policy_time_format(l->e[i].created, when, sizeof(when));
		printf("%-*s  %-9s  %8lld  %s\n", (int)w, agent_esc(l->e[i].ref),
		       l->e[i].granted ? "granted" : "candidate", l->e[i].length, when);
	}
}

static int ls_print_json(const char *agent, const char *mount, const struct ls_list *l)
{
	json_t *arr = json_array(), *obj;
	char when[32], *s;
	size_t i;

	if (!arr)
		return -ENOMEM;
	for (i = 0; i < l->count; i++) {
		policy_time_format(l->e[i].created, when, sizeof(when));
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o,s:b,s:I,s:s}",
			"secret", l->e[i].ref, "provider", l->e[i].provider, "name", l->e[i].name,
			"uri", json_sprintf(AGENT_URI_PREFIX "%s", l->e[i].ref),
			"granted", l->e[i].granted, "length", (json_int_t)l->e[i].length,
			"created", when));
	}
	obj = json_pack("{s:s,s:s,s:o}", "agent", agent, "mount", mount, "secrets", arr);
	if (!obj)
		return -ENOMEM;
	s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(obj);
	if (!s)
		return -ENOMEM;
	puts(s);
	free(s);
	return 0;
}

int agent_ls(const char *mount, int argc, char **argv)
{
	char path[PATH_MAX], agent[POLICY_NAME_MAX + 2];
	struct ls_list l = { 0 };
	char **providers = NULL;
	size_t np = 0, i;
	bool json = false;
	ssize_t n;
	int selffd, rc;

	for (i = 1; i < (size_t)argc; i++) {
		const char *a = argv[i];
		int ii = (int)i, m;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(ls_usage_text, stdout);
			return AGENT_EXIT_OK;
		}
		if (strcmp(a, "--json") == 0) {
			json = true;
			continue;
		}
		if ((m = agent_opt_value(argc, argv, &ii, NULL, "--mount", &mount)) != 0) {
			if (m < 0)
				return AGENT_EXIT_USAGE;
			i = (size_t)ii;
			continue;
		}
		if (a[0] == '-')
			return agent_usage("unknown option '%s' (see 'scopehold ls --help')", a);
		return agent_usage("unexpected argument '%s' (see 'scopehold ls --help')", a);
	}
	if (!mount[0])
		return agent_usage("--mount needs a directory");
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", mount, AGENT_SELF) >= sizeof(path))
		return agent_fail("'%s': %s", mount, strerror(ENAMETOOLONG));
	n = readlink(path, agent, sizeof(agent) - 1);
	if (n < 0) {
		if (errno == ENOENT)
			return agent_fail("no agent matches this process (%s does not exist)", path);
		return agent_fail("%s: %s", path, strerror(errno));
	}
	agent[n] = '\0';
	selffd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (selffd < 0)
		return agent_fail("%s: %s", path, strerror(errno));
	rc = ls_names(dup(selffd), &providers, &np);
	for (i = 0; rc == 0 && i < np; i++) {
		rc = ls_provider(selffd, providers[i], &l);
		if (rc == -ENOENT)      /* its last candidate went away meanwhile */
			rc = 0;
		if (rc < 0)
			rc = agent_fail("%s/%s: %s", path, providers[i], strerror(-rc));
	}
	if (rc < 0)
		rc = agent_fail("%s: %s", path, strerror(-rc));
	close(selffd);
	ls_names_free(providers, np);
	if (rc == 0) {
		qsort(l.e, l.count, sizeof(*l.e), ls_cmp);
		if (json)
			rc = ls_print_json(agent, mount, &l) < 0 ? agent_fail("out of memory") : 0;
		else
			ls_print_text(agent, mount, &l);
	}
	free(l.e);
	return rc;
}
