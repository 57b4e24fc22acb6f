//! The site index: every servable file under the root, found once at startup.
//!
//! Files in a container image never change, so the server walks the root once, hashes
//! every file for its ETag, keeps small files in memory (bounded by `--cache-max`) and
//! precomputes each file's response headers. A request is then a hash-map lookup and a
//! clone of ready-made parts: no syscall, no blocking pool. What the index leaves out can
//! never be served: dotfiles, symlinks that lead outside the root, non-UTF-8 names.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};

use crate::config::{Config, ImmutableRule};
use crate::mime;

/// The one dot-directory served, at the root only: RFC 8615's home of `security.txt`,
/// ACME challenges and app-site associations.
const WELL_KNOWN: &str = ".well-known";

/// `Cache-Control` of files that never change under their name.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// A content coding the server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The file as it is.
    Identity,
    /// The `x.br` sidecar.
    Brotli,
    /// The `x.gz` sidecar.
    Gzip,
}

/// Where a representation's bytes are.
#[derive(Debug, Clone)]
pub enum Content {
    /// Read at startup; served without touching the disk.
    Memory(Bytes),
    /// Too large for the memory budget; streamed from disk on each request.
    Disk(Arc<DiskFile>),
}

/// How many large files stay open from startup: an eighth of the descriptor limit, at most
/// 1024 (a container's usual limit of 1048576 gives 1024; a shell's 1024 gives 128). Past
/// that, large files are opened per request, so a site with very many of them cannot take
/// the descriptors connections need.
pub fn keep_open_budget() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let soft = if ok { limit.rlim_cur } else { 1024 };
    (soft / 8).min(1024) as usize
}

/// A file streamed from disk.
#[derive(Debug)]
pub struct DiskFile {
    /// Where it is.
    pub path: Arc<Path>,
    /// The descriptor the ETag was computed through, for as many files as
    /// [`keep_open_budget`] allows: no open per request, and the bytes sent stay the ones
    /// the ETag describes even if the path is replaced later.
    pub open: Option<Arc<fs::File>>,
}

/// One representation of a file: the file itself or one of its precompressed sidecars.
#[derive(Debug)]
pub struct Variant {
    /// Which coding this representation has.
    pub encoding: Encoding,
    /// Its length in bytes.
    pub len: u64,
    /// Its strong ETag, quoted, derived from the content alone.
    pub etag: HeaderValue,
    /// Its bytes.
    pub content: Content,
    /// Every header of a 200 response except `Content-Length`.
    pub headers: HeaderMap,
    /// The headers of a 304 response (RFC 9110 §15.4.5: those a 200 would have had that
    /// caches use, without the ones describing a body).
    pub not_modified: HeaderMap,
}

/// A servable file with its representations.
#[derive(Debug)]
pub struct Asset {
    /// Identity first, then the sidecars clients may prefer: brotli, then gzip.
    pub variants: Vec<Variant>,
    /// Modification time, rounded down to whole seconds as HTTP dates are.
    pub last_modified: Option<SystemTime>,
}

impl Asset {
    /// The representation to send for an `Accept-Encoding` header.
    pub fn negotiate(&self, accept_encoding: Option<&HeaderValue>) -> &Variant {
        if self.variants.len() > 1 {
            if let Some(wanted) = accept_encoding.and_then(|v| v.to_str().ok()) {
                let accept = AcceptEncoding::parse(wanted);
                let mut best: Option<(&Variant, u16)> = None;
                for v in &self.variants[1..] {
                    let q = accept.quality(v.encoding);
                    // Strictly greater, so brotli wins ties as it comes first.
                    if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
                        best = Some((v, q));
                    }
                }
                if let Some((v, _)) = best {
                    return v;
                }
            }
        }
        &self.variants[0]
    }
}

/// What a decoded request path leads to.
#[derive(Debug, Clone)]
pub enum Route {
    /// A file (or a directory's `index.html`).
    Asset(Arc<Asset>),
    /// A directory named without its trailing slash: redirect to the path with one.
    Redirect,
}

/// Counts reported at startup.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Files indexed (sidecars not counted).
    pub files: usize,
    /// Bytes held in memory.
    pub memory_bytes: u64,
    /// Bytes left on disk, streamed per request.
    pub disk_bytes: u64,
    /// Entries skipped: dotfiles, symlinks out of the root, unreadable or non-UTF-8 names.
    pub skipped: usize,
}

