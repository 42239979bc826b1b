/*
 * exeswap.c - attack program for tests/exebind.sh: a process that makes
 * /proc/self/exe name a program it does not run (issue 14), so a mount
 * that judges the caller by that link and by the hash of its file takes
 * it for the bound program. All the work is in libexeswap.so
 * (exeswap_lib.c): this executable's own mappings must go before the
 * kernel lets the link change, so no code may run from them.
 *
 *   exeswap [--map] BOUND SECRET   prints SECRET's bytes, or the errno name
 *                                  of the step that failed ("prctl:EPERM")
 */
int exeswap_run(int argc, char **argv);

int main(int argc, char **argv)
{
	return exeswap_run(argc, argv);
}
