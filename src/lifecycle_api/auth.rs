//! Who is asking, and what they may read, decided by the cluster: bearer
//! tokens checked with TokenReview, each namespace with SubjectAccessReview
//! (`list` and `watch` on managedroosts). Answers are cached briefly, keyed
//! by a SHA-256 of the token (the token itself is kept nowhere), in bounded
//! caches; reviews in flight at once are bounded too, so a flood of made-up
//! tokens cannot turn into a flood of API requests.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a review's answer is trusted: a revoked token or binding stops
/// working within this.
pub const REVIEW_TTL: Duration = Duration::from_secs(10);
/// Tokens remembered at once.
pub const MAX_CACHED_TOKENS: u64 = 10_000;
/// (token, namespace) answers remembered at once.
pub const MAX_CACHED_ACCESS: u64 = 100_000;
/// TokenReviews and SubjectAccessReviews in flight at once.
pub const MAX_REVIEWS_IN_FLIGHT: usize = 16;
/// How long a request waits for a review slot or a review's answer.
pub const REVIEW_WAIT: Duration = Duration::from_secs(5);
/// A longer Authorization header is refused without a review.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The resource a reader needs `list` and `watch` on.
fn managed_roosts() -> String {
    <crate::api::ManagedRoost as kube::Resource>::plural(&()).into_owned()
}

/// SHA-256 of a token: the cache key, never the token.
pub type TokenKey = [u8; 32];

/// The user a token belongs to, as TokenReview said.
#[derive(Clone, Debug)]
pub struct Identity {
    pub key: TokenKey,
    pub username: String,
    pub uid: Option<String>,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a request is not answered with data.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required (Authorization: Bearer <token>)")]
    Missing,
    #[error("the token was not accepted")]
    Rejected,
    #[error("the cluster could not review the request; try again")]
    Unavailable,
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(header: Option<&axum::http::HeaderValue>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?;
    if value.len() > MAX_TOKEN_BYTES + "Bearer ".len() {
        return Err(AuthError::Rejected);
    }
    let text = value.to_str().map_err(|_| AuthError::Rejected)?;
    let (scheme, token) = text.split_once(' ').ok_or(AuthError::Missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}

fn key_of(token: &str) -> TokenKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Reviews tokens and access with the cluster, caching the answers.
pub struct Authorizer {
    client: Client,
    audiences: Vec<String>,
    tokens: moka::sync::Cache<TokenKey, Option<Arc<Identity>>>,
    access: moka::sync::Cache<(TokenKey, String), bool>,
    reviews: Semaphore,
}

impl Authorizer {
    /// `audiences` empty: the apiserver's own audiences.
    pub fn new(client: Client, audiences: Vec<String>) -> Self {
        Authorizer {
            client,
            audiences,
            tokens: moka::sync::Cache::builder()
                .max_capacity(MAX_CACHED_TOKENS)
                .time_to_live(REVIEW_TTL)
                .build(),
            access: moka::sync::Cache::builder()
                .max_capacity(MAX_CACHED_ACCESS)
                .time_to_live(REVIEW_TTL)
                .build(),
            reviews: Semaphore::new(MAX_REVIEWS_IN_FLIGHT),
        }
    }

    /// One review against the cluster, within the in-flight bound and the wait.
    async fn review<T, F>(&self, call: F) -> Result<T, AuthError>
    where
        F: Future<Output = Result<T, kube::Error>>,
    {
        let work = async {
            let _permit = self
                .reviews
                .acquire()
                .await
                .map_err(|_| AuthError::Unavailable)?;
            call.await.map_err(|err| {
                tracing::warn!(error = %crate::error::ErrorChain(&err), "lifecycle API: review failed");
                AuthError::Unavailable
            })
        };
        tokio::time::timeout(REVIEW_WAIT, work)
            .await
            .map_err(|_| AuthError::Unavailable)?
    }

    /// The identity behind `token`.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        let key = key_of(token);
        if let Some(known) = self.tokens.get(&key) {
            return known.ok_or(AuthError::Rejected);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let answer = self
            .review(async { api.create(&PostParams::default(), &review).await })
            .await?;
        let identity = answer
            .status
            .filter(|s| s.authenticated == Some(true))
            .and_then(|s| s.user)
            .and_then(|user| {
                Some(Arc::new(Identity {
                    key,
                    username: user.username?,
                    uid: user.uid,
                    groups: user.groups.unwrap_or_default(),
                    extra: user.extra.unwrap_or_default(),
                }))
            });
        self.tokens.insert(key, identity.clone());
        identity.ok_or(AuthError::Rejected)
    }

    /// Whether `who` may `list` and `watch` managedroosts in `namespace`
    /// (`""`: in every namespace).
    pub async fn may_read(&self, who: &Identity, namespace: &str) -> Result<bool, AuthError> {
        let cache_key = (who.key, namespace.to_owned());
        if let Some(known) = self.access.get(&cache_key) {
            return Ok(known);
        }
        let mut allowed = true;
        for verb in ["list", "watch"] {
            let review = SubjectAccessReview {
                spec: SubjectAccessReviewSpec {
                    user: Some(who.username.clone()),
                    uid: who.uid.clone(),
                    groups: Some(who.groups.clone()),
                    extra: Some(who.extra.clone()),
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(crate::api::GROUP.to_owned()),
                        resource: Some(managed_roosts()),
                        namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
                        verb: Some(verb.to_owned()),
                        ..ResourceAttributes::default()
                    }),
                    ..SubjectAccessReviewSpec::default()
                },
                ..SubjectAccessReview::default()
            };
            let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let answer = self
                .review(async { api.create(&PostParams::default(), &review).await })
                .await?;
            if !answer.status.is_some_and(|s| s.allowed) {
                allowed = false;
                break;
            }
        }
        self.access.insert(cache_key, allowed);
        Ok(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_bearer_token_is_read_from_the_header() {
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(bearer(Some(&header("Bearer abc"))).unwrap(), "abc");
        assert_eq!(bearer(Some(&header("bearer  abc "))).unwrap(), "abc");
        assert!(matches!(bearer(None), Err(AuthError::Missing)));
        assert!(matches!(
            bearer(Some(&header("Basic dXNlcjpwYXNz"))),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            bearer(Some(&header("Bearer "))),
            Err(AuthError::Missing)
        ));
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(matches!(
            bearer(Some(&header(&huge))),
            Err(AuthError::Rejected)
        ));
    }

    #[test]
    fn tokens_are_cached_by_digest() {
        assert_ne!(key_of("a"), key_of("b"));
        assert_eq!(key_of("a"), key_of("a"));
        assert!(!key_of("secret-token").windows(6).any(|w| w == b"secret"));
    }
}
