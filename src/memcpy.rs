//! The musl build's memcpy lives in `csrc/memcpy.c` (see why there). This module only checks
//! it, under its own name, on every build.

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    extern "C" {
        fn tinyserve_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    }

    #[test]
    fn copies_every_length_and_alignment_exactly() {
        let src: Vec<u8> = (0..4200u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in (0..=300).chain([511, 512, 513, 1000, 4096]) {
            for src_off in 0..9 {
                for dst_off in 0..9 {
                    let mut dst = vec![0xAAu8; len + 32];
                    let ret = unsafe {
                        tinyserve_memcpy(
                            dst.as_mut_ptr().add(dst_off),
                            src.as_ptr().add(src_off),
                            len,
                        )
                    };
                    assert_eq!(ret, unsafe { dst.as_mut_ptr().add(dst_off) });
                    assert_eq!(
                        &dst[dst_off..dst_off + len],
                        &src[src_off..src_off + len],
                        "len {len}"
                    );
                    assert!(
                        dst[..dst_off].iter().all(|&b| b == 0xAA),
                        "wrote before dst (len {len})"
                    );
                    assert!(
                        dst[dst_off + len..].iter().all(|&b| b == 0xAA),
                        "wrote past the end (len {len})"
                    );
                }
            }
        }
    }

    #[test]
    fn overlapping_copies_to_a_lower_address_work_like_memmove() {
        // musl's memmove relies on this (as __memcpy_fwd) when dst < src.
        for len in (0..=300).chain([1000, 4096]) {
            for shift in [1usize, 3, 8, 15, 16, 31, 64, 65, 100, 250] {
                let mut buf: Vec<u8> = (0..len + shift).map(|i| (i * 13 + 1) as u8).collect();
                let expected: Vec<u8> = buf[shift..shift + len].to_vec();
                unsafe { tinyserve_memcpy(buf.as_mut_ptr(), buf.as_ptr().add(shift), len) };
                assert_eq!(&buf[..len], &expected[..], "len {len} shift {shift}");
            }
        }
    }
}
