/*
 * traceme.c - attack program for tests/exebind.sh: runs a program under
 * ptrace (PTRACE_TRACEME, the way a debugger starts one), so the tracer
 * could read from the traced process's memory whatever it reads. The
 * tracer only lets the child run to its end; the child's output is the
 * test's evidence.
 *
 *   traceme PROGRAM ARG...    exit status of PROGRAM
 */
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: traceme PROGRAM ARG...\n");
		return 2;
	}
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
			_exit(126);
		execv(argv[1], argv + 1);
		_exit(127);
	}
	for (;;) {
		int st;
		if (waitpid(pid, &st, 0) < 0)
			return 1;
		if (WIFEXITED(st))
			return WEXITSTATUS(st);
		if (WIFSIGNALED(st))
			return 128 + WTERMSIG(st);
		/* the stop after exec, and any signal: pass signals on, keep tracing */
		int sig = WSTOPSIG(st) == SIGTRAP ? 0 : WSTOPSIG(st);
		ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
	}
}
