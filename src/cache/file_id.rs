//! What makes a file the same file: device, inode, size, modification and change times.
//! Any write changes the times and a rename-over changes the inode, so two equal ids mean
//! the bytes a content hash was computed from are still the bytes on disk. The cache
//! compares them before it trusts an entry again; a response sent from disk compares them
//! as it goes, so a file rewritten in place mid-download cuts the response short instead
//! of mixing two versions under one ETag.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;

/// A file's identity (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    dev: u64,
    ino: u64,
    /// Its length in bytes.
    pub len: u64,
    /// Modification and change times in nanoseconds since the epoch.
    mtime: i64,
    ctime: i64,
}

fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

impl FileId {
    /// The identity `meta` describes.
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: nanos(meta.mtime(), meta.mtime_nsec()),
            ctime: nanos(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether `other` is the same file (device and inode), whatever its contents or name:
    /// a hard link, a symlink's target or, on a case-insensitive file system, `_Headers`
    /// for `_headers`.
    pub fn same_file(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// Whether the open `file` still has this identity (one `fstat`).
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        Ok(FileId::of(&file.metadata()?) == *self)
    }

    /// Whether the open `file` still holds the bytes this identity describes: the same
    /// inode, length and modification time. The change time is left out here, as renaming
    /// or unlinking the file changes it while its bytes stay: a download keeps going when a
    /// deploy renames a new file over the one it is sending.
    pub fn same_bytes(&self, file: &File) -> io::Result<bool> {
        let now = FileId::of(&file.metadata()?);
        Ok(FileId {
            ctime: self.ctime,
            ..now
        } == *self)
    }

    /// Its modification time in whole seconds since the epoch, as HTTP dates have it;
    /// `None` before 1970.
    pub fn modified_secs(&self) -> Option<u64> {
        u64::try_from(self.mtime.div_euclid(1_000_000_000)).ok()
    }

    /// An error for a file that no longer matches: the response must end here.
    pub fn changed() -> io::Error {
        io::Error::other("the file changed while it was being sent")
    }
}
