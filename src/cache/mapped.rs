//! Memory for the file bytes the cache keeps: a page or more gets whole pages of its own (an
//! anonymous mapping), less comes from the heap.
//!
//! Why: the cache's budget (`--cache-max`) must be what the process holds. Through the heap,
//! bytes of files of 8-32 KiB that come and go as the cache evicts leave musl's allocator
//! with partly used groups it cannot give back: on bench/'s Zipf load with
//! `--cache-file-max 32KiB` the process held 93.5 MiB for a 64 MiB `--cache-max` (40.9 MB of
//! it content), past `--cache-max` + 16 MiB by 13.5 MiB; with mappings, 65.1 MiB. A mapping
//! is returned to the kernel whole when its last reference goes, so content costs exactly
//! [`PageSize::footprint`]: its length rounded up to pages. At most [`MAX_MAPPINGS`] live at once, and
//! the heap where one cannot be made.
//!
//! **The page is the kernel's**, read once ([`PageSize::of_system`]): 4 KiB on x86_64 and
//! most arm64 kernels, 16 KiB on Asahi Linux and the Raspberry Pi 5, 64 KiB on RHEL-family
//! arm64 servers. "A page or more" is that page: on a 64 KiB kernel a 5 KiB file in a
//! mapping of its own would hold 64 KiB for 5, so content under a page goes to the heap
//! there, and what is mapped is charged its whole pages. The charge is what is held on
//! every page size, so `--cache-max` holds on every kernel.
//!
//! A few dropped mappings are kept as *spares* ([`SPARE_BYTES`] in all, none over
//! [`SPARE_MAX_BYTES`]) and handed to the next content of the same mapped size. When the
//! cache churns (a page read in, another evicted, on every few responses) a fresh mapping
//! costs an `mmap`, a page fault per page and an `munmap` that splits the kernel's merged
//! area: on bench/'s uniform load with `--cache-max 512MiB --cache-file-max 32KiB` those
//! were 14% of the server's samples, more than the `pread` that fills the buffer.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

/// The smallest page Linux has (x86_64, most arm64): spare mappings are filed in units of it.
const SMALLEST_PAGE: usize = 4096;

/// The kernel's memory page: the granularity of mappings, and from this length on content
/// is mapped. A power of two of at least 4 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(usize);

impl PageSize {
    /// 4 KiB, the smallest page Linux has.
    pub const SMALLEST: PageSize = PageSize(SMALLEST_PAGE);

    /// The page size the kernel reports (`sysconf(_SC_PAGESIZE)`), read once; 4 KiB if it
    /// reports nothing usable.
    pub fn of_system() -> PageSize {
        static SYSTEM: OnceLock<PageSize> = OnceLock::new();
        *SYSTEM.get_or_init(|| {
            // SAFETY: sysconf only reads a value; _SC_PAGESIZE is always defined on Linux.
            let reported = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(reported)
                .ok()
                .and_then(PageSize::new)
                .unwrap_or(PageSize::SMALLEST)
        })
    }

    /// `bytes` as a page size, if it is a power of two of at least 4 KiB.
    pub fn new(bytes: usize) -> Option<PageSize> {
        (bytes >= SMALLEST_PAGE && bytes.is_power_of_two()).then_some(PageSize(bytes))
    }

    /// The page's length in bytes.
    pub fn bytes(self) -> usize {
        self.0
    }

    /// What keeping `len` bytes of content costs the process on this page size: whole
    /// pages from a page on (a mapping of its own), the heap's allocation below.
    pub fn footprint(self, len: u64) -> u64 {
        if len >= self.0 as u64 {
            len.next_multiple_of(self.0 as u64)
        } else {
            heap_footprint(len, self)
        }
    }
}

/// Slot sizes of musl's allocator (mallocng), in 16-byte units: an allocation takes the
/// smallest slot that holds it and a 4-byte header.
const HEAP_SLOTS: [u16; 48] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25, 31, 36, 42, 50, 63, 72, 84, 102, 127, 146,
    170, 204, 255, 292, 340, 409, 511, 584, 682, 818, 1023, 1169, 1364, 1637, 2047, 2340, 2730,
    3276, 4095, 4680, 5460, 6552, 8191,
];

