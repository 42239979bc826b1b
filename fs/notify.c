/*
 * notify.c - tells a service manager when the mount serves (systemd's
 * Type=notify), so units ordered after scopeholdfs.service start only once
 * a read of the mount is answered, not merely once the process exists.
 *
 * The protocol is the documented one (sd_notify(3)): one datagram of
 * "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET, a path,
 * or an abstract name when it starts with '@'. It is written here rather
 * than linked from libsystemd so that a process holding plaintext secrets
 * loads no extra library (libsystemd brings its compression and crypto
 * libraries along) for the sake of one sendto().
 *
 * "Serving" is checked, not assumed: after fuse_mount() the kernel already
 * has the mount, but every request waits until the request loop answers
 * FUSE's INIT. A helper thread therefore stats the mountpoint (a GETATTR
 * through the mount) and statfs()es it (a STATFS, which must come back as
 * FUSE's magic), and sends READY=1 only when both were answered.
 */
#include "fs/fs.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546

int fs_notify(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;

	if (!name || !*name)
		return 0;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT;   /* e.g. vsock:, which systemd 252 never sets */
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';  /* abstract: the length, not a NUL, ends the name */

	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int rc = n < 0 ? -errno : (size_t)n == strlen(state) ? 0 : -EMSGSIZE;
	close(fd);
	return rc;
}

static void *notify_ready_run(void *arg)
{
	char *mp = arg;
	struct stat sb;
	struct statfs sf;

	if (stat(mp, &sb) < 0 || statfs(mp, &sf) < 0)
		fs_log_error("the mount at %s does not answer (%s); not telling the service "
			     "manager it is ready", mp, strerror(errno));
	else if (sf.f_type != FUSE_SUPER_MAGIC)
		fs_log_error("%s is not this FUSE mount; not telling the service manager "
			     "it is ready", mp);
	else {
		int rc = fs_notify("READY=1");
		if (rc < 0)
			fs_log_error("cannot notify the service manager: %s", strerror(-rc));
	}
	free(mp);
	return NULL;
}

int fs_notify_ready_when_serving(const char *mountpoint)
{
	const char *name = getenv("NOTIFY_SOCKET");
	pthread_attr_t attr;
	pthread_t thread;
	sigset_t all, old;
	char *mp;
	int rc;

	if (!name || !*name)
		return 0;
	mp = strdup(mountpoint);
	if (!mp)
		return -ENOMEM;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Signals belong to the main thread, where FUSE's handlers end the loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&thread, &attr, notify_ready_run, mp);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(mp);
		return -rc;
	}
	return 0;
}
