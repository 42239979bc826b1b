/*
 * t.h - the smallest test harness: each check prints "ok - WHAT" or
 * "not ok - WHAT (file:line)", and t_done() returns the exit status.
 * tests/run.sh counts the lines of every suite into one summary.
 */
#ifndef SCOPEHOLD_T_H
#define SCOPEHOLD_T_H
#include <stdio.h>
#include <string.h>

static int t_failed;

#define T_OK(cond, ...) do { \
	if (cond) { printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
	else { t_failed++; printf("not ok - "); printf(__VA_ARGS__); \
	       printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond); } \
	fflush(stdout); \
} while (0)

#define T_EQ_INT(a, b, ...) do { \
	long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
	if (t_a_ == t_b_) { printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
	else { t_failed++; printf("not ok - "); printf(__VA_ARGS__); \
	       printf(" (%s:%d: %s = %lld, want %lld)\n", __FILE__, __LINE__, #a, t_a_, t_b_); } \
	fflush(stdout); \
} while (0)

#define T_EQ_STR(a, b, ...) do { \
	const char *t_a_ = (a), *t_b_ = (b); \
	if (t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0) { printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
	else { t_failed++; printf("not ok - "); printf(__VA_ARGS__); \
	       printf(" (%s:%d: got \"%s\", want \"%s\")\n", __FILE__, __LINE__, \
		      t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); } \
	fflush(stdout); \
} while (0)

static inline int t_done(void) { return t_failed ? 1 : 0; }
#endif
