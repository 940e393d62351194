//! Credentials: argon2id password hashes, HS256 access tokens (JWT, algorithm pinned; `exp`,
//! `iat`, `aud`, `iss` checked), opaque refresh and personal access tokens (random, stored only
//! as SHA-256 hashes), the JWT secret kept in the data directory, and the [`AuthUser`] /
//! [`Ctx`] extractors that turn a `Bearer` header into a user for every protected route.
//! Authorization on projects is in [`crate::authz`].

use crate::error::AppError;
use crate::state::AppState;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Prefix of refresh tokens (so a leaked token is recognisable, e.g. by secret scanners).
pub const REFRESH_PREFIX: &str = "hsr_";
/// Prefix of personal access tokens.
pub const PAT_PREFIX: &str = "hsp_";
/// The `aud` of access tokens: this API.
pub const AUDIENCE: &str = "hivesync-api";

/// `prefix` + 256 random bits from the OS CSPRNG, URL-safe.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a token: hex SHA-256. Tokens carry 256 random bits, so a fast hash is
/// enough (no salt or slow hash needed, unlike passwords).
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Password rules (OWASP ASVS 5, V6.2): at least 8 characters (15 recommended), at most 128 so
/// hashing cost stays bounded, any characters, no composition rules.
pub fn check_password_policy(password: &str) -> Result<(), AppError> {
    let len = password.chars().count();
    if len < 8 {
        return Err(AppError::Invalid {
            code: "weak_password",
            message: "password must be at least 8 characters".into(),
        });
    }
    if len > 128 {
        return Err(AppError::Invalid {
            code: "invalid_password",
            message: "password must be at most 128 characters".into(),
        });
    }
    Ok(())
}

/// Argon2id hashing with OWASP's parameters (19 MiB, 2 iterations, 1 lane), off the async
/// threads.
#[derive(Clone)]
pub struct Passwords {
    /// A hash of a random password, verified against when the email is unknown so a failed
    /// login takes as long whether or not the account exists.
    dummy_hash: String,
}

impl Passwords {
    pub async fn new() -> Result<Self, AppError> {
        let dummy_hash = Self::hash_blocking(random_token("")).await?;
        Ok(Passwords { dummy_hash })
    }

    async fn hash_blocking(password: String) -> Result<String, AppError> {
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))
        })
        .await
        .map_err(|e| AppError::internal(format!("password hashing task failed: {e}")))?
    }

    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        Self::hash_blocking(password.to_string()).await
    }

    /// Checks `password` against `stored` (or against a dummy hash when there is no user).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, AppError> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or(&self.dummy_hash).to_string();
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .map_err(|e| AppError::internal(format!("stored password hash is invalid: {e}")))
        })
        .await
        .map_err(|e| AppError::internal(format!("password check task failed: {e}")))??;
        Ok(ok && exists)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Token id.
    pub jti: Uuid,
    /// The login session (refresh-token family) it belongs to; logout revokes it.
    pub sid: Uuid,
}

/// Signing and checking of access tokens.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl: Duration,
    verified: Arc<VerifiedTokens>,
}

/// What [`Jwt::verify_cached`] needs from a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessToken {
    pub sub: Uuid,
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
}

/// Access tokens this process has verified (signature, algorithm, audience, issuer), by their
/// exact text: checking an HS256 signature and parsing the token's JSON twice was half the CPU
/// of a cheap API request, and a client sends the same token for its whole life. The times
/// (`exp`, `iat`) are checked again on every use; revocation is not cached at all (the caller
/// checks it per request). Only tokens that verified are kept, at most [`VERIFIED_TOKENS`].
/// Entries are found by the token's last bytes ([`tail_key`], part of its signature) so that a
/// lookup hashes 32 bytes rather than the whole token, and hold the whole token, compared on
/// every hit.
#[derive(Default)]
struct VerifiedTokens(std::sync::RwLock<HashMap<[u8; 32], VerifiedToken>>);

/// A token's whole text and what it says.
type VerifiedToken = (Box<str>, AccessToken);

/// The key of `token` in [`VerifiedTokens`]: its last 32 bytes (zero-padded when shorter).
fn tail_key(token: &str) -> [u8; 32] {
    let bytes = token.as_bytes();
    let tail = &bytes[bytes.len().saturating_sub(32)..];
    let mut key = [0u8; 32];
    key[..tail.len()].copy_from_slice(tail);
    key
}

/// Verified access tokens kept per process (about 200 bytes each).
const VERIFIED_TOKENS: usize = 16_384;

/// Leeway for clock differences between instances.
const LEEWAY_SECONDS: u64 = 30;

