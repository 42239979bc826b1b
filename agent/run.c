/*
 * run.c - `scopehold run`: put secrets into a program's environment. The
 * variables come from env files (dotenv, in order) and then -e options,
 * a later assignment of a name replacing an earlier one. Everything is
 * checked before the mount is touched; then each distinct reference is
 * read once, and only when every read worked is COMMAND executed (fail
 * closed). Values live in sodium_malloc memory: the "NAME=value" strings
 * handed to execve are built in one such arena, and the values read and
 * the env files are wiped before the exec. The process is made
 * non-dumpable while it holds them; execve restores that for COMMAND.
 */
#include "agent/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <sodium.h>

#include "dotenv/dotenv.h"

extern char **environ;

static const char run_usage_text[] =
	"usage: scopehold run [--mount DIR] [-e VAR=PROVIDER/NAME]... [--env-file FILE]...\n"
	"                     -- COMMAND [ARGS...]\n"
	"  -e, --env VAR=REF    set VAR to the value of the secret REF\n"
	"                       (PROVIDER/NAME or scopehold://PROVIDER/NAME)\n"
	"  --env-file FILE      dotenv assignments; a value scopehold://PROVIDER/NAME\n"
	"                       is a reference, any other value is passed on as is\n"
	"  --mount DIR          the ScopeHold mount\n";

/* One variable COMMAND will get. */
struct run_var {
	const char *name;          /* argv or an env file's key */
	bool is_ref;
	size_t ref;                /* slot in the refset when is_ref */
	const uint8_t *literal;    /* an env file's literal value otherwise */
	size_t literal_len;
};

struct run_state {
	struct run_var *vars;
	size_t count, cap;
	struct dotenv **docs;      /* the env files, kept until the arena is built */
	size_t ndocs;
	struct agent_refset refs;
};

