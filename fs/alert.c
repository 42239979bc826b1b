/*
 * alert.c - delivery of alerts to the operator's program ([alerts] exec).
 *
 * The store records every alert in the audit trail and hands it to the
 * hook installed here, often from inside an open. The hook only turns
 * the alert into one line of JSON and queues it; one delivery thread
 * runs PROGRAM per alert - as root, with an empty environment, no
 * arguments, the line on its stdin, stdout and stderr on /dev/null, no
 * other descriptor - one at a time, killed after [alerts] timeout. So a
 * slow, hanging or failing program never blocks or fails an open: when
 * the bounded queue is full the alert is dropped and counted, and every
 * alert not delivered (dropped, failed, timed out, left at exit) is
 * counted and logged. All of them remain in the audit trail.
 *
 * The program runs as root, so it must be a regular file owned by root
 * and writable by no one else, below directories no one else can change
 * (store_check_path(); checked before mounting and before each run), like
 * the configuration it is named in.
 */
#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ALERT_QUEUE 64

struct alerter {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	char *queue[ALERT_QUEUE];    /* JSON lines, oldest first, under lock */
	int head, n;
	uint64_t delivered, failed, dropped;   /* under lock */
	uint64_t dropped_logged;
	char program[PATH_MAX];
	int64_t timeout_ms;
	char host[256];
};

static struct alerter *the_alerter;

/* A regular executable file owned by root, writable by no one else: 0 or -errno. */
static int program_safe(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return -errno;
	if (!S_ISREG(sb.st_mode) || !(sb.st_mode & S_IXUSR))
		return -ENOEXEC;
	if (sb.st_uid != 0 || (sb.st_mode & (S_IWGRP | S_IWOTH)))
		return -EPERM;
	return 0;
}

int fs_alert_check(const struct store_config *cfg)
{
	return cfg->alert_exec[0] ? program_safe(cfg->alert_exec) : 0;
}

static void iso_time(int64_t t, char *buf, size_t len)
{
	policy_time_format(t, buf, len);
}

/* The store's hook: one JSON line, queued. Never blocks on delivery. */
static void alert_enqueue(void *ctx, const struct store_alert *a)
{
	struct alerter *al = ctx;
	char when[32], hex[2 * POLICY_SHA256_BYTES + 1];
	json_t *o;
	char *line;

	iso_time(a->time, when, sizeof(when));
	for (int i = 0; a->has_sha256 && i < POLICY_SHA256_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", a->sha256[i]);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:{s:o,s:o,s:o,s:o,s:o},s:s}",
		      "type", a->type, "time", when, "host", al->host,
		      "agent", a->agent, "secret", a->secret, "version", (json_int_t)a->version,
		      "caller",
		      "uid", a->uid >= 0 ? json_integer(a->uid) : json_null(),
		      "gid", a->gid >= 0 ? json_integer(a->gid) : json_null(),
		      "pid", a->pid >= 0 ? json_integer(a->pid) : json_null(),
		      "exe", a->exe && a->exe[0] ? json_string(a->exe) : json_null(),
		      "sha256", a->has_sha256 ? json_string(hex) : json_null(),
		      "reason", a->reason);
	line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	pthread_mutex_lock(&al->lock);
	if (!line || al->n == ALERT_QUEUE || al->stop) {
		al->dropped++;
		free(line);
	} else {
		al->queue[(al->head + al->n) % ALERT_QUEUE] = line;
		al->n++;
		pthread_cond_signal(&al->wake);
	}
	pthread_mutex_unlock(&al->lock);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the program once with line on its stdin: 0 (exit 0) or a reason it failed. */
static const char *deliver(struct alerter *al, const char *line, char *why, size_t whylen)
{
	char *argv[] = { al->program, NULL };
	char *envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2], status = 0, rc;
	pid_t pid;
	size_t len = strlen(line), off = 0;
	int64_t deadline;

	/* checked again: the file may have been replaced since the daemon started */
	if (store_check_path(al->program, true) < 0) {
		snprintf(why, whylen, "%s", store_error());
		return why;
	}
	if ((rc = program_safe(al->program)) < 0) {
		snprintf(why, whylen, "%s is not safe to run as root (%s)", al->program, strerror(-rc));
		return why;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "cannot make a pipe: %s", strerror(errno));
		return why;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[0], 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(&pid, al->program, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[0]);
	if (rc != 0) {
		close(pfd[1]);
		snprintf(why, whylen, "cannot run %s: %s", al->program, strerror(rc));
		return why;
	}
	deadline = mono_ms() + al->timeout_ms;
	/* one line and EOF; a program that never reads cannot hold us past the timeout */
	fcntl(pfd[1], F_SETFL, O_NONBLOCK);
	while (off <= len) {
		const char *p = off < len ? line + off : "\n";
		size_t n = off < len ? len - off : 1;
		ssize_t w = write(pfd[1], p, n);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EAGAIN && mono_ms() < deadline) {
			struct pollfd pf = { .fd = pfd[1], .events = POLLOUT };
			poll(&pf, 1, 10);
			continue;
		}
		break;   /* EPIPE (it exited without reading) or out of time: its exit tells */
	}
	close(pfd[1]);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			snprintf(why, whylen, "lost %s: %s", al->program, strerror(errno));
			return why;
		}
		if (mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(why, whylen, "%s was killed after %lld ms", al->program,
				 (long long)al->timeout_ms);
			return why;
		}
		usleep(5000);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return NULL;
	if (WIFEXITED(status))
		snprintf(why, whylen, "%s exited %d", al->program, WEXITSTATUS(status));
	else
		snprintf(why, whylen, "%s died of signal %d", al->program, WTERMSIG(status));
	return why;
}

