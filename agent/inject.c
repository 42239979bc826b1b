/*
 * inject.c - `scopehold inject`: copy a template, replacing each
 * {{ scopehold://PROVIDER/NAME }} by the secret's exact bytes. Other
 * {{ ... }} pass through untouched (the template may be for another
 * tool too), but every `{{` must close on its line and anything that
 * starts like a ScopeHold reference must be a valid one, so a typo is an
 * error rather than a silently unreplaced placeholder. Nothing is written
 * until every reference was read; the result is assembled in
 * sodium_malloc memory and written to standard output, or to a 0600
 * temporary file beside OUT that is renamed over it at the end (without
 * --force, only if OUT still does not exist), so a failure never leaves
 * a partial or world-readable OUT behind.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

static const char inject_usage_text[] =
	"usage: scopehold inject [--mount DIR] [-i TEMPLATE] [-o OUT] [--force]\n"
	"  -i, --in TEMPLATE    the template (default: standard input)\n"
	"  -o, --out OUT        the result, created with mode 0600 (default: standard output)\n"
	"  --force              replace OUT if it exists\n"
	"  --mount DIR          the ScopeHold mount\n"
	"Each {{ scopehold://PROVIDER/NAME }} is replaced by the secret's exact value.\n";

#define INJECT_TEMPLATE_MAX (16 * 1024 * 1024)

/* One placeholder: template bytes [start, end) become value `ref`. */
struct inject_hole {
	size_t start, end, ref;
};

struct inject_state {
	uint8_t *tpl;
	size_t len;
	struct inject_hole *holes;
	size_t nholes;
	struct agent_refset refs;
};

static int inject_read(const char *path, const char *label, struct inject_state *s)
{
	size_t cap = 65536;
	int fd = STDIN_FILENO;

	if (path) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return agent_fail("cannot open '%s': %s", path, strerror(errno));
	}
	s->tpl = malloc(cap);
	for (;;) {
		ssize_t r;

		if (!s->tpl) {
			if (path)
				close(fd);
			return agent_fail("out of memory");
		}
		if (s->len == cap) {
			uint8_t *b;

			if (cap >= INJECT_TEMPLATE_MAX) {
				if (path)
					close(fd);
				return agent_fail("%s: larger than %d bytes", label, INJECT_TEMPLATE_MAX);
			}
			b = realloc(s->tpl, cap * 2);
			if (!b)
				free(s->tpl);
			s->tpl = b;
			cap *= 2;
			continue;
		}
		r = read(fd, s->tpl + s->len, cap - s->len);
		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (path)
				close(fd);
			return agent_fail("cannot read %s: %s", label, strerror(e));
		}
		if (r == 0)
			break;
		s->len += (size_t)r;
	}
	if (path)
		close(fd);
	return 0;
}

static size_t inject_line_of(const struct inject_state *s, size_t at)
{
	size_t line = 1, i;

	for (i = 0; i < at; i++)
		line += s->tpl[i] == '\n';
	return line;
}

/* Find every placeholder and check its reference. */
static int inject_scan(struct inject_state *s, const char *label)
{
	size_t pos = 0, cap = 0;

	while (pos + 1 < s->len) {
		const uint8_t *open_ = memmem(s->tpl + pos, s->len - pos, "{{", 2);
		const uint8_t *eol, *close_;
		size_t o, c, a, b;

		if (!open_)
			break;
		o = (size_t)(open_ - s->tpl);
		eol = memchr(s->tpl + o, '\n', s->len - o);
		c = eol ? (size_t)(eol - s->tpl) : s->len;
		close_ = memmem(s->tpl + o + 2, c - o - 2, "}}", 2);
		if (!close_)
			return agent_fail("%s:%zu: unterminated '{{' (close it with '}}' on the same line)",
					  label, inject_line_of(s, o));
		c = (size_t)(close_ - s->tpl);
		a = o + 2;
		b = c;
		while (a < b && (s->tpl[a] == ' ' || s->tpl[a] == '\t'))
			a++;
		while (b > a && (s->tpl[b - 1] == ' ' || s->tpl[b - 1] == '\t'))
			b--;
		pos = c + 2;
		if (b - a < 10 || memcmp(s->tpl + a, "scopehold:", 10) != 0)
			continue;      /* not ours: passed through as written */

		char text[2 * POLICY_NAME_MAX + 32];
		struct agent_ref ref;
		const char *why;
		size_t n = b - a;

		if (n >= sizeof(text)) {
			return agent_fail("%s:%zu: invalid reference: longer than %zu characters", label,
					  inject_line_of(s, o), sizeof(text) - 1);
		}
		memcpy(text, s->tpl + a, n);
		text[n] = '\0';
		if (memchr(text, '\0', n) || !agent_is_uri((const uint8_t *)text, n))
			return agent_fail("%s:%zu: invalid reference '%s': use scopehold://PROVIDER/NAME",
					  label, inject_line_of(s, o), text);
		if (agent_ref_parse(text, &ref, &why) < 0)
			return agent_fail("%s:%zu: invalid reference '%s': %s", label,
					  inject_line_of(s, o), text, why);
		if (s->nholes == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct inject_hole *h = realloc(s->holes, ncap * sizeof(*h));

			if (!h)
				return agent_fail("out of memory");
			s->holes = h;
			cap = ncap;
		}
		s->holes[s->nholes].start = o;
		s->holes[s->nholes].end = c + 2;
		if (agent_refset_add(&s->refs, &ref, &s->holes[s->nholes].ref) < 0)
			return agent_fail("out of memory");
		s->nholes++;
	}
	return 0;
}

