/*
 * main.c - the entry point of `scopehold`, the agent-side CLI: global
 * options (--mount, --help, --version), which mount to read (--mount,
 * else $SCOPEHOLD_MOUNT, else /run/scopehold), the help text and dispatch
 * to run, inject and ls. Help and usage errors need no mount. The
 * message helpers live here because they print and pick exit statuses:
 * they belong to this program, never to a library.
 */
#include "agent/agent.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

static const char agent_help_text[] =
	"usage: scopehold [--mount DIR] COMMAND [ARGS...]\n"
	"       scopehold --help | --version\n"
	"\n"
	"scopehold hands secrets from a ScopeHold mount to programs, as the agent\n"
	"itself: it needs no configuration and no key, and reads only through the\n"
	"mount (DIR/self/PROVIDER/NAME), where every open is decided and audited.\n"
	"\n"
	"Commands:\n"
	"  scopehold run [--mount DIR] [-e VAR=PROVIDER/NAME]... [--env-file FILE]...\n"
	"                -- COMMAND [ARGS...]\n"
	"      Read every reference, then execute COMMAND with those environment\n"
	"      variables set. In an env file (dotenv syntax) a value\n"
	"      scopehold://PROVIDER/NAME is a reference; any other value is passed\n"
	"      on as written. -e wins over env files, a later assignment over an\n"
	"      earlier one. If any reference cannot be read, COMMAND does not run.\n"
	"  scopehold inject [--mount DIR] [-i TEMPLATE] [-o OUT] [--force]\n"
	"      Copy TEMPLATE (default: standard input) to OUT (default: standard\n"
	"      output), replacing each {{ scopehold://PROVIDER/NAME }} by the exact\n"
	"      value. OUT is created with mode 0600 and only once every reference\n"
	"      was read; an existing OUT is replaced only with --force.\n"
	"  scopehold ls [--mount DIR] [--json]\n"
	"      The agent this process matches and each of its candidate secrets:\n"
	"      granted (readable) or candidate only, length and creation time.\n"
	"\n"
	"Options:\n"
	"  --mount DIR    the ScopeHold mount (default: $SCOPEHOLD_MOUNT, else\n"
	"                 " AGENT_DEFAULT_MOUNT ")\n"
	"  -h, --help     this text (after a command: that command's usage)\n"
	"  --version      print the version\n"
	"\n"
	"A reference is PROVIDER/NAME or scopehold://PROVIDER/NAME: two names of\n"
	"A-Z a-z 0-9 . _ -, resolved below DIR/self/. Environment variables are\n"
	"visible in /proc/PID/environ to processes of the same uid; reading the\n"
	"file at DIR/self/PROVIDER/NAME when it is needed is the safer path.\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error; run: 126 or 127 when\n"
	"COMMAND cannot be executed, otherwise COMMAND's own status.\n"
	"See scopehold(1) for more.\n";

#define AGENT_ESC_SLOTS 4

const char *agent_esc(const char *s)
{
	static char *slot[AGENT_ESC_SLOTS];
	static unsigned next;
	size_t need;
	char *buf;

	if (!s)
		return NULL;
	need = policy_escape(s, NULL, 0) + 1;
	buf = malloc(need);
	if (!buf)
		return "(out of memory)";
	policy_escape(s, buf, need);
	free(slot[next]);
	slot[next] = buf;
	next = (next + 1) % AGENT_ESC_SLOTS;
	return buf;
}

/* One line, whatever the paths and references it quotes hold. */
static int agent_vmsg(int status, const char *fmt, va_list ap)
{
	char line[4096];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, AGENT_PROGRAM ": %s\n", agent_esc(line));
	return status;
}

int agent_fail(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = agent_vmsg(AGENT_EXIT_FAIL, fmt, ap);
	va_end(ap);
	return rc;
}

int agent_usage(const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = agent_vmsg(AGENT_EXIT_USAGE, fmt, ap);
	va_end(ap);
	return rc;
}

int agent_opt_value(int argc, char **argv, int *i, const char *shortname,
		    const char *longname, const char **value)
{
	const char *a = argv[*i];
	size_t ll = strlen(longname);

	if (strcmp(a, longname) == 0 || (shortname && strcmp(a, shortname) == 0)) {
		if (*i + 1 >= argc) {
			agent_usage("%s needs a value", a);
			return -1;
		}
		*value = argv[++*i];
		return 1;
	}
	if (strncmp(a, longname, ll) == 0 && a[ll] == '=') {
		*value = a + ll + 1;
		return 1;
	}
	if (shortname && strncmp(a, shortname, 2) == 0 && a[2] != '\0') {
		*value = a + 2;
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *mount = getenv("SCOPEHOLD_MOUNT");
	int i, rc;

	if (!mount || !mount[0])
		mount = AGENT_DEFAULT_MOUNT;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(agent_help_text, stdout);
			return AGENT_EXIT_OK;
		}
		if (strcmp(a, "--version") == 0) {
			printf(AGENT_PROGRAM " %s\n", AGENT_VERSION);
			return AGENT_EXIT_OK;
		}
		rc = agent_opt_value(argc, argv, &i, NULL, "--mount", &mount);
		if (rc < 0)
			return AGENT_EXIT_USAGE;
		if (rc == 0)
			return agent_usage("unknown option '%s' (see 'scopehold --help')", a);
	}
	if (i >= argc)
		return agent_usage("missing command (see 'scopehold --help')");
	if (!mount[0])
		return agent_usage("--mount needs a directory");
	/* sodium_malloc needs the library ready. */
	if (sodium_init() < 0)
		return agent_fail("cannot initialise libsodium");

	if (strcmp(argv[i], "run") == 0)
		rc = agent_run(mount, argc - i, argv + i);
	else if (strcmp(argv[i], "inject") == 0)
		rc = agent_inject(mount, argc - i, argv + i);
	else if (strcmp(argv[i], "ls") == 0)
		rc = agent_ls(mount, argc - i, argv + i);
	else if (strcmp(argv[i], "help") == 0) {
		fputs(agent_help_text, stdout);
		rc = AGENT_EXIT_OK;
	} else
		return agent_usage("unknown command '%s' (see 'scopehold --help')", argv[i]);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* A full disk or closed pipe must not look like success. */
		if (rc == AGENT_EXIT_OK)
			rc = agent_fail("cannot write the output");
	}
	return rc;
}