/// The index of the root, built once by [`Site::load`].
#[derive(Debug)]
pub struct Site {
    routes: HashMap<Box<str>, Route>,
    /// `404.html` at the root, the body of every 404.
    pub not_found_page: Option<Arc<Asset>>,
    /// The `--fallback` file, answering unknown paths with 200.
    pub fallback: Option<Arc<Asset>>,
    /// What was indexed.
    pub stats: Stats,
}

impl Site {
    /// Walks the root and builds the index. Fails only when the root cannot be read.
    pub fn load(config: &Config, common: &HeaderMap) -> io::Result<Site> {
        let mut builder = Builder {
            root: config.root.clone(),
            common,
            cache_control: match config.cache_control.to_str() {
                Ok(v) => forever(v.to_string()),
                Err(_) => config.cache_control.clone(),
            },
            immutable: &config.immutable,
            memory_left: config.cache_max,
            file_max: config.cache_file_max,
            open_left: keep_open_budget(),
            hash_buf: Vec::new(),
            routes: HashMap::new(),
            visited: HashSet::new(),
            stats: Stats::default(),
        };
        builder.walk(&config.root.clone(), "/")?;
        let lookup_file = |name: &str| match builder.routes.get(format!("/{name}").as_str()) {
            Some(Route::Asset(a)) => Some(a.clone()),
            _ => None,
        };
        let not_found_page = lookup_file("404.html");
        let fallback = config.fallback.as_deref().and_then(lookup_file);
        if config.fallback.is_some() && fallback.is_none() {
            return Err(io::Error::other(format!(
                "--fallback {:?} is not a servable file under the root",
                config.fallback.as_deref().unwrap_or_default()
            )));
        }
        Ok(Site {
            routes: builder.routes,
            not_found_page,
            fallback,
            stats: builder.stats,
        })
    }

    /// Looks up a request path as it came on the wire (still percent-encoded).
    pub fn lookup(&self, raw_path: &str) -> Lookup<'_> {
        // The common case, a plain path, needs no decoding and no allocation.
        if !raw_path.contains('%') {
            if !is_safe_path(raw_path) {
                return Lookup::Forbidden;
            }
            return self.get(raw_path);
        }
        match percent_decode(raw_path) {
            Decoded::Invalid => Lookup::BadRequest,
            Decoded::Forbidden => Lookup::Forbidden,
            Decoded::Path(p) if is_safe_path(&p) => self.get(&p),
            Decoded::Path(_) => Lookup::Forbidden,
        }
    }

    fn get(&self, path: &str) -> Lookup<'_> {
        match self.routes.get(path) {
            Some(route) => Lookup::Found(route),
            None => Lookup::NotFound,
        }
    }
}

/// The outcome of [`Site::lookup`].
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A file or a redirect.
    Found(&'a Route),
    /// No file there: the SPA fallback may answer.
    NotFound,
    /// A path no file can have (traversal, dotfile, escaped slash): always 404.
    Forbidden,
    /// The path is not valid percent-encoding.
    BadRequest,
}

/// Rejects what no indexed path can contain, so that lookups of crafted paths fail early and
/// the rule is stated once: absolute, no empty, `.` or `..` segment, no dotfile, no
/// backslash, no NUL.
fn is_safe_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    !path.contains(['\\', '\0'])
        && rest
            .split('/')
            .all(|seg| !seg.is_empty() && (!seg.starts_with('.') || seg == WELL_KNOWN))
}

enum Decoded {
    Path(String),
    /// Malformed escapes (`%zz`, a lone `%`).
    Invalid,
    /// An escape of `/`, `\` or NUL, or bytes that are not UTF-8: never a file name here.
    Forbidden,
}

fn percent_decode(raw: &str) -> Decoded {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) else {
                return Decoded::Invalid;
            };
            let b = (h * 16 + l) as u8;
            if matches!(b, b'/' | b'\\' | 0) {
                return Decoded::Forbidden;
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Decoded::Path(s),
        Err(_) => Decoded::Forbidden,
    }
}

