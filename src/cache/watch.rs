//! Change detection: a generation number that moves whenever something under the root may
//! have changed. Every cache entry remembers the generation it was checked at; an entry
//! from an older generation is checked again (one `stat`) before it is served. The hot path
//! is one atomic load and a comparison.
//!
//! What moves the generation, by [`Mode`]:
//! - `inotify`: any event in a directory the cache has read from (and its ancestors up to the
//!   root), batched so it moves at most every [`BATCH`]. Changes are seen within
//!   milliseconds, and an unchanged site is never stat'ed again.
//! - `poll`: a clock, every [`POLL_EVERY`]: each entry in use is checked at most that often,
//!   as nginx's `open_file_cache_valid` does. For network and FUSE file systems (NFS, SMB,
//!   9p, virtiofs, Docker Desktop's shares), whose changes made elsewhere raise no inotify
//!   event, and as the fallback when a watch cannot be added (the kernel's watch limit).
//! - `off`: never, for images whose site cannot change.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the generation moves in `poll` mode (and in `inotify` mode once a watch could
/// not be added): changes are served within this time plus the request's own.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

/// Inotify events are gathered this long before the generation moves, so a burst (an
/// editor's save, a deploy rewriting a folder) costs each entry one check, not one per event.
pub const BATCH: Duration = Duration::from_millis(50);

/// The most directories watched; past it, `poll` takes over. Far below the kernel's usual
/// per-user limit (8192 on old kernels, more on new ones), which other programs share.
const MAX_WATCHES: usize = 4096;

/// How changes are detected (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `inotify` where the file system supports it, else `poll`.
    Auto,
    /// Kernel events.
    Inotify,
    /// Periodic revalidation.
    Poll,
    /// None: the site never changes.
    Off,
}

impl Mode {
    /// The name used by `--watch`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Inotify => "inotify",
            Mode::Poll => "poll",
            Mode::Off => "off",
        }
    }
}

/// The change detector shared by the cache.
pub struct Watch {
    generation: Arc<AtomicU64>,
    mode: Mode,
    /// Set when a directory could not be watched: the clock moves the generation too.
    degraded: AtomicBool,
    inotify: Option<Inotify>,
}

struct Inotify {
    fd: i32,
    watched: Mutex<Watched>,
}

/// The folders watched, both ways: by the path they were asked for with (relative to the
/// root, or absolute) and by watch descriptor (one folder may be asked for by two paths).
#[derive(Default)]
struct Watched {
    by_path: HashMap<PathBuf, i32>,
    by_wd: HashMap<i32, Vec<PathBuf>>,
}

impl Watch {
    /// Starts detecting changes under `root`. Returns the detector and a sentence saying which
    /// mode runs and why, for the startup log.
    pub fn start(root: &Path, wanted: Mode) -> (Arc<Watch>, String) {
        let (mode, why) = match wanted {
            Mode::Off => (
                Mode::Off,
                "--watch off: the site is taken as unchanging".to_string(),
            ),
            Mode::Poll => (Mode::Poll, "--watch poll".to_string()),
            Mode::Inotify => (Mode::Inotify, "--watch inotify".to_string()),
            Mode::Auto => match remote_file_system(root) {
                Some(fs) => (
                    Mode::Poll,
                    format!("{fs} file system: changes made elsewhere raise no inotify event"),
                ),
                None => (Mode::Inotify, "local file system".to_string()),
            },
        };
        let inotify = if mode == Mode::Inotify {
            // SAFETY: inotify_init1 takes flags only and returns a descriptor or -1.
            let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
            (fd >= 0).then(|| Inotify {
                fd,
                watched: Mutex::new(Watched::default()),
            })
        } else {
            None
        };
        let (mode, why) = if mode == Mode::Inotify && inotify.is_none() {
            let e = std::io::Error::last_os_error();
            (Mode::Poll, format!("inotify unavailable ({e})"))
        } else {
            (mode, why)
        };
        let watch = Arc::new(Watch {
            generation: Arc::new(AtomicU64::new(0)),
            mode,
            degraded: AtomicBool::new(false),
            inotify,
        });
        if watch.inotify.is_some() {
            let w = watch.clone();
            std::thread::Builder::new()
                .name("tinyserve-inotify".into())
                .spawn(move || w.read_events())
                .expect("spawn the inotify thread");
        }
        if mode == Mode::Poll {
            watch.start_clock();
        }
        (watch, why)
    }

    /// Starts the thread that moves the generation every [`POLL_EVERY`] (once).
    fn start_clock(&self) {
        let generation = self.generation.clone();
        std::thread::Builder::new()
            .name("tinyserve-poll".into())
            .spawn(move || loop {
                std::thread::sleep(POLL_EVERY);
                generation.fetch_add(1, Ordering::AcqRel);
            })
            .expect("spawn the poll thread");
    }

