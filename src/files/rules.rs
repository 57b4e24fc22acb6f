//! `_headers` and `_redirects` at the root, in the syntax Netlify and Cloudflare Pages
//! document, so a site built for them works here unchanged:
//!
//! ```text
//! # _redirects: FROM TO [STATUS][!]   (first match wins; STATUS 301 when omitted)
//! /old            /new               301
//! /blog/*         /posts/:splat      302
//! /users/:id      /profile/:id       200   # a rewrite: serve that path's file
//! /app/*          /index.html        200!  # `!`: even when a file exists at the path
//! /chat           https://chat.example.com/ 308
//!
//! # _headers: a path pattern, then indented `Name: value` lines
//! /assets/*
//!   Cache-Control: public, max-age=31536000, immutable
//! /*
//!   X-Frame-Options: DENY
//! ```
//!
//! Patterns ([`crate::files::pattern`]): literal segments, `:name` for one segment, `*` for
//! the rest or inside a segment (`/*.css`), as Netlify matches them; one `*` in a redirect
//! rule (`:splat` in the target). A redirect rule applies only where no file answers the path, unless forced
//! with `!` (as Netlify's shadowing); the request's query string is kept. Every `_headers`
//! block that matches adds its headers, later ones overriding earlier ones, over the
//! server's own; framing and hop-by-hop names are refused. Errors name the file, the line
//! and the problem.

use http::{HeaderName, HeaderValue, StatusCode};

use crate::files::pattern::Pattern;

/// The rules of both files.
#[derive(Debug, Default)]
pub struct Rules {
    redirects: Vec<Redirect>,
    headers: Vec<(Pattern, Vec<(HeaderName, HeaderValue)>)>,
}

#[derive(Debug)]
struct Redirect {
    /// Line in `_redirects`, from 1.
    line: usize,
    from: Pattern,
    to: String,
    status: StatusCode,
    force: bool,
}

/// What a redirect rule makes of a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the client elsewhere: status and `Location`.
    Redirect(StatusCode, String),
    /// Answer with this local path's file, status 200.
    Rewrite(String),
}

