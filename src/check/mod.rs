//! `tinyserve check`: lints a site the way the server will read it, so that a broken site
//! fails the image build instead of reaching users through a healthy server.
//!
//! It walks the root once and reports, one line each, as `LEVEL: FILE[:LINE]: message`:
//! - errors: references from HTML (`href`, `src`, `srcset`, `poster`, `<style>`) and CSS
//!   (`url()`, `@import`) to paths inside the site that nothing answers; sidecars
//!   (`x.gz`, `x.zst`) whose checksum and length are not `x`'s; `_headers` /
//!   `_redirects` that do not parse or that send to a missing local path; a configured
//!   `--fallback` that is missing; files the server cannot read;
//! - warnings: sidecars larger than their source, or older than it where their bytes
//!   cannot be compared (`x.br`: see [`sidecar`]); files the server never serves
//!   (dotfiles, non-UTF-8 names, symlinks out of the root, special files); files served as
//!   `application/octet-stream` because their extension is unknown.
//!
//! Then a summary: files and bytes, and which files get which `Cache-Control`.
//! [`scan`] finds the references, [`sidecar`] compares the sidecars.

mod references;
use references::{answers, check_references, strip_query};
pub mod scan;
pub mod sidecar;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::files::headers::ImmutableRule;
use crate::files::negotiate::Encoding;
use crate::files::resolve::Root;
use crate::files::rules::Rules;

/// What `tinyserve check` looks at: the options of the server that change what it serves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The site's folder, canonical.
    pub root: PathBuf,
    /// `--fallback`, relative to the root, as configured (it may be missing: that is an error
    /// the check reports).
    pub fallback: Option<String>,
    /// `--immutable`.
    pub immutable: ImmutableRule,
    /// `--cache-control`.
    pub cache_control: String,
    /// `--pretty-urls`: a link to `/about` is answered by `about.html`.
    pub pretty_urls: bool,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Users will see something broken: `check` exits 1.
    Error,
    /// Probably unintended, but nothing breaks.
    Warning,
}

/// One problem, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How bad it is.
    pub level: Level,
    /// The file, relative to the root (`""` for the site as a whole).
    pub file: String,
    /// The line in that file, when it has one.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

/// The result of a check.
#[derive(Debug, Default)]
pub struct Report {
    /// Every problem found, in the order files were read.
    pub findings: Vec<Finding>,
    /// The summary lines.
    pub summary: Vec<String>,
}

impl Report {
    /// How many findings have this level.
    pub fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }

    fn add(&mut self, level: Level, file: &str, line: Option<usize>, message: String) {
        self.findings.push(Finding {
            level,
            file: file.to_string(),
            line,
            message,
        });
    }

    /// The report as `check` prints it: findings by file and line, then the summary.
    pub fn render(&mut self) -> String {
        self.findings
            .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        let mut out = String::new();
        for f in &self.findings {
            let level = match f.level {
                Level::Error => "error",
                Level::Warning => "warning",
            };
            let place = match (f.file.as_str(), f.line) {
                ("", _) => String::new(),
                (file, Some(line)) => format!("{file}:{line}: "),
                (file, None) => format!("{file}: "),
            };
            let _ = writeln!(out, "{level}: {place}{}", f.message);
        }
        for line in &self.summary {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "{} errors, {} warnings",
            self.count(Level::Error),
            self.count(Level::Warning)
        );
        out
    }
}

/// What the walk found: servable files by URL path, and folders.
#[derive(Default)]
struct Site {
    /// URL path (`/a/b.html`) → size, for every regular file a request can name.
    files: BTreeMap<String, u64>,
    /// Folders reached through a symlink, canonical: a loop is followed once.
    linked_folders: Vec<PathBuf>,
    /// How many folders there are.
    folders: usize,
}

/// Checks the site under `options.root`.
pub fn run(options: &Options) -> Report {
    let mut report = Report::default();
    let root = match Root::open(&options.root) {
        Ok(r) => r,
        Err(e) => {
            report.add(
                Level::Error,
                "",
                None,
                format!("cannot open {}: {e}", options.root.display()),
            );
            return report;
        }
    };
    let mut site = Site::default();
    walk(&root, &options.root, "/", &mut site, &mut report);

    let rules = match Rules::load(&options.root, &crate::files::headers::REFUSED_HEADERS) {
        Ok(r) => r,
        Err(why) => {
            let (file, line, message) = split_location(&why);
            report.add(Level::Error, &file, line, message);
            Rules::default()
        }
    };
    for (line, to) in rules.local_targets() {
        let path = strip_query(to);
        if !answers(
            &site,
            &rules,
            &crate::files::path::check(path),
            false,
            false,
            options.pretty_urls,
        ) {
            report.add(
                Level::Error,
                crate::files::rules::FILES[1],
                Some(line),
                format!("{to} is not in the site: the rule sends users to a 404"),
            );
        }
    }
    if let Some(fallback) = &options.fallback {
        if !site.files.contains_key(&format!("/{fallback}")) {
            report.add(
                Level::Error,
                "",
                None,
                format!("the fallback {fallback:?} (--fallback) is not a servable file"),
            );
        }
    }

    let sidecars = check_sidecars(&root, &site, &mut report);
    let references = check_references(&root, &site, &rules, options, &mut report);
    check_types(&site, &mut report);
    summarize(&site, &rules, options, sidecars, references, &mut report);
    report
}

