//! From a request path to files on disk: what the path names (a file and its precompressed
//! sidecars, a directory to redirect to, or nothing), and opening or reading those files so
//! that the bytes are the ones whose identity was checked. Only the cache calls this, on a
//! miss or when an entry must be checked again; nothing here is on the path of a hit.
//!
//! Files are opened relative to the root with `openat2(RESOLVE_BENEATH)`: one system call
//! that refuses any path, symlink included, that would lead outside the root. A symlink the
//! kernel will not follow that way (an absolute one) is resolved in full and served only if
//! its target lies under the root; where `openat2` is missing (Linux before 5.6, or a
//! seccomp profile that refuses it) every path is resolved that way.
//!
//! What is never served: anything outside the root, anything that is not a regular file,
//! and the sidecar `x.gz` / `x.br` of an existing `x` on its own (it is one of `x`'s
//! representations). Dotfiles and non-UTF-8 names never get here: [`crate::files::path`] refuses
//! their paths.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use crate::cache::file_id::FileId;
use crate::cache::mapped::{Buffer, PageSize};
use crate::files::negotiate::Encoding;

/// The folder served, open.
pub struct Root {
    path: PathBuf,
    dir: OwnedFd,
    /// Whether `openat2` works here; cleared for good the first time it does not.
    beneath: AtomicBool,
    /// Whether files are opened with `O_NOATIME`; cleared for good the first time the
    /// kernel refuses it (allowed only to a file's owner or a process with `CAP_FOWNER`).
    noatime: AtomicBool,
}

