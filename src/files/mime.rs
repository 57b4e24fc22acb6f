//! Content types by file extension: `mime_guess`'s table, with the few answers browsers
//! insist on put over it, and `charset=utf-8` on text (browsers otherwise guess).
//!
//! The overrides are where a browser refuses or misreads what `mime_guess` says: module
//! scripts (`.mjs`, `.cjs`) must be a JavaScript type, `WebAssembly.instantiateStreaming`
//! wants `application/wasm`, a web app manifest `application/manifest+json`, fonts their
//! registered `font/*` types, HLS players `application/vnd.apple.mpegurl` and
//! `video/mp2t`, Safari's AR Quick Look `model/vnd.usdz+zip`. A few more are the
//! registered type where `mime_guess` still has an older `x-` one (YAML, RFC 9512; zstd,
//! RFC 8878; vCard, RFC 6350; MP4 audio and video, RFC 4337).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// What a file with no known extension is.
pub const UNKNOWN: &str = "application/octet-stream";

/// The `Content-Type` for a file name; [`UNKNOWN`] when unknown.
pub fn content_type(file_name: &str) -> &'static str {
    let Some((_, ext)) = file_name.rsplit_once('.') else {
        return UNKNOWN;
    };
    if let Some(t) = browser_override(&ext.to_ascii_lowercase()) {
        return t;
    }
    match mime_guess::from_ext(ext).first_raw() {
        Some(t) if t.starts_with("text/") => with_charset(t),
        Some(t) => t,
        None => UNKNOWN,
    }
}

/// The types browsers require, and registered ones, where `mime_guess` says something
/// else or nothing.
fn browser_override(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "webmanifest" => "application/manifest+json",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "usdz" => "model/vnd.usdz+zip",
        "yaml" | "yml" => "application/yaml",
        "toml" => "application/toml",
        "zst" => "application/zstd",
        "tgz" => "application/gzip",
        "vcf" | "vcard" => "text/vcard; charset=utf-8",
        "m4a" => "audio/mp4",
        "m4v" => "video/mp4",
        _ => return None,
    })
}

/// `text` with `; charset=utf-8`, made once per type: the table is finite (a few dozen
/// text types), so the strings kept for the process's life are bounded by it, and the
/// cache can keep a `&'static str` per file as it does for every other type.
fn with_charset(text: &'static str) -> &'static str {
    static MADE: OnceLock<Mutex<HashMap<&'static str, &'static str>>> = OnceLock::new();
    let mut made = MADE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    made.entry(text)
        .or_insert_with(|| Box::leak(format!("{text}; charset=utf-8").into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_browsers_insist_on() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.MJS"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("m.wasm"), "application/wasm");
        assert_eq!(
            content_type("site.webmanifest"),
            "application/manifest+json"
        );
        assert_eq!(content_type("f.woff"), "font/woff");
        assert_eq!(content_type("f.woff2"), "font/woff2");
        assert_eq!(content_type("f.otf"), "font/otf");
        assert_eq!(content_type("live.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("seg1.ts"), "video/mp2t");
    }

    #[test]
    fn text_says_its_charset_and_the_rest_comes_from_mime_guess() {
        assert_eq!(content_type("style.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("notes.txt"), "text/plain; charset=utf-8");
        assert_eq!(content_type("data.csv"), "text/csv; charset=utf-8");
        // The same string each time: made once, not per call.
        assert!(std::ptr::eq(content_type("a.css"), content_type("b.css")));
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        assert_eq!(content_type("photo.avif"), "image/avif");
        assert_eq!(content_type("data.json"), "application/json");
        assert_eq!(content_type("doc.pdf"), "application/pdf");
        assert_eq!(content_type("Makefile"), UNKNOWN);
        assert_eq!(content_type("archive.unknownext"), UNKNOWN);
        assert_eq!(content_type("trailing."), UNKNOWN);
    }
}
