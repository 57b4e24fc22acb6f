//! A per-thread cache of freed small blocks in front of the C library's allocator.
//!
//! Why: musl's allocator (mallocng) takes a lock and walks its slot metadata on every call;
//! serving a page costs about five small allocations (hyper's header maps and buffers, the
//! response's parts), and on the bench's large site `malloc`/`free` were 6% of the server's
//! CPU (perf, Zipf load). A thread that serves requests keeps the blocks it frees in one
//! list per size and hands them out again without a call into musl.
//!
//! The invariant that makes reuse safe: **every** block of up to [`MAX_CACHED`] bytes (and
//! alignment up to 16) is allocated at its class's full size, on every thread, cached or
//! not. So any block of a class can serve any request of that class, whichever thread
//! allocated or frees it. Only threads that called [`cache_this_thread`] keep blocks; each
//! keeps at most [`CLASS_BYTES`] per class and hands everything back to the C library in
//! [`release_this_thread`] (tokio's thread-stop hook), so a thread that ends leaks nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// Sizes are rounded up to a multiple of this (also the alignment every block has).
const GRANULE: usize = 16;
/// Largest block kept; larger ones go straight to the C library.
pub const MAX_CACHED: usize = 2048;
const CLASSES: usize = MAX_CACHED / GRANULE;
/// Bytes of free blocks a thread keeps per class, at most (and at least 4 blocks).
pub const CLASS_BYTES: usize = 16 << 10;

/// A free block: its first word links to the next.
struct Free {
    next: *mut Free,
}

struct Lists {
    enabled: bool,
    heads: [*mut Free; CLASSES],
    counts: [u16; CLASSES],
}

thread_local! {
    // Const-initialised and without Drop: no lazy registration, so no allocation while
    // the allocator itself reaches it.
    static LISTS: UnsafeCell<Lists> = const {
        UnsafeCell::new(Lists {
            enabled: false,
            heads: [ptr::null_mut(); CLASSES],
            counts: [0; CLASSES],
        })
    };
}

/// The size class of `layout`, if it is one this allocator rounds and may cache.
#[inline]
fn class_of(layout: &Layout) -> Option<usize> {
    if layout.size() <= MAX_CACHED && layout.align() <= GRANULE {
        // size 0 never reaches a GlobalAlloc; 1..=16 is class 0.
        Some((layout.size().max(1) - 1) / GRANULE)
    } else {
        None
    }
}

/// The layout every block of class `class` is allocated with.
#[inline]
fn class_layout(class: usize) -> Layout {
    // SAFETY: a non-zero multiple of 16, aligned to 16 (a power of two), far below isize::MAX.
    unsafe { Layout::from_size_align_unchecked((class + 1) * GRANULE, GRANULE) }
}

/// How many free blocks of class `class` a thread keeps.
#[inline]
fn class_cap(class: usize) -> u16 {
    (CLASS_BYTES / ((class + 1) * GRANULE)).max(4) as u16
}

/// The allocator: [`System`] with small sizes rounded to their class and, on threads that
/// asked for it, freed small blocks kept for reuse.
pub struct SmallAlloc;

