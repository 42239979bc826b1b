/*
 * shadm.c - the entry point of `shadm`, the ScopeHold operator CLI: the
 * global options (-c, -w, --json, --help, --version), the command table
 * with each command's usage text, and dispatch. Help and usage errors work
 * without a configuration file or store, so an operator can always ask.
 * The commands themselves live in cmd_*.c, one file per area.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "tools/cmd.h"

static const struct cmd_entry cmd_table[] = {
	{ "init", cmd_init,
	  "  shadm init\n"
	  "      Create the root key file (32 random bytes, mode 0600) and the store\n"
	  "      with the workspace 'default'. Refuses to overwrite either.\n" },
	{ "workspace", cmd_workspace,
	  "  shadm workspace add NAME\n"
	  "  shadm workspace list\n"
	  "  shadm workspace rm NAME\n"
	  "      Workspaces are separate tenants. 'default' always exists; a workspace\n"
	  "      must be empty before it is removed.\n" },
	{ "project", cmd_project,
	  "  shadm project add NAME\n"
	  "  shadm project list\n"
	  "  shadm project show NAME\n"
	  "  shadm project rm NAME [--yes]\n"
	  "  shadm project attach PROJECT PROVIDER[/NAME]\n"
	  "  shadm project detach PROJECT PROVIDER[/NAME]\n"
	  "      A project groups candidate secrets: a whole provider or single\n"
	  "      secrets are attached to it, agents are assigned to it.\n" },
	{ "provider", cmd_provider,
	  "  shadm provider add NAME\n"
	  "  shadm provider list\n"
	  "  shadm provider rm NAME [--yes]\n"
	  "      A provider is a namespace of secrets (openai, github, aws). It must\n"
	  "      hold no secrets before it is removed.\n" },
	{ "secret", cmd_secret,
	  "  shadm secret set PROVIDER/NAME [--expires DURATION|DATE|never] [--from-file PATH]\n"
	  "                  [--allow-empty] [--canary]\n"
	  "      Store a new version, read from standard input (or PATH) byte for\n"
	  "      byte; on a terminal, typed twice without echo. The first version\n"
	  "      creates the secret, later ones rotate it and keep its expiry policy\n"
	  "      unless --expires is given. An empty value needs --allow-empty.\n"
	  "      --canary marks it a honeytoken: every open through the mount alerts.\n"
	  "  shadm secret versions PROVIDER/NAME\n"
	  "      Every version: length, dates, expiry, current or destroyed.\n"
	  "  shadm secret rollback PROVIDER/NAME VERSION\n"
	  "      Make a new current version with the value of VERSION.\n"
	  "  shadm secret destroy PROVIDER/NAME VERSION\n"
	  "      Wipe an old version's ciphertext for good; its metadata stays.\n"
	  "  shadm secret canary PROVIDER/NAME on|off\n"
	  "      Mark or unmark a canary.\n"
	  "  shadm secret list [PROVIDER] [--expiring DURATION]\n"
	  "      Names, versions, lengths, expiry and the canary mark; never values.\n"
	  "      --expiring: only those whose current version expires within\n"
	  "      DURATION or has expired.\n"
	  "  shadm secret reveal PROVIDER/NAME [--version N]\n"
	  "      Write exactly the value to standard output (audited as reveal).\n"
	  "  shadm secret rm PROVIDER/NAME [--yes]\n"
	  "      Remove the secret with all its versions and grants.\n" },
	{ "import", cmd_import,
	  "  shadm import --env-file FILE --provider PROVIDER [--dry-run] [--expires DURATION|DATE]\n"
	  "      Store each KEY=VALUE of a dotenv file as PROVIDER/KEY (a new secret or\n"
	  "      a new version), all or nothing, and print the file back with each\n"
	  "      value replaced by scopehold://PROVIDER/KEY, for 'scopehold run\n"
	  "      --env-file'. --dry-run checks everything and stores nothing.\n" },
	{ "agent", cmd_agent,
	  "  shadm agent add NAME --uid UID [--gid GID] [--exe PATH] [--exe-sha256 HEX]\n"
	  "                 [--cgroup PATH] [--human] [--rate N/DURATION]\n"
	  "      An agent is a runtime identity bound to process facts: the uid, and\n"
	  "      optionally the gid, the executable (stored resolved, as the kernel\n"
	  "      reports it), its sha256 and the cgroup v2 path (a trailing / binds\n"
	  "      the subtree). Bind interpreted agents by --cgroup or a uid of their own.\n"
	  "  shadm agent set NAME [--uid UID] [--gid GID|--no-gid] [--exe PATH|--no-exe]\n"
	  "                 [--exe-sha256 HEX|--no-exe-sha256] [--cgroup PATH|--no-cgroup]\n"
	  "                 [--human|--agent] [--rate N/DURATION|off]\n"
	  "      Change bindings in place (grants and assignments stay); --rate: at\n"
	  "      most N resolves per DURATION (sliding window) through the mount.\n"
	  "  shadm agent list\n"
	  "  shadm agent show NAME\n"
	  "  shadm agent rm NAME [--yes]\n"
	  "  shadm agent disable NAME\n"
	  "  shadm agent enable NAME\n" },
	{ "assign", cmd_assign,
	  "  shadm assign AGENT PROJECT\n"
	  "      Let AGENT see the candidates of PROJECT.\n" },
	{ "unassign", cmd_assign,
	  "  shadm unassign AGENT PROJECT\n" },
	{ "grant", cmd_grant,
	  "  shadm grant AGENT PROVIDER/NAME [--ttl DURATION] [--uses N] [--while-pid PID]\n"
	  "      Let AGENT resolve the secret, for DURATION and/or N reads, and/or\n"
	  "      while process PID lives. Granting again replaces the grant.\n" },
	{ "revoke", cmd_grant,
	  "  shadm revoke AGENT PROVIDER/NAME\n" },
	{ "grants", cmd_grant,
	  "  shadm grants [AGENT] [--secret PROVIDER/NAME] [--expiring DURATION]\n"
	  "      List grants with their time limit, uses, state and whether each is\n"
	  "      effective: what an open by the agent would get now ('yes', or 'no:'\n"
	  "      and the first rule that fails). --expiring: live grants whose time\n"
	  "      limit ends within DURATION.\n" },
	{ "who-can", cmd_who_can,
	  "  shadm who-can PROVIDER/NAME\n"
	  "      Each agent that sees the secret in the mount, whether it can resolve\n"
	  "      it now, its grant's limit and uses left; agents holding a grant they\n"
	  "      cannot use are listed too. Decided by the mount's rules, leaving out\n"
	  "      the caller's process and the agent's --rate.\n" },
	{ "check", cmd_check,
	  "  shadm check AGENT PROVIDER/NAME [--uid UID] [--gid GID] [--exe PATH] [--cgroup PATH]\n"
	  "      Dry run of the mount's decision: print 'allow' or 'deny: REASON (TEXT)'.\n"
	  "      Exit 0 on allow, 1 on deny. Consumes no use and records no event.\n" },
	{ "audit", cmd_audit,
	  "  shadm audit [--agent NAME] [--secret PROVIDER/NAME] [--event TYPE]\n"
	  "              [--since WHEN] [--until WHEN] [--after SEQ] [--limit N]\n"
	  "              [--host NAME] [--all-workspaces] [--follow]\n"
	  "      Show audit events, oldest first (the newest N with --limit). WHEN is\n"
	  "      a duration back from now (2h) or a date (2026-12-01, 2026-12-01T10:00Z,\n"
	  "      2026-12-01T10:00+01:00). --follow then prints new events as they are\n"
	  "      recorded, until interrupted (exit 0).\n"
	  "  shadm audit verify [--head HEX]\n"
	  "      Check the hash chain; with --head, also that it ends at HEX.\n"
	  "  shadm audit head\n"
	  "      Print the chain head hash, to keep elsewhere for verify --head.\n" },
	{ "key", cmd_key,
	  "  shadm key rotate [--rewrap]\n"
	  "      Start a new data key for new versions; --rewrap re-encrypts all.\n"
	  "  shadm key rekey --new-key-file PATH\n"
	  "      Replace the root key with PATH (created if missing) and move it\n"
	  "      over the configured key file.\n" },
	/* policy as code (cmd_policy.c) */
	{ "export", cmd_export,
	  "  shadm export\n"
	  "      Print the workspace's access model as a JSON file: providers, secret\n"
	  "      names with expiry (never values), projects and attachments, agents\n"
	  "      with bindings, assignments and grants. See scopehold-policy(5).\n" },
	{ "apply", cmd_apply,
	  "  shadm apply FILE [--dry-run]\n"
	  "      Make the workspace match FILE (an export, edited; - reads standard\n"
	  "      input): print each change (+ add, ~ change, - remove) and make them\n"
	  "      all in one transaction, audited one by one. Never removes providers\n"
	  "      or secrets. --dry-run makes every check and changes nothing.\n" },
	/* access controls (cmd_controls.c) */
	{ "requests", cmd_requests,
	  "  shadm requests [--all]\n"
	  "      Access requests the mount recorded: an agent opened a candidate it\n"
	  "      holds no live grant for. --all adds decided and expired ones.\n" },
	{ "approve", cmd_decide,
	  "  shadm approve AGENT PROVIDER/NAME [--ttl DURATION] [--uses N] [--while-pid PID]\n"
	  "      Grant a pending request (with grant's limits) and close it.\n" },
	{ "reject", cmd_decide,
	  "  shadm reject AGENT PROVIDER/NAME\n"
	  "      Close a pending request without granting.\n" },
	{ NULL, NULL, NULL },
};

