//! Precompressed sidecars (`x.br`, `x.gz`, `x.zst`) against `x`. A stale sidecar is the
//! worst kind of broken site: browsers that accept it get the old bytes while the author,
//! looking at `x`, sees the new ones.
//!
//! What each coding allows in a binary that must stay small:
//! - a gzip member ends with the CRC-32 and length of its content, a zstd frame carries its
//!   content's size and XXH64 checksum (the `zstd` tool writes both by default): both are
//!   compared with `x`, which tells a stale sidecar from a fresh one (a CRC-32 collision
//!   aside) without decoding it. Decoders measured 12 KB (miniz_oxide, gzip) and 110 KB
//!   (ruzstd); the image's size budget had room for neither with the rest of the check.
//!   A stream damaged inside but with an intact trailer is not detected;
//! - brotli has no checksum, and its decoder (brotli-decompressor, with the format's
//!   122 KB dictionary) measured 213 KB, more than the image's size budget leaves: brotli
//!   sidecars are only compared by date, by the caller.

use crate::files::negotiate::Encoding;

/// What a sidecar holds, compared with its source.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Its checksum and length are the source's.
    Same,
    /// Holds other bytes than the source: how they differ.
    Differs(String),
    /// Not a valid stream of its coding.
    Corrupt(String),
    /// Nothing in it to compare (brotli; a zstd frame without size or checksum).
    Unverified,
}

/// Compares `sidecar` (coded as `encoding`) with `source`, without decompressing it.
pub fn compare(encoding: Encoding, sidecar: &[u8], source: &[u8]) -> Verdict {
    match encoding {
        Encoding::Gzip => gzip(sidecar, source),
        Encoding::Zstd => zstd(sidecar, source),
        Encoding::Brotli => Verdict::Unverified,
        Encoding::Identity if sidecar == source => Verdict::Same,
        Encoding::Identity => Verdict::Differs("the bytes differ".to_string()),
    }
}

/// RFC 8878 frames: the header's content size and the trailing XXH64 checksum (its low 32
/// bits) of each frame, compared with the part of `source` that frame covers.
fn zstd(data: &[u8], source: &[u8]) -> Verdict {
    let corrupt = |why: &str| Verdict::Corrupt(why.to_string());
    let (mut at, mut covered, mut checked) = (0usize, 0usize, false);
    while at < data.len() {
        let Some(magic) = data.get(at..at + 4) else {
            return corrupt("truncated frame");
        };
        let magic = u32::from_le_bytes(magic.try_into().expect("4 bytes"));
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            // A skippable frame: its length, then that many bytes of no content.
            let Some(len) = data.get(at + 4..at + 8) else {
                return corrupt("truncated skippable frame");
            };
            at += 8 + u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            continue;
        }
        if magic != 0xFD2F_B528 {
            return corrupt("not a zstd frame (bad magic)");
        }
        let Some(&descriptor) = data.get(at + 4) else {
            return corrupt("truncated frame header");
        };
        let single_segment = descriptor & 0x20 != 0;
        let has_checksum = descriptor & 0x04 != 0;
        let dict_len = [0, 1, 2, 4][(descriptor & 3) as usize];
        let size_len = match descriptor >> 6 {
            0 if single_segment => 1,
            0 => 0,
            1 => 2,
            2 => 4,
            _ => 8,
        };
        at += 5 + usize::from(!single_segment) + dict_len;
        let content_size = match data.get(at..at + size_len) {
            None => return corrupt("truncated frame header"),
            Some([]) => None,
            Some(bytes) => {
                let mut v = [0u8; 8];
                v[..bytes.len()].copy_from_slice(bytes);
                let v = u64::from_le_bytes(v);
                Some(if size_len == 2 { v + 256 } else { v })
            }
        };
        at += size_len;
        // Blocks: a 3-byte header (last flag, type, size), then the block's bytes.
        loop {
            let Some(h) = data.get(at..at + 3) else {
                return corrupt("truncated block");
            };
            let header = u32::from_le_bytes([h[0], h[1], h[2], 0]);
            let size = (header >> 3) as usize;
            at += 3 + match (header >> 1) & 3 {
                1 => 1,
                3 => return corrupt("reserved block type"),
                _ => size,
            };
            if header & 1 != 0 {
                break;
            }
        }
        let Some(len) = content_size else {
            // Without its size, where this frame's content ends in `source` is unknown.
            return Verdict::Unverified;
        };
        let Some(part) = usize::try_from(len)
            .ok()
            .and_then(|len| source.get(covered..covered + len))
        else {
            return Verdict::Differs(format!(
                "it holds {} bytes or more, the source {}",
                covered as u64 + len,
                source.len()
            ));
        };
        if has_checksum {
            let Some(sum) = data.get(at..at + 4) else {
                return corrupt("truncated checksum");
            };
            at += 4;
            let expected = u32::from_le_bytes(sum.try_into().expect("4 bytes"));
            if expected != xxhash_rust::xxh64::xxh64(part, 0) as u32 {
                return Verdict::Differs(format!(
                    "its checksum does not match bytes {covered}..{} of the source",
                    covered + part.len()
                ));
            }
            checked = true;
        }
        covered += part.len();
    }
    if at > data.len() {
        return corrupt("truncated block");
    }
    if covered != source.len() {
        return Verdict::Differs(format!(
            "it holds {covered} bytes, the source {}",
            source.len()
        ));
    }
    if checked {
        Verdict::Same
    } else {
        Verdict::Unverified
    }
}