static void *alert_run(void *arg)
{
	struct alerter *al = arg;
	char why[PATH_MAX + 128];

	pthread_mutex_lock(&al->lock);
	for (;;) {
		while (!al->stop && al->n == 0)
			pthread_cond_wait(&al->wake, &al->lock);
		if (al->stop)
			break;
		char *line = al->queue[al->head];
		al->head = (al->head + 1) % ALERT_QUEUE;
		al->n--;
		pthread_mutex_unlock(&al->lock);
		const char *err = deliver(al, line, why, sizeof(why));
		free(line);
		pthread_mutex_lock(&al->lock);
		if (err) {
			al->failed++;
			fs_log_error("alert not delivered (it stays in the audit trail): %s", err);
		} else {
			al->delivered++;
		}
		if (al->dropped != al->dropped_logged) {
			fs_log_error("%llu alerts dropped so far: the delivery queue was full (they stay in "
				     "the audit trail)", (unsigned long long)al->dropped);
			al->dropped_logged = al->dropped;
		}
	}
	pthread_mutex_unlock(&al->lock);
	return NULL;
}

int fs_alert_start(const struct store_config *cfg, struct store *st)
{
	struct alerter *al;
	sigset_t all, old;
	int rc;

	if (!cfg->alert_exec[0])
		return 0;     /* alerts are recorded in the trail only */
	al = calloc(1, sizeof(*al));
	if (!al)
		return -ENOMEM;
	pthread_mutex_init(&al->lock, NULL);
	pthread_cond_init(&al->wake, NULL);
	snprintf(al->program, sizeof(al->program), "%s", cfg->alert_exec);
	al->timeout_ms = cfg->alert_timeout_seconds * 1000;
	if (gethostname(al->host, sizeof(al->host) - 1) < 0)
		snprintf(al->host, sizeof(al->host), "unknown");
	/* Signals belong to the main thread; a hook that exits early must not raise SIGPIPE there. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&al->thread, NULL, alert_run, al);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_mutex_destroy(&al->lock);
		pthread_cond_destroy(&al->wake);
		free(al);
		return -rc;
	}
	the_alerter = al;
	store_alert_hook(st, alert_enqueue, al);
	return 0;
}

void fs_alert_stop(struct store *st)
{
	struct alerter *al = the_alerter;

	if (!al)
		return;
	store_alert_hook(st, NULL, NULL);
	pthread_mutex_lock(&al->lock);
	al->stop = true;
	pthread_cond_signal(&al->wake);
	pthread_mutex_unlock(&al->lock);
	pthread_join(al->thread, NULL);
	/* what is still queued is not delivered: count it with the rest */
	for (; al->n > 0; al->n--) {
		free(al->queue[al->head]);
		al->head = (al->head + 1) % ALERT_QUEUE;
		al->dropped++;
	}
	if (al->failed || al->dropped)
		fs_log_error("alerts: %llu delivered, %llu failed, %llu dropped (all are in the audit trail)",
			     (unsigned long long)al->delivered, (unsigned long long)al->failed,
			     (unsigned long long)al->dropped);
	pthread_mutex_destroy(&al->lock);
	pthread_cond_destroy(&al->wake);
	free(al);
	the_alerter = NULL;
}
