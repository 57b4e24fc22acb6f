//! HTTP Basic authentication for previews (`--basic-auth-file`): htpasswd lines with bcrypt
//! hashes (`user:$2y$10$...`, what `htpasswd -B`, nginx, Caddy and static-web-server use).
//!
//! bcrypt is deliberately slow (~70 ms at cost 10), so it never runs on the event loop: a
//! credential seen for the first time is verified on the blocking pool, at most [`AT_ONCE`]
//! at a time, while other requests carry on; the verdict is remembered by a keyed hash of
//! the whole `Authorization` value, so a logged-in browser pays bcrypt once. Passwords are
//! never logged or kept.
//!
//! What an attacker can learn or spoil, and why not:
//! - **Which users exist.** A password for an unknown user is checked against a *decoy*, a
//!   hash of the users' highest cost that no password matches, so it costs what a wrong
//!   password for a real user costs (with `htpasswd -B`'s default cost 5, both ~4 ms). A
//!   file whose users have different costs is warned about at startup: the others stand
//!   out by their timing.
//! - **Locking others out.** Verdicts for good credentials and for bad ones are
//!   remembered apart ([`REMEMBERED`] each): a flood of guesses empties only its own
//!   record, never a logged-in user's. A logged-in browser is never queued behind guesses.
//! - **Queueing others.** A credential waiting for bcrypt is verified once however many
//!   requests carry it (a browser's six connections), each client may have at most
//!   [`PER_CLIENT`] different ones waiting, and all clients together [`WAITING`]; past
//!   that, the request gets 429 with `Retry-After` at once. A new login from another client
//!   waits behind at most `PER_CLIENT` guesses of each client guessing, not behind a
//!   flood.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use tokio::sync::{OnceCell, Semaphore};

/// bcrypt verifications running at once; more wait their turn.
pub const AT_ONCE: usize = 2;

/// Verdicts remembered, at most, for good and for bad credentials each (emptied when
/// full): 16 bytes each.
pub const REMEMBERED: usize = 4096;

/// Different credentials one client may have waiting for bcrypt at once.
pub const PER_CLIENT: usize = 4;

/// Different credentials waiting for bcrypt at once, from all clients: at cost 10 (~70 ms,
/// two at a time) the last of them is answered within about 2.3 s.
pub const WAITING: usize = 64;

/// The users and what is known of the credentials seen.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// What an unknown user's password is checked against (see the module documentation).
    decoy: String,
    /// The key of the verdicts' hash, chosen at startup: nobody outside can aim a value at a
    /// remembered verdict.
    seed: u64,
    allowed: Mutex<HashSet<u128>>,
    denied: Mutex<HashSet<u128>>,
    waiting: Mutex<Waiting>,
    slots: Arc<Semaphore>,
}

/// Verifications in progress: one per credential, and how many each client started.
#[derive(Default)]
struct Waiting {
    by_key: HashMap<u128, Arc<OnceCell<bool>>>,
    by_client: HashMap<IpAddr, usize>,
}

/// What is known of a request's credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Verified before: let it in.
    Allowed,
    /// Missing, malformed, or a password that failed before: 401.
    Denied,
    /// A user and password not verified yet: [`BasicAuth::admit`] them.
    Unknown,
}

/// Whether credentials not verified yet can be verified now.
pub enum Admission {
    /// Their verification: run it, then ask [`BasicAuth::verdict`] again.
    Verify(Verification),
    /// Too many verifications wait already (for this client, or for all): 429.
    Busy,
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
            if cost_and_salt(hash).is_none() {
                return Err(format!(
                    "line {}: user {user:?} has no bcrypt hash (make one with htpasswd -B)",
                    i + 1
                ));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        let Some((cost, salt)) = users.values().filter_map(|h| cost_and_salt(h)).max() else {
            return Err("no user in it; add one with htpasswd -B FILE USER".into());
        };
        let costs: std::collections::BTreeSet<u32> = users
            .values()
            .filter_map(|h| cost_and_salt(h))
            .map(|(c, _)| c)
            .collect();
        if costs.len() > 1 {
            tracing::warn!(
                costs = ?costs,
                "the users' bcrypt costs differ: a wrong password costs each user's own \
                 time, so users of a lower cost can be told apart from unknown ones; hash \
                 them all at one cost (htpasswd -B -C COST)"
            );
        }
        // The highest cost's salt with an all-zero digest ('.' is 0 in bcrypt's base64):
        // a well-formed hash that no password matches.
        let decoy = format!("$2b${cost:02}${salt}{}", ".".repeat(31));
        Ok(BasicAuth {
            users,
            decoy,
            seed: random_seed(),
            allowed: Mutex::new(HashSet::new()),
            denied: Mutex::new(HashSet::new()),
            waiting: Mutex::new(Waiting::default()),
            slots: Arc::new(Semaphore::new(AT_ONCE)),
        })
    }