impl Jwt {
    pub fn new(secret: &[u8], issuer: &str, ttl: Duration) -> Self {
        // Algorithm pinned: a token whose header names anything but HS256 (including `none`) is
        // rejected before its signature is looked at.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        Jwt {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_string(),
            ttl,
            verified: Arc::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session: Uuid,
        now: OffsetDateTime,
    ) -> Result<String, AppError> {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user_id,
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            iat,
            exp: iat.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: Uuid::new_v4(),
            sid: session,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(format!("cannot sign access token: {e}")))
    }

    /// The claims of a valid token; `None` for anything invalid, expired, from the future, or
    /// for another audience or issuer.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Option<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(0);
        (data.claims.iat <= now.unix_timestamp() + leeway).then_some(data.claims)
    }

    /// [`verify`](Self::verify), remembering tokens that passed so that their signature is
    /// checked once per process; the times are checked on every call, as `verify` does.
    pub fn verify_cached(&self, token: &str, now: OffsetDateTime) -> Option<AccessToken> {
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(0);
        let now_s = now.unix_timestamp();
        let fresh =
            |t: AccessToken| (t.exp >= now_s - leeway && t.iat <= now_s + leeway).then_some(t);
        let known = self
            .verified
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tail_key(token))
            .filter(|(known, _)| **known == *token)
            .map(|(_, access)| *access);
        if let Some(known) = known {
            return fresh(known);
        }
        let claims = self.verify(token, now)?;
        let access = AccessToken {
            sub: claims.sub,
            sid: claims.sid,
            iat: claims.iat,
            exp: claims.exp,
        };
        let mut map = self
            .verified
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= VERIFIED_TOKENS {
            map.retain(|_, (_, t)| t.exp >= now_s - leeway);
            if map.len() >= VERIFIED_TOKENS {
                map.clear();
            }
        }
        map.insert(tail_key(token), (token.into(), access));
        Some(access)
    }
}

