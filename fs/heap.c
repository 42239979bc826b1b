/*
 * heap.c - wipe every heap block the daemon frees.
 *
 * Values live in sodium_malloc memory and the low-level read path
 * replies straight from it (ops.c), but any library copy of a reply, a
 * path or a fact into malloc()ed memory would otherwise linger in the
 * daemon's free heap after it is freed, readable by anyone who can read
 * the daemon's memory. Defence in depth: defining free() here interposes it for
 * the whole process, libfuse and SQLite included (the executable comes
 * first in symbol resolution): each block is cleared to its usable size,
 * then handed to glibc. The cost is a memset per free, small next to a
 * FUSE round trip. AddressSanitizer builds keep the sanitizer's own
 * free(), which poisons freed memory itself.
 */
#include <malloc.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEAP_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HEAP_ASAN 1
#endif

#ifndef HEAP_ASAN

/* glibc's allocator entry point behind free(3). */
extern void __libc_free(void *ptr);

void free(void *ptr)
{
	if (ptr) {
		explicit_bzero(ptr, malloc_usable_size(ptr));
		__libc_free(ptr);
	}
}

#endif