const struct cmd_entry *cmd_find(const char *name)
{
	const struct cmd_entry *e;

	for (e = cmd_table; e->name; e++) {
		if (strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

void cmd_print_usage(FILE *out, const struct cmd_entry *e)
{
	fprintf(out, "usage:\n%s", e->usage);
	fputs("\nGlobal options: [-c CONFIG] [-w WORKSPACE] [--json]; see 'shadm --help'.\n", out);
}

static void shadm_help(void)
{
	const struct cmd_entry *e;

	fputs("usage: shadm [-c CONFIG] [-w WORKSPACE] [--json] COMMAND [ARGS...]\n"
	      "       shadm help [COMMAND] | --help | --version\n"
	      "\n"
	      "shadm manages a ScopeHold store: encrypted secrets, the agents that may\n"
	      "read them through the scopeholdfs mount, and the audit trail.\n"
	      "\n"
	      "Options:\n"
	      "  -c, --config CONFIG        configuration file (default: $SCOPEHOLD_CONFIG,\n"
	      "                             else " STORE_DEFAULT_CONFIG ")\n"
	      "  -w, --workspace WORKSPACE  workspace to act in (default: the config's\n"
	      "                             [mount] workspace, else 'default')\n"
	      "      --json                 JSON output, one object per line\n"
	      "  -h, --help                 this text\n"
	      "      --version              print the version\n"
	      "\n"
	      "Commands:\n", stdout);
	for (e = cmd_table; e->name; e++)
		fputs(e->usage, stdout);
	fputs("\n"
	      "Names are 1-128 characters of A-Z a-z 0-9 . _ -, not starting with . or -;\n"
	      "the agent name 'self' is reserved. Durations: 30s, 15m, 2h, 7d. Dates:\n"
	      "2027-01-31 or 2027-01-31T12:00:00Z (UTC). Secret values never go on the\n"
	      "command line. An rm that would drop live grants or assignments asks on a\n"
	      "terminal, and needs --yes otherwise.\n"
	      "\n"
	      "Exit status: 0 success, 1 failure or deny, 2 usage error.\n"
	      "See shadm(1) for more.\n", stdout);
}

/* -c CONFIG, -cCONFIG, --config CONFIG, --config=CONFIG. Returns 1 if matched. */
static int shadm_value_opt(int argc, char **argv, int *i, const char *s, const char *l,
			   const char **value, int *rc)
{
	const char *a = argv[*i];
	size_t ll = strlen(l);

	if (strcmp(a, s) == 0 || strcmp(a, l) == 0) {
		if (*i + 1 >= argc) {
			*rc = cmd_usage("%s needs a value", a);
			return 1;
		}
		*value = argv[++*i];
		return 1;
	}
	if (strncmp(a, l, ll) == 0 && a[ll] == '=') {
		*value = a + ll + 1;
		return 1;
	}
	if (strncmp(a, s, 2) == 0 && a[2] != '\0') {
		*value = a + 2;
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cmd_ctx c;
	const struct cmd_entry *e;
	int i, rc = 0;

	memset(&c, 0, sizeof(c));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			shadm_help();
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "--version") == 0) {
			printf("shadm %s\n", CMD_VERSION);
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "--json") == 0) {
			c.json = true;
			continue;
		}
		if (shadm_value_opt(argc, argv, &i, "-c", "--config", &c.config_path, &rc) ||
		    shadm_value_opt(argc, argv, &i, "-w", "--workspace", &c.workspace, &rc)) {
			if (rc)
				return rc;
			continue;
		}
		return cmd_usage("unknown option '%s' (see 'shadm --help')", a);
	}
	if (i >= argc)
		return cmd_usage("missing command (see 'shadm --help')");

	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 >= argc) {
			shadm_help();
			return CMD_EXIT_OK;
		}
		/* `help secret set` shows the secret group, like `secret set --help`. */
		e = cmd_find(argv[i + 1]);
		if (!e)
			return cmd_usage("unknown command '%s' (see 'shadm --help')", argv[i + 1]);
		cmd_print_usage(stdout, e);
		return CMD_EXIT_OK;
	}
	e = cmd_find(argv[i]);
	if (!e)
		return cmd_usage("unknown command '%s' (see 'shadm --help')", argv[i]);

	if (c.workspace && cmd_check_name(c.workspace, POLICY_NAME_WORKSPACE))
		return CMD_EXIT_FAIL;
	/* sodium_malloc and the hashing in `check` need the library ready. */
	if (sodium_init() < 0)
		return cmd_fail("cannot initialise libsodium");

	rc = e->fn(&c, argc - i, argv + i);
	cmd_close(&c);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* A full disk or closed pipe must not look like success. */
		if (rc == CMD_EXIT_OK)
			rc = cmd_fail("cannot write the output");
	}
	return rc;
}