/// Parsed `Accept-Encoding`: the q-values (in thousandths) of what the server can send.
struct AcceptEncoding {
    br: Option<u16>,
    gzip: Option<u16>,
    any: Option<u16>,
}

impl AcceptEncoding {
    fn parse(header: &str) -> AcceptEncoding {
        let mut accept = AcceptEncoding {
            br: None,
            gzip: None,
            any: None,
        };
        for item in header.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut q = 1000;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        q = parse_qvalue(v.trim()).unwrap_or(0);
                    }
                }
            }
            if coding.eq_ignore_ascii_case("br") {
                accept.br = Some(q);
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                accept.gzip = Some(q);
            } else if coding == "*" {
                accept.any = Some(q);
            }
        }
        accept
    }

    fn quality(&self, e: Encoding) -> u16 {
        let named = match e {
            Encoding::Brotli => self.br,
            Encoding::Gzip => self.gzip,
            Encoding::Identity => return 1000,
        };
        named.or(self.any).unwrap_or(0)
    }
}

/// RFC 9110 §12.4.2 qvalue: `0`, `1`, `0.8`, `1.000`, up to three decimals.
fn parse_qvalue(s: &str) -> Option<u16> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

struct Builder<'a> {
    root: PathBuf,
    common: &'a HeaderMap,
    cache_control: HeaderValue,
    immutable: &'a ImmutableRule,
    memory_left: u64,
    file_max: u64,
    /// How many more large files may be kept open.
    open_left: usize,
    /// Read buffer for hashing files left on disk, shared by all of them: since
    /// `--cache-file-max` is small, a site may have many such files.
    hash_buf: Vec<u8>,
    routes: HashMap<Box<str>, Route>,
    /// Canonical directories already walked, so symlinked directories cannot loop.
    visited: HashSet<PathBuf>,
    stats: Stats,
}

