/*
 * config_fuzz.c - fuzz target for the configuration parser,
 * store_config_load(). The input is written as a scopehold.ini to a
 * private file in /dev/shm and loaded.
 *
 * Whatever the bytes, the parser must not crash, and what it accepts must
 * be usable without further checks by the store and the mount: every path
 * NUL-terminated inside its buffer, a workspace that is a valid name, the
 * enums in range, limits as documented. A refusal must leave a one-line
 * message. The result must not depend on anything but the bytes (two loads
 * agree).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/fuzz/fuzz.h"

static char cfg_path[64];

static void cleanup(void)
{
	unlink(cfg_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(cfg_path, sizeof cfg_path, "/dev/shm/scopehold-fuzz-config.%d.ini", (int)getpid());
	/* The path argument wins over the environment, but leave nothing to chance. */
	unsetenv("SCOPEHOLD_CONFIG");
	atexit(cleanup);
	return 0;
}

static void check_str(const char *what, const char *s, size_t cap)
{
	FUZZ_CHECK(strnlen(s, cap) < cap, "%s is not NUL-terminated within %zu bytes", what, cap);
}

static void check_accepted(const struct store_config *cfg)
{
	check_str("path", cfg->path, sizeof cfg->path);
	check_str("store_path", cfg->store_path, sizeof cfg->store_path);
	check_str("key_file", cfg->key_file, sizeof cfg->key_file);
	check_str("mountpoint", cfg->mountpoint, sizeof cfg->mountpoint);
	check_str("workspace", cfg->workspace, sizeof cfg->workspace);
	FUZZ_CHECK(strcmp(cfg->path, cfg_path) == 0, "path '%s' is not the file read", cfg->path);
	FUZZ_CHECK(cfg->store_path[0] && cfg->key_file[0] && cfg->mountpoint[0],
		   "an accepted config has an empty path");
	FUZZ_CHECK(policy_name_check(cfg->workspace, POLICY_NAME_WORKSPACE) == 0,
		   "accepted workspace '%s' is not a valid name", cfg->workspace);
	FUZZ_CHECK(cfg->max_value >= 1 && cfg->max_value <= 16u * 1024 * 1024,
		   "max_value %zu out of range", cfg->max_value);
	FUZZ_CHECK(cfg->cache == STORE_CACHE_NONE || cfg->cache == STORE_CACHE_KERNEL,
		   "cache %d", (int)cfg->cache);
	FUZZ_CHECK(cfg->durability == STORE_DURABLE_CRASH || cfg->durability == STORE_DURABLE_POWER,
		   "durability %d", (int)cfg->durability);
	FUZZ_CHECK(cfg->deny_coalesce_seconds >= 0 &&
		   cfg->deny_coalesce_seconds <= (int64_t)36525 * 86400,
		   "coalesce %lld", (long long)cfg->deny_coalesce_seconds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Heap copies of exactly the struct size: an overrun is an ASan report. */
	struct store_config *a = malloc(sizeof *a), *b = malloc(sizeof *b);
	int fd, ra, rb;
	const char *err;

	if (!a || !b)
		abort();
	fd = open(cfg_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);

	ra = store_config_load(cfg_path, a);
	if (ra == 0) {
		check_accepted(a);
	} else {
		FUZZ_CHECK(ra == -EINVAL || ra == -ENOMEM, "unexpected error %d", ra);
		err = store_error();
		FUZZ_CHECK(err && err[0], "refusal without a message");
		FUZZ_CHECK(strchr(err, '\n') == NULL, "message is not one line: %s", err);
	}
	rb = store_config_load(cfg_path, b);
	FUZZ_CHECK(ra == rb, "two loads disagree: %d then %d", ra, rb);
	if (ra == 0)
		FUZZ_CHECK(memcmp(a, b, sizeof *a) == 0 ||
			   (strcmp(a->store_path, b->store_path) == 0 &&
			    strcmp(a->key_file, b->key_file) == 0 &&
			    strcmp(a->mountpoint, b->mountpoint) == 0 &&
			    strcmp(a->workspace, b->workspace) == 0 &&
			    a->max_value == b->max_value && a->cache == b->cache &&
			    a->durability == b->durability &&
			    a->deny_coalesce_seconds == b->deny_coalesce_seconds),
			   "two loads of the same bytes differ");
	free(a);
	free(b);
	return 0;
}
