//! `Accept-Encoding`: which precompressed representation a client gets.

/// A content coding the server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The file as it is.
    Identity,
    /// The `x.br` sidecar.
    Brotli,
    /// The `x.zst` sidecar.
    Zstd,
    /// The `x.gz` sidecar.
    Gzip,
}

impl Encoding {
    /// Sidecars in the order clients are offered them (brotli, then zstd, then gzip win
    /// ties: brotli's static dictionary compresses web text best): coding and file suffix.
    pub const SIDECARS: [(Encoding, &'static str); 3] = [
        (Encoding::Brotli, "br"),
        (Encoding::Zstd, "zst"),
        (Encoding::Gzip, "gz"),
    ];

    /// The file a sidecar's name stands beside, and its coding: `app.js.br` → (`app.js`,
    /// brotli); `None` for a name without a sidecar's suffix.
    pub fn sidecar_of(name: &str) -> Option<(&str, Encoding)> {
        Encoding::SIDECARS
            .iter()
            .find_map(|(e, ext)| Some((name.strip_suffix(ext)?.strip_suffix('.')?, *e)))
    }

    /// The `Content-Encoding` token, `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Brotli => Some("br"),
            Encoding::Zstd => Some("zstd"),
            Encoding::Gzip => Some("gzip"),
        }
    }
}

/// Parsed `Accept-Encoding`: the q-values (in thousandths) of what the server can send.
pub struct AcceptEncoding {
    br: Option<u16>,
    zstd: Option<u16>,
    gzip: Option<u16>,
    any: Option<u16>,
}

impl AcceptEncoding {
    /// Parses a header value; unknown codings are ignored.
    pub fn parse(header: &str) -> AcceptEncoding {
        let mut accept = AcceptEncoding {
            br: None,
            zstd: None,
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
            } else if coding.eq_ignore_ascii_case("zstd") {
                accept.zstd = Some(q);
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                accept.gzip = Some(q);
            } else if coding == "*" {
                accept.any = Some(q);
            }
        }
        accept
    }

    /// The q-value of `e` in thousandths; identity is always acceptable.
    pub fn quality(&self, e: Encoding) -> u16 {
        let named = match e {
            Encoding::Brotli => self.br,
            Encoding::Zstd => self.zstd,
            Encoding::Gzip => self.gzip,
            Encoding::Identity => return 1000,
        };
        named.or(self.any).unwrap_or(0)
    }
}

/// The index in `available` (codings of the sidecars, in preference order) of the one to
/// send for `accept_encoding`, or `None` for identity.
pub fn choose(
    available: impl IntoIterator<Item = Encoding>,
    accept_encoding: Option<&str>,
) -> Option<usize> {
    let accept = AcceptEncoding::parse(accept_encoding?);
    let mut best: Option<(usize, u16)> = None;
    for (i, e) in available.into_iter().enumerate() {
        let q = accept.quality(e);
        // Strictly greater, so the earlier (preferred) coding wins ties.
        if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((i, q));
        }
    }
    best.map(|(i, _)| i)
}

/// RFC 9110 §12.4.2 qvalue: `0`, `1`, `0.8`, `1.000`, up to three decimals.
pub fn parse_qvalue(s: &str) -> Option<u16> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn choice() {
        let all = [Encoding::Brotli, Encoding::Zstd, Encoding::Gzip];
        assert_eq!(choose(all, Some("gzip, deflate, br, zstd")), Some(0));
        assert_eq!(choose(all, Some("gzip, zstd")), Some(1));
        assert_eq!(choose(all, Some("zstd;q=0.5, gzip")), Some(2));
        let both = [Encoding::Brotli, Encoding::Gzip];
        assert_eq!(choose(both, Some("gzip, br")), Some(0));
        assert_eq!(choose(both, Some("gzip, br;q=0.5")), Some(1));
        assert_eq!(choose(both, Some("identity")), None);
        assert_eq!(choose(both, None), None);
        assert_eq!(choose([Encoding::Gzip], Some("br")), None);
    }
}