    /// What is known of `headers`' credentials, without verifying anything. Unknown users
    /// are [`Verdict::Unknown`] like known ones: which users exist is not told.
    pub fn verdict(&self, headers: &HeaderMap) -> Verdict {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Verdict::Denied;
        };
        let key = self.key(value);
        if lock(&self.allowed).contains(&key) {
            return Verdict::Allowed;
        }
        if credentials(value).is_none() || lock(&self.denied).contains(&key) {
            return Verdict::Denied;
        }
        Verdict::Unknown
    }

    /// The verification of `headers`' credentials for a request from `client`: joined if
    /// one is in progress for the same credentials, else started if the bounds allow.
    pub fn admit(self: &Arc<Self>, headers: &HeaderMap, client: IpAddr) -> Admission {
        let Some(value) = headers.get(header::AUTHORIZATION).cloned() else {
            return Admission::Busy;
        };
        let key = self.key(&value);
        let mut waiting = lock(&self.waiting);
        if let Some(cell) = waiting.by_key.get(&key) {
            return Admission::Verify(Verification {
                auth: self.clone(),
                key,
                value,
                cell: cell.clone(),
                client: None,
            });
        }
        let started = waiting.by_client.get(&client).copied().unwrap_or(0);
        if started >= PER_CLIENT || waiting.by_key.len() >= WAITING {
            return Admission::Busy;
        }
        let cell = Arc::new(OnceCell::new());
        waiting.by_key.insert(key, cell.clone());
        *waiting.by_client.entry(client).or_default() += 1;
        Admission::Verify(Verification {
            auth: self.clone(),
            key,
            value,
            cell,
            client: Some(client),
        })
    }

    /// Checks `value`'s password with bcrypt (blocking: ~70 ms at cost 10), against the
    /// decoy for an unknown user.
    fn check(&self, value: &HeaderValue) -> bool {
        let Some((user, password)) = credentials(value) else {
            return false;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        bcrypt::verify(password, hash).unwrap_or(false) && known
    }

    fn remember(&self, key: u128, ok: bool) {
        let mut set = lock(if ok { &self.allowed } else { &self.denied });
        if set.len() >= REMEMBERED {
            set.clear();
        }
        set.insert(key);
    }

    fn key(&self, value: &HeaderValue) -> u128 {
        xxhash_rust::xxh3::xxh3_128_with_seed(value.as_bytes(), self.seed)
    }
}

/// One credential's verification, shared by every request that carries it while it runs.
pub struct Verification {
    auth: Arc<BasicAuth>,
    key: u128,
    value: HeaderValue,
    cell: Arc<OnceCell<bool>>,
    /// The client whose count it holds, for the request that started it.
    client: Option<IpAddr>,
}

impl Verification {
    /// Waits for a bcrypt slot, verifies on the blocking pool and remembers the verdict
    /// (or waits for the request that does). If that request goes away first, the next
    /// one waiting takes over.
    pub async fn run(self) {
        let auth = self.auth.clone();
        let value = self.value.clone();
        let key = self.key;
        self.cell
            .get_or_init(|| async move {
                let Ok(_slot) = auth.slots.clone().acquire_owned().await else {
                    return false;
                };
                let me = auth.clone();
                let ok = tokio::task::spawn_blocking(move || me.check(&value))
                    .await
                    .unwrap_or(false);
                auth.remember(key, ok);
                ok
            })
            .await;
    }
}

impl Drop for Verification {
    fn drop(&mut self) {
        let Some(client) = self.client else {
            return;
        };
        let mut waiting = lock(&self.auth.waiting);
        waiting.by_key.remove(&self.key);
        if let Some(n) = waiting.by_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                waiting.by_client.remove(&client);
            }
        }
    }
}

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = "Basic realm=\"tinyserve\", charset=\"UTF-8\"";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change is one call on the collection: a panic cannot leave it half-changed.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cost and the 22-character salt of a bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
fn cost_and_salt(hash: &str) -> Option<(u32, &str)> {
    let rest = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|p| hash.strip_prefix(p))?;
    let (cost, rest) = rest.split_once('$')?;
    let cost: u32 = cost.parse().ok().filter(|c| (4..=31).contains(c))?;
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'/';
    (rest.len() == 53 && rest.bytes().all(valid)).then(|| (cost, &rest[..22]))
}

