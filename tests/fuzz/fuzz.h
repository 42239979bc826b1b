/*
 * fuzz.h - what every ScopeHold fuzz target shares: the libFuzzer entry
 * points and an invariant check that stops the run loudly.
 *
 * The targets are built two ways: with -fsanitize=fuzzer (tests/fuzz/run.sh,
 * `make fuzz`) and with tests/fuzz/standalone.c as main (tests/fuzz-regress.sh,
 * in `make check`), which replays the corpus and the regression inputs. A
 * broken invariant must abort in both, so it is an abort(), never an assert()
 * that NDEBUG could remove.
 */
#ifndef SCOPEHOLD_FUZZ_H
#define SCOPEHOLD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz invariant broken at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

#endif
