/*
 * steal.c - attack library for tests/exebind.sh: LD_PRELOAD it into the
 * bound binary and its constructor opens $STEAL_PATH as that binary,
 * before main() runs, and prints the bytes (or the errno name) on stdout.
 * The process's executable is the bound one, byte for byte: only its
 * mappings show a library the agent's uid wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void steal(void)
{
	const char *path = getenv("STEAL_PATH");
	char buf[65536];
	if (!path)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		const char *name = strerrorname_np(errno);
		dprintf(1, "%s\n", name ? name : "?");
		_exit(3);
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n > 0 && write(1, buf, (size_t)n) != n)
		_exit(4);
	_exit(n < 0 ? 3 : 0);
}
