/* SPDX-License-Identifier: MIT */
/*
 * fuzz_replay.c — standalone main for the libFuzzer targets, linked when they
 * are built without -fsanitize=fuzzer (every ordinary build): feeds each file
 * named on the command line, or each file in a named directory, to
 * LLVMFuzzerTestOneInput once. ctest runs it over csrc/tests/corpus/<target>/
 * so the seed corpus and every past crash are replayed on every test run
 * (under ASan/UBSan in the sanitizer build).
 *
 *   fuzz_frame_replay csrc/tests/corpus/frame [more files or directories]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf)
			return -1;
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
	}
	fclose(f);
	/* exact-size copy so ASan sees reads past the input */
	uint8_t *in = malloc(n ? n : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	unsigned runs = 0, fails = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			fails += run_file(argv[i]) < 0;
			runs++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		if (!d) {
			perror(argv[i]);
			return 1;
		}
		char **names = NULL;
		size_t nn = 0;
		struct dirent *e;
		while ((e = readdir(d))) {
			if (e->d_name[0] == '.')
				continue;
			char **nv = realloc(names, (nn + 1) * sizeof(*names));
			if (!nv)
				return 1;
			names = nv;
			size_t l = strlen(argv[i]) + strlen(e->d_name) + 2;
			names[nn] = malloc(l);
			if (!names[nn])
				return 1;
			snprintf(names[nn], l, "%s/%s", argv[i], e->d_name);
			nn++;
		}
		closedir(d);
		qsort(names, nn, sizeof(*names), cmp);
		for (size_t k = 0; k < nn; k++) {
			fails += run_file(names[k]) < 0;
			runs++;
			free(names[k]);
		}
		free(names);
	}
	printf("replayed %u inputs, %u unreadable\n", runs, fails);
	if (runs == 0) {
		fprintf(stderr, "no inputs (empty corpus?)\n");
		return 1;
	}
	return fails ? 1 : 0;
}
