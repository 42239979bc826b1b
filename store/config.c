/*
 * config.c - reads scopehold.ini (inih) into struct store_config.
 *
 * The file is small and security-relevant, so it is strict: an unknown
 * section or key, or a value that does not parse, stops with a message
 * naming the file and line rather than being ignored and leaving a
 * setting silently at its default.
 */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <syslog.h>

#include "store/store_int.h"

struct config_ctx {
	struct store_config *cfg;
	char problem[384];          /* set by the handler on its first refusal */
};

static int config_copy(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n >= cap)
		return -EINVAL;
	memcpy(dst, v, n + 1);
	return 0;
}

/* A decimal number from 1 to max: no sign, no suffix, no blank. */
static int config_number(const char *v, unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n == 0 || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int config_count(const char *v, unsigned long long max, size_t *out)
{
	unsigned long long n;
	int rc = config_number(v, max, &n);

	if (rc == 0)
		*out = (size_t)n;
	return rc;
}

static int config_size(const char *v, size_t *out)
{
	return config_count(v, 16u * 1024 * 1024, out);
}

/* `[audit] syslog = FACILITY`: the facilities a SIEM forwarder would read, or off. */
static int config_facility(const char *v, int *out)
{
	static const struct { const char *name; int facility; } names[] = {
		{ "off", -1 }, { "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
		{ "daemon", LOG_DAEMON }, { "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
		{ "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(v, names[i].name) == 0) {
			*out = names[i].facility;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * A byte count up to 1 TiB in plain decimal: the largest executable the
 * mount hashes for an agent bound to a digest.
 */
static int config_bytes(const char *v, uint64_t *out)
{
	unsigned long long n;
	int rc = config_number(v, 1ull << 40, &n);

	if (rc == 0)
		*out = (uint64_t)n;
	return rc;
}

/* inih calls this per key; returning 0 makes ini_parse report the line. */
static int config_handler(void *user, const char *section, const char *key,
			  const char *value)
{
	struct config_ctx *c = user;
	struct store_config *cfg = c->cfg;
	int rc = 0;
	int64_t secs;

	if (strcmp(section, "store") == 0) {
		if (strcmp(key, "path") == 0)
			rc = config_copy(cfg->store_path, sizeof cfg->store_path, value);
		else if (strcmp(key, "key_file") == 0)
			rc = config_copy(cfg->key_file, sizeof cfg->key_file, value);
		else if (strcmp(key, "max_value_bytes") == 0)
			rc = config_size(value, &cfg->max_value);
		else if (strcmp(key, "backend") == 0)
			rc = strcmp(value, "sqlite") && strcmp(value, "postgresql") ? -EINVAL :
			     config_copy(cfg->backend, sizeof cfg->backend, value);
		else if (strcmp(key, "conninfo") == 0) {
			/* its own words: the value may hold a password, never echoed */
			if (sql_target_check("postgresql", value, c->problem, sizeof c->problem))
				return 0;
			rc = config_copy(cfg->conninfo, sizeof cfg->conninfo, value);
		} else if (strcmp(key, "state_dir") == 0)
			rc = value[0] != '/' ? -EINVAL :
			     config_copy(cfg->state_dir, sizeof cfg->state_dir, value);
		else if (strcmp(key, "host") == 0)
			rc = policy_name_check(value, POLICY_NAME_WORKSPACE) ? -EINVAL :
			     config_copy(cfg->host, sizeof cfg->host, value);
		else if (strcmp(key, "timeout") == 0)
			/* the mount's bound on proving its view current: a minute at most */
			rc = policy_duration_parse(value, &cfg->timeout_seconds) ||
			     cfg->timeout_seconds < 1 || cfg->timeout_seconds > 60 ? -EINVAL : 0;
		else if (strcmp(key, "admin_timeout") == 0)
			rc = policy_duration_parse(value, &cfg->admin_timeout_seconds) ||
			     cfg->admin_timeout_seconds < 1 || cfg->admin_timeout_seconds > 86400 ?
			     -EINVAL : 0;
		else
			goto unknown_key;
	} else if (strcmp(section, "mount") == 0) {
		if (strcmp(key, "mountpoint") == 0)
			rc = config_copy(cfg->mountpoint, sizeof cfg->mountpoint, value);
		else if (strcmp(key, "workspace") == 0)
			rc = policy_name_check(value, POLICY_NAME_WORKSPACE) ? -EINVAL :
			     config_copy(cfg->workspace, sizeof cfg->workspace, value);
		else if (strcmp(key, "cache") == 0) {
			if (strcmp(value, "none") == 0)
				cfg->cache = STORE_CACHE_NONE;
			else if (strcmp(value, "kernel") == 0)
				cfg->cache = STORE_CACHE_KERNEL;
			else
				rc = -EINVAL;
		} else if (strcmp(key, "max_open_per_uid") == 0)
			rc = config_count(value, STORE_MAX_OPEN_PER_UID_LIMIT, &cfg->max_open_per_uid);
		else if (strcmp(key, "max_exe_hash_bytes") == 0)
			rc = config_bytes(value, &cfg->max_exe_hash_bytes);
		else
			goto unknown_key;
	} else if (strcmp(section, "audit") == 0) {
		if (strcmp(key, "durability") == 0) {
			if (strcmp(value, "crash") == 0)
				cfg->durability = STORE_DURABLE_CRASH;
			else if (strcmp(value, "power") == 0)
				cfg->durability = STORE_DURABLE_POWER;
			else
				rc = -EINVAL;
		} else if (strcmp(key, "coalesce_denials") == 0) {
			if (strcmp(value, "0") == 0 || strcmp(value, "off") == 0)
				cfg->deny_coalesce_seconds = 0;
			else if (policy_duration_parse(value, &secs) == 0)
				cfg->deny_coalesce_seconds = secs;
			else
				rc = -EINVAL;
		} else if (strcmp(key, "syslog") == 0) {
			rc = config_facility(value, &cfg->syslog_facility);
		} else
			goto unknown_key;
	} else if (strcmp(section, "requests") == 0) {
		if (strcmp(key, "keep") == 0)
			rc = policy_duration_parse(value, &cfg->request_keep_seconds);
		else
			goto unknown_key;
	} else if (strcmp(section, "alerts") == 0) {
		if (strcmp(key, "exec") == 0)
			rc = value[0] != '/' ? -EINVAL :
			     config_copy(cfg->alert_exec, sizeof cfg->alert_exec, value);
		else if (strcmp(key, "timeout") == 0)
			rc = policy_duration_parse(value, &cfg->alert_timeout_seconds);
		else if (strcmp(key, "deny_burst") == 0) {
			size_t n = 0;
			if ((rc = config_size(value, &n)) == 0)
				cfg->alert_deny_burst = (int64_t)n;
		} else
			goto unknown_key;
	} else {
		snprintf(c->problem, sizeof c->problem, "unknown section [%s]", section);
		return 0;
	}
	if (rc) {
		snprintf(c->problem, sizeof c->problem, "invalid value for '%s': '%s'",
			 key, value);
		return 0;
	}
	return 1;
unknown_key:
	snprintf(c->problem, sizeof c->problem, "unknown key '%s' in [%s]", key, section);
	return 0;
}

static void config_defaults(struct store_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	snprintf(cfg->store_path, sizeof cfg->store_path, "/var/lib/scopehold/store.db");
	snprintf(cfg->key_file, sizeof cfg->key_file, "/etc/scopehold/master.key");
	snprintf(cfg->backend, sizeof cfg->backend, "sqlite");
	snprintf(cfg->state_dir, sizeof cfg->state_dir, "/var/lib/scopehold");
	if (gethostname(cfg->host, sizeof cfg->host - 1) < 0 || !cfg->host[0])
		snprintf(cfg->host, sizeof cfg->host, "localhost");
	cfg->timeout_seconds = 2;
	cfg->admin_timeout_seconds = 300;
	snprintf(cfg->mountpoint, sizeof cfg->mountpoint, "/run/scopehold");
	snprintf(cfg->workspace, sizeof cfg->workspace, STORE_DEFAULT_WORKSPACE);
	cfg->max_value = STORE_DEFAULT_MAX_VALUE;
	cfg->cache = STORE_CACHE_NONE;
	cfg->max_open_per_uid = STORE_DEFAULT_MAX_OPEN_PER_UID;
	cfg->max_exe_hash_bytes = STORE_DEFAULT_MAX_EXE_HASH;
	cfg->durability = STORE_DURABLE_CRASH;
	cfg->deny_coalesce_seconds = 60;
	cfg->syslog_facility = -1;
	cfg->request_keep_seconds = 24 * 3600;
	cfg->alert_timeout_seconds = 5;
	cfg->alert_deny_burst = 20;
}

/*
 * The configuration names the key and the store, so whoever may change it
 * chooses them: it must belong to root or to the user running this and be
 * writable by no one else (like sudoers and doas.conf). Checked on the
 * open file, so it is the file that is then read.
 */
static int config_check_file(const char *path, FILE *f)
{
	struct stat sb;

	if (fstat(fileno(f), &sb) < 0)
		return store_fail(-errno, "cannot read config '%s': %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return store_fail(-EINVAL, "refusing config '%s': not a regular file", path);
	if (sb.st_uid != 0 && sb.st_uid != geteuid())
		return store_fail(-EACCES, "refusing config '%s': owned by uid %u, not by root or uid %u "
				  "(the user running this)", path, (unsigned)sb.st_uid,
				  (unsigned)geteuid());
	if (sb.st_mode & (S_IWGRP | S_IWOTH))
		return store_fail(-EACCES, "refusing config '%s': writable by group or others "
				  "(mode %04o); run: chmod go-w %s", path,
				  (unsigned)(sb.st_mode & 07777), path);
	return 0;
}

int store_config_load(const char *path, struct store_config *cfg)
{
	struct config_ctx c = { .cfg = cfg };
	const char *env = getenv("SCOPEHOLD_CONFIG");
	FILE *f;
	int line, rc;

	config_defaults(cfg);
	if (!path || !*path)
		path = env && *env ? env : STORE_DEFAULT_CONFIG;
	if (strlen(path) >= sizeof cfg->path)
		return store_fail(-ENAMETOOLONG, "config path is too long");
	snprintf(cfg->path, sizeof cfg->path, "%s", path);

	if ((rc = store_check_path(path, true)))
		return rc;
	f = fopen(path, "re");
	if (!f)
		return store_fail(-errno, "cannot read config '%s': %s", path, strerror(errno));
	if ((rc = config_check_file(path, f))) {
		fclose(f);
		return rc;
	}
	line = ini_parse_file(f, config_handler, &c);
	fclose(f);
	if (line < 0)
		return store_fail(-ENOMEM, "cannot read config '%s': out of memory", path);
	if (line > 0) {
		if (!c.problem[0])
			snprintf(c.problem, sizeof c.problem, "syntax error");
		return store_fail(-EINVAL, "%s:%d: %s", path, line, c.problem);
	}
	if (strcmp(cfg->backend, "postgresql") == 0 && !cfg->conninfo[0])
		return store_fail(-EINVAL, "%s: [store] backend = postgresql needs conninfo", path);
	return 0;
}
