//! Finds the URLs a page or stylesheet refers to, tolerantly: attributes of HTML tags
//! (`href`, `src`, `srcset`, `poster`, `<base href>`), `url()` and `@import` in CSS and in
//! HTML `<style>` blocks and `style` attributes. A tag with `data-proofer-ignore` (as
//! html-proofer spells it) is skipped. Not a full HTML5 parser: comments, scripts
//! and templates are skipped, entities in values are decoded only as far as URLs need.

/// One URL found in a file.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    /// The URL as written (entities decoded).
    pub url: String,
    /// Line in the file, from 1.
    pub line: usize,
    /// Whether following it is a navigation (`<a href>`, `<iframe src>`), which a
    /// single-page app's fallback answers, rather than an asset the page needs.
    pub navigation: bool,
}

/// What an HTML document refers to, and its `<base href>` if it has one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Html {
    /// The URLs, in document order.
    pub references: Vec<Reference>,
    /// The first `<base href>`.
    pub base: Option<String>,
}

fn line_at(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Scans an HTML document.
pub fn html(text: &str) -> Html {
    let mut out = Html::default();
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(lt) = text[at..].find('<').map(|i| at + i) {
        let rest = &text[lt..];
        if rest.starts_with("<!--") {
            at = rest.find("-->").map_or(text.len(), |e| lt + e + 3);
            continue;
        }
        let name_len = rest[1..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .count();
        if name_len == 0 {
            at = lt + 1;
            continue;
        }
        let tag = rest[1..1 + name_len].to_ascii_lowercase();
        let (attrs, end) = attributes(text, lt + 1 + name_len);
        // html-proofer's opt-out, for a link that is meant to break (a demo of the 404 page).
        let ignored = attrs.iter().any(|(n, _, _)| n == "data-proofer-ignore");
        for (name, value, offset) in attrs.into_iter().filter(|_| !ignored) {
            let line = line_at(text, offset);
            let navigation = matches!(tag.as_str(), "a" | "area" | "iframe" | "form");
            match name.as_str() {
                "href" if tag == "base" => {
                    out.base.get_or_insert(value);
                }
                "href" | "src" | "poster" => out.references.push(Reference {
                    url: value,
                    line,
                    navigation,
                }),
                "srcset" | "imagesrcset" => {
                    for candidate in value.split(',') {
                        if let Some(url) = candidate.split_whitespace().next() {
                            out.references.push(Reference {
                                url: url.to_string(),
                                line,
                                navigation: false,
                            });
                        }
                    }
                }
                "style" => {
                    for mut r in css(&value) {
                        r.line = line;
                        out.references.push(r);
                    }
                }
                _ => {}
            }
        }
        at = end;
        // Raw text elements: their content is not markup.
        if matches!(
            tag.as_str(),
            "script" | "style" | "template" | "textarea" | "title"
        ) {
            let close = format!("</{tag}");
            let content_end = find_ascii_ci(bytes, end, close.as_bytes()).unwrap_or(text.len());
            if tag == "style" {
                let first_line = line_at(text, end);
                for mut r in css(&text[end..content_end]) {
                    r.line += first_line - 1;
                    out.references.push(r);
                }
            }
            at = content_end;
        }
    }
    out
}

fn find_ascii_ci(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
        .map(|i| from + i)
}

/// The attributes of a tag whose name ends at `at`: (lowercased name, value, offset of the
/// value), and the offset just past the tag's `>`.
fn attributes(text: &str, mut at: usize) -> (Vec<(String, String, usize)>, usize) {
    let b = text.as_bytes();
    let mut attrs = Vec::new();
    loop {
        while at < b.len() && (b[at].is_ascii_whitespace() || b[at] == b'/') {
            at += 1;
        }
        if at >= b.len() {
            return (attrs, b.len());
        }
        if b[at] == b'>' {
            return (attrs, at + 1);
        }
        let start = at;
        while at < b.len() && !b[at].is_ascii_whitespace() && !matches!(b[at], b'=' | b'>') {
            at += 1;
        }
        let name = text[start..at].to_ascii_lowercase();
        while at < b.len() && b[at].is_ascii_whitespace() {
            at += 1;
        }
        if at >= b.len() || b[at] != b'=' {
            attrs.push((name, String::new(), start));
            continue;
        }
        at += 1;
        while at < b.len() && b[at].is_ascii_whitespace() {
            at += 1;
        }
        let (value_start, value_end, next) = match b.get(at) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = text[at + 1..]
                    .find(q as char)
                    .map_or(b.len(), |e| at + 1 + e);
                (at + 1, end, (end + 1).min(b.len()))
            }
            _ => {
                let len = text[at..]
                    .bytes()
                    .take_while(|c| !c.is_ascii_whitespace() && *c != b'>')
                    .count();
                (at, at + len, at + len)
            }
        };
        attrs.push((
            name,
            decode_entities(text[value_start..value_end].trim()),
            value_start,
        ));
        at = next;
    }
}

