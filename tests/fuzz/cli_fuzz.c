/*
 * cli_fuzz.c - fuzz target for shadm's argument handling: the global
 * options, the command table, cmd_dispatch(), cmd_parse(), cmd_number()
 * and the name/ref/duration/date checks every command makes before it
 * touches the store.
 *
 * The sources in tools/ are compiled with -Dmain=shadm_main and the whole program runs
 * in-process: the input is split on NUL bytes into argv. The configuration
 * ($SCOPEHOLD_CONFIG) names a store and key below a regular file, so they
 * can neither exist nor be created (not even by `init`, which makes missing
 * directories): every command stops at opening the store and nothing is
 * ever created or read. Inputs that could escape that are skipped:
 *   - -c/--config (could name a real or an empty config, and `init` would
 *     then create /etc/scopehold/master.key);
 *   - --exe with anything but a plain file name (`check` hashes the file
 *     before it opens the store: /dev/zero or a FIFO would hang the run).
 * The working directory is a scratch directory holding one small file, so
 * `check --exe prog` hashes something real.
 * LeakSanitizer (on by default in libFuzzer) catches a leak on any error path.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

int shadm_main(int argc, char **argv);

#define MAX_ARGS 64

static char scratch[64];

static void cleanup(void)
{
	char path[128];

	snprintf(path, sizeof path, "%s/prog", scratch);
	unlink(path);
	snprintf(path, sizeof path, "%s/scopehold.ini", scratch);
	unlink(path);
	rmdir(scratch);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *dir = scratch, path[128];
	FILE *f;
	int fd;

	(void)argc;
	(void)argv;
	snprintf(scratch, sizeof scratch, "/dev/shm/scopehold-fuzz-cli.%d", (int)getpid());
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		abort();
	atexit(cleanup);
	snprintf(path, sizeof path, "%s/prog", dir);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs("#!/bin/sh\nexit 0\n", f);
	fclose(f);
	snprintf(path, sizeof path, "%s/scopehold.ini", dir);
	f = fopen(path, "w");
	if (!f)
		abort();
	/*
	 * Under a regular file: store_init() creates missing directories, so
	 * a merely absent directory would be made, and the store with it.
	 */
	fprintf(f, "[store]\npath = %s/prog/store.db\nkey_file = %s/prog/master.key\n"
		"[mount]\nmountpoint = %s/prog/mnt\n", dir, dir, dir);
	fclose(f);
	setenv("SCOPEHOLD_CONFIG", path, 1);
	unsetenv("SUDO_USER");
	if (chdir(dir) != 0)
		abort();
	/* Nothing is ever read from stdin; the help text is not worth printing. */
	fd = open("/dev/null", O_RDWR);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0)
		abort();
	close(fd);
	return 0;
}

static int plain_file_name(const char *s)
{
	size_t i;

	if (!s[0] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; s[i]; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return 1;
}

/* Could this argv leave the sandbox described above? */
static int unsafe(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strncmp(a, "-c", 2) == 0 || strncmp(a, "--c", 3) == 0)
			return 1;
		if (strcmp(a, "--exe") == 0 && (i + 1 >= argc || !plain_file_name(argv[i + 1])))
			return 1;
		if (strncmp(a, "--exe=", 6) == 0 && !plain_file_name(a + 6))
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf, *argv[MAX_ARGS + 2];
	struct stat sb;
	int argc = 0, rc;
	size_t i, start = 0;

	if (size > 4096)
		return 0;
	buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	argv[argc++] = (char *)"shadm";
	for (i = 0; i <= size && argc <= MAX_ARGS; i++) {
		if (buf[i] == '\0') {
			/* each argument its own heap block, so overreads are caught */
			size_t n = i - start;
			char *a = malloc(n + 1);
			if (!a)
				abort();
			memcpy(a, buf + start, n + 1);
			argv[argc++] = a;
			start = i + 1;
		}
	}
	argv[argc] = NULL;
	if (!unsafe(argc, argv)) {
		char *copy[MAX_ARGS + 2];

		/* shadm may permute argv (cmd_dispatch does); free our own pointers */
		memcpy(copy, argv, sizeof(char *) * (size_t)(argc + 1));
		rc = shadm_main(argc, copy);
		FUZZ_CHECK(rc == 0 || rc == 1 || rc == 2, "exit status %d", rc);
		/* the sandbox held: the file the store would live under is still a file */
		FUZZ_CHECK(stat("prog", &sb) == 0 && S_ISREG(sb.st_mode), "prog was replaced");
		fflush(stdout);
	}
	for (i = 1; i < (size_t)argc; i++)
		free(argv[i]);
	free(buf);
	return 0;
}