/// What `len` bytes from the heap hold: the allocator's slot for them. Content under a page
/// (64 KiB at most) always has one; past the slots (128 KiB) the allocator maps whole pages
/// itself.
fn heap_footprint(len: u64, page: PageSize) -> u64 {
    if len == 0 {
        return 0;
    }
    let units = (len + 4).div_ceil(16);
    match HEAP_SLOTS.iter().find(|&&slot| u64::from(slot) >= units) {
        Some(&slot) => u64::from(slot) * 16,
        None => (len + 4).next_multiple_of(page.bytes() as u64),
    }
}

/// Live mappings at most. The kernel allows a process 65 530 (`vm.max_map_count`); past
/// that, every `mmap` fails, the allocator's and thread stacks' too. A quarter of it
/// covers the default budget (64 MiB is 16 384 pages of 4 KiB) and leaves the rest alone.
pub const MAX_MAPPINGS: usize = 16_384;

/// Mappings alive now, spares included.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Bytes kept in spare mappings at most (1 MiB): enough to carry a churning cache from one
/// eviction to the next read, small beside the slack `--cache-max` + 16 MiB allows.
pub const SPARE_BYTES: usize = 1 << 20;

/// Largest mapping kept as a spare (64 KiB): what `--cache-file-max` is set to in practice;
/// a larger one is rare enough to pay its `mmap`. On a 64 KiB kernel, one page.
pub const SPARE_MAX_BYTES: usize = 64 << 10;

/// Dropped mappings by their mapped size in units of 4 KiB (index), as addresses.
struct Spares {
    by_size: [Vec<usize>; SPARE_MAX_BYTES / SMALLEST_PAGE + 1],
    bytes: usize,
}

static SPARES: Mutex<Spares> = Mutex::new(Spares {
    by_size: [const { Vec::new() }; SPARE_MAX_BYTES / SMALLEST_PAGE + 1],
    bytes: 0,
});

fn spares() -> std::sync::MutexGuard<'static, Spares> {
    // Push and pop are single calls: a panic cannot leave the lists half-changed.
    SPARES.lock().unwrap_or_else(|e| e.into_inner())
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
    /// `len` bytes to be overwritten: mapped from a `page` on.
    pub fn for_len(len: usize, page: PageSize) -> Buffer {
        if len >= page.bytes() {
            if let Some(m) = Mapping::new(len, page) {
                return Buffer::Mapped(m);
            }
        }
        Buffer::Heap(vec![0; len])
    }

    /// The bytes, to fill.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Buffer::Heap(v) => v,
            // SAFETY: the mapping is at least `len` bytes, readable and writable, owned by
            // `m` and borrowed mutably through it.
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