impl Root {
    /// Opens the folder at `path` (canonical).
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Root {
            path: path.to_path_buf(),
            dir: dir.into(),
            beneath: AtomicBool::new(true),
            noatime: AtomicBool::new(true),
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` (relative to the root) for reading if it lies under the root, and says
    /// whether a symlink was followed on the way. `O_NONBLOCK`, so that a FIFO someone left
    /// in the site cannot block the server.
    pub fn open_file(&self, rel: &str) -> io::Result<(File, bool)> {
        if self.beneath.load(Ordering::Relaxed) {
            // Most sites have no symlinks: the first try refuses them, so that only a path
            // with one pays for finding out where it leads.
            match self.openat2(rel, libc::RESOLVE_NO_SYMLINKS) {
                Ok(f) => return Ok((f, false)),
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {}
                Err(e) if self.beneath.load(Ordering::Relaxed) => return Err(e),
                Err(_) => {}
            }
            if self.beneath.load(Ordering::Relaxed) {
                match self.openat2(rel, libc::RESOLVE_NO_MAGICLINKS) {
                    Ok(f) => return Ok((f, true)),
                    // An absolute symlink, or one through `..`: resolve it the long way.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::ELOOP)) => {}
                    Err(e) if self.beneath.load(Ordering::Relaxed) => return Err(e),
                    Err(_) => {}
                }
            }
        }
        let asked = self.path.join(rel);
        let real = fs::canonicalize(&asked)?;
        if !real.starts_with(&self.path) {
            tracing::debug!(path = rel, "not serving: symlink leads outside the root");
            return Err(io::ErrorKind::NotFound.into());
        }
        let file = self.without_noatime_if_refused(|flags| {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(&real)
        })?;
        Ok((file, real != asked))
    }

    /// Runs `open` with the flags files are opened with, and again without `O_NOATIME` if
    /// the kernel refused it (`EPERM`: the server neither owns the file nor has
    /// `CAP_FOWNER`), which then stays off. Why at all: with it, a `sendfile` skips the
    /// access-time check (`touch_atime`, 1.5% of the server's CPU under the random-page
    /// load), which no client can see.
    fn without_noatime_if_refused(
        &self,
        open: impl Fn(i32) -> io::Result<File>,
    ) -> io::Result<File> {
        if !self.noatime.load(Ordering::Relaxed) {
            return open(FLAGS);
        }
        match open(FLAGS | libc::O_NOATIME) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                let second = open(FLAGS);
                if second.is_ok() {
                    tracing::debug!("O_NOATIME refused (not the files' owner); opening without it");
                    self.noatime.store(false, Ordering::Relaxed);
                }
                second
            }
            other => other,
        }
    }

    /// `openat2` beneath the root with `resolve` flags; turns itself off for good where
    /// the kernel or a seccomp profile refuses the call.
    fn openat2(&self, rel: &str, resolve: u64) -> io::Result<File> {
        let c = std::ffi::CString::new(rel).map_err(|_| io::ErrorKind::InvalidInput)?;
        let result =
            self.without_noatime_if_refused(|flags| self.openat2_flags(&c, flags, resolve));
        if let Err(e) = &result {
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EINVAL)
            ) {
                tracing::info!(error = %e, "openat2 unavailable; resolving paths in full");
                self.beneath.store(false, Ordering::Relaxed);
            }
        }
        result
    }

    /// One `openat2` call of `c` beneath the root.
    fn openat2_flags(&self, c: &std::ffi::CStr, flags: i32, resolve: u64) -> io::Result<File> {
        // SAFETY: open_how is plain data; zero is a valid value of every field.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        how.resolve = libc::RESOLVE_BENEATH | resolve;
        // SAFETY: a valid directory descriptor, a NUL-terminated path and an open_how of
        // the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: a descriptor the kernel just gave us, owned by nothing else.
            return Ok(unsafe { File::from_raw_fd(fd as i32) });
        }
        Err(io::Error::last_os_error())
    }
}

/// Flags of every file opened: read-only, not inherited, never a controlling terminal, and
/// non-blocking so a FIFO left in the site cannot block the server. `O_NOATIME` is added
/// where the kernel allows it ([`Root::without_noatime_if_refused`]).
const FLAGS: i32 = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

/// A file the path names, open, with its identity when it was opened.
#[derive(Debug)]
pub struct Probed {
    /// Which representation it is.
    pub encoding: Encoding,
    /// Its identity.
    pub id: FileId,
    /// The open file.
    pub file: File,
    /// Whether a symlink led to it.
    pub via_symlink: bool,
}

/// What a cache key names on disk right now.
#[derive(Debug)]
pub enum Probe {
    /// Nothing servable.
    Missing,
    /// A directory with an `index.html`, named without the trailing slash.
    Redirect,
    /// A file: identity first, then its sidecars in preference order.
    Files(Vec<Probed>),
}

impl Probe {
    /// The files found, if any.
    pub fn files(&self) -> &[Probed] {
        match self {
            Probe::Files(files) => files,
            _ => &[],
        }
    }
}

/// The path, relative to the root, of representation `encoding` of `key`.
pub fn rel_path(key: &str, encoding: Encoding) -> String {
    let base = key.trim_start_matches('/');
    match Encoding::SIDECARS.iter().find(|(e, _)| *e == encoding) {
        Some((_, ext)) => format!("{base}.{ext}"),
        None => base.to_string(),
    }
}

/// Opens `rel` under the root, with what `fstat` says of it and whether a symlink led there.
fn open_meta(root: &Root, rel: &str) -> Option<(File, fs::Metadata, bool)> {
    let (file, via_symlink) = root.open_file(rel).ok()?;
    let meta = file.metadata().ok()?;
    Some((file, meta, via_symlink))
}

/// Looks at what `key` names under the root: its files, opened. `hidden` are files never
/// served whatever names them (the site's `_headers` and `_redirects`).
pub fn probe(root: &Root, key: &str, hidden: &[FileId]) -> Probe {
    let rel = key.trim_start_matches('/');
    if crate::files::rules::is_rules_file(rel) {
        return Probe::Missing;
    }
    let Some((file, meta, via_symlink)) = open_meta(root, rel) else {
        return Probe::Missing;
    };
    // By identity too, not only by name: on a case-insensitive mount (Docker Desktop's
    // shares) `/_Headers`, or a name that folds to it (`_headerſ`), opens the rules file,
    // and so do a hard link or a symlink to it.
    let id = FileId::of(&meta);
    if hidden.iter().any(|h| h.same_file(&id)) {
        return Probe::Missing;
    }
    if meta.is_dir() {
        let index = open_meta(root, &format!("{rel}/index.html"));
        return match index {
            Some((_, m, _)) if m.is_file() => Probe::Redirect,
            _ => Probe::Missing,
        };
    }
    if !meta.is_file() {
        return Probe::Missing;
    }
    if let Some((base, _)) = Encoding::sidecar_of(rel) {
        if open_meta(root, base).is_some_and(|(_, m, _)| m.is_file()) {
            return Probe::Missing;
        }
    }
    let mut files = vec![Probed {
        encoding: Encoding::Identity,
        id,
        file,
        via_symlink,
    }];
    for (encoding, _) in Encoding::SIDECARS {
        if let Some((file, meta, via_symlink)) = open_meta(root, &rel_path(key, encoding)) {
            if meta.is_file() {
                files.push(Probed {
                    encoding,
                    id: FileId::of(&meta),
                    file,
                    via_symlink,
                });
            }
        }
    }
    Probe::Files(files)
}

/// The folder `file` really is in, when that is not the folder its URL path names (a
/// symlink led elsewhere): changes there must be watched too. `None` when they agree or
/// `/proc` is not mounted. Only asked for files reached through a symlink.
pub fn real_folder(root: &Root, key: &str, file: &File) -> Option<PathBuf> {
    let real = fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()?;
    let real_parent = real.parent()?;
    let url_parent = root.path.join(key.trim_start_matches('/'));
    (url_parent.parent() != Some(real_parent)).then(|| real_parent.to_path_buf())
}

/// The folders, relative to the root (`""` for the root itself), whose changes can change
/// what `key` names: the root and every folder on the way to the key.
pub fn folders(key: &str) -> impl Iterator<Item = &Path> {
    let rel = key.trim_start_matches('/');
    std::iter::once("")
        .chain(rel.match_indices('/').map(move |(i, _)| &rel[..i]))
        .map(Path::new)
}

/// Opens representation `encoding` of `key` and checks that it is still the file `id`
/// describes; `Ok(None)` if it changed.
pub fn open_verified(
    root: &Root,
    key: &str,
    encoding: Encoding,
    id: FileId,
) -> io::Result<Option<File>> {
    let (file, _) = root.open_file(&rel_path(key, encoding))?;
    Ok(id.matches(&file)?.then_some(file))
}

/// Reads the whole of an open `file` if it still is the file `id` describes and did not
/// change while being read; `Ok(None)` otherwise. Bytes to keep (`keep` holds the kernel's
/// page) go in memory of their own ([`crate::cache::mapped`]), which the cache can give back
/// whole; others (read only to be hashed) on the heap, which costs no mapping and no fresh
/// pages.
///
/// Positioned reads: the descriptor may be shared, its file position is never used. A
/// buffer is kept only when every byte of it was read: one reused from dropped content
/// ([`crate::cache::mapped`]'s spares) holds that content's bytes until then.
pub fn read_verified(file: &File, id: FileId, keep: Option<PageSize>) -> io::Result<Option<Bytes>> {
    let len = id.len as usize;
    let mut buf = match keep {
        Some(page) => Buffer::for_len(len, page),
        None => Buffer::Heap(vec![0; len]),
    };
    let data = buf.as_mut_slice();
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut data[filled..], filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    // One byte more than expected, so a file that grew shows as a mismatch too.
    let grew = filled == len && file.read_at(&mut [0u8], len as u64)? > 0;
    if filled != len || grew || !id.matches(file)? {
        return Ok(None);
    }
    Ok(Some(buf.freeze(filled)))
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

/// A strong ETag, quoted: 32 hex digits of a content hash, kept as the bytes sent (35
/// bytes in a cache entry, where a header value would take 40 and a heap block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Etag([u8; 34]);

impl Etag {
    /// The ETag of content hash `hash`.
    pub fn of(hash: u128) -> Etag {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'"'; 34];
        for (i, b) in out[1..33].iter_mut().enumerate() {
            *b = HEX[(hash >> (124 - 4 * i) & 0xf) as usize];
        }
        Etag(out)
    }

    /// As it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// As a header value.
    pub fn header(&self) -> http::HeaderValue {
        http::HeaderValue::from_bytes(&self.0).expect("quoted hex digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_32_hex_digits_quoted() {
        let h = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        assert_eq!(Etag::of(h).as_bytes(), format!("\"{h:032x}\"").as_bytes());
        assert_eq!(Etag::of(1).header(), "\"00000000000000000000000000000001\"");
    }

    /// A stand-in for `open`: refuses `O_NOATIME` (as for a file someone else owns), and
    /// everything when `refuse_all` (as a seccomp profile refusing the call).
    fn refusing(
        refuse_all: bool,
        calls: &std::cell::RefCell<Vec<i32>>,
    ) -> impl Fn(i32) -> io::Result<File> + '_ {
        move |flags| {
            calls.borrow_mut().push(flags);
            if refuse_all || flags & libc::O_NOATIME != 0 {
                Err(io::Error::from_raw_os_error(libc::EPERM))
            } else {
                File::open("/dev/null")
            }
        }
    }

    #[test]
    fn noatime_refused_is_retried_without_and_stays_off() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let calls = std::cell::RefCell::new(Vec::new());
        root.without_noatime_if_refused(refusing(false, &calls))
            .unwrap();
        root.without_noatime_if_refused(refusing(false, &calls))
            .unwrap();
        assert_eq!(*calls.borrow(), [FLAGS | libc::O_NOATIME, FLAGS, FLAGS]);
    }

    #[test]
    fn a_refusal_of_everything_keeps_noatime_for_when_opens_work_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let calls = std::cell::RefCell::new(Vec::new());
        let e = root
            .without_noatime_if_refused(refusing(true, &calls))
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(root.noatime.load(Ordering::Relaxed));
        assert_eq!(*calls.borrow(), [FLAGS | libc::O_NOATIME, FLAGS]);
    }
}
