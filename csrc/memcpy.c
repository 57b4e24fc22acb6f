/*
 * memcpy for the static musl build.
 *
 * musl's x86_64 memcpy starts every copy with `rep movsq`, whose start-up cost dominates
 * the short copies an HTTP server makes all the time (hyper writes each response header as
 * a few small copies). Profiled under load on a 150-byte page, memcpy was the largest
 * user-space item (8.7% of all samples, two thirds of it in hyper's write_head).
 *
 * This version copies up to 64 bytes with a few overlapping unaligned loads and stores
 * (all loads before any store), and leaves longer copies to `rep movsb`, which processors
 * with ERMS (every x86_64 of the last decade) run at full speed. It only uses fixed-size
 * __builtin_memcpy, which the compiler turns into plain moves, never into a call to memcpy.
 * build.rs links it only into the musl build; tests exercise it on every build under the
 * name tinyserve_memcpy, overlapping forward copies included.
 */
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t a, b; } block16;

void *tinyserve_memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (n <= 16) {
		if (n >= 8) {
			uint64_t x, y;
			__builtin_memcpy(&x, s, 8);
			__builtin_memcpy(&y, s + n - 8, 8);
			__builtin_memcpy(d, &x, 8);
			__builtin_memcpy(d + n - 8, &y, 8);
		} else if (n >= 4) {
			uint32_t x, y;
			__builtin_memcpy(&x, s, 4);
			__builtin_memcpy(&y, s + n - 4, 4);
			__builtin_memcpy(d, &x, 4);
			__builtin_memcpy(d + n - 4, &y, 4);
		} else if (n > 0) {
			unsigned char x = s[0], y = s[n - 1], z = s[n / 2];
			d[0] = x;
			d[n / 2] = z;
			d[n - 1] = y;
		}
		return dst;
	}
	if (n <= 32) {
		block16 x, y;
		__builtin_memcpy(&x, s, 16);
		__builtin_memcpy(&y, s + n - 16, 16);
		__builtin_memcpy(d, &x, 16);
		__builtin_memcpy(d + n - 16, &y, 16);
		return dst;
	}
	if (n <= 64) {
		block16 w, x, y, z;
		__builtin_memcpy(&w, s, 16);
		__builtin_memcpy(&x, s + 16, 16);
		__builtin_memcpy(&y, s + n - 32, 16);
		__builtin_memcpy(&z, s + n - 16, 16);
		__builtin_memcpy(d, &w, 16);
		__builtin_memcpy(d + 16, &x, 16);
		__builtin_memcpy(d + n - 32, &y, 16);
		__builtin_memcpy(d + n - 16, &z, 16);
		return dst;
	}
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return dst;
}

#ifdef TINYSERVE_REPLACE_MEMCPY
void *memcpy(void *restrict dst, const void *restrict src, size_t n)
	__attribute__((alias("tinyserve_memcpy")));
/*
 * musl's memmove calls __memcpy_fwd, defined in the same object as its memcpy, for
 * overlapping copies to a lower address; defining it here keeps that object out of the
 * link. That use overlaps, which is why no pointer above is `restrict`: every small case
 * loads everything before it stores, and `rep movsb` is defined as a forward byte copy.
 */
void *__memcpy_fwd(void *dst, const void *src, size_t n)
	__attribute__((alias("tinyserve_memcpy")));
#endif