/// `template` with each `:name` replaced by its value, encoded ([`encode`]). One pass over
/// the template: a value is never searched for placeholders itself (a splat holding
/// `a:id` stays `a:id`), and where names overlap the longest wins (`:idx` over `:id`).
fn substitute(template: &str, values: &[(String, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find(':') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let value = values
            .iter()
            .filter(|(name, _)| after.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len());
        match value {
            // The values are decoded path text: encoded again, so that a `%3F` or `%23`
            // in the request stays part of the path instead of starting a query or a
            // fragment, and CR, LF or non-ASCII bytes cannot reach `Location`.
            Some((name, value)) => {
                out.push_str(&encode(value, name == "splat"));
                rest = &after[name.len()..];
            }
            None => {
                out.push(':');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `target` is a path on this site: one leading `/`, not `//` or `/\` (which
/// browsers read as another host).
fn is_local(target: &str) -> bool {
    target.starts_with('/') && !target[1..].starts_with(['/', '\\'])
}

/// Percent-encodes decoded path text for a URL: unreserved characters and the
/// sub-delimiters that mean nothing special in a path or a query value stay, `/` only in a
/// splat (which spans segments); everything else, `%`, `?`, `#`, `&`, `=`, `+`, space,
/// controls and every non-ASCII byte among it, becomes `%XX`.
fn encode(value: &str, splat: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        let keep =
            b.is_ascii_alphanumeric() || b"-._~!$'()*,:@".contains(&b) || (splat && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// The two files' names at the root.
pub const FILES: [&str; 2] = ["_headers", "_redirects"];

/// Whether `rel` (relative to the root) names one of [`FILES`], in any case: on a
/// case-insensitive mount `_Headers` is `_headers`.
pub fn is_rules_file(rel: &str) -> bool {
    FILES.iter().any(|f| f.eq_ignore_ascii_case(rel))
}

impl Rules {
    /// Reads and parses the root's `_headers` and `_redirects` (either may be missing).
    pub fn load(root: &std::path::Path, refused: &[&str]) -> Result<Rules, String> {
        let read = |name: &str| match std::fs::read_to_string(root.join(name)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{name}: {e}")),
        };
        let headers = read(FILES[0])?;
        let redirects = read(FILES[1])?;
        Rules::parse(headers.as_deref(), redirects.as_deref(), refused)
    }

    /// Parses the two files' texts (either may be absent). Errors: `FILE:LINE: problem`.
    pub fn parse(
        headers: Option<&str>,
        redirects: Option<&str>,
        refused: &[&str],
    ) -> Result<Rules, String> {
        let mut rules = Rules::default();
        for (n, line) in redirects.unwrap_or_default().lines().enumerate() {
            let err = |why: String| format!("_redirects:{}: {why}", n + 1);
            // A comment is a field that starts with `#`: a target may hold a fragment.
            let fields: Vec<&str> = line
                .split_whitespace()
                .take_while(|f| !f.starts_with('#'))
                .collect();
            if fields.is_empty() {
                continue;
            }
            if fields.len() < 2 {
                return Err(err("expected FROM TO [STATUS]".into()));
            }
            if fields[2..].iter().any(|f| f.contains('=')) || fields.len() > 3 {
                return Err(err(
                    "query-parameter conditions and extra fields are not supported".into(),
                ));
            }
            let (code, force) = match fields.get(2) {
                None => ("301", false),
                Some(s) => s.strip_suffix('!').map_or((*s, false), |c| (c, true)),
            };
            let status = match code {
                "200" | "301" | "302" | "303" | "307" | "308" => {
                    StatusCode::from_bytes(code.as_bytes()).expect("listed codes")
                }
                other => {
                    return Err(err(format!(
                        "status {other:?} is not one of 200, 301, 302, 303, 307, 308"
                    )))
                }
            };
            let to = fields[1].to_string();
            if status == StatusCode::OK && !to.starts_with('/') {
                return Err(err(format!(
                    "a 200 rewrite needs a path on this site, not {to:?} (proxying is not supported)"
                )));
            }
            if HeaderValue::from_str(&to).is_err() {
                return Err(err(format!("{to:?} is not a valid Location")));
            }
            rules.redirects.push(Redirect {
                line: n + 1,
                from: Pattern::parse(fields[0], false, 1).map_err(err)?,
                to,
                status,
                force,
            });
        }
        for (n, line) in headers.unwrap_or_default().lines().enumerate() {
            let err = |why: String| format!("_headers:{}: {why}", n + 1);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            if !line.starts_with([' ', '\t']) {
                rules.headers.push((
                    Pattern::parse(line.trim(), true, usize::MAX).map_err(err)?,
                    Vec::new(),
                ));
                continue;
            }
            let Some((_, block)) = rules.headers.last_mut() else {
                return Err(err("a header line before any path".into()));
            };
            let (name, value) = line
                .trim()
                .split_once(':')
                .ok_or_else(|| err("expected 'Name: value'".into()))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| err(format!("{:?} is not a header name", name.trim())))?;
            if refused.contains(&name.as_str()) {
                return Err(err(format!(
                    "{name} is set by the server per response (framing or hop-by-hop)"
                )));
            }
            if name.as_str() == "basic-auth" {
                // Netlify reads this line as "password-protect this path"; sent as a header
                // it would hand every visitor the password and protect nothing.
                return Err(err(
                    "Basic-Auth is Netlify's password protection, not a header: sent, it \
                     would give every visitor the password; protect the site with \
                     --basic-auth-file (an htpasswd file made with htpasswd -B) instead"
                        .into(),
                ));
            }
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| err(format!("{:?} is not a header value", value.trim())))?;
            // A name on several lines of one block is one header of several values, joined
            // with commas (Netlify's multi-value headers, e.g. Cache-Control over 4 lines).
            if let Some((_, v)) = block.iter_mut().find(|(n, _)| *n == name) {
                let joined = [v.as_bytes(), b", ", value.as_bytes()].concat();
                *v = HeaderValue::from_bytes(&joined).expect("two valid values and a comma");
                continue;
            }
            block.push((name, value));
        }
        Ok(rules)
    }

    /// Whether there is any rule at all (so a request can skip looking).
    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.headers.is_empty()
    }

    /// The targets of redirect rules that are fixed paths on this site (no placeholder,
    /// no other host), with their line: what `tinyserve check` looks for.
    pub fn local_targets(&self) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.redirects
            .iter()
            .filter(|r| r.to.starts_with('/') && !r.to.starts_with("//") && !r.to.contains(':'))
            .map(|r| (r.line, r.to.as_str()))
    }

    /// The first redirect rule for `path`: `forced` asks for the `!` rules only (those that
    /// apply even where a file exists), otherwise for any.
    pub fn redirect(&self, path: &str, query: Option<&str>, forced: bool) -> Option<Action> {
        for r in self.redirects.iter().filter(|r| r.force || !forced) {
            let Some(values) = r.from.matches(path) else {
                continue;
            };
            let mut to = substitute(&r.to, &values);
            if is_local(&r.to) && !is_local(&to) {
                // A target on this site must stay on it: `/:splat` with a splat that
                // begins with `/` would otherwise be `//host/...`, another site.
                let off_site = to.len() - to.trim_start_matches(['/', '\\']).len();
                to.replace_range(..off_site, "/");
            }
            if r.status == StatusCode::OK {
                return Some(Action::Rewrite(to));
            }
            if to == path {
                // `/trailing /trailing/ 301` (Cloudflare's example) also matches the path
                // it sends to, as every pattern's trailing `/` is optional: sending the
                // client back where it is would loop, so the rule does not apply there.
                continue;
            }
            if let Some(q) = query.filter(|_| !to.contains('?')) {
                // Before a fragment (`/page2/#part`), where a query belongs.
                let at = to.find('#').unwrap_or(to.len());
                to.insert_str(at, &format!("?{q}"));
            }
            return Some(Action::Redirect(r.status, to));
        }
        None
    }

    /// The headers `_headers` adds to a response for `path`, in the order to apply them.
    pub fn headers_for<'a>(
        &'a self,
        path: &'a str,
    ) -> impl Iterator<Item = &'a (HeaderName, HeaderValue)> + 'a {
        self.headers
            .iter()
            .filter(move |(p, _)| p.is_match(path))
            .flat_map(|(_, h)| h.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(h: &str, r: &str) -> Rules {
        Rules::parse(Some(h), Some(r), &["content-length"]).unwrap()
    }

    #[test]
    fn redirects_with_splats_placeholders_status_and_force() {
        let r = rules(
            "",
            "# comment\n/old /new\n/blog/* /posts/:splat 302\n/u/:id/:tab /profile/:id?tab=:tab 307\n\
             /app/* /index.html 200!\n/ext https://example.com/ 308\n",
        );
        let redirect = |p, q| r.redirect(p, q, false);
        assert_eq!(
            redirect("/old", Some("a=1")),
            Some(Action::Redirect(
                StatusCode::MOVED_PERMANENTLY,
                "/new?a=1".into()
            ))
        );
        assert_eq!(
            redirect("/blog/2024/post", None),
            Some(Action::Redirect(
                StatusCode::FOUND,
                "/posts/2024/post".into()
            ))
        );
        assert_eq!(
            redirect("/u/7/likes", Some("x=1")),
            Some(Action::Redirect(
                StatusCode::TEMPORARY_REDIRECT,
                "/profile/7?tab=likes".into()
            ))
        );
        assert_eq!(
            redirect("/app/a/b", None),
            Some(Action::Rewrite("/index.html".into()))
        );
        assert_eq!(
            r.redirect("/old", None, true),
            None,
            "only ! rules when forced"
        );
        assert_eq!(
            r.redirect("/app/x", None, true),
            Some(Action::Rewrite("/index.html".into()))
        );
        assert_eq!(redirect("/nothing", None), None);
        assert_eq!(redirect("/u/7", None), None, "both placeholders needed");
    }

    #[test]
    fn a_name_repeated_in_a_block_is_one_header_of_several_values() {
        let r = rules(
            "/data/*\n  cache-control: max-age=0\n  cache-control: no-cache\n  \
             cache-control: no-store\n  X-A: 1\n  cache-control: must-revalidate\n",
            "",
        );
        let got: Vec<String> = r
            .headers_for("/data/x.json")
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                "cache-control=max-age=0, no-cache, no-store, must-revalidate",
                "x-a=1"
            ]
        );
    }

    #[test]
    fn headers_merge_in_order() {
        let r = rules("/*\n  X-A: 1\n  X-B: 1\n/docs/*\n  X-B: 2\n", "");
        let got: Vec<String> = r
            .headers_for("/docs/page")
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
            .collect();
        assert_eq!(got, ["x-a=1", "x-b=1", "x-b=2"]);
        assert_eq!(r.headers_for("/other").count(), 2);
    }

    #[test]
    fn values_are_encoded_again_and_never_searched_for_placeholders() {
        let r = rules(
            "",
            "/go/* /target/:splat 302\n/u/:id/* /p/:splat?id=:id 302\n/* /:splat 301\n",
        );
        let location = |p: &str| match r.redirect(p, None, false) {
            Some(Action::Redirect(_, l)) => l,
            other => panic!("{p}: {other:?}"),
        };
        // What the request had encoded stays encoded: no query, no fragment, no new line.
        assert_eq!(location("/go/a?b#c"), "/target/a%3Fb%23c");
        assert_eq!(
            location("/go/a\r\nSet-Cookie: x"),
            "/target/a%0D%0ASet-Cookie:%20x"
        );
        assert_eq!(location("/go/caf\u{e9} 1/x"), "/target/caf%C3%A9%201/x");
        assert_eq!(location("/go/100%"), "/target/100%25");
        // A placeholder's value in a query cannot add parameters.
        assert_eq!(location("/u/7&admin=1/x"), "/p/x?id=7%26admin%3D1");
        // A value holding `:id` is not substituted again.
        assert_eq!(location("/u/7/a:id"), "/p/a:id?id=7");
    }

    #[test]
    fn a_local_target_never_becomes_another_host() {
        let r = rules("", "/x/* https://example.com/:splat 302\n/* /:splat 301\n");
        for path in [
            "//evil.example/x",
            "///evil.example",
            "/\\evil.example",
            "/\\/evil",
        ] {
            let Some(Action::Redirect(_, l)) = r.redirect(path, None, false) else {
                panic!("{path}");
            };
            assert!(
                l.starts_with('/') && !l[1..].starts_with(['/', '\\']),
                "{path} -> {l}"
            );
        }
        // An external target is the rule's own choice.
        assert_eq!(
            r.redirect("/x/a", None, false),
            Some(Action::Redirect(
                StatusCode::FOUND,
                "https://example.com/a".into()
            ))
        );
    }

    #[test]
    fn basic_auth_is_refused_and_never_becomes_a_header() {
        let e = Rules::parse(
            Some("/*\n  X-Frame-Options: DENY\n  Basic-Auth: alice:secret123\n"),
            None,
            &["content-length"],
        )
        .unwrap_err();
        assert!(e.starts_with("_headers:3: Basic-Auth"), "{e}");
        assert!(e.contains("--basic-auth-file"), "{e}");
        assert!(
            !e.contains("secret123"),
            "the password is not repeated: {e}"
        );
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let e = |h: &str, r: &str| Rules::parse(Some(h), Some(r), &["content-length"]).unwrap_err();
        assert!(e("", "/a /b 418").starts_with("_redirects:1: status"));
        assert!(e("", "\n/a").starts_with("_redirects:2: expected"));
        assert!(e("", "/a https://x/ 200").contains("rewrite"));
        assert!(e("", "/a /b 301 extra").contains("not supported"));
        assert!(e("", "/a/*/b/* /b").starts_with("_redirects:1: \"/a/*/b/*\" has 2 *"));
        assert!(e("", "/ok /b\nhttps://a.example/* /b").starts_with("_redirects:2: "));
        assert!(e("\n/*.css\n  X: 1\n/p/:9", "").starts_with("_headers:4: "));
        assert!(e("  X: 1", "").starts_with("_headers:1: a header line before"));
        assert!(e("/a\n  Content-Length: 3", "").starts_with("_headers:2: content-length"));
        assert!(e("/a\n  no colon", "").starts_with("_headers:2: expected"));
    }
}
