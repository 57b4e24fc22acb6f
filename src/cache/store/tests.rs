use super::*;
use crate::cache::entry::Variants;
use bytes::Bytes;
use std::fs::File;

/// An entry for a new small file of `len` bytes (a real one, for its identity) with
/// nothing of it held, its descriptor and its identity.
fn small_file(dir: &tempfile::TempDir, key: &str, len: usize) -> (Found, File, FileId) {
    let path = dir.path().join(key.trim_start_matches('/'));
    std::fs::write(&path, vec![b'x'; len]).unwrap();
    let file = File::open(&path).unwrap();
    let id = FileId::of(&file.metadata().unwrap());
    let asset = Asset {
        key: key.into(),
        variants: Variants::One([Variant {
            encoding: Encoding::Identity,
            id,
            etag: None,
            resident: Resident::Nothing,
        }]),
        modified: None,
        content_type: "text/plain",
        immutable: false,
        gzippable: false,
    };
    (Found::File(Arc::new(asset)), file, id)
}

fn open(store: &mut Store, key: &str, file: File, id: FileId) {
    let file = Arc::new(file);
    store.update_variant(key, 0, id, |v| v.resident = Resident::Open(file));
}

/// A store of `memory` bytes and `open_files` descriptors keeping two 100-byte files,
/// `/a` and `/b`, with nothing of their bytes yet; their descriptors and identities.
fn store_of_two(
    dir: &tempfile::TempDir,
    memory: u64,
    open_files: usize,
) -> (Store, [(File, FileId); 2]) {
    let mut store = Store::new(Limits {
        memory,
        file_max: 8192,
        entries: 100,
        open_files,
        page: PageSize::SMALLEST,
    });
    let files = ["/a", "/b"].map(|key| {
        let (found, file, id) = small_file(dir, key, 100);
        store.keep(key, found, 1);
        (file, id)
    });
    (store, files)
}

#[test]
fn a_small_file_whose_descriptor_was_dropped_is_still_warm_at_its_second_request() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, [(file_a, id_a), (file_b, id_b)]) = store_of_two(&dir, 1 << 20, 1);
    // First request for /a: sent from a descriptor, not worth memory yet.
    assert!(!store.warm_up("/a"));
    open(&mut store, "/a", file_a, id_a);
    assert_eq!(store.stats().open_files, 1);
    // /b takes the only descriptor.
    assert!(!store.warm_up("/b"));
    open(&mut store, "/b", file_b, id_b);
    assert_eq!(store.stats().open_files, 1);
    assert!(store.stats().evictions >= 1);
    // Second request for /a: its bytes are worth keeping now.
    assert!(store.warm_up("/a"));
}

#[test]
fn each_key_finds_its_own_slot_as_slots_are_evicted_and_reused() {
    // Room for 50 paths; 500 go through, so ids are reused many times over.
    let mut store = Store::new(Limits {
        memory: 1 << 30,
        file_max: 8192,
        entries: 50,
        open_files: 10,
        page: PageSize::SMALLEST,
    });
    let key = |i: usize| format!("/page/{i}.html");
    for i in 0..500 {
        store.keep(&key(i), Found::Missing, 1);
        if i % 3 == 0 {
            // Popular ones are asked for again.
            for j in (0..=i).step_by(30) {
                store.hit(&key(j), 1);
            }
        }
        if i % 7 == 0 {
            store.forget(&key(i / 2));
        }
    }
    let kept: Vec<usize> = (0..500)
        .filter(|&i| store.find(&key(i)).is_some())
        .collect();
    assert_eq!(kept.len() as u64, store.stats().entries);
    assert!(kept.len() <= 50 && kept.len() >= 40, "{kept:?}");
    for i in kept {
        let id = store.find(&key(i)).unwrap();
        assert_eq!(key_of(&store.slots, id), key(i));
    }
    assert!(store.find("/page/never.html").is_none());
}

#[test]
fn dropped_bytes_start_the_count_over() {
    let dir = tempfile::tempdir().unwrap();
    // Room for two entries and one file's 100 bytes (a heap slot of 112).
    let (mut store, [(_, id_a), (_, id_b)]) = store_of_two(&dir, 2 * (ENTRY_BYTES + 2) + 150, 10);
    assert!(!store.warm_up("/a"));
    assert!(store.warm_up("/a"));
    let bytes = Bytes::from(vec![b'x'; 100]);
    store.update_variant("/a", 0, id_a, |v| {
        v.resident = Resident::Memory(bytes.clone())
    });
    assert_eq!(store.stats().content_bytes, 112);
    store.update_variant("/b", 0, id_b, |v| v.resident = Resident::Memory(bytes));
    // /b's bytes pushed /a's out: /a needs two requests again.
    assert_eq!(store.stats().content_bytes, 112);
    assert!(!store.warm_up("/a"));
    assert!(store.warm_up("/a"));
}