/// The entities URLs contain in practice (`&amp;` in query strings above all).
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// Scans a stylesheet: `url(...)` (quoted or not) and `@import "..."`, outside comments.
pub fn css(text: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while at < text.len() {
        let rest = &lower[at..];
        if rest.starts_with("/*") {
            at = rest.find("*/").map_or(text.len(), |e| at + e + 2);
            continue;
        }
        if rest.starts_with("url(") {
            let inner = &text[at + 4..];
            let close = inner.find(')').unwrap_or(inner.len());
            let url = inner[..close]
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            out.push(Reference {
                url: url.to_string(),
                line: line_at(text, at),
                navigation: false,
            });
            at += 4 + close;
            continue;
        }
        if rest.starts_with("@import") {
            let after = text[at + 7..].trim_start();
            if let Some(q @ ('"' | '\'')) = after.chars().next() {
                if let Some(end) = after[1..].find(q) {
                    out.push(Reference {
                        url: after[1..1 + end].to_string(),
                        line: line_at(text, at),
                        navigation: false,
                    });
                }
            }
            // `@import url(...)` is found by the url( branch.
            at += 7;
            continue;
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(refs: &[Reference]) -> Vec<&str> {
        refs.iter().map(|r| r.url.as_str()).collect()
    }

    #[test]
    fn html_attributes_in_every_quoting() {
        let page = html(
            "<!doctype html>\n<link rel=stylesheet href=/app.css>\n<IMG SRC='a.png' \
             srcset=\"b.png 1x, c.png 2x\">\n<a href=\"/x?a=1&amp;b=2\">x</a>\n\
             <!-- <img src=commented.png> -->\n<a data-proofer-ignore href=/gone>x</a><video poster=p.jpg src=v.mp4></video>",
        );
        assert_eq!(
            urls(&page.references),
            [
                "/app.css",
                "a.png",
                "b.png",
                "c.png",
                "/x?a=1&b=2",
                "p.jpg",
                "v.mp4"
            ]
        );
        assert_eq!(page.references[0].line, 2);
        assert_eq!(page.references[1].line, 3);
        assert!(page.references[4].navigation);
        assert!(!page.references[1].navigation);
    }

    #[test]
    fn scripts_are_skipped_and_styles_scanned() {
        let page = html(
            "<script>var s = '<img src=in-script.png>';</script>\n<style>\nbody { \
             background: url(\"/bg.png\") }\n</style><div style=\"background:url(d.png)\"></div>\
             <base href=\"/sub/\">",
        );
        assert_eq!(urls(&page.references), ["/bg.png", "d.png"]);
        assert_eq!(page.references[0].line, 3);
        assert_eq!(page.base.as_deref(), Some("/sub/"));
    }

    #[test]
    fn css_urls_imports_and_comments() {
        let refs = css(
            "@import \"base.css\";\n@import url(theme.css);\n/* url(gone.png) */\n\
             a { background: URL( 'i.svg' ) } b { src: url(f.woff2) format('woff2') }",
        );
        assert_eq!(urls(&refs), ["base.css", "theme.css", "i.svg", "f.woff2"]);
        assert_eq!(refs[2].line, 4);
    }

    #[test]
    fn malformed_markup_does_not_panic() {
        for s in [
            "<",
            "<a",
            "<a href",
            "<a href=",
            "<a href='x",
            "<!--",
            "<script>",
            "<a =x>",
        ] {
            html(s);
        }
        for s in ["url(", "@import", "@import '", "/*"] {
            css(s);
        }
    }
}
