//! Memory for the file bytes the cache keeps: a page or more gets whole pages of its own (an
//! anonymous mapping), less comes from the heap.
//!
//! Why: the cache's budget (`--cache-max`) must be what the process holds. Through the heap,
//! bytes of files of 8-32 KiB that come and go as the cache evicts leave musl's allocator
//! with partly used groups it cannot give back: on bench/'s Zipf load with
//! `--cache-file-max 32KiB` the process held 93.5 MiB for a 64 MiB `--cache-max` (40.9 MB of
//! it content), past `--cache-max` + 16 MiB by 13.5 MiB; with mappings, 65.1 MiB. A mapping
//! is returned to the kernel whole when its last reference goes, so content costs exactly
//! [`footprint`]: its length rounded up to pages. At most [`MAX_MAPPINGS`] live at once, and
//! the heap where one cannot be made.
//!
//! A few dropped mappings are kept as *spares* ([`SPARE_PAGES`] pages in all, none over
//! [`SPARE_MAX_PAGES`]) and handed to the next content of the same number of pages. When the
//! cache churns (a page read in, another evicted, on every few responses) a fresh mapping
//! costs an `mmap`, a page fault per page and an `munmap` that splits the kernel's merged
//! area: on bench/'s uniform load with `--cache-max 512MiB --cache-file-max 32KiB` those
//! were 14% of the server's samples, more than the `pread` that fills the buffer.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

/// Granularity of mappings; from this length on, content is mapped.
pub const PAGE: usize = 4096;

/// Live mappings at most. The kernel allows a process 65 530 (`vm.max_map_count`); past
/// that, every `mmap` fails, the allocator's and thread stacks' too. A quarter of it
/// covers the default budget (64 MiB is 16 384 pages) and leaves the rest alone.
pub const MAX_MAPPINGS: usize = 16_384;

/// Mappings alive now, spares included.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Pages kept in spare mappings at most (1 MiB): enough to carry a churning cache from one
/// eviction to the next read, small beside the slack `--cache-max` + 16 MiB allows.
pub const SPARE_PAGES: usize = 256;

/// Largest mapping kept as a spare, in pages (64 KiB): what `--cache-file-max` is set to in
/// practice; a larger one is rare enough to pay its `mmap`.
pub const SPARE_MAX_PAGES: usize = 16;

/// Dropped mappings by their number of pages (index), as addresses.
struct Spares {
    by_pages: [Vec<usize>; SPARE_MAX_PAGES + 1],
    pages: usize,
}

static SPARES: Mutex<Spares> = Mutex::new(Spares {
    by_pages: [const { Vec::new() }; SPARE_MAX_PAGES + 1],
    pages: 0,
});

fn spares() -> std::sync::MutexGuard<'static, Spares> {
    // Push and pop are single calls: a panic cannot leave the lists half-changed.
    SPARES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pages a mapping of `len` bytes takes.
fn pages(len: usize) -> usize {
    len.div_ceil(PAGE)
}

/// What keeping `len` bytes of content costs the process: whole pages from a page on.
pub fn footprint(len: u64) -> u64 {
    if len >= PAGE as u64 {
        len.next_multiple_of(PAGE as u64)
    } else {
        len
    }
}

/// A buffer to read a file's bytes into, then [`Buffer::freeze`] to keep them. Its bytes
/// are zeros, or (a spare mapping) what content dropped before held: whoever freezes it must
/// have written every byte ([`crate::files::resolve::read_verified`] keeps only a full read).
pub enum Buffer {
    /// Under a page, or where no mapping could be made.
    Heap(Vec<u8>),
    /// Pages of its own.
    Mapped(Mapping),
}

