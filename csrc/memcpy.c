/*
 * memcpy for the static musl build.
 *
 * musl's x86_64 memcpy starts every copy with `rep movsq`, whose start-up cost dominates
 * the short copies an HTTP server makes all the time (hyper writes each response header as
 * a few small copies). Profiled under load on a 150-byte page, memcpy was the largest
 * user-space item (8.7% of all samples, two thirds of it in hyper's write_head).
 *
 * This version copies up to 64 bytes with a few overlapping unaligned loads and stores
 * (all loads before any store), up to 256 in 64-byte steps, and leaves longer copies to
 * `rep movsb`, which processors
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
	if (n <= 256) {
		/*
		 * Moves of Rust values (a response with its header map is a few hundred bytes)
		 * land here: `rep movsb` costs some 35 cycles to start on processors without
		 * fast short rep (FSRM), more than these copies themselves. The last 64 bytes are
		 * loaded first; the loop then goes forward, each 64-byte step loaded before it is
		 * stored, so a forward overlapping copy (dst below src) stays correct.
		 */
		block16 t0, t1, t2, t3;
		__builtin_memcpy(&t0, s + n - 64, 16);
		__builtin_memcpy(&t1, s + n - 48, 16);
		__builtin_memcpy(&t2, s + n - 32, 16);
		__builtin_memcpy(&t3, s + n - 16, 16);
		size_t i = 0;
		do {
			block16 a, b, c, e;
			__builtin_memcpy(&a, s + i, 16);
			__builtin_memcpy(&b, s + i + 16, 16);
			__builtin_memcpy(&c, s + i + 32, 16);
			__builtin_memcpy(&e, s + i + 48, 16);
			__builtin_memcpy(d + i, &a, 16);
			__builtin_memcpy(d + i + 16, &b, 16);
			__builtin_memcpy(d + i + 32, &c, 16);
			__builtin_memcpy(d + i + 48, &e, 16);
			i += 64;
		} while (i + 64 < n);
		__builtin_memcpy(d + n - 64, &t0, 16);
		__builtin_memcpy(d + n - 48, &t1, 16);
		__builtin_memcpy(d + n - 32, &t2, 16);
		__builtin_memcpy(d + n - 16, &t3, 16);
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
