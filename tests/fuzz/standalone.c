/*
 * standalone.c - a main() that replays files through a fuzz target without
 * libFuzzer, so the corpus and the regression inputs run in `make check`
 * (tests/fuzz-regress.sh) with any compiler and only ASan/UBSan.
 *
 * Each file named on the command line is read whole and handed to
 * LLVMFuzzerTestOneInput once; "RUN FILE" and "DONE FILE" lines on stderr let
 * the script tell which input a sanitizer report belongs to.
 */
#include <errno.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

/* Targets that need setup define LLVMFuzzerInitialize; the others do not. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "standalone: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		size_t n;

		if (len == cap) {
			uint8_t *nb = realloc(buf, cap ? cap * 2 : 4096);
			if (!nb) {
				fclose(f);
				free(buf);
				return -1;
			}
			buf = nb;
			cap = cap ? cap * 2 : 4096;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	fprintf(stderr, "RUN %s\n", path);
	/* An exact-size copy, so a read past the input is an ASan report. */
	{
		uint8_t *in = malloc(len ? len : 1);
		if (!in) {
			free(buf);
			return -1;
		}
		memcpy(in, buf, len);
		LLVMFuzzerTestOneInput(in, len);
		free(in);
	}
	free(buf);
	fprintf(stderr, "DONE %s\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	int i, bad = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (run_file(argv[i]) < 0)
			bad = 1;
	}
	return bad;
}
