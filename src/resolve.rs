//! From a request path to files on disk: what the path names (a file and its precompressed
//! sidecars, a directory to redirect to, or nothing), and reading or opening those files so
//! that the bytes are the ones whose identity was checked. Only the cache calls this, on a
//! miss or when an entry must be checked again; nothing here is on the path of a hit.
//!
//! What is never served: symlinks whose target lies outside the root (the target is
//! resolved and must lie under the root), anything that is not a regular file, and the
//! sidecar `x.gz` / `x.br` of an existing `x` on its own (it is one of `x`'s
//! representations). Dotfiles and non-UTF-8 names never get here: [`crate::path`] refuses
//! their paths.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::file_id::FileId;
use crate::negotiate::Encoding;

/// A file the path names, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// Which representation it is.
    pub encoding: Encoding,
    /// Its real path, symlinks resolved.
    pub real: Arc<Path>,
    /// Its identity when it was looked at.
    pub id: FileId,
}

/// What a cache key names on disk right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Nothing servable.
    Missing,
    /// A directory with an `index.html`, named without the trailing slash.
    Redirect,
    /// A file: identity first, then its sidecars in preference order.
    Files(Vec<Probed>),
}

/// The file-system path of a key (a decoded, safe URL path naming a file).
fn fs_path(root: &Path, key: &str) -> PathBuf {
    root.join(key.trim_start_matches('/'))
}

/// The real path of `path` if it lies under `root` and `meta` of what it leads to.
fn real_under(root: &Path, path: &Path) -> Option<(PathBuf, fs::Metadata)> {
    let real = fs::canonicalize(path).ok()?;
    if !real.starts_with(root) {
        tracing::debug!(path = %path.display(), "not serving: symlink leads outside the root");
        return None;
    }
    let meta = fs::metadata(&real).ok()?;
    Some((real, meta))
}

/// Looks at what `key` names under `root` (a few `stat`s; nothing is read).
pub fn probe(root: &Path, key: &str) -> Probe {
    let path = fs_path(root, key);
    let Some((real, meta)) = real_under(root, &path) else {
        return Probe::Missing;
    };
    if meta.is_dir() {
        let index = real_under(root, &real.join("index.html"));
        return match index {
            Some((_, m)) if m.is_file() => Probe::Redirect,
            _ => Probe::Missing,
        };
    }
    if !meta.is_file() {
        return Probe::Missing;
    }
    let name = key.rsplit('/').next().unwrap_or_default();
    for (_, ext) in Encoding::SIDECARS {
        if let Some(base) = name.strip_suffix(ext).and_then(|b| b.strip_suffix('.')) {
            let base_path = path.with_file_name(base);
            if real_under(root, &base_path).is_some_and(|(_, m)| m.is_file()) {
                return Probe::Missing;
            }
        }
    }
    let mut files = vec![Probed {
        encoding: Encoding::Identity,
        real: real.into(),
        id: FileId::of(&meta),
    }];
    for (encoding, ext) in Encoding::SIDECARS {
        let mut side = path.clone().into_os_string();
        side.push(".");
        side.push(ext);
        if let Some((real, meta)) = real_under(root, Path::new(&side)) {
            if meta.is_file() {
                files.push(Probed {
                    encoding,
                    real: real.into(),
                    id: FileId::of(&meta),
                });
            }
        }
    }
    Probe::Files(files)
}

/// The folders whose changes can change what `key` names: the root and every folder on the
/// way to the key, as far as they exist (a missing folder's creation shows in its parent).
pub fn folders(root: &Path, key: &str) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut dir = root.to_path_buf();
    let segments: Vec<&str> = key.trim_start_matches('/').split('/').collect();
    for seg in &segments[..segments.len().saturating_sub(1)] {
        dir.push(seg);
        out.push(dir.clone());
    }
    out
}

/// Opens `real` and checks that it is still the file `id` describes; `Ok(None)` if it changed.
pub fn open_verified(real: &Path, id: FileId) -> io::Result<Option<File>> {
    let file = File::open(real)?;
    Ok(id.matches(&file)?.then_some(file))
}

/// Reads the whole of `real` if it is still the file `id` describes and did not change while
/// being read; `Ok(None)` otherwise.
pub fn read_verified(real: &Path, id: FileId) -> io::Result<Option<Vec<u8>>> {
    let Some(mut file) = open_verified(real, id)? else {
        return Ok(None);
    };
    // One byte more than expected, so a file that grew shows as a mismatch too.
    let mut data = Vec::with_capacity(id.len as usize + 1);
    (&mut file).take(id.len + 1).read_to_end(&mut data)?;
    if data.len() as u64 != id.len || !id.matches(&file)? {
        return Ok(None);
    }
    Ok(Some(data))
}

/// The content hash behind an ETag: XXH3-128 of the bytes, the same on every replica.
pub fn hash(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// Hashes an open file with positioned reads (so the descriptor can serve responses at the
/// same time), `None` if it changed meanwhile. `buf` is scratch space.
pub fn hash_file(file: &File, id: FileId, buf: &mut [u8]) -> io::Result<Option<u128>> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut offset = 0u64;
    while offset < id.len {
        let want = buf.len().min((id.len - offset) as usize);
        let n = file.read_at(&mut buf[..want], offset)?;
        if n == 0 {
            return Ok(None);
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(id.matches(file)?.then(|| hasher.digest128()))
}

/// The quoted strong ETag of a content hash.
pub fn etag(hash: u128) -> http::HeaderValue {
    http::HeaderValue::try_from(format!("\"{hash:032x}\"")).expect("hex digits")
}
