//! The cache as the server drives it (lookups, then contents), on a real folder, with the
//! kernel's page size injected: the budget must hold on 4, 16 and 64 KiB pages alike.

use super::*;
use crate::cache::mapped::PageSize;
use crate::cache::watch::Mode;
use crate::ops::config::{self, Command};

/// A cache of `root` with `limits`, not watching (nothing changes here).
fn cache_of(root: &std::path::Path, limits: Limits) -> Arc<Cache> {
    let args = ["--root".into(), root.as_os_str().to_owned()];
    let Command::Serve(config) = config::parse(args, |_| None).unwrap() else {
        panic!("a serve command")
    };
    let (watch, _) = Watch::start(root, Mode::Off);
    Cache::new(&config, limits, watch).unwrap()
}

/// Asks for `path` as a request does, the bytes included.
fn serve(cache: &Cache, path: &str) -> usize {
    let Found::File(asset) = cache.lookup(path) else {
        panic!("{path} is a file")
    };
    match cache.content(&asset, 0).unwrap() {
        Content::Memory(b) => b.len(),
        Content::File(_, id) => id.len as usize,
    }
}

fn limits(memory: u64, page: PageSize) -> Limits {
    Limits {
        memory,
        file_max: 128 << 10,
        entries: 10_000,
        open_files: 8,
        page,
    }
}

#[test]
fn the_memory_budget_holds_on_every_page_size() {
    let dir = tempfile::tempdir().unwrap();
    // Files of 5 KiB (a 4 KiB kernel maps them, larger ones put them in the heap) and of
    // 70 KiB (two 64 KiB pages), as a site's pages and images.
    let mut paths = Vec::new();
    for i in 0..200 {
        let (len, name) = if i % 10 == 0 {
            (70 << 10, format!("img{i}.png"))
        } else {
            (5 << 10, format!("page{i}.html"))
        };
        std::fs::write(dir.path().join(&name), vec![b'a' + (i % 26) as u8; len]).unwrap();
        paths.push((format!("/{name}"), len));
    }
    for bytes in [4 << 10, 16 << 10, 64 << 10] {
        let page = PageSize::new(bytes).unwrap();
        let budget = 1 << 20;
        let cache = cache_of(dir.path(), limits(budget, page));
        let mut most = 0;
        // Each path twice (kept from its second request on), three rounds, so the cache
        // fills, evicts and fills again.
        for _ in 0..3 {
            for (path, len) in &paths {
                for _ in 0..2 {
                    assert_eq!(serve(&cache, path), *len);
                    let memory = cache.stats().memory_bytes;
                    assert!(
                        memory <= budget,
                        "{bytes} B pages: {memory} bytes charged for a budget of {budget}"
                    );
                    most = most.max(cache.stats().content_bytes);
                }
            }
        }
        assert!(
            most > budget / 2,
            "{bytes} B pages: the cache held {most} bytes at most"
        );
        assert!(
            cache.stats().evictions > 0,
            "{bytes} B pages: the site is over the budget"
        );
    }
}

#[test]
fn content_is_charged_what_it_holds_on_the_injected_page_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.png"), vec![1u8; 70 << 10]).unwrap();
    std::fs::write(dir.path().join("small.html"), vec![2u8; 5 << 10]).unwrap();
    // (page size, what 70 KiB holds, what 5 KiB holds): whole pages of a mapping, or the
    // heap's slot (340 units of 16 bytes) where a page is more than the file.
    for (bytes, big, small) in [
        (4 << 10, 72 << 10, 8 << 10),
        (16 << 10, 80 << 10, 340 * 16),
        (64 << 10, 128 << 10, 340 * 16),
    ] {
        let cache = cache_of(dir.path(), limits(64 << 20, PageSize::new(bytes).unwrap()));
        for path in ["/big.png", "/small.html"] {
            serve(&cache, path);
            serve(&cache, path);
        }
        assert_eq!(cache.stats().content_bytes, big + small, "{bytes} B pages");
    }
}