/// RFC 1952: a 10-byte header (`1f 8b 08`), the deflate data, then the CRC-32 and the
/// length (mod 2^32) of the content. One member, as precompressing tools write.
fn gzip(data: &[u8], source: &[u8]) -> Verdict {
    if data.len() < 18 || data[..3] != [0x1f, 0x8b, 0x08] {
        return Verdict::Corrupt("not a gzip stream (bad magic or method)".to_string());
    }
    let trailer = &data[data.len() - 8..];
    let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
    let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
    if size != source.len() as u32 {
        Verdict::Differs(format!(
            "it holds {size} bytes (mod 2^32), the source {}",
            source.len()
        ))
    } else if crc != crc32(source) {
        Verdict::Differs("its CRC-32 is not the source's".to_string())
    } else {
        Verdict::Same
    }
}

/// CRC-32 (IEEE, reflected) as gzip's trailer holds it, bit by bit: sidecars are checked
/// once, at build time.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// `printf 'hello\n' > a; gzip -c a` (FNAME set, mtime zeroed).
    #[test]
    fn gzip_trailer_against_the_source() {
        let gz = [
            0x1f, 0x8b, 0x08, 0x08, 0, 0, 0, 0, 0, 0x03, b'a', 0, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
            0xe7, 0x02, 0x00, 0x20, 0x30, 0x3a, 0x36, 0x06, 0, 0, 0,
        ];
        assert_eq!(compare(Encoding::Gzip, &gz, b"hello\n"), Verdict::Same);
        assert!(matches!(
            compare(Encoding::Gzip, &gz, b"hellO\n"),
            Verdict::Differs(_)
        ));
        assert!(matches!(
            compare(Encoding::Gzip, &gz, b"hello!\n"),
            Verdict::Differs(_)
        ));
        assert!(matches!(
            compare(Encoding::Gzip, b"not gzip at all, really", b"x"),
            Verdict::Corrupt(_)
        ));
    }

    /// `printf 'hello\n' | zstd -c` (content size 6, checksum), then altered.
    #[test]
    fn zstd_size_and_checksum() {
        let zst = [
            0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x06, 0x31, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
            0x0a, 0x53, 0x88, 0xbd, 0x91,
        ];
        assert_eq!(compare(Encoding::Zstd, &zst, b"hello\n"), Verdict::Same);
        assert!(matches!(
            compare(Encoding::Zstd, &zst, b"hellO\n"),
            Verdict::Differs(_)
        ));
        assert!(matches!(
            compare(Encoding::Zstd, &zst, b"hello!\n"),
            Verdict::Differs(_)
        ));
        assert!(matches!(
            compare(Encoding::Zstd, &zst[..12], b"hello\n"),
            Verdict::Corrupt(_)
        ));
        assert!(matches!(
            compare(Encoding::Zstd, b"gzip?", b"x"),
            Verdict::Corrupt(_)
        ));
        // The same frame without its checksum flag: the size matches, nothing more is known.
        let mut bare = zst[..15].to_vec();
        bare[4] &= !0x04;
        assert_eq!(
            compare(Encoding::Zstd, &bare, b"hello\n"),
            Verdict::Unverified
        );
        assert_eq!(
            compare(Encoding::Brotli, b"anything", b"x"),
            Verdict::Unverified
        );
    }
}
