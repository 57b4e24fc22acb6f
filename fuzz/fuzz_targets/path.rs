//! Request paths: decoding and the rule for what no servable path can be. Whatever comes
//! in, a path the server accepts is absolute and holds no traversal, dotfile (but the
//! root's `.well-known`), backslash or NUL; and the decision is the same on a second look.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyserve::files::path::{check, is_safe_path, Checked};

fuzz_target!(|raw: &str| {
    if let Checked::Path(p) = check(raw) {
        assert!(p.starts_with('/'), "{raw:?} -> {p:?}");
        assert!(is_safe_path(&p), "{raw:?} -> {p:?}");
        assert!(!p.contains('\0') && !p.contains('\\'), "{raw:?} -> {p:?}");
        let segments: Vec<&str> = p.split('/').collect();
        for (i, s) in segments.iter().enumerate() {
            assert!(*s != ".." && *s != ".", "{raw:?} -> {p:?}");
            assert!(
                !s.starts_with('.') || (i == 1 && *s == ".well-known"),
                "{raw:?} -> {p:?}"
            );
        }
        // A decoded path without '%' is its own decoding.
        if !p.contains('%') {
            assert_eq!(check(&p), Checked::Path(p.clone()));
        }
    }
});
