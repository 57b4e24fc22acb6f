//! The path patterns of `_headers` and `_redirects`, matched as Netlify's deploy logic
//! matches them (its headers parser turns each into a regular expression, anchored, with an
//! optional trailing `/`):
//!
//! | in a pattern | matches | as a regular expression |
//! |---|---|---|
//! | `/about` | that path, with or without a trailing `/` | `^/about/?$` |
//! | `:name` (starting a segment) | one segment's characters, at least one, its value `:name` | `([^/]+)` |
//! | `*` (a whole segment) | nothing, or `/` and anything (`/blog/*` matches `/blog`, `/blog/a/b`) | `/?(.*)` |
//! | `*` inside a segment (`/*.css`, `/assets/*.js`, `/img-*`) | any characters, `/` among them | `(.*)` |
//!
//! So `/*.css` matches `/app.css` and `/assets/theme.css`, and `/*/index.html` matches
//! `/docs/index.html` and `/index.html`. Two corners of Netlify's regexes are not kept:
//! the rest of a segment is literal (the regex leaves a `.` beside a `*` unescaped, so
//! `/*.css` matched `/xcss` there), and a standalone `*` begins a segment (`/?(.*)` let
//! `/assets/*` match `/assetsx`); and a placeholder's name is its letters, digits and `_`,
//! the rest of the segment literal (`/:page.html` matches `/about.html`, not `/app.css`,
//! where Netlify's `([^/]+)` takes the whole segment).
//! Anything else that is not a path (`https://host/...` rules, query conditions, an empty
//! or oddly named placeholder) is refused with the reason, never ignored.
//!
//! A pattern of one `*` at most (every `_redirects` rule, the usual `_headers` ones) is
//! matched by a short backtracking walk that allocates nothing; one of more `*` by a table
//! of (piece, position), so it costs pieces × path length steps, not an exponential search
//! on a hostile path.

/// A parsed path pattern.
#[derive(Debug)]
pub struct Pattern {
    pieces: Vec<Piece>,
    /// Case-insensitive literals, as `_headers` on Netlify (its regex has the `i` flag).
    fold_case: bool,
    /// More than one `*` (whole-segment or inside one): matched by the table, whose cost
    /// does not grow with their number.
    by_table: bool,
}

#[derive(Debug)]
enum Piece {
    /// These characters.
    Literal(String),
    /// One segment's characters, at least one, no `/`.
    Param(String),
    /// Any characters, `/` among them, none at all included.
    Splat,
    /// A standalone `*` segment: nothing, or a `/` and any characters (the value).
    Rest,
}

/// The values a match binds: placeholders by name, and `splat` for the `*`.
pub type Values = Vec<(String, String)>;

impl Pattern {
    /// Parses `s`; `max_splats` is how many `*` it may hold (`_redirects` has one `:splat`).
    pub fn parse(s: &str, fold_case: bool, max_splats: usize) -> Result<Pattern, String> {
        if s.contains("://") {
            return Err(format!(
                "{s:?}: rules for a whole URL (another host or scheme) are not supported; \
                 write the path alone (/...)"
            ));
        }
        if !s.starts_with('/') {
            return Err(format!("{s:?} is not a path (it must start with /)"));
        }
        if s.contains(['?', '#']) {
            return Err(format!(
                "{s:?}: a query or fragment in a pattern is not supported (a rule matches \
                 the path only)"
            ));
        }
        let splats = s.matches('*').count();
        if splats > max_splats {
            return Err(format!(
                "{s:?} has {splats} *; a redirect rule may have one (its :splat)"
            ));
        }
        let mut pieces = Vec::new();
        let segments: Vec<&str> = s.split('/').filter(|p| !p.is_empty()).collect();
        if segments.is_empty() {
            pieces.push(Piece::Literal("/".into()));
        }
        for seg in segments {
            if seg == "*" {
                pieces.push(Piece::Rest);
            } else {
                pieces.push(Piece::Literal("/".into()));
                let mut text = seg;
                if let Some(after) = seg.strip_prefix(':') {
                    let len = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    let name = &after[..len];
                    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                        return Err(format!(
                            "{s:?}: placeholder {seg:?} needs a name of letters, digits and \
                             _ that starts with a letter (like :slug)"
                        ));
                    }
                    pieces.push(Piece::Param(name.to_string()));
                    text = &after[len..];
                }
                let mut parts = text.split('*');
                pieces.push(Piece::Literal(parts.next().unwrap_or("").to_string()));
                for part in parts {
                    pieces.push(Piece::Splat);
                    pieces.push(Piece::Literal(part.to_string()));
                }
            }
        }
        // Neighbouring literals as one, so a failed literal costs one comparison.
        let mut merged: Vec<Piece> = Vec::with_capacity(pieces.len());
        for p in pieces {
            match (merged.last_mut(), p) {
                (_, Piece::Literal(l)) if l.is_empty() => {}
                (Some(Piece::Literal(a)), Piece::Literal(b)) => a.push_str(&b),
                (_, p) => merged.push(p),
            }
        }
        let stars = merged
            .iter()
            .filter(|p| matches!(p, Piece::Splat | Piece::Rest))
            .count();
        Ok(Pattern {
            pieces: merged,
            fold_case,
            by_table: stars > 1,
        })
    }

    /// Whether `path` matches (what `_headers` asks: no values).
    pub fn is_match(&self, path: &str) -> bool {
        self.walk(path, false).is_some()
    }

    /// The placeholders' values if `path` matches.
    pub fn matches(&self, path: &str) -> Option<Values> {
        let (path, spans) = self.walk(path, true)?;
        let values = self
            .pieces
            .iter()
            .zip(&spans)
            .filter_map(|(piece, &(a, b))| {
                let name = match piece {
                    Piece::Param(name) => name.as_str(),
                    Piece::Splat | Piece::Rest => "splat",
                    _ => return None,
                };
                Some((name.to_string(), path[a..b].to_string()))
            })
            .collect();
        Some(values)
    }

    /// Matches `path` (without its optional trailing `/`, returned), with where each piece
    /// matched if `spans` are asked for.
    fn walk<'p>(&self, path: &'p str, spans: bool) -> Option<(&'p str, Vec<(usize, usize)>)> {
        // One trailing `/` is optional on every pattern but the root's.
        let path = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        if self.by_table {
            // Only `_headers` has these, and it asks for no values.
            return table_match(&self.pieces, path.as_bytes(), self.fold_case)
                .then_some((path, Vec::new()));
        }
        let mut walk = Walk {
            pieces: &self.pieces,
            path: path.as_bytes(),
            fold_case: self.fold_case,
            spans: if spans {
                vec![(0, 0); self.pieces.len()]
            } else {
                Vec::new()
            },
        };
        walk.from(0, 0).then_some((path, walk.spans))
    }
}