/// The JWT secret: the configured one, or (embedded setups) one generated on first start and
/// kept in `<data_dir>/jwt_secret`, readable by the owner only.
pub fn load_or_create_secret(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt_secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a valid secret file: {e}", path.display()),
                )
            })?;
            if bytes.len() < 32 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} holds fewer than 32 bytes", path.display()),
                ));
            }
            warn_if_readable_by_others(&path);
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let mut bytes = vec![0u8; 64];
            OsRng.fill_bytes(&mut bytes);
            write_private(&path, URL_SAFE_NO_PAD.encode(&bytes).as_bytes())?;
            tracing::info!(path = %path.display(), "generated a new JWT secret");
            Ok(bytes)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` with mode 0600 (never overwriting): a second process starting at the same
/// moment fails instead of writing a different secret.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the JWT secret file is readable by other users; run chmod 600 on it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// How a request authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this login session.
    Session(Uuid),
    /// This personal access token.
    PersonalToken(Uuid),
}

/// The authenticated caller of a request. Extracting it rejects with 401 when the
/// `Authorization: Bearer …` header is missing or not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
    pub credential: Credential,
    /// When the credential stops being valid (`exp` of an access token, a personal token's
    /// expiry); long-lived responses (SSE) end then.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Key in the ephemeral store marking a logged-out session. Built without `format!`: every
/// request with an access token looks it up.
pub fn revoked_session_key(session: Uuid) -> String {
    const PREFIX: &str = "session-revoked:";
    let mut key = String::with_capacity(PREFIX.len() + uuid::fmt::Hyphenated::LENGTH);
    key.push_str(PREFIX);
    key.push_str(
        session
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer()),
    );
    key
}

/// Only write `last_used_at` of a personal token when it is older than this, so each request
/// is not a database write.
const TOUCH_INTERVAL: time::Duration = time::Duration::minutes(1);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(parts).ok_or_else(|| {
            AppError::unauthorized("missing `Authorization: Bearer <token>` header")
        })?;
        let now = crate::store::now();
        let invalid = || AppError::Unauthorized {
            code: "invalid_token",
            message: "the token is invalid, expired or revoked".into(),
        };
        if token.starts_with(PAT_PREFIX) {
            let pat = state
                .tokens
                .personal_token_by_hash(&token_hash(token))
                .await?
                .ok_or_else(invalid)?;
            if pat.expires_at.is_some_and(|e| e <= now) {
                return Err(invalid());
            }
            if pat.last_used_at.is_none_or(|t| now - t > TOUCH_INTERVAL) {
                state.tokens.touch_personal_token(pat.id, now).await?;
            }
            return Ok(AuthUser {
                id: pat.user_id,
                credential: Credential::PersonalToken(pat.id),
                expires_at: pat.expires_at,
            });
        }
        let claims = state.jwt.verify_cached(token, now).ok_or_else(invalid)?;
        let revoked = state
            .ephemeral
            .get(&revoked_session_key(claims.sid))
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        if revoked.is_some() {
            return Err(invalid());
        }
        Ok(AuthUser {
            id: claims.sub,
            credential: Credential::Session(claims.sid),
            expires_at: time::OffsetDateTime::from_unix_timestamp(claims.exp).ok(),
        })
    }
}

/// What every protected handler gets: the state and the authenticated caller. Authorization on
/// a project is one call: `require_role(&ctx, project_id, Role::Reviewer).await?`.
#[derive(Clone)]
pub struct Ctx {
    pub state: AppState,
    pub user: AuthUser,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        Ok(Ctx {
            state: state.clone(),
            user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::new(&[7u8; 32], "hivesync", Duration::from_secs(60))
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = random_token(PAT_PREFIX);
        let b = random_token(PAT_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(PAT_PREFIX) && a.len() > 40);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn access_token_round_trip_and_checks() {
        let now = crate::store::now();
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let token = jwt().issue(user, sid, now).expect("sign");
        let claims = jwt().verify(&token, now).expect("valid");
        assert_eq!((claims.sub, claims.sid), (user, sid));
        // Another issuer's or another secret's token is refused.
        let other_iss = Jwt::new(&[7u8; 32], "elsewhere", Duration::from_secs(60));
        assert!(other_iss.verify(&token, now).is_none());
        let other_key = Jwt::new(&[8u8; 32], "hivesync", Duration::from_secs(60));
        assert!(other_key.verify(&token, now).is_none());
        // Expired (beyond the leeway).
        let old = jwt()
            .issue(user, sid, now - time::Duration::seconds(200))
            .expect("sign");
        assert!(jwt().verify(&old, now).is_none());
        // Issued in the future.
        let future = jwt()
            .issue(user, sid, now + time::Duration::seconds(120))
            .expect("sign");
        assert!(jwt().verify(&future, now).is_none());
    }

    #[test]
    fn verified_tokens_are_remembered_but_their_times_checked_each_time() {
        let jwt = jwt();
        let now = crate::store::now();
        let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let token = jwt.issue(user, sid, now).expect("sign");
        let first = jwt.verify_cached(&token, now).expect("valid");
        assert_eq!((first.sub, first.sid), (user, sid));
        assert_eq!(jwt.verify_cached(&token, now), Some(first));
        // Expired (beyond the leeway) although remembered.
        assert!(
            jwt.verify_cached(&token, now + time::Duration::seconds(200))
                .is_none()
        );
        // Another key's clone shares nothing: a token it did not sign is refused.
        let other = Jwt::new(&[8u8; 32], "hivesync", Duration::from_secs(60));
        assert!(other.verify_cached(&token, now).is_none());
        // A tampered token (one character changed) is checked, not matched: in its signature,
        // and in its claims (the same last bytes as the remembered token: same cache slot).
        for at in [token.len() - 2, token.find('.').expect("a JWT") + 3] {
            let mut tampered = token.clone().into_bytes();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).expect("ascii");
            assert!(jwt.verify_cached(&tampered, now).is_none(), "byte {at}");
        }
        assert_eq!(jwt.verify_cached(&token, now), Some(first));
    }

    #[test]
    fn unsigned_and_other_algorithm_tokens_are_refused() {
        let now = crate::store::now();
        let token = jwt()
            .issue(Uuid::new_v4(), Uuid::new_v4(), now)
            .expect("sign");
        let payload = token.split('.').nth(1).expect("payload");
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            jwt()
                .verify(&format!("{none_header}.{payload}."), now)
                .is_none()
        );
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &jwt().verify(&token, now).expect("valid"),
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .expect("sign");
        assert!(jwt().verify(&hs512, now).is_none());
    }

    #[test]
    fn secret_is_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_secret(None, dir.path()).expect("create");
        let b = load_or_create_secret(None, dir.path()).expect("read");
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt_secret"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            load_or_create_secret(Some("configured-secret"), dir.path()).expect("configured"),
            b"configured-secret".to_vec()
        );
    }

    #[tokio::test]
    async fn passwords_verify_and_unknown_users_fail() {
        let p = Passwords::new().await.expect("init");
        let h = p.hash("correct horse").await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse", Some(&h)).await.expect("verify"));
        assert!(!p.verify("wrong horse", Some(&h)).await.expect("verify"));
        assert!(!p.verify("correct horse", None).await.expect("verify"));
    }
}