/// `FILE:LINE: why` (as rule errors read) into its parts.
fn split_location(message: &str) -> (String, Option<usize>, String) {
    let mut parts = message.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(line), Some(why)) if line.parse::<usize>().is_ok() => {
            (file.to_string(), line.parse().ok(), why.trim().to_string())
        }
        _ => (String::new(), None, message.to_string()),
    }
}

fn walk(root: &Root, dir: &Path, url: &str, site: &mut Site, report: &mut Report) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let level = Level::Error;
            report.add(
                level,
                url.trim_start_matches('/'),
                None,
                format!("cannot list this folder: {e}"),
            );
            return;
        }
    };
    // Directory order: the report is sorted at the end.
    for entry in entries.filter_map(Result::ok) {
        let os_name = entry.file_name();
        let Some(name) = os_name.to_str() else {
            report.add(
                Level::Warning,
                &format!("{}{}", &url[1..], os_name.to_string_lossy()),
                None,
                "the name is not UTF-8: no URL names it, so it is never served".to_string(),
            );
            continue;
        };
        // Kubernetes' atomic writer (`..data`, `..2026_11_26...`): ConfigMap internals,
        // reached through the symlinks beside them.
        if name.starts_with("..") {
            continue;
        }
        let path = format!("{url}{name}");
        let rel = &path[1..];
        if url == "/" && crate::files::rules::is_rules_file(name) {
            continue;
        }
        let kind = entry.file_type();
        let is_dir_entry = kind.as_ref().is_ok_and(|k| k.is_dir());
        if !crate::files::path::is_safe_path(&path) {
            let what = if name.starts_with('.') {
                "a dotfile"
            } else {
                "no URL can name it"
            };
            let under = if is_dir_entry {
                ": nothing under it"
            } else {
                ""
            };
            report.add(
                Level::Warning,
                rel,
                None,
                format!("never served ({what}){under}"),
            );
            continue;
        }
        let is_symlink = kind.as_ref().is_ok_and(|k| k.is_symlink());
        let meta = if is_symlink {
            match std::fs::canonicalize(entry.path()) {
                Err(_) => {
                    report.add(
                        Level::Warning,
                        rel,
                        None,
                        "a broken symlink: never served".into(),
                    );
                    continue;
                }
                Ok(real) if !real.starts_with(root.path()) => {
                    report.add(
                        Level::Warning,
                        rel,
                        None,
                        format!(
                            "a symlink to {}, outside the root: never served",
                            real.display()
                        ),
                    );
                    continue;
                }
                Ok(_) => std::fs::metadata(entry.path()),
            }
        } else {
            entry.metadata()
        };
        let Ok(meta) = meta else { continue };
        if meta.is_dir() {
            if is_symlink {
                let real = std::fs::canonicalize(entry.path()).unwrap_or_else(|_| entry.path());
                if dir.starts_with(&real) || site.linked_folders.contains(&real) {
                    continue;
                }
                site.linked_folders.push(real);
            }
            site.folders += 1;
            walk(root, &entry.path(), &format!("{path}/"), site, report);
        } else if !meta.is_file() {
            report.add(
                Level::Warning,
                rel,
                None,
                "not a regular file (a FIFO, socket or device): never served".into(),
            );
        } else {
            match root.open_file(rel) {
                Ok(_) => {
                    site.files.insert(path, meta.len());
                }
                Err(e) => report.add(
                    Level::Error,
                    rel,
                    None,
                    format!("the server cannot open it ({e}): requests get 404"),
                ),
            }
        }
    }
}

/// The source a sidecar belongs to, if `path` is one and the source exists.
fn sidecar_source<'a>(site: &Site, path: &'a str) -> Option<(&'a str, Encoding)> {
    Encoding::sidecar_of(path).filter(|(base, _)| site.files.contains_key(*base))
}

