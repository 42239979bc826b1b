/*
 * cmd.h - the pieces shared by the files of `shadm`, the operator CLI:
 * the per-run context, the command table, argument parsing, argument
 * checks, opening the store and the output helpers (aligned tables and
 * one-JSON-object-per-line output).
 *
 * Exit statuses are the program's contract: 0 success, 1 failure or deny,
 * 2 usage error. Command functions return one of them directly; the
 * helpers that print an error return the status the caller should exit
 * with, so a command can write `return cmd_fail(...)`. Those helpers print
 * and exit-code in one place: they belong to this program only, never to
 * the store or policy libraries.
 */
#ifndef SCOPEHOLD_CMD_H
#define SCOPEHOLD_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "policy/policy.h"
#include "store/store.h"

#define CMD_VERSION "0.1.0"

#define CMD_EXIT_OK 0
#define CMD_EXIT_FAIL 1
#define CMD_EXIT_USAGE 2
/* cmd_parse() printed a command's help: the command exits 0 without acting. */
#define CMD_HELP_SHOWN (-1)

#if defined(__GNUC__)
#define CMD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CMD_PRINTF(a, b)
#endif

/* Everything one run of shadm knows; lives on main()'s stack. */
struct cmd_ctx {
	const char *config_path;   /* -c, or NULL for $SCOPEHOLD_CONFIG / the default */
	const char *workspace;     /* -w, or NULL for the config's workspace */
	bool json;                 /* --json */
	bool cfg_loaded;
	struct store_config cfg;
	struct store *st;          /* open store, or NULL */
	struct cmd_table *table;   /* the table a listing fills (human output) */
	bool value_args;           /* parsing `secret set`: never echo a stray argument */
};

typedef int (*cmd_fn)(struct cmd_ctx *c, int argc, char **argv);

/* One top-level command: argv[0] is its name when fn runs. */
struct cmd_entry {
	const char *name;
	cmd_fn fn;
	const char *usage;         /* synopsis lines and description, for help */
};
const struct cmd_entry *cmd_find(const char *name);
void cmd_print_usage(FILE *out, const struct cmd_entry *e);

/* Commands (one function per command group). */
int cmd_init(struct cmd_ctx *c, int argc, char **argv);
int cmd_workspace(struct cmd_ctx *c, int argc, char **argv);
int cmd_project(struct cmd_ctx *c, int argc, char **argv);
int cmd_provider(struct cmd_ctx *c, int argc, char **argv);
int cmd_secret(struct cmd_ctx *c, int argc, char **argv);
int cmd_agent(struct cmd_ctx *c, int argc, char **argv);
int cmd_assign(struct cmd_ctx *c, int argc, char **argv);   /* assign, unassign */
int cmd_grant(struct cmd_ctx *c, int argc, char **argv);    /* grant, revoke, grants */
int cmd_check(struct cmd_ctx *c, int argc, char **argv);
int cmd_who_can(struct cmd_ctx *c, int argc, char **argv);   /* cmd_who.c */
int cmd_audit(struct cmd_ctx *c, int argc, char **argv);
int cmd_key(struct cmd_ctx *c, int argc, char **argv);
int cmd_import(struct cmd_ctx *c, int argc, char **argv);
/* cmd_policy.c */
int cmd_export(struct cmd_ctx *c, int argc, char **argv);
int cmd_apply(struct cmd_ctx *c, int argc, char **argv);
/* cmd_controls.c */
int cmd_requests(struct cmd_ctx *c, int argc, char **argv);
int cmd_decide(struct cmd_ctx *c, int argc, char **argv);   /* approve, reject */
/* --while-pid PID (grant, approve): pid and start time into g. 0, or 1/2 after printing. */
int cmd_task(const char *pid_s, struct store_grant_opts *g);
/* "100/1m" (or "off") from a count and a window in seconds, into buf. */
const char *cmd_rate_format(int64_t max, int64_t window, char *buf, size_t len);

/* ---- arguments ----------------------------------------------------------- */

/* An option of one command: a flag (flag != NULL) or one taking a value. */
struct cmd_opt {
	const char *name;          /* "--ttl" */
	const char **value;        /* where the value goes (last one wins) */
	bool *flag;                /* set to true when present */
};

/*
 * Split argv[1..] of the command `what` ("grant", "secret set") into
 * options and positionals; options may come anywhere, as --opt=value or
 * --opt value, and `--` ends them. posnames is NULL-terminated and names
 * every positional (for "missing argument NAME"); the first `required`
 * are required, pos[] receives them (NULL when absent). --json and
 * -h/--help are accepted by every command. Returns 0 to go on, 2 after a
 * usage error, CMD_HELP_SHOWN after printing help.
 */
int cmd_parse(struct cmd_ctx *c, const char *what, int argc, char **argv,
	      const struct cmd_opt *opts, const char *const *posnames,
	      int required, const char **pos);

/* Return from the calling command unless cmd_parse() says go on. */
#define CMD_PARSE(...) do { \
	int cmd_rc_ = cmd_parse(__VA_ARGS__); \
	if (cmd_rc_) \
		return cmd_rc_ == CMD_HELP_SHOWN ? CMD_EXIT_OK : cmd_rc_; \
} while (0)

