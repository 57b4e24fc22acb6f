//! HTTP Basic authentication for previews (`--basic-auth-file`): htpasswd lines with bcrypt
//! hashes (`user:$2y$10$...`, what `htpasswd -B`, nginx, Caddy and static-web-server use).
//!
//! bcrypt is deliberately slow (~50 ms at cost 10), so it never runs on the event loop: a
//! credential seen for the first time is verified on the blocking pool, at most
//! `AT_ONCE` at a time, while other requests carry on; the result is remembered by a hash
//! of the whole `Authorization` value, so a logged-in browser pays bcrypt once, and a
//! wrong guess repeated costs nothing more. Passwords are never logged or kept.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use tokio::sync::Semaphore;

/// bcrypt verifications running at once; more wait their turn.
const AT_ONCE: usize = 2;

/// Outcomes remembered, at most (emptied when full): 24 bytes each.
const REMEMBERED: usize = 4096;

/// The users and what is known of the credentials seen.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// Verdicts by hash of the `Authorization` value.
    known: Mutex<HashMap<u128, bool>>,
    slots: Arc<Semaphore>,
}

/// What is known of a request's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified before: let it in.
    Allowed,
    /// Missing, malformed, an unknown user, or a password that failed before: 401.
    Denied,
    /// A known user with a password not tried yet: verify it first.
    Unknown,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        write!(f, "BasicAuth({} users)", self.users.len())
    }
}

impl BasicAuth {
    /// Reads an htpasswd file. Errors name the line and what is wrong with it.
    pub fn load(path: &Path) -> Result<BasicAuth, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read it ({e}); create it with htpasswd -B -c FILE USER")
        })?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("line {}: expected user:hash", i + 1))?;
            if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
                return Err(format!(
                    "line {}: user {user:?} has no bcrypt hash (make one with htpasswd -B)",
                    i + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return Err("no user in it; add one with htpasswd -B FILE USER".into());
        }
        Ok(BasicAuth {
            users,
            known: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(AT_ONCE)),
        })
    }

    /// What is known of `headers`' credentials, without verifying anything.
    pub fn verdict(&self, headers: &HeaderMap) -> Verdict {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Verdict::Denied;
        };
        if let Some(&ok) = self.lock().get(&key(value)) {
            return if ok {
                Verdict::Allowed
            } else {
                Verdict::Denied
            };
        }
        match credentials(value) {
            Some((user, _)) if self.users.contains_key(&user) => Verdict::Unknown,
            _ => Verdict::Denied,
        }
    }

    /// Verifies `headers`' credentials on the blocking pool (bounded) and remembers the
    /// outcome, so [`BasicAuth::verdict`] knows it next.
    pub async fn verify(self: Arc<Self>, headers: &HeaderMap) {
        let Some(value) = headers.get(header::AUTHORIZATION).cloned() else {
            return;
        };
        let Ok(_slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        // A browser opens several connections at once with the same credentials: whichever
        // got here first has verified them for all.
        if self.lock().contains_key(&key(&value)) {
            return;
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let ok = credentials(&value).is_some_and(|(user, password)| {
                me.users
                    .get(&user)
                    .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
            });
            let mut known = me.lock();
            if known.len() >= REMEMBERED {
                known.clear();
            }
            known.insert(key(&value), ok);
        })
        .await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, bool>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"tinyserve\", charset=\"UTF-8\"";

fn key(value: &HeaderValue) -> u128 {
    xxhash_rust::xxh3::xxh3_128(value.as_bytes())
}

/// `Basic base64(user:password)`.
fn credentials(value: &HeaderValue) -> Option<(String, String)> {
    let v = value.to_str().ok()?;
    let (scheme, encoded) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(user_pass);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn verifies_once_then_remembers() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let hash = bcrypt::hash_with_salt("s3cret", 4, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        writeln!(f, "# previews\nalice:{hash}").unwrap();
        let auth = Arc::new(BasicAuth::load(f.path()).unwrap());
        let good = basic("alice:s3cret");
        assert_eq!(auth.verdict(&good), Verdict::Unknown);
        auth.clone().verify(&good).await;
        assert_eq!(auth.verdict(&good), Verdict::Allowed);
        let bad = basic("alice:guess");
        assert_eq!(auth.verdict(&bad), Verdict::Unknown);
        auth.clone().verify(&bad).await;
        assert_eq!(auth.verdict(&bad), Verdict::Denied);
        assert_eq!(auth.verdict(&basic("bob:s3cret")), Verdict::Denied);
        assert_eq!(auth.verdict(&HeaderMap::new()), Verdict::Denied);
    }

    #[test]
    fn htpasswd_errors_name_the_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "alice:{{SHA}}abc").unwrap();
        let e = BasicAuth::load(f.path()).err().unwrap();
        assert!(e.contains("line 1") && e.contains("bcrypt"), "{e}");
    }
}