/// A seed from the kernel's randomness (std's hasher keys come from it), without a crate.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
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
    use std::net::Ipv4Addr;

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::STANDARD.encode(user_pass);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {v}")).unwrap(),
        );
        h
    }

    fn alice(cost: u32) -> Arc<BasicAuth> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let hash = bcrypt::hash_with_salt("s3cret", cost, [7u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        writeln!(f, "# previews\nalice:{hash}").unwrap();
        Arc::new(BasicAuth::load(f.path()).unwrap())
    }

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    async fn verify(auth: &Arc<BasicAuth>, headers: &HeaderMap) {
        match auth.admit(headers, CLIENT) {
            Admission::Verify(v) => v.run().await,
            Admission::Busy => panic!("busy"),
        }
    }

    #[tokio::test]
    async fn verifies_once_then_remembers() {
        let auth = alice(4);
        let good = basic("alice:s3cret");
        assert_eq!(auth.verdict(&good), Verdict::Unknown);
        verify(&auth, &good).await;
        assert_eq!(auth.verdict(&good), Verdict::Allowed);
        let bad = basic("alice:guess");
        assert_eq!(auth.verdict(&bad), Verdict::Unknown);
        verify(&auth, &bad).await;
        assert_eq!(auth.verdict(&bad), Verdict::Denied);
        // An unknown user is verified (against the decoy) like a known one, and fails.
        let nobody = basic("bob:s3cret");
        assert_eq!(auth.verdict(&nobody), Verdict::Unknown);
        verify(&auth, &nobody).await;
        assert_eq!(auth.verdict(&nobody), Verdict::Denied);
        assert_eq!(auth.verdict(&HeaderMap::new()), Verdict::Denied);
        assert_eq!(auth.verdict(&basic("no colon")), Verdict::Denied);
    }

    #[test]
    fn the_decoy_has_the_highest_cost_and_matches_no_password() {
        let auth = alice(5);
        assert_eq!(cost_and_salt(&auth.decoy).map(|(c, _)| c), Some(5));
        for password in ["", "s3cret", "x"] {
            assert!(!bcrypt::verify(password, &auth.decoy).unwrap());
        }
        assert!(!auth.check(&basic("bob:s3cret")[header::AUTHORIZATION]));
        assert!(auth.check(&basic("alice:s3cret")[header::AUTHORIZATION]));
    }

    #[tokio::test]
    async fn guesses_never_push_a_login_out() {
        let auth = alice(4);
        let good = basic("alice:s3cret");
        verify(&auth, &good).await;
        // More wrong guesses than are remembered: their record empties, not the logins'.
        for i in 0..REMEMBERED + 10 {
            auth.remember(i as u128 + 1, false);
        }
        assert_eq!(auth.verdict(&good), Verdict::Allowed);
    }

    #[tokio::test]
    async fn waiting_is_bounded_per_client_and_shared_by_equal_credentials() {
        let auth = alice(4);
        let mut held = Vec::new();
        for i in 0..PER_CLIENT {
            match auth.admit(&basic(&format!("alice:guess{i}")), CLIENT) {
                Admission::Verify(v) => held.push(v),
                Admission::Busy => panic!("within the bound"),
            }
        }
        assert!(matches!(
            auth.admit(&basic("alice:another"), CLIENT),
            Admission::Busy
        ));
        // The same credentials join the verification in progress, not the count...
        assert!(matches!(
            auth.admit(&basic("alice:guess0"), CLIENT),
            Admission::Verify(_)
        ));
        // ...and another client has room of its own.
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        assert!(matches!(
            auth.admit(&basic("alice:s3cret"), other),
            Admission::Verify(_)
        ));
        // Once they are done, the client may try again.
        drop(held);
        assert!(matches!(
            auth.admit(&basic("alice:another"), CLIENT),
            Admission::Verify(_)
        ));
    }

    #[test]
    fn htpasswd_errors_name_the_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "alice:{{SHA}}abc").unwrap();
        let e = BasicAuth::load(f.path()).err().unwrap();
        assert!(e.contains("line 1") && e.contains("bcrypt"), "{e}");
    }
}
