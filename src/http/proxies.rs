//! The client's address behind trusted proxies. A load balancer or ingress is the TCP peer;
//! it names the client in `Forwarded` (RFC 7239), `X-Forwarded-For` or `X-Real-IP`. Those
//! headers are believed only from peers in `--trusted-proxies`: anyone else could write
//! anything there. Through a chain of proxies, the client is the last address that is not
//! itself a trusted proxy (each proxy appends the address it received the request from).

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName};

/// A network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a single address (`/32`, `/128`).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse().ok().filter(|&p| p <= max)?,
            None => max,
        };
        Some(Cidr { network, prefix })
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 client seen through a dual-stack socket (`::ffff:a.b.c.d`) as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The peers whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs; empty for none.
    pub fn parse(s: &str) -> Option<TrustedProxies> {
        s.split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(Cidr::parse)
            .collect::<Option<Vec<_>>>()
            .map(TrustedProxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client of a request received from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_for(headers)
            .or_else(|| list(headers, &HeaderName::from_static("x-forwarded-for")))
            .or_else(|| list(headers, &HeaderName::from_static("x-real-ip")));
        let Some(chain) = chain else {
            return peer;
        };
        // From the nearest hop outwards: the first address not itself a trusted proxy.
        let mut client = peer;
        for ip in chain.into_iter().rev() {
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The `for=` addresses of every `Forwarded` element, in order; `None` without the header or
/// when an element names no address we can use (`unknown`, an obfuscated `_name`).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        for element in value.to_str().ok()?.split(',') {
            for pair in element.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                if k.trim().eq_ignore_ascii_case("for") {
                    out.push(node_ip(v.trim().trim_matches('"'))?);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The address of a `Forwarded` node: `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::1]:4711`.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.split(':').next()?.parse().ok()
}

/// The addresses of a comma-separated header (all its lines), in order.
fn list(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<IpAddr>> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        for item in value.to_str().ok()?.split(',') {
            let item = item.trim();
            let ip = item.parse::<IpAddr>().ok().or_else(|| node_ip(item))?;
            out.push(ip);
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.1.2.3")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd12::1")));
        assert!(Cidr::parse("192.0.2.1").unwrap().contains(ip("192.0.2.1")));
        assert!(!Cidr::parse("192.0.2.1").unwrap().contains(ip("192.0.2.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("nonsense"), None);
        assert_eq!(TrustedProxies::parse(""), Some(TrustedProxies::default()));
        assert_eq!(TrustedProxies::parse("10.0.0.0/8, x"), None);
    }

    #[test]
    fn only_trusted_peers_name_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let xff = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(t.client(ip("10.0.0.5"), &xff), ip("203.0.113.7"));
        // A spoofed header from anyone else is ignored.
        assert_eq!(t.client(ip("198.51.100.9"), &xff), ip("198.51.100.9"));
        // Nothing configured: the peer, always.
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.5"), &xff),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn chains_forwarded_and_x_real_ip() {
        let t = TrustedProxies::parse("10.0.0.0/8,fd00::/8").unwrap();
        // The client wrote a fake first hop; the last untrusted address is the real one.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(t.client(ip("10.0.0.5"), &h), ip("203.0.113.7"));
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.43, for=\"[2001:db8:cafe::17]:4711\";proto=https",
        )]);
        assert_eq!(t.client(ip("fd00::1"), &h), ip("2001:db8:cafe::17"));
        // Forwarded wins over X-Forwarded-For; X-Real-IP is the last resort.
        let h = headers(&[
            ("forwarded", "for=192.0.2.1"),
            ("x-forwarded-for", "192.0.2.2"),
        ]);
        assert_eq!(t.client(ip("10.0.0.5"), &h), ip("192.0.2.1"));
        let h = headers(&[("x-real-ip", "192.0.2.3")]);
        assert_eq!(t.client(ip("10.0.0.5"), &h), ip("192.0.2.3"));
        // Unusable values: the peer.
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(t.client(ip("10.0.0.5"), &h), ip("10.0.0.5"));
        // An IPv4 peer on the dual-stack socket is matched as IPv4.
        let h = headers(&[("x-forwarded-for", "203.0.113.7")]);
        assert_eq!(t.client(ip("::ffff:10.0.0.5"), &h), ip("203.0.113.7"));
    }
}