/* A subcommand of a group: fn gets argv starting at the subcommand. */
struct cmd_sub {
	const char *name;
	cmd_fn fn;
};
/* Run argv[1] of group argv[0] from subs (NULL-terminated by name). */
int cmd_dispatch(struct cmd_ctx *c, int argc, char **argv, const struct cmd_sub *subs);

/*
 * A number given to option `opt`: decimal digits only, <= max, and > 0
 * when `positive`. 0, or 2 after printing "--opt needs a number".
 */
int cmd_number(const char *opt, const char *s, uint64_t max, bool positive, uint64_t *out);

/* ---- argument checks (a bad one is a failure, exit 1) --------------------- */

int cmd_check_name(const char *name, enum policy_name_kind kind);
/* PROVIDER/NAME (or PROVIDER when allow_provider_only); buffers POLICY_NAME_MAX + 1. */
int cmd_check_ref(const char *ref, bool allow_provider_only, char *provider, char *name);
int cmd_check_duration(const char *s, int64_t *seconds);
int cmd_check_when(const char *s, int64_t now, int64_t *when);

/* ---- errors --------------------------------------------------------------- */

/* Print "shadm: ..." on stderr; return 1 (cmd_fail) or 2 (cmd_usage). */
int cmd_fail(const char *fmt, ...) CMD_PRINTF(1, 2);
int cmd_usage(const char *fmt, ...) CMD_PRINTF(1, 2);
/* A store call failed with rc: print store_error() (or strerror); return 1. */
int cmd_store_fail(int rc);
/* strerror(err) starting with a lower-case letter, for our message style. */
const char *cmd_strerror(int err);
/* Out of memory in the program itself: print and exit 1. */
void cmd_oom(void) __attribute__((noreturn));

/* ---- the store -------------------------------------------------------------- */

/* Load the configuration once (and apply -w). 0 or 1 after printing. */
int cmd_config(struct cmd_ctx *c);
/* Load the configuration and open the store as the operator. 0 or 1. */
int cmd_open(struct cmd_ctx *c);
void cmd_close(struct cmd_ctx *c);
/* Who acts, for audit rows: $SUDO_USER, else the login name, else "uid:N". */
const char *cmd_actor(void);

/*
 * Before `WHAT NAME` ("agent rm", "bot") removes an object: when it would
 * drop live grants or assignments (store_rm_drops; attachments going
 * with them are named too, alone they need no confirmation), ask on
 * a terminal ("... Drop them? [y/N]") or, when standard input is not a
 * terminal, refuse unless `yes` (--yes) with one line naming what would
 * go. Opens the store. 0 to go on, or 1 after printing (nothing changed).
 */
int cmd_confirm_drops(struct cmd_ctx *c, const char *what, enum store_object kind,
		      const char *name, bool yes);

/* ---- output ------------------------------------------------------------------ */

/*
 * A string shown to a person that this program did not write itself (an
 * executable path, a name, a note, a path or value quoted in a message):
 * control characters, DEL, C1 controls and invalid UTF-8 as visible
 * escapes (\n, \x1b), a backslash as \\ (policy_escape()). Returns s
 * itself when nothing needs escaping, else a buffer that stays valid for
 * the next 7 calls, so one printf may escape several arguments. NULL
 * stays NULL. Tables, cmd_fail/cmd_usage and cmd_done escape their text
 * already; use this for every other human print of such a string. JSON
 * output is escaped by jansson and must get the original bytes.
 */
const char *cmd_esc(const char *s);

struct cmd_table;
/* A table with a header line; columns are aligned when printed. */
struct cmd_table *cmd_table_new(int ncols, ...);
/* Add one row of exactly ncols strings (copied; NULL prints as "-"). */
void cmd_table_add(struct cmd_table *t, ...);
/* The same with the header and the row as arrays of ncols strings (columns chosen at run time). */
struct cmd_table *cmd_table_new_array(int ncols, const char *const *head);
void cmd_table_add_array(struct cmd_table *t, const char *const *cells);
/* Print to stdout and free. */
void cmd_table_print(struct cmd_table *t);
void cmd_table_free(struct cmd_table *t);   /* NULL is a no-op */
/*
 * End a listing whose store call returned rc: print c->table (unless
 * --json) and return 0, or after a failure drop the table and return 1.
 */
int cmd_list_end(struct cmd_ctx *c, int rc);

/* Print one JSON value compactly on its own line, then drop the reference. */
void cmd_json_print(json_t *obj);
/*
 * Report a finished action: the JSON object with --json, else the
 * formatted line. Consumes obj; returns 0.
 */
int cmd_done(struct cmd_ctx *c, json_t *obj, const char *fmt, ...) CMD_PRINTF(3, 4);

/* Format a time for humans; 0 prints as `zero` ("never", "-"). */
void cmd_time(int64_t t, const char *zero, char *buf, size_t len);
/* The time for JSON: an ISO string, or null for 0. New reference. */
json_t *cmd_json_time(int64_t t);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void cmd_hex(const uint8_t *bytes, size_t n, char *out);
/* Decimal of v into buf. */
const char *cmd_i64(int64_t v, char *buf, size_t len);

#endif