static bool run_env_name(const char *s)
{
	size_t i;

	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (i = 1; s[i]; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* Set (or replace) a variable. 0 or -ENOMEM. */
static int run_set(struct run_state *s, const struct run_var *v)
{
	size_t i;

	for (i = 0; i < s->count; i++) {
		if (strcmp(s->vars[i].name, v->name) == 0) {
			s->vars[i] = *v;
			return 0;
		}
	}
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct run_var *n = realloc(s->vars, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->vars = n;
		s->cap = cap;
	}
	s->vars[s->count++] = *v;
	return 0;
}

static int run_env_file(struct run_state *s, const char *path)
{
	struct dotenv_error err;
	struct dotenv *d = NULL, **docs;
	size_t i;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return agent_fail("cannot open '%s': %s", path, strerror(errno));
	rc = dotenv_read(fd, &d, &err);
	close(fd);
	if (rc == -EINVAL || rc == -EFBIG)
		return err.line ? agent_fail("%s:%zu: %s", path, err.line, err.msg)
				: agent_fail("%s: %s", path, err.msg);
	if (rc < 0)
		return agent_fail("cannot read '%s': %s", path, strerror(-rc));
	docs = realloc(s->docs, (s->ndocs + 1) * sizeof(*docs));
	if (!docs) {
		dotenv_free(d);
		return agent_fail("out of memory");
	}
	s->docs = docs;
	s->docs[s->ndocs++] = d;

	for (i = 0; i < d->count; i++) {
		const struct dotenv_line *l = &d->lines[i];
		struct run_var v = { .name = l->key };
		struct agent_ref ref;
		const char *why;

		if (l->kind != DOTENV_ASSIGN)
			continue;
		if (!run_env_name(l->key))
			return agent_fail("%s:%zu: invalid variable name '%s': use A-Z a-z 0-9 _, "
					  "not starting with a digit", path, l->line, l->key);
		if (agent_is_uri(l->value, l->value_len)) {
			if (agent_ref_parse((const char *)l->value, &ref, &why) < 0)
				return agent_fail("%s:%zu: invalid reference '%s': %s", path, l->line,
						  (const char *)l->value, why);
			v.is_ref = true;
			if (agent_refset_add(&s->refs, &ref, &v.ref) < 0)
				return agent_fail("out of memory");
		} else {
			v.literal = l->value;
			v.literal_len = l->value_len;
		}
		if (run_set(s, &v) < 0)
			return agent_fail("out of memory");
	}
	return 0;
}

static int run_assign(struct run_state *s, char *arg)
{
	char *eq = strchr(arg, '=');
	struct run_var v = { .is_ref = true };
	struct agent_ref ref;
	const char *why;

	if (!eq)
		return agent_usage("-e needs VAR=PROVIDER/NAME, got '%s'", arg);
	*eq = '\0';                /* argv is ours to split */
	if (!run_env_name(arg))
		return agent_fail("invalid variable name '%s': use A-Z a-z 0-9 _, "
				  "not starting with a digit", arg);
	if (agent_ref_parse(eq + 1, &ref, &why) < 0)
		return agent_fail("invalid reference '%s': %s", eq + 1, why);
	v.name = arg;
	if (agent_refset_add(&s->refs, &ref, &v.ref) < 0 || run_set(s, &v) < 0)
		return agent_fail("out of memory");
	return 0;
}

static void run_release(struct run_state *s)
{
	size_t i;

	for (i = 0; i < s->ndocs; i++)
		dotenv_free(s->docs[i]);
	free(s->docs);
	free(s->vars);
	agent_refset_release(&s->refs);
	memset(s, 0, sizeof(*s));
}

/*
 * The environment for COMMAND: ours without the names we set, then ours.
 * The strings we add live in *arena (sodium_malloc, *arena_len bytes).
 */
static int run_environ(struct run_state *s, char ***envp_out, char **arena_out)
{
	size_t n = 0, k = 0, total = 0, i, j;
	char **envp, *arena, *w;

	while (environ && environ[n])
		n++;
	envp = calloc(n + s->count + 1, sizeof(*envp));
	for (i = 0; i < s->count; i++) {
		const struct run_var *v = &s->vars[i];
		total += strlen(v->name) + 2 + (v->is_ref ? s->refs.values[v->ref].len : v->literal_len);
	}
	arena = sodium_malloc(total ? total : 1);
	if (!envp || !arena) {
		free(envp);
		sodium_free(arena);
		return -ENOMEM;
	}
	for (j = 0; j < n; j++) {
		const char *e = environ[j], *eq = strchr(e, '=');
		size_t nl = eq ? (size_t)(eq - e) : strlen(e);
		bool replaced = false;

		for (i = 0; i < s->count && !replaced; i++)
			replaced = strlen(s->vars[i].name) == nl && memcmp(s->vars[i].name, e, nl) == 0;
		if (!replaced)
			envp[k++] = environ[j];
	}
	w = arena;
	for (i = 0; i < s->count; i++) {
		const struct run_var *v = &s->vars[i];
		const uint8_t *val = v->is_ref ? s->refs.values[v->ref].bytes : v->literal;
		size_t len = v->is_ref ? s->refs.values[v->ref].len : v->literal_len;
		size_t nl = strlen(v->name);

		envp[k++] = w;
		memcpy(w, v->name, nl);
		w[nl] = '=';
		if (len)
			memcpy(w + nl + 1, val, len);
		w[nl + 1 + len] = '\0';
		w += nl + len + 2;
	}
	envp[k] = NULL;
	*envp_out = envp;
	*arena_out = arena;
	return 0;
}

int agent_run(const char *mount, int argc, char **argv)
{
	struct run_state s;
	struct agent_refset used = { 0 };
	const char **files = NULL;
	char **assigns = NULL, **envp = NULL, *arena = NULL;
	size_t nfiles = 0, nassigns = 0, f;
	int i, rc = 0, cmd = -1, e;

	memset(&s, 0, sizeof(s));
	files = calloc((size_t)argc, sizeof(*files));
	assigns = calloc((size_t)argc, sizeof(*assigns));
	if (!files || !assigns) {
		rc = agent_fail("out of memory");
		goto out;
	}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		int m;

		if (strcmp(a, "--") == 0) {
			cmd = i + 1;
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			cmd = i;
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(run_usage_text, stdout);
			goto out;
		}
		if ((m = agent_opt_value(argc, argv, &i, NULL, "--mount", &mount)) != 0 ||
		    (m = agent_opt_value(argc, argv, &i, NULL, "--env-file", &val)) != 0) {
			if (m < 0) {
				rc = AGENT_EXIT_USAGE;
				goto out;
			}
			if (val)
				files[nfiles++] = val;
			continue;
		}
		if ((m = agent_opt_value(argc, argv, &i, "-e", "--env", &val)) != 0) {
			if (m < 0) {
				rc = AGENT_EXIT_USAGE;
				goto out;
			}
			assigns[nassigns++] = (char *)val;   /* points into argv: split in place */
			continue;
		}
		rc = agent_usage("unknown option '%s' (see 'scopehold run --help')", a);
		goto out;
	}
	if (cmd < 0 || cmd >= argc) {
		rc = agent_usage("missing COMMAND (see 'scopehold run --help')");
		goto out;
	}
	if (!mount[0]) {
		rc = agent_usage("--mount needs a directory");
		goto out;
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	/* Everything is checked before the mount is touched. */
	for (f = 0; f < nfiles; f++) {
		if ((rc = run_env_file(&s, files[f])) != 0)
			goto out;
	}
	for (f = 0; f < nassigns; f++) {
		if ((rc = run_assign(&s, assigns[f])) != 0)
			goto out;
	}
	/*
	 * Read only what is still used: a reference replaced by a later
	 * assignment stays unread (an unused slot is read for nothing, so
	 * rebuild the set from the surviving variables).
	 */
	for (f = 0; f < s.count; f++) {
		struct run_var *v = &s.vars[f];
		if (v->is_ref && agent_refset_add(&used, &s.refs.refs[v->ref], &v->ref) < 0) {
			agent_refset_release(&used);
			rc = agent_fail("out of memory");
			goto out;
		}
	}
	agent_refset_release(&s.refs);
	s.refs = used;
	if ((rc = agent_refset_read(&s.refs, mount, false)) != 0)
		goto out;

	if (run_environ(&s, &envp, &arena) < 0) {
		rc = agent_fail("out of memory");
		goto out;
	}
	run_release(&s);           /* wipe the values and env files: only the arena holds them now */
	execvpe(argv[cmd], argv + cmd, envp);
	e = errno;
	sodium_free(arena);
	arena = NULL;
	agent_fail("%s: %s", argv[cmd], strerror(e));
	rc = e == ENOENT ? 127 : 126;
out:
	sodium_free(arena);
	free(envp);
	free(files);
	free(assigns);
	run_release(&s);
	return rc;
}
