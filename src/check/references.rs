//! Errors for references from pages and style sheets to paths inside the site that
//! nothing answers: resolved as a browser would against the page (and its `<base>`), then
//! asked of the site as the server would answer them (files, folders' index pages, the
//! rules, the fallback).

use super::*;

/// Where a reference leads, once resolved against the page it is in.
pub(super) fn resolve_reference(url: &str, page: &str, base: Option<&str>) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.starts_with('#') || url.starts_with("//") || url.contains("{{") {
        return None;
    }
    // A scheme (https:, data:, mailto:, javascript:): not a path in this site.
    if let Some((scheme, _)) = url.split_once(':') {
        if !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return None;
        }
    }
    let path = url.split(['#', '?']).next().unwrap_or("");
    if path.is_empty() {
        return None;
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        let base_dir = match base {
            Some(b) => resolve_reference(b, page, None)
                .filter(|_| !b.contains("://"))
                .unwrap_or_else(|| page.to_string()),
            None => page.to_string(),
        };
        let dir = if base_dir.ends_with('/') {
            base_dir.as_str()
        } else {
            base_dir.rsplit_once('/').map_or("/", |(d, _)| d)
        };
        format!("{}/{path}", dir.trim_end_matches('/'))
    };
    // Dot segments, as a browser removes them (RFC 3986 §5.2.4); `..` stops at the root.
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = joined.split('/').skip(1).collect();
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *seg {
            "." => {
                if last {
                    segments.push("");
                }
            }
            ".." => {
                segments.pop();
                if last {
                    segments.push("");
                }
            }
            s => segments.push(s),
        }
    }
    Some(format!("/{}", segments.join("/")))
}

pub(super) fn strip_query(to: &str) -> &str {
    to.split(['?', '#']).next().unwrap_or(to)
}

/// Whether a request for `checked` gets an answer other than 404: a file, a folder's index
/// (or the redirect to it), with `--pretty-urls` its `.html` file, the server's probes, a
/// `_redirects` rule, or (for navigations) the fallback.
pub(super) fn answers(
    site: &Site,
    rules: &Rules,
    checked: &crate::files::path::Checked<'_>,
    navigation: bool,
    fallback: bool,
    pretty_urls: bool,
) -> bool {
    let crate::files::path::Checked::Path(path) = checked else {
        return false;
    };
    let path = path.as_ref();
    if crate::files::path::is_probe(path) {
        return true;
    }
    let served = |p: &str| site.files.contains_key(p) && sidecar_source(site, p).is_none();
    let found = if let Some(folder) = path.strip_suffix('/') {
        served(&format!("{folder}/index.html"))
    } else {
        served(path)
            || served(&format!("{path}/index.html"))
            || (pretty_urls && served(&format!("{path}.html")))
    };
    found || rules.redirect(path, None, false).is_some() || (navigation && fallback)
}

pub(super) fn check_references(
    root: &Root,
    site: &Site,
    rules: &Rules,
    options: &Options,
    report: &mut Report,
) -> (usize, usize, usize) {
    let (mut pages, mut sheets, mut count) = (0, 0, 0);
    for path in site.files.keys() {
        let is_html = path.ends_with(".html") || path.ends_with(".htm");
        let is_css = path.ends_with(".css");
        if !(is_html || is_css) {
            continue;
        }
        let Ok(bytes) = read(root, path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let (refs, base) = if is_html {
            pages += 1;
            let page = scan::html(&text);
            (page.references, page.base)
        } else {
            sheets += 1;
            (scan::css(&text), None)
        };
        for r in refs {
            let Some(target) = resolve_reference(&r.url, path, base.as_deref()) else {
                continue;
            };
            count += 1;
            let checked = crate::files::path::check(&target);
            if answers(
                site,
                rules,
                &checked,
                r.navigation,
                options.fallback.is_some(),
                options.pretty_urls,
            ) {
                continue;
            }
            let why = match checked {
                crate::files::path::Checked::Forbidden => {
                    "a path the server never serves (a dotfile)"
                }
                crate::files::path::Checked::BadRequest => "not valid percent-encoding",
                crate::files::path::Checked::Path(_) => "not in the site",
            };
            report.add(
                Level::Error,
                &path[1..],
                Some(r.line),
                format!("{} is {why}: users get a 404", r.url),
            );
        }
    }
    (pages, sheets, count)
}