    /// The mode in force (never `Auto`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The current generation: entries checked at an older one must be checked again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Makes sure changes in `folders` (relative to `root`, or absolute) move the
    /// generation. Called before a file is opened, so a change after that is always
    /// noticed. A folder already watched costs a map lookup; a watch the kernel dropped
    /// (its folder deleted or moved) is forgotten before the generation moves for that
    /// event, so it is added again for whatever folder has the path now.
    ///
    /// Returns whether a folder was newly watched.
    pub fn watch_folders<'a>(
        &self,
        root: &Path,
        folders: impl IntoIterator<Item = &'a Path>,
    ) -> bool {
        let Some(inotify) = &self.inotify else {
            return false;
        };
        let mut added = false;
        const MASK: u32 = libc::IN_MODIFY
            | libc::IN_ATTRIB
            | libc::IN_CLOSE_WRITE
            | libc::IN_CREATE
            | libc::IN_DELETE
            | libc::IN_MOVED_FROM
            | libc::IN_MOVED_TO
            | libc::IN_DELETE_SELF
            | libc::IN_MOVE_SELF
            | libc::IN_ONLYDIR;
        let mut watched = inotify.watched.lock().unwrap_or_else(|e| e.into_inner());
        for folder in folders {
            if watched.by_path.contains_key(folder) {
                continue;
            }
            if watched.by_path.len() >= MAX_WATCHES {
                drop(watched);
                self.degrade("tinyserve's own watch limit is reached");
                return added;
            }
            let Ok(c) = CString::new(root.join(folder).into_os_string().as_bytes()) else {
                continue;
            };
            // SAFETY: a valid descriptor and a NUL-terminated path.
            let wd = unsafe { libc::inotify_add_watch(inotify.fd, c.as_ptr(), MASK) };
            if wd < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    // Gone, or not a folder: nothing below it to watch.
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) => return added,
                    _ => {
                        drop(watched);
                        self.degrade(&format!("cannot watch {}: {e}", folder.display()));
                        return added;
                    }
                }
            }
            watched.by_path.insert(folder.to_path_buf(), wd);
            watched
                .by_wd
                .entry(wd)
                .or_default()
                .push(folder.to_path_buf());
            added = true;
        }
        added
    }

    fn degrade(&self, why: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            self.start_clock();
            tracing::warn!(
                reason = why,
                every_ms = POLL_EVERY.as_millis() as u64,
                "change detection: some folders are not watched; revalidating by stat instead"
            );
        }
    }

    /// The inotify thread: each batch of events moves the generation once.
    fn read_events(&self) {
        let inotify = self.inotify.as_ref().expect("inotify mode");
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, of the length given.
            let n = unsafe { libc::read(inotify.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                self.degrade("reading inotify events failed");
                return;
            }
            // Let the rest of a burst arrive, then take it in the same batch.
            std::thread::sleep(BATCH);
            self.forget_gone(&buf[..n as usize]);
            self.bump();
        }
    }

    /// Drops the records of watches the kernel removed (their directory was deleted) or that
    /// now watch a directory moved elsewhere.
    fn forget_gone(&self, mut events: &[u8]) {
        let inotify = self.inotify.as_ref().expect("inotify mode");
        let header = std::mem::size_of::<libc::inotify_event>();
        let mut watched = inotify.watched.lock().unwrap_or_else(|e| e.into_inner());
        while events.len() >= header {
            // SAFETY: the kernel writes whole events; read_unaligned copes with alignment.
            let ev: libc::inotify_event =
                unsafe { std::ptr::read_unaligned(events.as_ptr().cast()) };
            if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                tracing::debug!("inotify queue overflowed; every entry is checked again");
            }
            if ev.mask & libc::IN_MOVE_SELF != 0 {
                // SAFETY: removing a watch of our own descriptor.
                unsafe { libc::inotify_rm_watch(inotify.fd, ev.wd) };
            }
            if ev.mask & (libc::IN_MOVE_SELF | libc::IN_IGNORED) != 0 {
                for path in watched.by_wd.remove(&ev.wd).unwrap_or_default() {
                    watched.by_path.remove(&path);
                }
            }
            events = &events[(header + ev.len as usize).min(events.len())..];
        }
    }
}

/// The name of a network or FUSE file system holding `root`, where inotify sees only the
/// changes made through this machine.
fn remote_file_system(root: &Path) -> Option<&'static str> {
    let c = CString::new(root.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into the struct it is given.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs.
    let kind = st.f_type as i64 as u32;
    match kind {
        0x6969 => Some("NFS"),
        0xFF53_4D42 => Some("CIFS"),
        0xFE53_4D42 => Some("SMB2"),
        0x517B => Some("SMB"),
        0x0102_1997 => Some("9p"),
        0x6573_5546 => Some("FUSE"),
        0x00C3_6400 => Some("Ceph"),
        0x0BD0_0BD0 => Some("Lustre"),
        0x4750_4653 => Some("GPFS"),
        0x7461_636F => Some("OCFS2"),
        _ => None,
    }
}
