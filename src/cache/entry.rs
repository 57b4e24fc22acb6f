//! What the cache keeps for one request path: a file with its representations (and, when
//! kept, their bytes or an open descriptor), a redirect, or "nothing there". Immutable
//! once made: a change (new bytes kept, a descriptor dropped, an ETag learnt) replaces the
//! whole [`Asset`], so a response holds a consistent one for as long as it runs.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use crate::cache::file_id::FileId;
use crate::files::negotiate::Encoding;
use crate::files::resolve::{Etag, Probe};

/// What a request path names.
#[derive(Debug, Clone)]
pub enum Found {
    /// A file (or a directory's `index.html`).
    File(Arc<Asset>),
    /// A directory named without its trailing slash: redirect to the path with one.
    Redirect,
    /// Nothing servable.
    Missing,
}

/// A servable file with its representations.
#[derive(Debug, Clone)]
pub struct Asset {
    /// The cache key it is kept under.
    pub key: Arc<str>,
    /// Identity first, then the sidecars clients may prefer: brotli, then gzip.
    pub variants: Variants,
    /// The identity file's modification time, in whole seconds since the epoch.
    pub modified: Option<u64>,
    /// `Content-Type`, from the name.
    pub content_type: &'static str,
    /// Whether `--immutable` gives it the one-year `Cache-Control`.
    pub immutable: bool,
    /// Whether the server may send it gzipped (`--compress`): no sidecars of its own, a
    /// compressible type and size. Decided when it is loaded, not on every response.
    pub gzippable: bool,
}

/// An asset's representations, a lone one held inline.
///
/// Why: most files have no sidecar, and a hit then finds its representation in the same
/// allocation as the asset's reference count it has just touched, instead of following a
/// second pointer to memory no other hit shares. On bench/'s Zipf load that second load
/// was 63% of `Shared::asset`'s own `perf` samples (a cache miss per response).
#[derive(Debug, Clone)]
pub enum Variants {
    /// The identity file alone.
    One([Variant; 1]),
    /// The identity file and its sidecars.
    Many(Box<[Variant]>),
}

impl From<Vec<Variant>> for Variants {
    fn from(v: Vec<Variant>) -> Variants {
        match <[Variant; 1]>::try_from(v) {
            Ok(one) => Variants::One(one),
            Err(v) => Variants::Many(v.into_boxed_slice()),
        }
    }
}

impl std::ops::Deref for Variants {
    type Target = [Variant];

    fn deref(&self) -> &[Variant] {
        match self {
            Variants::One(one) => one,
            Variants::Many(many) => many,
        }
    }
}

impl std::ops::DerefMut for Variants {
    fn deref_mut(&mut self) -> &mut [Variant] {
        match self {
            Variants::One(one) => one,
            Variants::Many(many) => many,
        }
    }
}

/// One representation of a file: the file itself or one of its precompressed sidecars.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Which coding this representation has.
    pub encoding: Encoding,
    /// The file's identity (its length included) when it was loaded.
    pub id: FileId,
    /// Its strong ETag, from the content alone; `None` while a large file is being hashed.
    pub etag: Option<Etag>,
    /// What the cache holds of it.
    pub resident: Resident,
}

impl Variant {
    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.id.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.id.len == 0
    }
}

/// What the cache holds of a representation's bytes.
#[derive(Debug, Clone)]
pub enum Resident {
    /// Nothing: read or opened when next sent.
    Nothing,
    /// Its bytes (files up to `--cache-file-max`).
    Memory(Bytes),
    /// An open descriptor (larger files).
    Open(Arc<File>),
}

impl Found {
    /// Whether this still describes what `probe` found: the same kind, the same files with
    /// the same identities.
    pub fn describes(&self, probe: &Probe) -> bool {
        match (self, probe) {
            (Found::Missing, Probe::Missing) | (Found::Redirect, Probe::Redirect) => true,
            (Found::File(asset), Probe::Files(files)) => {
                asset.variants.len() == files.len()
                    && asset
                        .variants
                        .iter()
                        .zip(files)
                        .all(|(v, f)| v.encoding == f.encoding && v.id == f.id)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(encoding: Encoding, len: u64) -> Variant {
        let meta = std::fs::metadata("Cargo.toml").unwrap();
        let mut id = FileId::of(&meta);
        id.len = len;
        Variant {
            encoding,
            id,
            etag: None,
            resident: Resident::Nothing,
        }
    }

    #[test]
    fn a_lone_representation_is_held_inline_and_several_keep_their_order() {
        let one = Variants::from(vec![variant(Encoding::Identity, 10)]);
        assert!(matches!(one, Variants::One(_)));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].len(), 10);

        let three = Variants::from(vec![
            variant(Encoding::Identity, 30),
            variant(Encoding::Brotli, 20),
            variant(Encoding::Gzip, 25),
        ]);
        assert!(matches!(three, Variants::Many(_)));
        let order: Vec<_> = three.iter().map(|v| (v.encoding, v.len())).collect();
        assert_eq!(
            order,
            [
                (Encoding::Identity, 30),
                (Encoding::Brotli, 20),
                (Encoding::Gzip, 25)
            ]
        );

        let mut edited = one.clone();
        edited[0].resident = Resident::Memory(bytes::Bytes::from_static(b"0123456789"));
        assert!(matches!(edited[0].resident, Resident::Memory(_)));
        assert!(matches!(one[0].resident, Resident::Nothing));
    }
}
