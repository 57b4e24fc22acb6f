//! The documentation holds together: every relative link and anchor in README.md and
//! docs/ resolves, the front page stays a front page, and each topic has its file.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of `text` outside fenced code blocks, with their numbers (from 1).
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces
/// as `-`; a repeated anchor gets `-1`, `-2`, ...
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut candidate = slug.clone();
        let mut n = 0;
        while !seen.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
    }
    seen
}

/// The targets of the Markdown links `[text](target)` on `line`, outside inline code.
fn links(line: &str) -> Vec<String> {
    // Inline code is not a link: drop what is between backticks.
    let mut plain = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            plain.push_str(part);
        }
    }
    let mut out = Vec::new();
    let mut rest = plain.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(repo()).unwrap().display().to_string();
        for (n, line) in prose(&text) {
            for target in links(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let file = if path.is_empty() {
                    doc.clone()
                } else {
                    doc.parent().unwrap().join(path)
                };
                if !file.exists() {
                    broken.push(format!("{name}:{n}: {target}: no such file"));
                    continue;
                }
                if let Some(anchor) = anchor {
                    let target_text = std::fs::read_to_string(&file).unwrap_or_default();
                    if !anchors(&target_text).contains(anchor) {
                        broken.push(format!("{name}:{n}: {target}: no such heading"));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(
        checked > 30,
        "only {checked} links found: is the parser right?"
    );
}

#[test]
fn the_checker_finds_what_is_broken() {
    // The checker itself: a heading's anchor as GitHub makes it, links outside code only.
    let a =
        anchors("# Title\n## `_headers` and `_redirects`\n```\n# not a heading\n```\n## Title\n");
    for want in ["title", "_headers-and-_redirects", "title-1"] {
        assert!(a.contains(want), "{want} in {a:?}");
    }
    assert!(!a.contains("not-a-heading"));
    assert_eq!(
        links("see [a](x.md#y) and `[b](not-a-link)` or [c](https://e.example)"),
        ["x.md#y", "https://e.example"]
    );
}

#[test]
fn the_readme_is_a_front_page_and_each_topic_has_its_doc() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md is {lines} lines");
    for topic in [
        "configuration",
        "docker",
        "kubernetes",
        "delivery",
        "performance",
        "design",
    ] {
        let path = format!("docs/{topic}.md");
        let text = std::fs::read_to_string(repo().join(&path)).unwrap();
        assert!(text.starts_with("# "), "{path} starts with its title");
        assert!(readme.contains(&path), "README.md links {path}");
    }
    // The two commands a newcomer runs first.
    assert!(readme.contains("cargo run --release") && readme.contains("bash .ci/run"));
}

#[test]
fn the_options_table_lists_every_flag_with_its_variable_and_default() {
    // One definition per flag (src/ops/config/flags.rs): the table in the docs follows it.
    let text = std::fs::read_to_string(repo().join("docs/configuration.md")).unwrap();
    for info in tinyserve::ops::config::flags::ALL {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| `--{} ", info.flag)))
            .unwrap_or_else(|| panic!("--{} has no row in docs/configuration.md", info.flag));
        assert!(row.contains(&format!("`{}`", info.env)), "{row}");
        if let Some(default) = info.default.filter(|d| !d.is_empty()) {
            assert!(
                row.contains(default),
                "--{}'s default {default}: {row}",
                info.flag
            );
        }
    }
}