unsafe impl GlobalAlloc for SmallAlloc {
    // Not inlined: inlined into every allocation site, the lists' code grew the binary by
    // 120 KB; one call more costs nothing measurable.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(&layout) else {
            // SAFETY: forwarded as given.
            return unsafe { System.alloc(layout) };
        };
        let reused = LISTS.with(|l| {
            // SAFETY: this thread's own lists; nothing in here re-enters the allocator.
            let l = unsafe { &mut *l.get() };
            let head = l.heads[class];
            if head.is_null() {
                return ptr::null_mut();
            }
            // SAFETY: a block on the list is at least 16 bytes and holds its link.
            l.heads[class] = unsafe { (*head).next };
            l.counts[class] -= 1;
            head as *mut u8
        });
        if !reused.is_null() {
            return reused;
        }
        // SAFETY: a valid, non-zero layout.
        unsafe { System.alloc(class_layout(class)) }
    }

    #[inline(never)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(&layout).is_none() {
            // calloc: a large zeroed block comes as untouched pages, which a memset here
            // would make resident (measured: +1.1 MiB idle RSS).
            // SAFETY: forwarded as given.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: a valid layout; the block has at least `layout.size()` bytes.
        unsafe {
            let block = self.alloc(layout);
            if !block.is_null() {
                ptr::write_bytes(block, 0, layout.size());
            }
            block
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(&layout) else {
            // SAFETY: allocated by System with this layout (alloc forwarded it).
            return unsafe { System.dealloc(block, layout) };
        };
        // A block of a class was allocated at the class's size, so it is 16-aligned: a
        // pointer that is not means a caller freed something this allocator did not give.
        assert!(
            block as usize % GRANULE == 0,
            "small_alloc: freeing a block that is not 16-aligned"
        );
        let kept = LISTS.with(|l| {
            // SAFETY: this thread's own lists.
            let l = unsafe { &mut *l.get() };
            if !l.enabled || l.counts[class] >= class_cap(class) {
                return false;
            }
            let free = block as *mut Free;
            // SAFETY: the block is at least 16 bytes, 16-aligned, and now ours.
            unsafe {
                free.write(Free {
                    next: l.heads[class],
                })
            };
            l.heads[class] = free;
            l.counts[class] += 1;
            true
        });
        if !kept {
            // SAFETY: allocated by System with the class layout (see the invariant).
            unsafe { System.dealloc(block, class_layout(class)) }
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (whole function): GlobalAlloc's contract gives a block of `layout` and a
        // valid new size with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(&layout), class_of(&new_layout)) {
            // Both large: the C library may grow in place.
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            // The same class: the block already has room.
            (Some(a), Some(b)) if a == b => block,
            _ => {
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    let keep = layout.size().min(new_size);
                    unsafe {
                        ptr::copy_nonoverlapping(block, new, keep);
                        self.dealloc(block, layout);
                    }
                }
                new
            }
        }
    }
}

/// Lets the calling thread keep the small blocks it frees (a thread that serves requests).
pub fn cache_this_thread() {
    LISTS.with(|l| {
        // SAFETY: this thread's own lists.
        unsafe { (*l.get()).enabled = true };
    });
}

/// Hands the calling thread's kept blocks back to the C library and stops keeping more
/// (before the thread ends).
pub fn release_this_thread() {
    LISTS.with(|l| {
        // SAFETY: this thread's own lists; the blocks on them are ours alone.
        let l = unsafe { &mut *l.get() };
        l.enabled = false;
        for class in 0..CLASSES {
            let mut block = std::mem::replace(&mut l.heads[class], ptr::null_mut());
            while !block.is_null() {
                // SAFETY: a listed block holds its link and was allocated at the class size.
                unsafe {
                    let next = (*block).next;
                    System.dealloc(block as *mut u8, class_layout(class));
                    block = next;
                }
            }
            l.counts[class] = 0;
        }
    });
}