/// Whether `literal` is at the start of `rest`.
fn starts_with(rest: &[u8], literal: &[u8], fold_case: bool) -> bool {
    rest.len() >= literal.len()
        && if fold_case {
            rest[..literal.len()].eq_ignore_ascii_case(literal)
        } else {
            &rest[..literal.len()] == literal
        }
}

/// Whether `pieces` match all of `path`, by a table of (piece, position) filled from the
/// end: time and memory in pieces × length, however many `*` there are.
fn table_match(pieces: &[Piece], path: &[u8], fold_case: bool) -> bool {
    let n = path.len();
    // `next[at]`: the pieces after this one match path[at..]; at the end, only the end.
    let mut next = vec![false; n + 2];
    next[n] = true;
    let mut cur = vec![false; n + 2];
    for piece in pieces.iter().rev() {
        cur[n + 1] = false;
        // For a Rest: some split from `at` on leaves the rest to `next`.
        let mut tail = false;
        for at in (0..=n).rev() {
            let here = path.get(at).copied();
            cur[at] = match piece {
                Piece::Literal(l) => {
                    starts_with(&path[at..], l.as_bytes(), fold_case) && next[at + l.len()]
                }
                Piece::Param(_) => here.is_some_and(|b| b != b'/') && (next[at + 1] || cur[at + 1]),
                Piece::Splat => next[at] || (here.is_some() && cur[at + 1]),
                Piece::Rest => {
                    let r = next[at] || (here == Some(b'/') && tail);
                    tail = tail || next[at];
                    r
                }
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0]
}

/// One match attempt, by backtracking: for patterns of one `*` at most, where each piece
/// has few ends to try.
struct Walk<'a> {
    pieces: &'a [Piece],
    path: &'a [u8],
    fold_case: bool,
    /// Where each piece matched, on the path that succeeded (empty: not asked for).
    spans: Vec<(usize, usize)>,
}

impl Walk<'_> {
    /// Whether pieces `i..` match the path from `at` to its end.
    fn from(&mut self, i: usize, at: usize) -> bool {
        let Some(piece) = self.pieces.get(i) else {
            return at == self.path.len();
        };
        let rest = &self.path[at..];
        // The ends this piece may match to, longest first (the regex's greedy `.*`).
        match piece {
            Piece::Literal(l) => {
                starts_with(rest, l.as_bytes(), self.fold_case)
                    && self.then(i, at + l.len(), (at, at + l.len()))
            }
            Piece::Param(_) => {
                let n = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
                (1..=n).rev().any(|k| self.then(i, at + k, (at, at + k)))
            }
            Piece::Splat => (at..=self.path.len())
                .rev()
                .any(|end| self.then(i, end, (at, end))),
            Piece::Rest => {
                let slash = rest.first() == Some(&b'/');
                (slash
                    && (at + 1..=self.path.len())
                        .rev()
                        .any(|end| self.then(i, end, (at + 1, end))))
                    || self.then(i, at, (at, at))
            }
        }
    }

    /// Whether the pieces after `i` match from `end`; if so, piece `i`'s value is `value`.
    fn then(&mut self, i: usize, end: usize, value: (usize, usize)) -> bool {
        if !self.from(i + 1, end) {
            return false;
        }
        if let Some(span) = self.spans.get_mut(i) {
            *span = value;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        let p = Pattern::parse(pattern, true, usize::MAX).unwrap();
        let matched = p.is_match(path);
        assert_eq!(matched, p.matches(path).is_some(), "{pattern} on {path}");
        // The table (for many `*`) and the walk (for one) agree.
        let trimmed = path
            .strip_suffix('/')
            .filter(|t| !t.is_empty())
            .unwrap_or(path);
        let table = table_match(&p.pieces, trimmed.as_bytes(), true);
        assert_eq!(matched, table, "{pattern} on {path}: walk and table differ");
        matched
    }

    #[test]
    fn the_platforms_documented_patterns_match_as_netlify_does() {
        // (pattern, matching paths, paths that do not match)
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("/", &["/"], &["/a"]),
            (
                "/about",
                &["/about", "/about/", "/About"],
                &["/about/x", "/aboutx"],
            ),
            ("/*", &["/", "/a", "/a/b/c.html"], &[]),
            (
                "/assets/*",
                &["/assets", "/assets/", "/assets/app.js", "/assets/a/b.png"],
                &["/assetsx", "/other/assets/a"],
            ),
            (
                "/*.css",
                &["/app.css", "/assets/theme.css", "/a/b/c.css"],
                &["/app.css.map", "/xcss", "/app.js"],
            ),
            (
                "/assets/*.js",
                &["/assets/app.js", "/assets/chunks/a.js"],
                &["/app.js", "/assets/app.json", "/static/assets/x.js"],
            ),
            (
                "/*/index.html",
                &["/docs/index.html", "/a/b/index.html", "/index.html"],
                &["/docs/other.html"],
            ),
            (
                "/img-*.png",
                &["/img-1.png", "/img-a/b.png"],
                &["/img.png", "/x/img-1.png"],
            ),
            (
                "/blog/:year/:slug",
                &["/blog/2024/hello", "/blog/2024/hello/"],
                &["/blog/2024", "/blog/2024/hello/more", "/blog//hello"],
            ),
            ("/:lang/*", &["/en/docs/a", "/fr"], &["/"]),
            (
                "/a/*/b/*",
                &["/a/x/b/y", "/a/x/y/b/z", "/a/b"],
                &["/a/x/c/y"],
            ),
        ];
        for (pattern, yes, no) in cases {
            for path in *yes {
                assert!(matches(pattern, path), "{pattern} should match {path}");
            }
            for path in *no {
                assert!(!matches(pattern, path), "{pattern} should not match {path}");
            }
        }
    }

    #[test]
    fn values_are_bound_by_name_and_the_splat_greedily() {
        let p = Pattern::parse("/u/:id/*", false, 1).unwrap();
        assert_eq!(
            p.matches("/u/7/a/b/").unwrap(),
            [("id".into(), "7".into()), ("splat".into(), "a/b".into())]
        );
        assert_eq!(
            p.matches("/u/7").unwrap(),
            [("id".into(), "7".into()), ("splat".into(), "".into())]
        );
        let p = Pattern::parse("/docs/:name.pdf", false, 1).unwrap();
        assert_eq!(
            p.matches("/docs/guide.v2.pdf").unwrap(),
            [("name".into(), "guide.v2".into())]
        );
        let p = Pattern::parse("/files/*.pdf", false, 1).unwrap();
        assert_eq!(
            p.matches("/files/a/report.pdf").unwrap(),
            [("splat".into(), "a/report".into())]
        );
        // `_redirects` keeps case (paths on disk are case-sensitive); `_headers` folds it.
        assert!(Pattern::parse("/About", false, 1)
            .unwrap()
            .matches("/about")
            .is_none());
        assert!(Pattern::parse("/About", true, 1)
            .unwrap()
            .matches("/about")
            .is_some());
    }

    #[test]
    fn what_is_not_a_supported_pattern_is_refused_with_the_reason() {
        let err = |p: &str, splats| Pattern::parse(p, false, splats).unwrap_err();
        assert!(err("https://example.com/*", 1).contains("whole URL"));
        assert!(err("about", 1).contains("must start with /"));
        assert!(err("/search?q=:q", 1).contains("query"));
        assert!(err("/a/*/b/*", 1).contains("has 2 *"));
        assert!(err("/p/:", 1).contains("placeholder"));
        assert!(err("/p/:9", 1).contains("placeholder"));
    }

    #[test]
    fn many_whole_segment_stars_on_a_deep_path_take_linear_time() {
        let p = Pattern::parse("/*/*/*/*/*/*/*/*/x", true, usize::MAX).unwrap();
        let path = "/a".repeat(20_000);
        let started = std::time::Instant::now();
        assert!(!p.is_match(&path));
        assert!(p.is_match(&format!("{path}/x")));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn many_stars_on_a_long_path_take_linear_time() {
        let p = Pattern::parse("/*a*a*a*a*a*a*a*a*b", true, usize::MAX).unwrap();
        let path = format!("/{}", "a".repeat(60_000));
        let started = std::time::Instant::now();
        assert!(!p.is_match(&path));
        assert!(p.is_match(&format!("{path}b")));
        // 2 x 17 pieces x 60 000 positions; a backtracking search would not end.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