/* The result, in sodium_malloc memory. */
static int inject_build(const struct inject_state *s, uint8_t **out, size_t *out_len)
{
	size_t total = s->len, i, at = 0, w = 0;
	uint8_t *buf;

	for (i = 0; i < s->nholes; i++)
		total += s->refs.values[s->holes[i].ref].len - (s->holes[i].end - s->holes[i].start);
	buf = sodium_malloc(total ? total : 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < s->nholes; i++) {
		const struct inject_hole *h = &s->holes[i];
		const struct agent_value *v = &s->refs.values[h->ref];

		memcpy(buf + w, s->tpl + at, h->start - at);
		w += h->start - at;
		if (v->len)
			memcpy(buf + w, v->bytes, v->len);
		w += v->len;
		at = h->end;
	}
	memcpy(buf + w, s->tpl + at, s->len - at);
	w += s->len - at;
	*out = buf;
	*out_len = w;
	return 0;
}

static int inject_write_fd(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t r = write(fd, buf, len);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

/* Write buf to a 0600 temporary file beside out, then move it into place. */
static int inject_write_file(const char *out, bool force, const uint8_t *buf, size_t len)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(out, '/');
	sigset_t block, old;
	int fd, rc = 0, e;

	if (slash)
		e = snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX", (int)(slash - out), out, slash + 1);
	else
		e = snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", out);
	if (e < 0 || (size_t)e >= sizeof(tmp))
		return agent_fail("'%s': %s", out, strerror(ENAMETOOLONG));
	/* An interrupt between create and rename must not leave the temporary file. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, &old);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = agent_fail("cannot create a file beside '%s': %s", out, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || (e = inject_write_fd(fd, buf, len)) != 0 || fsync(fd) != 0) {
		rc = agent_fail("cannot write '%s': %s", out, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0) {
		rc = agent_fail("cannot write '%s': %s", out, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (force) {
		e = rename(tmp, out);
	} else {
		e = renameat2(AT_FDCWD, tmp, AT_FDCWD, out, RENAME_NOREPLACE);
		/* A filesystem without RENAME_NOREPLACE: link() refuses an existing name too. */
		if (e != 0 && (errno == EINVAL || errno == ENOSYS)) {
			e = link(tmp, out);
			if (e == 0)
				unlink(tmp);
		}
	}
	if (e != 0) {
		if (errno == EEXIST)
			rc = agent_fail("'%s' exists; use --force to replace it", out);
		else
			rc = agent_fail("cannot create '%s': %s", out, strerror(errno));
		unlink(tmp);
	}
out:
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int agent_inject(const char *mount, int argc, char **argv)
{
	struct inject_state s;
	const char *in = NULL, *out = NULL, *label;
	bool force = false;
	uint8_t *result = NULL;
	size_t result_len = 0;
	struct stat sb;
	int i, rc;

	memset(&s, 0, sizeof(s));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int m;

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(inject_usage_text, stdout);
			return AGENT_EXIT_OK;
		}
		if (strcmp(a, "--force") == 0) {
			force = true;
			continue;
		}
		if ((m = agent_opt_value(argc, argv, &i, NULL, "--mount", &mount)) != 0 ||
		    (m = agent_opt_value(argc, argv, &i, "-i", "--in", &in)) != 0 ||
		    (m = agent_opt_value(argc, argv, &i, "-o", "--out", &out)) != 0) {
			if (m < 0)
				return AGENT_EXIT_USAGE;
			continue;
		}
		if (a[0] == '-')
			return agent_usage("unknown option '%s' (see 'scopehold inject --help')", a);
		return agent_usage("unexpected argument '%s' (see 'scopehold inject --help')", a);
	}
	if (!mount[0])
		return agent_usage("--mount needs a directory");
	if ((in && !in[0]) || (out && !out[0]))
		return agent_usage("-i and -o need a file name");
	/* Refuse early: no secret is read for a result that could not be written. */
	if (out && !force && lstat(out, &sb) == 0)
		return agent_fail("'%s' exists; use --force to replace it", out);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	label = in ? in : "standard input";
	if ((rc = inject_read(in, label, &s)) != 0 || (rc = inject_scan(&s, label)) != 0)
		goto done;
	if ((rc = agent_refset_read(&s.refs, mount, true)) != 0)
		goto done;
	if (inject_build(&s, &result, &result_len) < 0) {
		rc = agent_fail("out of memory");
		goto done;
	}
	agent_refset_release(&s.refs);    /* only the result holds the values now */
	if (out) {
		rc = inject_write_file(out, force, result, result_len);
	} else if ((rc = inject_write_fd(STDOUT_FILENO, result, result_len)) != 0) {
		rc = agent_fail("cannot write the output: %s", strerror(-rc));
	}
done:
	sodium_free(result);
	agent_refset_release(&s.refs);
	free(s.holes);
	free(s.tpl);
	return rc;
}