/// An anonymous private mapping of `mapped` bytes (whole pages) holding `len` bytes of
/// content; unmapped when dropped.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    mapped: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone; after `freeze` it is only
// read (through `AsRef`), from any thread.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(len: usize, page: PageSize) -> Option<Mapping> {
        // Whole pages asked for, so a spare of this size has room for any content of it.
        let mapped = len.next_multiple_of(page.bytes());
        if let Some(ptr) = Mapping::spare(mapped) {
            return Some(Mapping { ptr, len, mapped });
        }
        if LIVE.fetch_add(1, Ordering::Relaxed) >= MAX_MAPPINGS {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
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
            unsafe { libc::munmap(p, mapped) };
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        };
        Some(Mapping { ptr, len, mapped })
    }

    /// Where a mapping of `mapped` bytes is filed among the spares, if it may be one.
    fn spare_slot(mapped: usize) -> Option<usize> {
        (mapped <= SPARE_MAX_BYTES && mapped % SMALLEST_PAGE == 0).then_some(mapped / SMALLEST_PAGE)
    }

    /// A spare mapping of `mapped` bytes, if one is kept.
    fn spare(mapped: usize) -> Option<NonNull<u8>> {
        let slot = Mapping::spare_slot(mapped)?;
        let mut spares = spares();
        let addr = spares.by_size[slot].pop()?;
        spares.bytes -= mapped;
        NonNull::new(addr as *mut u8)
    }

    /// Keeps this mapping as a spare if there is room; false if it is to be unmapped.
    fn keep_as_spare(&self) -> bool {
        let Some(slot) = Mapping::spare_slot(self.mapped) else {
            return false;
        };
        let mut spares = spares();
        if spares.bytes + self.mapped > SPARE_BYTES {
            return false;
        }
        spares.bytes += self.mapped;
        spares.by_size[slot].push(self.ptr.as_ptr() as usize);
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
        let r = unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.mapped) };
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

    const PAGE: usize = 4096;
    const P4: PageSize = PageSize::SMALLEST;

    #[test]
    fn footprint_is_whole_pages_from_a_page_on_and_the_heaps_slot_below() {
        let [p16, p64] = [16 << 10, 64 << 10].map(|n| PageSize::new(n).unwrap());
        for page in [P4, p16, p64] {
            let n = page.bytes() as u64;
            assert_eq!(page.footprint(0), 0);
            assert_eq!(page.footprint(n), n);
            assert_eq!(page.footprint(n + 1), 2 * n);
            assert_eq!(page.footprint(20 * n - 7), 20 * n);
            // Under a page: the heap's slot, at least the bytes and their header.
            for len in [1, 12, 13, 100, 1000, 4091, 4092, 5000, n - 1]
                .into_iter()
                .filter(|&l| l < n)
            {
                let f = page.footprint(len);
                assert!(f >= len + 4 && f % 16 == 0, "{len} -> {f} on {n}");
                // Slots are at most a quarter apart.
                assert!(f <= (len + 4) * 5 / 4 + 16, "{len} -> {f} on {n}");
            }
        }
        assert_eq!(
            P4.footprint(4095),
            292 * 16,
            "the slot of 292 units holds 4095 + 4"
        );
        assert_eq!(p64.footprint(5 << 10), 340 * 16);
        // The system's page is one of them.
        assert!(PageSize::new(PageSize::of_system().bytes()).is_some());
        assert_eq!(PageSize::new(3000), None);
        assert_eq!(PageSize::new(12 << 10), None);
    }

    #[test]
    fn on_larger_pages_content_under_a_page_goes_to_the_heap() {
        let _turn = serial();
        let p64 = PageSize::new(64 << 10).unwrap();
        for (len, mapped) in [
            (5 << 10, false),
            ((64 << 10) - 1, false),
            (64 << 10, true),
            (100_000, true),
        ] {
            let mut b = Buffer::for_len(len, p64);
            assert_eq!(matches!(b, Buffer::Mapped(_)), mapped, "{len}");
            b.as_mut_slice().fill(9);
            let bytes = b.freeze(len);
            assert!(bytes.len() == len && bytes.iter().all(|&x| x == 9));
        }
    }

    #[test]
    fn content_of_a_page_or_more_is_mapped_and_reads_back() {
        let _turn = serial();
        for len in [1, 4095, 4096, 10_000, 1 << 20] {
            let mut b = Buffer::for_len(len, P4);
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
                let mut b = Buffer::for_len(16 << 10, P4);
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
        let mut b = Buffer::for_len(len, P4);
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
            spares().by_size[3].contains(&(addr as usize)),
            "kept, not unmapped"
        );
        // Another size does not take it; the same number of pages does, whatever the length.
        let other = content(5 * PAGE, 2);
        assert_ne!(other.as_ptr(), addr);
        let mut again = Buffer::for_len(2 * PAGE + 1, P4);
        assert!(matches!(again, Buffer::Mapped(_)));
        assert_eq!(again.as_mut_slice().as_ptr(), addr, "the spare is reused");
        assert!(!spares().by_size[3].contains(&(addr as usize)));
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
        // 16 MiB of touched 4-page content dropped: all but SPARE_BYTES (1 MiB) go
        // back. Other tests run alongside: ask only that 13 of the 16 MiB came back.
        let kept: Vec<Bytes> = (0..1024).map(|_| content(4 * PAGE, 1)).collect();
        let held = anon_kib();
        drop(kept);
        assert!(spares().bytes <= SPARE_BYTES);
        let after = anon_kib();
        assert!(
            after + 13 * 1024 < held,
            "{held} -> {after} KiB with at most {SPARE_BYTES} spare bytes"
        );
        // Past SPARE_MAX_BYTES a mapping is never kept.
        let big = content(SPARE_MAX_BYTES + 1, 1);
        let before = spares().bytes;
        drop(big);
        assert_eq!(spares().bytes, before);
    }

    #[test]
    #[should_panic(expected = "content kept before all of it was written")]
    fn a_buffer_not_filled_to_its_end_is_never_kept() {
        let _turn = serial();
        let mut b = Buffer::for_len(2 * PAGE, P4);
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
            let b = Buffer::for_len(PAGE, P4);
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
        assert!(matches!(Buffer::for_len(PAGE, P4), Buffer::Mapped(_)));
    }
}