impl Builder<'_> {
    /// Indexes `dir`, whose URL path is `url` (ending in `/`).
    fn walk(&mut self, dir: &Path, url: &str) -> io::Result<()> {
        if !self.visited.insert(dir.to_path_buf()) {
            return Ok(());
        }
        let mut entries: Vec<(String, PathBuf, fs::Metadata)> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let Ok(entry) = entry else {
                self.stats.skipped += 1;
                continue;
            };
            let Ok(name) = entry.file_name().into_string() else {
                self.skip(&entry.path(), "name is not UTF-8");
                continue;
            };
            if name.starts_with('.') && !(url == "/" && name == WELL_KNOWN) {
                // Dotfiles and dot-directories (.git, .env, .htpasswd) are never public.
                self.stats.skipped += 1;
                continue;
            }
            let path = entry.path();
            // Resolve symlinks: the target must itself lie under the root.
            let real = match fs::canonicalize(&path) {
                Ok(r) if r.starts_with(&self.root) => r,
                Ok(_) => {
                    self.skip(&path, "symlink leads outside the root");
                    continue;
                }
                Err(_) => {
                    self.skip(&path, "dangling symlink or unreadable");
                    continue;
                }
            };
            let Ok(meta) = fs::metadata(&real) else {
                self.skip(&path, "unreadable");
                continue;
            };
            entries.push((name, real, meta));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let names: HashSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();

        for (name, real, meta) in &entries {
            if meta.is_dir() {
                let sub = format!("{url}{name}/");
                self.walk(real, &sub)?;
                continue;
            }
            if !meta.is_file() {
                self.stats.skipped += 1;
                continue;
            }
            // A sidecar of a file that exists is one of that file's representations.
            let sidecar_of = name
                .strip_suffix(".br")
                .or_else(|| name.strip_suffix(".gz"));
            if sidecar_of.is_some_and(|base| names.contains(base)) {
                continue;
            }
            let mut files = vec![(Encoding::Identity, real.clone(), meta.clone())];
            for (ext, encoding) in [("br", Encoding::Brotli), ("gz", Encoding::Gzip)] {
                let side = format!("{name}.{ext}");
                if let Some((_, p, m)) = entries.iter().find(|e| e.0 == side && e.2.is_file()) {
                    files.push((encoding, p.clone(), m.clone()));
                }
            }
            let url_path = format!("{url}{name}");
            match self.asset(&url_path, name, files) {
                Ok(asset) => {
                    let asset = Arc::new(asset);
                    self.stats.files += 1;
                    if name == "index.html" {
                        self.routes.insert(url.into(), Route::Asset(asset.clone()));
                        if url != "/" {
                            let bare = url.trim_end_matches('/');
                            self.routes.insert(bare.into(), Route::Redirect);
                        }
                    }
                    self.routes.insert(url_path.into(), Route::Asset(asset));
                }
                Err(e) => self.skip(real, &e.to_string()),
            }
        }
        Ok(())
    }

    fn skip(&mut self, path: &Path, why: &str) {
        self.stats.skipped += 1;
        tracing::debug!(path = %path.display(), why, "not serving");
    }

    fn asset(
        &mut self,
        url_path: &str,
        name: &str,
        files: Vec<(Encoding, PathBuf, fs::Metadata)>,
    ) -> io::Result<Asset> {
        let content_type = HeaderValue::from_static(mime::content_type(name));
        let cache_control = if is_immutable(self.immutable, url_path, name) {
            HeaderValue::from_static(IMMUTABLE)
        } else {
            self.cache_control.clone()
        };
        let last_modified = files[0].2.modified().ok().map(whole_seconds);
        let has_sidecars = files.len() > 1;
        let mut variants = Vec::with_capacity(files.len());
        for (encoding, path, meta) in files {
            let len = meta.len();
            let (content, hash) = if len <= self.file_max && len <= self.memory_left {
                let data = fs::read(&path)?;
                if data.len() as u64 != len {
                    return Err(io::Error::other("file changed while being read"));
                }
                self.memory_left -= len;
                self.stats.memory_bytes += len;
                let hash = xxhash_rust::xxh3::xxh3_128(&data);
                (
                    Content::Memory(Bytes::from_static(Box::leak(data.into_boxed_slice()))),
                    hash,
                )
            } else {
                self.stats.disk_bytes += len;
                let (hash, file) = hash_file(&path, &mut self.hash_buf)?;
                let open = if self.open_left > 0 {
                    self.open_left -= 1;
                    Some(Arc::new(file))
                } else {
                    None
                };
                let disk = DiskFile {
                    path: path.clone().into(),
                    open,
                };
                (Content::Disk(Arc::new(disk)), hash)
            };
            let etag = forever(format!("\"{hash:032x}\""));

            let mut not_modified = self.common.clone();
            not_modified.insert(header::ETAG, etag.clone());
            not_modified.insert(header::CACHE_CONTROL, cache_control.clone());
            if let Some(lm) = last_modified {
                not_modified.insert(header::LAST_MODIFIED, http_date(lm));
            }
            if has_sidecars {
                not_modified.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
            }
            let mut headers = not_modified.clone();
            headers.insert(header::CONTENT_TYPE, content_type.clone());
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            let coding = match encoding {
                Encoding::Identity => None,
                Encoding::Brotli => Some("br"),
                Encoding::Gzip => Some("gzip"),
            };
            if let Some(c) = coding {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(c));
            }
            variants.push(Variant {
                encoding,
                len,
                etag,
                content,
                headers,
                not_modified,
            });
        }
        Ok(Asset {
            variants,
            last_modified,
        })
    }
}

/// The content hash of the file at `path`, and the file, still open. `buf` is scratch
/// space, grown to 256 KiB on first use.
fn hash_file(path: &Path, buf: &mut Vec<u8>) -> io::Result<(u128, fs::File)> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut file = fs::File::open(path)?;
    buf.resize(256 * 1024, 0);
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            return Ok((hasher.digest128(), file));
        }
        hasher.update(&buf[..n]);
    }
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// An IMF-fixdate header value.
pub fn http_date(t: SystemTime) -> HeaderValue {
    forever(httpdate::fmt_http_date(t))
}

/// A header value that lives as long as the process, as the index does. Cloning one is a
/// pointer copy, where a shared one costs two atomic operations per response; the same
/// goes for file contents, which are `Bytes::from_static` for the same reason.
pub fn forever(value: String) -> HeaderValue {
    HeaderValue::from_static(Box::leak(value.into_boxed_str()))
}