fn read(root: &Root, path: &str) -> io::Result<Vec<u8>> {
    let (mut file, _) = root.open_file(path.trim_start_matches('/'))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Sidecar counts by coding, for the summary.
#[derive(Default)]
struct Sidecars {
    br: usize,
    zst: usize,
    gz: usize,
    /// Checksum and length equal to their source's.
    verified: usize,
    /// Only compared by date (brotli, zstd without checksum).
    by_date: usize,
}

fn modified(root: &Root, path: &str) -> Option<std::time::SystemTime> {
    let (file, _) = root.open_file(path.trim_start_matches('/')).ok()?;
    file.metadata().ok()?.modified().ok()
}

fn check_sidecars(root: &Root, site: &Site, report: &mut Report) -> Sidecars {
    let mut counts = Sidecars::default();
    for (path, &size) in &site.files {
        let Some((source, encoding)) = sidecar_source(site, path) else {
            continue;
        };
        match encoding {
            Encoding::Brotli => counts.br += 1,
            Encoding::Zstd => counts.zst += 1,
            _ => counts.gz += 1,
        }
        let rel = &path[1..];
        let (Ok(sidecar), Ok(original)) = (read(root, path), read(root, source)) else {
            report.add(Level::Error, rel, None, "cannot be read".into());
            continue;
        };
        let coding = encoding.token().unwrap_or("");
        match sidecar::compare(encoding, &sidecar, &original) {
            sidecar::Verdict::Same => counts.verified += 1,
            sidecar::Verdict::Differs(how) => report.add(
                Level::Error,
                rel,
                None,
                format!(
                    "holds other bytes than {} ({how}): a stale copy, sent to every client \
                     that accepts {coding}; regenerate or delete it",
                    &source[1..]
                ),
            ),
            sidecar::Verdict::Corrupt(why) => report.add(
                Level::Error,
                rel,
                None,
                format!("not a valid {coding} stream ({why}); regenerate or delete it"),
            ),
            sidecar::Verdict::Unverified => {
                counts.by_date += 1;
                if modified(root, path) < modified(root, source) {
                    report.add(
                        Level::Warning,
                        rel,
                        None,
                        format!(
                            "older than {}, and its bytes cannot be checked here: probably \
                             stale; regenerate it",
                            &source[1..]
                        ),
                    );
                }
            }
        }
        let source_size = site.files[source];
        if size >= source_size {
            report.add(
                Level::Warning,
                rel,
                None,
                format!(
                    "{size} bytes, not smaller than {} ({source_size} bytes): it saves \
                     nothing; delete it",
                    &source[1..]
                ),
            );
        }
    }
    counts
}

fn check_types(site: &Site, report: &mut Report) {
    for path in site.files.keys() {
        if sidecar_source(site, path).is_some() {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if crate::files::mime::content_type(name) == crate::files::mime::UNKNOWN {
            report.add(
                Level::Warning,
                &path[1..],
                None,
                "served as application/octet-stream (unknown extension): browsers download it"
                    .into(),
            );
        }
    }
}

fn summarize(
    site: &Site,
    rules: &Rules,
    options: &Options,
    sidecars: Sidecars,
    (pages, sheets, references): (usize, usize, usize),
    report: &mut Report,
) {
    let served: Vec<(&String, u64)> = site
        .files
        .iter()
        .filter(|(p, _)| sidecar_source(site, p).is_none())
        .map(|(p, s)| (p, *s))
        .collect();
    let bytes: u64 = site.files.values().sum();
    report.summary.push(format!(
        "site {}: {} files ({} bytes), {} served paths in {} folders",
        options.root.display(),
        site.files.len(),
        bytes,
        served.len(),
        site.folders + 1
    ));
    report.summary.push(format!(
        "  references: {references} checked in {pages} HTML pages and {sheets} stylesheets"
    ));
    report.summary.push(format!(
        "  sidecars: {} .br, {} .zst, {} .gz; {} match their source's checksum and length, \
         {} compared by date only (brotli carries no checksum)",
        sidecars.br, sidecars.zst, sidecars.gz, sidecars.verified, sidecars.by_date
    ));
    // Few policies: a list beats a map here.
    let mut policies: Vec<(String, Vec<&str>)> = Vec::new();
    for (path, _) in &served {
        let from_rules = rules
            .headers_for(path)
            .filter(|(n, _)| n == http::header::CACHE_CONTROL)
            .last()
            .and_then(|(_, v)| v.to_str().ok())
            .map(|v| format!("{v} (_headers)"));
        let policy = from_rules.unwrap_or_else(|| {
            if crate::files::headers::is_immutable(&options.immutable, path) {
                "public, max-age=31536000, immutable".to_string()
            } else {
                options.cache_control.clone()
            }
        });
        match policies.iter_mut().find(|(p, _)| *p == policy) {
            Some((_, paths)) => paths.push(path),
            None => policies.push((policy, vec![path])),
        }
    }
    for (policy, paths) in &policies {
        let shown: Vec<&str> = paths.iter().take(3).copied().collect();
        let more = if paths.len() > 3 { ", ..." } else { "" };
        report.summary.push(format!(
            "  Cache-Control {policy}: {} files ({}{more})",
            paths.len(),
            shown.join(", ")
        ));
    }
    report
        .summary
        .push(match site.files.contains_key("/404.html") {
            true => "  404.html: the body of every 404".to_string(),
            false => "  404.html: none (404s get a short text body)".to_string(),
        });
    if let Some(f) = &options.fallback {
        report
            .summary
            .push(format!("  fallback: {f} answers unknown navigations"));
    }
}

#[cfg(test)]
mod tests;