/// How many blocks the calling thread keeps now, over all classes (for tests).
pub fn kept_blocks() -> usize {
    LISTS.with(|l| {
        // SAFETY: this thread's own lists.
        unsafe { (*l.get()).counts.iter().map(|&c| c as usize).sum() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Runs `test` on a new thread that keeps its freed blocks, then releases them (the
    /// test's thread keeps its own lists apart from every other test's).
    fn on_a_caching_thread(test: impl FnOnce(&SmallAlloc) + Send + 'static) {
        std::thread::spawn(move || {
            cache_this_thread();
            test(&SmallAlloc);
            release_this_thread();
            assert_eq!(kept_blocks(), 0);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sizes_round_to_their_class_and_large_or_overaligned_ones_are_not_cached() {
        assert_eq!(class_of(&layout(1, 1)), Some(0));
        assert_eq!(class_of(&layout(16, 8)), Some(0));
        assert_eq!(class_of(&layout(17, 8)), Some(1));
        assert_eq!(class_of(&layout(MAX_CACHED, 16)), Some(CLASSES - 1));
        assert_eq!(class_of(&layout(MAX_CACHED + 1, 8)), None);
        assert_eq!(class_of(&layout(64, 32)), None);
        for class in 0..CLASSES {
            assert!(class_layout(class).size() >= GRANULE * (class + 1));
            assert!(class_cap(class) >= 4);
            assert!(
                class_cap(class) as usize * class_layout(class).size()
                    <= CLASS_BYTES.max(4 * MAX_CACHED)
            );
        }
    }

    #[test]
    fn a_freed_block_is_reused_whole_on_a_caching_thread_and_released_at_its_end() {
        on_a_caching_thread(|a| {
            let before = kept_blocks();
            unsafe {
                let l = layout(100, 8);
                let p = a.alloc(l);
                // The whole class (112 bytes) is usable.
                ptr::write_bytes(p, 0xAB, 112);
                a.dealloc(p, l);
                assert_eq!(kept_blocks(), before + 1);
                // Any size of the same class gets that block back.
                let q = a.alloc(layout(97, 4));
                assert_eq!(q, p);
                assert_eq!(kept_blocks(), before);
                // Grown within its class: the same block; beyond it: moved, bytes kept.
                ptr::write_bytes(q, 7, 97);
                let r = a.realloc(q, layout(97, 4), 110);
                assert_eq!(r, q);
                let s = a.realloc(r, layout(110, 4), 1000);
                assert!(std::slice::from_raw_parts(s, 97).iter().all(|&b| b == 7));
                a.dealloc(s, layout(1000, 4));
            }
            assert!(kept_blocks() > 0);
            release_this_thread();
            assert_eq!(kept_blocks(), 0);
            // Not caching any more: freed blocks go back to the C library.
            unsafe {
                let p = a.alloc(layout(64, 8));
                a.dealloc(p, layout(64, 8));
            }
            assert_eq!(kept_blocks(), 0);
        });
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        on_a_caching_thread(|a| unsafe {
            let l = layout(200, 8);
            let p = a.alloc(l);
            ptr::write_bytes(p, 0xFF, 200);
            a.dealloc(p, l);
            let q = a.alloc_zeroed(l);
            assert_eq!(q, p, "the dirty block is the one reused");
            assert!(std::slice::from_raw_parts(q, 200).iter().all(|&b| b == 0));
            a.dealloc(q, l);
            let big = layout(1 << 20, 8);
            let r = a.alloc_zeroed(big);
            assert!(std::slice::from_raw_parts(r, 1 << 20)
                .iter()
                .all(|&b| b == 0));
            a.dealloc(r, big);
        });
    }

    #[test]
    fn a_thread_keeps_at_most_its_cap_per_class() {
        on_a_caching_thread(|a| {
            let l = layout(2000, 8);
            let class = class_of(&l).unwrap();
            let blocks: Vec<*mut u8> = (0..100).map(|_| unsafe { a.alloc(l) }).collect();
            for &b in &blocks {
                unsafe { a.dealloc(b, l) };
            }
            assert_eq!(kept_blocks(), class_cap(class) as usize);
        });
    }

    #[test]
    fn blocks_move_between_threads_safely() {
        // Allocated on a thread that does not cache, freed and reused on one that does: the
        // block still has its class's full size.
        let a = SmallAlloc;
        let l = layout(40, 8);
        let p = unsafe { a.alloc(l) } as usize;
        on_a_caching_thread(move |a| unsafe {
            a.dealloc(p as *mut u8, l);
            let q = a.alloc(layout(48, 16));
            assert_eq!(q as usize, p);
            ptr::write_bytes(q, 1, 48);
            a.dealloc(q, layout(48, 16));
        });
    }
}