/// Whether a file gets the one-year immutable `Cache-Control`. HTML never does: it is the
/// entry point that names the fingerprinted assets, so it must be revalidated.
fn is_immutable(rule: &ImmutableRule, url_path: &str, name: &str) -> bool {
    if name.ends_with(".html") || name.ends_with(".htm") {
        return false;
    }
    rule.prefixes
        .iter()
        .any(|p| url_path.starts_with(p.as_str()))
        || (rule.fingerprinted && is_fingerprinted(name))
}

/// Recognises the content hash bundlers put in file names, after a `.` or `-`:
/// 8+ lowercase hex digits (webpack, Parcel: `app.3f9a2c1e.js`) or exactly 8 base64url
/// characters mixing digits, upper and lower case (Vite, Rollup: `index-B_x9aQ2k.js`).
/// Deliberately strict: a false positive would pin a stale file in caches for a year.
pub fn is_fingerprinted(name: &str) -> bool {
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    stem.char_indices()
        .filter(|&(i, c)| i > 0 && (c == '.' || c == '-'))
        .any(|(i, _)| {
            let tail = &stem[i + 1..];
            let hex = tail.len() >= 8
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && tail.bytes().any(|b| b.is_ascii_digit())
                && tail.bytes().any(|b| b.is_ascii_alphabetic());
            let b64 = tail.len() == 8
                && tail
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && tail.bytes().any(|b| b.is_ascii_digit())
                && tail.bytes().any(|b| b.is_ascii_uppercase())
                && tail.bytes().any(|b| b.is_ascii_lowercase());
            hex || b64
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints() {
        assert!(is_fingerprinted("app.3f9a2c1e.js"));
        assert!(is_fingerprinted("main.0123456789abcdef0123.css"));
        assert!(is_fingerprinted("index-B_x9aQ2k.js"));
        assert!(is_fingerprinted("index-Bx-9aQ2k.js"));
        assert!(!is_fingerprinted("jquery-3.7.1.min.js"));
        assert!(!is_fingerprinted("summer24.jpg"));
        assert!(!is_fingerprinted("photo-summer24.jpg"));
        assert!(!is_fingerprinted("chapter-2-introduction.png"));
        assert!(!is_fingerprinted("IMG20240101.jpg"));
        assert!(!is_fingerprinted("style.css"));
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_path("/"));
        assert!(is_safe_path("/a/b.css"));
        assert!(is_safe_path("/docs/"));
        assert!(!is_safe_path("/../etc/passwd"));
        assert!(!is_safe_path("/a/./b"));
        assert!(!is_safe_path("/.env"));
        assert!(!is_safe_path("/.git/config"));
        assert!(!is_safe_path("/a//b"));
        assert!(!is_safe_path("/a\\b"));
        assert!(!is_safe_path("a"));
        assert!(is_safe_path("/.well-known/security.txt"));
        assert!(!is_safe_path("/.well-known/../.env"));
    }

    #[test]
    fn decoding() {
        assert!(matches!(percent_decode("/caf%C3%A9.html"), Decoded::Path(p) if p == "/café.html"));
        assert!(matches!(percent_decode("/a%2fb"), Decoded::Forbidden));
        assert!(matches!(percent_decode("/a%5Cb"), Decoded::Forbidden));
        assert!(matches!(percent_decode("/a%00"), Decoded::Forbidden));
        assert!(matches!(percent_decode("/a%zz"), Decoded::Invalid));
        assert!(matches!(percent_decode("/a%2"), Decoded::Invalid));
        assert!(matches!(percent_decode("/%ff"), Decoded::Forbidden));
    }

    #[test]
    fn accept_encoding() {
        let a = AcceptEncoding::parse("gzip, deflate, br;q=0.9");
        assert_eq!(a.quality(Encoding::Brotli), 900);
        assert_eq!(a.quality(Encoding::Gzip), 1000);
        let a = AcceptEncoding::parse("br;q=0, *");
        assert_eq!(a.quality(Encoding::Brotli), 0);
        assert_eq!(a.quality(Encoding::Gzip), 1000);
        let a = AcceptEncoding::parse("identity");
        assert_eq!(a.quality(Encoding::Gzip), 0);
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("1.0"), Some(1000));
        assert_eq!(parse_qvalue("2"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
    }
}
