//! What the cache keeps for one request path: a file with its representations (and, when
//! kept, their bytes or an open descriptor), a redirect, or "nothing there". Immutable
//! once made: a change (new bytes kept, a descriptor dropped, an ETag learnt) replaces the
//! whole [`Asset`], so a response holds a consistent one for as long as it runs.

use std::fs::File;
use std::sync::Arc;

use bytes::Bytes;

use crate::file_id::FileId;
use crate::negotiate::Encoding;
use crate::resolve::{Etag, Probe};

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
    pub variants: Box<[Variant]>,
    /// The identity file's modification time, in whole seconds since the epoch.
    pub modified: Option<u64>,
    /// `Content-Type`, from the name.
    pub content_type: &'static str,
    /// Whether `--immutable` gives it the one-year `Cache-Control`.
    pub immutable: bool,
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