impl Buffer {
    /// `len` bytes to be overwritten.
    pub fn for_len(len: usize) -> Buffer {
        if len >= PAGE {
            if let Some(m) = Mapping::new(len) {
                return Buffer::Mapped(m);
            }
        }
        Buffer::Heap(vec![0; len])
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Buffer::Heap(v) => v,
            // SAFETY: the mapping is `len` bytes, readable and writable, owned by `m` and
            // borrowed mutably through it.
            Buffer::Mapped(m) => unsafe { std::slice::from_raw_parts_mut(m.ptr.as_ptr(), m.len) },
        }
    }

    /// The bytes, kept until the last clone of the result is dropped, once `written` (the
    /// bytes filled, from the start) is all of them: a spare's bytes not overwritten would be
    /// another file's, so that is checked, not assumed.
    pub fn freeze(mut self, written: usize) -> Bytes {
        let len = self.as_mut_slice().len();
        assert_eq!(written, len, "content kept before all of it was written");
        match self {
            Buffer::Heap(v) => Bytes::from(v),
            Buffer::Mapped(m) => Bytes::from_owner(m),
        }
    }
}

/// An anonymous private mapping holding `len` bytes; unmapped when dropped.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; after `freeze` it is only
// read (through `AsRef`), from any thread.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize) -> Option<Mapping> {
        if let Some(ptr) = Mapping::spare(pages(len)) {
            return Some(Mapping { ptr, len });
        }
        if LIVE.fetch_add(1, Ordering::Relaxed) >= MAX_MAPPINGS {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let Some(ptr) = NonNull::new(p.cast::<u8>()) else {
            // Linux never places a non-fixed mapping at address 0, but if it ever did,
            // give the mapping and its count back rather than keep either.
            // SAFETY: the mapping was just made with this length and nothing refers to it.
            unsafe { libc::munmap(p, len) };
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        };
        Some(Mapping { ptr, len })
    }

    /// A spare mapping of `pages` pages, if one is kept.
    fn spare(pages: usize) -> Option<NonNull<u8>> {
        if pages > SPARE_MAX_PAGES {
            return None;
        }
        let mut spares = spares();
        let addr = spares.by_pages[pages].pop()?;
        spares.pages -= pages;
        NonNull::new(addr as *mut u8)
    }

    /// Keeps this mapping as a spare if there is room; false if it is to be unmapped.
    fn keep_as_spare(&self) -> bool {
        let pages = pages(self.len);
        if pages > SPARE_MAX_PAGES {
            return false;
        }
        let mut spares = spares();
        if spares.pages + pages > SPARE_PAGES {
            return false;
        }
        spares.pages += pages;
        spares.by_pages[pages].push(self.ptr.as_ptr() as usize);
        true
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes at `ptr` for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // Handed to other content whole while the spares have room; unmapped past that.
        if self.keep_as_spare() {
            return;
        }
        // SAFETY: the mapping was made by `new` with this length and nothing refers to it
        // any more (Bytes drops its owner after its last clone).
        let r = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        debug_assert_eq!(r, 0, "munmap of our own mapping failed");
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The count of live mappings is the process's: these tests take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Anonymous memory of this process now, in KiB.
    fn anon_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn footprint_is_whole_pages_from_a_page_on() {
        assert_eq!(footprint(0), 0);
        assert_eq!(footprint(4095), 4095);
        assert_eq!(footprint(4096), 4096);
        assert_eq!(footprint(4097), 8192);
        assert_eq!(footprint(20_000), 20_480);
    }

    #[test]
    fn content_of_a_page_or_more_is_mapped_and_reads_back() {
        let _turn = serial();
        for len in [1, 4095, 4096, 10_000, 1 << 20] {
            let mut b = Buffer::for_len(len);
            assert_eq!(matches!(b, Buffer::Mapped(_)), len >= PAGE, "{len}");
            let s = b.as_mut_slice();
            assert_eq!(s.len(), len);
            s[len - 1] = 7;
            let bytes = b.freeze(len);
            assert_eq!(bytes.len(), len);
            assert_eq!(bytes[len - 1], 7);
            let part = bytes.slice(len / 2..);
            drop(bytes);
            assert_eq!(part[part.len() - 1], 7, "a slice keeps the mapping");
        }
    }

    #[test]
    fn dropped_content_goes_back_to_the_kernel() {
        let _turn = serial();
        // 64 MiB in 16 KiB files, touched, then dropped: the process's anonymous memory
        // comes back down (through the heap, freed groups could stay resident).
        let before = anon_kib();
        let kept: Vec<Bytes> = (0..4096)
            .map(|_| {
                let mut b = Buffer::for_len(16 << 10);
                b.as_mut_slice().fill(1);
                b.freeze(16 << 10)
            })
            .collect();
        let held = anon_kib();
        assert!(held >= before + 60 * 1024, "{before} -> {held} KiB");
        drop(kept);
        let after = anon_kib();
        // Other tests run alongside: only ask that (nearly) all of the 64 MiB came back.
        assert!(
            after + 56 * 1024 < held,
            "{before} -> {held} -> {after} KiB"
        );
    }

    /// Fills a buffer of `len` with `byte` and keeps it.
    fn content(len: usize, byte: u8) -> Bytes {
        let mut b = Buffer::for_len(len);
        b.as_mut_slice().fill(byte);
        b.freeze(len)
    }

    #[test]
    fn a_dropped_mapping_is_handed_to_the_next_content_of_its_size() {
        let _turn = serial();
        let first = content(3 * PAGE - 100, 1);
        let addr = first.as_ptr();
        drop(first);
        assert!(
            spares().by_pages[3].contains(&(addr as usize)),
            "kept, not unmapped"
        );
        // Another size does not take it; the same number of pages does, whatever the length.
        let other = content(5 * PAGE, 2);
        assert_ne!(other.as_ptr(), addr);
        let mut again = Buffer::for_len(2 * PAGE + 1);
        assert!(matches!(again, Buffer::Mapped(_)));
        assert_eq!(again.as_mut_slice().as_ptr(), addr, "the spare is reused");
        assert!(!spares().by_pages[3].contains(&(addr as usize)));
        assert_eq!(again.as_mut_slice().len(), 2 * PAGE + 1);
        again.as_mut_slice().fill(3);
        let again = again.freeze(2 * PAGE + 1);
        assert!(
            again.iter().all(|&x| x == 3),
            "it reads back what was written"
        );
        drop((other, again));
    }

    #[test]
    fn spares_are_bounded_in_pages_and_in_size() {
        let _turn = serial();
        // 16 MiB of touched 4-page content dropped: all but SPARE_PAGES pages (1 MiB) go
        // back. Other tests run alongside: ask only that 13 of the 16 MiB came back.
        let kept: Vec<Bytes> = (0..1024).map(|_| content(4 * PAGE, 1)).collect();
        let held = anon_kib();
        drop(kept);
        assert!(spares().pages <= SPARE_PAGES);
        let after = anon_kib();
        assert!(
            after + 13 * 1024 < held,
            "{held} -> {after} KiB with at most {SPARE_PAGES} spare pages"
        );
        // Past SPARE_MAX_PAGES a mapping is never kept.
        let big = content((SPARE_MAX_PAGES + 1) * PAGE, 1);
        let pages_before = spares().pages;
        drop(big);
        assert_eq!(spares().pages, pages_before);
    }

    #[test]
    #[should_panic(expected = "content kept before all of it was written")]
    fn a_buffer_not_filled_to_its_end_is_never_kept() {
        let _turn = serial();
        let mut b = Buffer::for_len(2 * PAGE);
        b.as_mut_slice()[..PAGE].fill(1);
        b.freeze(PAGE);
    }

    #[test]
    fn past_the_cap_content_goes_to_the_heap() {
        let _turn = serial();
        // Untouched pages: address space only. (Other tests may map files meanwhile: the
        // heap then comes sooner, never later.)
        let mut held = Vec::new();
        let heap = loop {
            let b = Buffer::for_len(PAGE);
            if matches!(b, Buffer::Heap(_)) {
                break true;
            }
            held.push(b);
            if held.len() > MAX_MAPPINGS {
                break false;
            }
        };
        assert!(heap, "{} mappings made, cap {MAX_MAPPINGS}", held.len());
        assert!(LIVE.load(Ordering::Relaxed) <= MAX_MAPPINGS);
        drop(held);
        assert!(matches!(Buffer::for_len(PAGE), Buffer::Mapped(_)));
    }
}
