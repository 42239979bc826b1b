/*
 * agent.h - `scopehold`, the agent-side CLI: it runs as the agent itself,
 * with no configuration and no key, and reads secrets only by opening
 * files below MOUNT/self/, so every value it hands on was decided and
 * audited by scopeholdfs like any other read. It links the pure policy
 * rules (names) and the dotenv reader, never the store.
 *
 * main.c parses the command line and dispatches; ref.c checks references
 * and reads values through the mount; run.c, inject.c and ls.c are the
 * three commands. Exit statuses: 0 success, 1 failure, 2 usage error
 * (run: 126/127 when COMMAND cannot be executed, as env(1)).
 *
 * Error convention: helpers return 0 or -errno with results through
 * out-parameters; the functions that print (agent_fail, agent_usage and
 * the commands) return the exit status instead.
 */
#ifndef SCOPEHOLD_AGENT_H
#define SCOPEHOLD_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define AGENT_PROGRAM "scopehold"
#define AGENT_VERSION "0.1.0"
#define AGENT_DEFAULT_MOUNT "/run/scopehold"
#define AGENT_URI_PREFIX "scopehold://"
#define AGENT_SELF "self"
/* Largest value read through the mount (the store's own limit is lower by default). */
#define AGENT_VALUE_MAX (16 * 1024 * 1024)

#define AGENT_EXIT_OK 0
#define AGENT_EXIT_FAIL 1
#define AGENT_EXIT_USAGE 2

#if defined(__GNUC__)
#define AGENT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define AGENT_WUR __attribute__((warn_unused_result))
#else
#define AGENT_PRINTF(a, b)
#define AGENT_WUR
#endif

/* ---- messages (main.c) ---------------------------------------------------- */

/* Print "scopehold: ..." on stderr; return 1 (agent_fail) or 2 (agent_usage). */
int agent_fail(const char *fmt, ...) AGENT_PRINTF(1, 2);
int agent_usage(const char *fmt, ...) AGENT_PRINTF(1, 2);
/*
 * s escaped for a person's terminal (policy_escape(): controls, DEL, C1
 * and invalid UTF-8 as \n, \x1b, a backslash as \\), in a buffer valid
 * for the next 3 calls. The messages above escape their whole line.
 */
const char *agent_esc(const char *s);

/*
 * Options of one command: `--name VALUE`, `--name=VALUE`, or for a short
 * name `-x VALUE` / `-xVALUE`. Returns 1 when argv[*i] was this option
 * (with *value set and *i moved past it), 0 when it was not, or -1 after
 * printing a usage error (a missing value).
 */
int agent_opt_value(int argc, char **argv, int *i, const char *shortname,
		    const char *longname, const char **value);

/* ---- references and values (ref.c) ------------------------------------------ */

/* A checked reference PROVIDER/NAME. */
struct agent_ref {
	char provider[POLICY_NAME_MAX + 1];
	char name[POLICY_NAME_MAX + 1];
};

/*
 * Check `s`, either PROVIDER/NAME or scopehold://PROVIDER/NAME: exactly two
 * components, none empty, none "." or "..", no leading '/', each a valid
 * name. On failure *why is a lowercase reason and -EINVAL is returned;
 * nothing is looked up.
 */
int agent_ref_parse(const char *s, struct agent_ref *ref, const char **why) AGENT_WUR;
/* Does s start with "scopehold://" (a reference in a dotenv value or template)? */
bool agent_is_uri(const uint8_t *s, size_t len);

/* A value read through the mount, in sodium_malloc memory. */
struct agent_value {
	uint8_t *bytes;
	size_t len;
};

/*
 * Open MOUNT/self/PROVIDER/NAME and read it to the end into sodium_malloc
 * memory. On failure returns -errno and *why is the reason to print after
 * "scopehold: PROVIDER/NAME: " (strerror, or a clearer sentence when no
 * agent matches the calling process).
 */
int agent_value_read(const char *mount, const struct agent_ref *ref,
		     struct agent_value *out, const char **why) AGENT_WUR;
void agent_value_wipe(struct agent_value *v);   /* wipe and free; a zeroed one is a no-op */

/*
 * A set of distinct references read once each: a reference used by two
 * variables or placeholders costs one audited read and one use of a grant.
 */
struct agent_refset {
	struct agent_ref *refs;
	struct agent_value *values;
	size_t count, cap;
};
/* Add ref unless present; *index is its slot. 0 or -ENOMEM. */
int agent_refset_add(struct agent_refset *set, const struct agent_ref *ref, size_t *index) AGENT_WUR;
/*
 * Read every reference, printing one line per failure; a value holding a
 * NUL byte is a failure when nul_ok is false. Returns 0 when every read
 * worked, else 1 (nothing may be handed on).
 */
int agent_refset_read(struct agent_refset *set, const char *mount, bool nul_ok);
void agent_refset_release(struct agent_refset *set);   /* wipes every value */

/* ---- the commands -------------------------------------------------------------- */

int agent_run(const char *mount, int argc, char **argv);
int agent_inject(const char *mount, int argc, char **argv);
int agent_ls(const char *mount, int argc, char **argv);

#endif
