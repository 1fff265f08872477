//! The webhooks over HTTP: reads each body within size, time and memory
//! limits, hands it to [`Admission::review`] and writes the reply. Transport
//! only: every decision about the object is made in [`super`].
//!
//! A review that may run administrators' policy rules (or reads a large
//! body) runs on a blocking thread, never on the async workers, holding its
//! concurrency permit and its share of the body budget until it really ends;
//! its caller waits at most the review timeout. The usual review (no custom
//! rules in force, a small body) is judged inline.

use super::conversion::{self, ConversionReply};
use super::{
    EXCEPTION_VALIDATE_PATH, MUTATE_PATH, POLICY_VALIDATE_PATH, Refusal, Reply, Reviewer,
    VALIDATE_PATH, Webhook,
};
use crate::api::crd::CONVERT_PATH;
use crate::metrics::{Metrics, ReviewTimeoutLabels};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

/// Largest AdmissionReview body accepted: two 3 MiB objects (UPDATE) plus the envelope.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;
/// Bodies above this size are decoded off the async workers.
const BLOCKING_BODY_BYTES: usize = 256 * 1024;
/// Bodies up to this size are read without the shared body budget: the
/// connection limit bounds them (1024 × 64 KiB), and the apiserver's usual
/// reviews (a few KiB) never wait behind large ones.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;
/// Default budget for larger bodies held at once: a handful of 7 MiB reviews.
pub const DEFAULT_BODY_BUDGET_BYTES: usize = 48 * 1024 * 1024;
/// Default of `--review-timeout` (as the flag is written): a review's wait
/// for its turn and its evaluation, below the 5 s `timeoutSeconds` of the
/// generated webhook configurations, so that the apiserver reads a precise
/// refusal rather than giving up.
pub const DEFAULT_REVIEW_TIMEOUT: &str = "4s";

/// [`DEFAULT_REVIEW_TIMEOUT`] as a duration.
pub fn default_review_timeout() -> Duration {
    let nanos = crate::api::duration::parse_go_duration(DEFAULT_REVIEW_TIMEOUT)
        .expect("DEFAULT_REVIEW_TIMEOUT is a duration")
        .as_nanos();
    Duration::from_nanos(u64::try_from(nanos).expect("DEFAULT_REVIEW_TIMEOUT is positive"))
}

/// Longest request path quoted in a 404 answer.
const SHOWN_PATH_CHARS: usize = 64;

/// Limits of the webhook routes.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Reviews evaluated at once; more wait their turn.
    pub max_concurrent_reviews: usize,
    /// Bytes of request bodies above [`SMALL_BODY_BYTES`] held at once.
    pub body_budget_bytes: usize,
    /// Time allowed to read a request body.
    pub read_timeout: Duration,
}

/// What the webhook routes share.
#[derive(Clone)]
pub struct WebhookState {
    reviewer: Arc<dyn Reviewer>,
    metrics: Arc<Metrics>,
    reviews: Arc<Semaphore>,
    /// Permits are KiB of request bodies above [`SMALL_BODY_BYTES`].
    body_budget: Arc<Semaphore>,
    read_timeout: Duration,
    review_timeout: Duration,
}

impl WebhookState {
    pub fn new(reviewer: Arc<dyn Reviewer>, metrics: Arc<Metrics>, limits: HttpLimits) -> Self {
        WebhookState {
            reviewer,
            metrics,
            reviews: Arc::new(Semaphore::new(limits.max_concurrent_reviews.max(1))),
            body_budget: Arc::new(Semaphore::new(kib(limits.body_budget_bytes))),
            read_timeout: limits.read_timeout,
            review_timeout: default_review_timeout(),
        }
    }

    /// The same routes, allowing each review `review_timeout` for its wait
    /// for a turn and its evaluation (default [`DEFAULT_REVIEW_TIMEOUT`]).
    pub fn with_review_timeout(self, review_timeout: Duration) -> Self {
        WebhookState {
            review_timeout,
            ..self
        }
    }

    fn count_review_timeout(&self, webhook: &'static str, stage: &'static str) {
        self.metrics
            .review_timeouts
            .get_or_create(&ReviewTimeoutLabels { webhook, stage })
            .inc();
    }

    /// The same routes and limits, answered by `reviewer`.
    pub fn with_reviewer(self, reviewer: Arc<dyn Reviewer>) -> Self {
        WebhookState { reviewer, ..self }
    }
}

/// The admission webhooks and the CRD's conversion webhook; any other path
/// is a 404 that names them.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route(VALIDATE_PATH, post(|s, r| admit(s, r, Webhook::Validate)))
        .route(MUTATE_PATH, post(|s, r| admit(s, r, Webhook::Mutate)))
        .route(
            POLICY_VALIDATE_PATH,
            post(|s, r| admit(s, r, Webhook::ValidatePolicy)),
        )
        .route(
            EXCEPTION_VALIDATE_PATH,
            post(|s, r| admit(s, r, Webhook::ValidateException)),
        )
        .route(CONVERT_PATH, post(convert))
        .fallback(not_found)
        .with_state(state)
}

/// Whole KiB covering `bytes` (semaphore permits of the body budget).
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

async fn not_found(request: Request) -> Response {
    let refusal = Refusal::new(
        404,
        "NotFound",
        format!(
            "no webhook at {}; the webhooks are {VALIDATE_PATH}, {MUTATE_PATH}, {POLICY_VALIDATE_PATH}, {EXCEPTION_VALIDATE_PATH} and {CONVERT_PATH}",
            crate::validation::finding::shown_max(request.uri().path(), SHOWN_PATH_CHARS)
        ),
    );
    json_reply(refusal.into_reply())
}

fn json_reply(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        reply.body,
    )
        .into_response()
}

/// A request body and its share of the body budget (released when dropped).
struct Body {
    bytes: axum::body::Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// One request's share of the body budget, grown as its body arrives.
struct BudgetShare<'a> {
    budget: &'a Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    deadline: tokio::time::Instant,
    timeout: Duration,
}

impl BudgetShare<'_> {
    /// Holds enough of the budget for a body of `bytes` (the first
    /// [`SMALL_BODY_BYTES`] are free), waiting at most a quarter of the read timeout.
    async fn cover(&mut self, bytes: usize) -> Result<(), Refusal> {
        let needed = kib(bytes.saturating_sub(SMALL_BODY_BYTES));
        let have = self.held.as_ref().map_or(0, |p| p.num_permits());
        if needed <= have {
            return Ok(());
        }
        let more = u32::try_from(needed - have).unwrap_or(u32::MAX);
        let wait_until = self
            .deadline
            .min(tokio::time::Instant::now() + self.timeout / 4);
        let acquire = Arc::clone(self.budget).acquire_many_owned(more);
        match tokio::time::timeout_at(wait_until, acquire).await {
            Ok(Ok(permit)) => {
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
                Ok(())
            }
            _ => Err(Refusal::new(
                503,
                "ServiceUnavailable",
                "too many large request bodies are being read at once; retry".to_owned(),
            )),
        }
    }
}

/// Reads the body within the size and time limits. Beyond
/// [`SMALL_BODY_BYTES`] every KiB is taken from the shared budget first (all
/// of a declared length at once), so slow or large senders together cannot
/// hold more than the budget. A request that cannot be buffered soon is
/// refused (503) rather than kept waiting behind senders that may be stalling.
async fn read_body(
    request: Request,
    limit: usize,
    timeout: Duration,
    budget: &Arc<Semaphore>,
    noun: &str,
) -> Result<Body, Refusal> {
    let deadline = tokio::time::Instant::now() + timeout;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit, noun));
    }
    let mut share = BudgetShare {
        budget,
        held: None,
        deadline,
        timeout,
    };
    if let Some(len) = declared {
        share.cover(len as usize).await?;
    }
    let mut body = request.into_body();
    let reserve = declared.map_or(0, |len| len as usize).min(SMALL_BODY_BYTES);
    let mut bytes = Collected::Empty;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(Refusal::new(
                    408,
                    "Timeout",
                    format!(
                        "request body not received within {}s",
                        timeout.as_secs_f64()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                return Err(Refusal::new(
                    400,
                    "BadRequest",
                    format!("cannot read the request body: {err}"),
                ));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = bytes.len() + data.len();
        if total > limit {
            return Err(too_large(limit, noun));
        }
        share.cover(total).await?;
        bytes.push(data, reserve);
    }
    Ok(Body {
        bytes: bytes.into_bytes(),
        _budget: share.held,
    })
}

/// A body as it arrives: a body that comes in one frame (the usual small
/// review) is kept as it is, not copied.
enum Collected {
    Empty,
    One(axum::body::Bytes),
    Many(Vec<u8>),
}

impl Collected {
    fn len(&self) -> usize {
        match self {
            Collected::Empty => 0,
            Collected::One(bytes) => bytes.len(),
            Collected::Many(bytes) => bytes.len(),
        }
    }

    /// Adds a frame; `reserve` is the capacity to take once frames must be joined.
    fn push(&mut self, data: axum::body::Bytes, reserve: usize) {
        match self {
            Collected::Empty => *self = Collected::One(data),
            Collected::Many(bytes) => bytes.extend_from_slice(&data),
            Collected::One(first) => {
                let mut bytes = Vec::with_capacity(reserve.max(first.len() + data.len()));
                bytes.extend_from_slice(first);
                bytes.extend_from_slice(&data);
                *self = Collected::Many(bytes);
            }
        }
    }

    fn into_bytes(self) -> axum::body::Bytes {
        match self {
            Collected::Empty => axum::body::Bytes::new(),
            Collected::One(bytes) => bytes,
            Collected::Many(bytes) => bytes.into(),
        }
    }
}

fn too_large(limit: usize, noun: &str) -> Refusal {
    Refusal::new(
        413,
        "RequestEntityTooLarge",
        format!("{noun} larger than {} MiB", limit / (1024 * 1024)),
    )
}

/// The answer when a review task failed: a fixed message, never the panic's
/// (it could quote the object), which only the log records as a fact.
fn review_failed(err: &tokio::task::JoinError) -> Refusal {
    tracing::error!(panicked = err.is_panic(), "admission review task failed");
    Refusal::new(
        500,
        "InternalError",
        "the review failed inside roost-keeper; see its log".to_owned(),
    )
}

/// The answer when no review permit came within the review timeout.
fn review_queue_full(state: &WebhookState, webhook: &'static str) -> Refusal {
    state.count_review_timeout(webhook, "queued");
    Refusal::new(
        503,
        "ServiceUnavailable",
        format!(
            "too many reviews in progress: no turn within {}s (--review-timeout); retry",
            state.review_timeout.as_secs_f64()
        ),
    )
}

/// The answer when a review was still evaluating at the review timeout: a
/// fixed text, nothing from the object.
fn review_too_slow(state: &WebhookState, webhook: &'static str) -> Refusal {
    state.count_review_timeout(webhook, "evaluating");
    tracing::warn!(
        webhook,
        "review still evaluating at --review-timeout; refused"
    );
    Refusal::new(
        504,
        "Timeout",
        format!(
            "the review did not finish within {}s (--review-timeout); retry",
            state.review_timeout.as_secs_f64()
        ),
    )
}

/// Reads the body, then runs `work` on it within the review limits: inline
/// when `may_inline` and the body is small, else on a blocking thread
/// (reviews that may run policy rules, large bodies). `label` names the
/// route in the timeout metric; `noun` what a body too large is.
async fn bounded<T: Send + 'static>(
    state: &WebhookState,
    request: Request,
    label: &'static str,
    noun: &'static str,
    may_inline: bool,
    work: impl FnOnce(&[u8]) -> T + Send + 'static,
) -> Result<T, Refusal> {
    let read = read_body(
        request,
        MAX_BODY_BYTES,
        state.read_timeout,
        &state.body_budget,
        noun,
    );
    // `budget` is held until the review ends.
    let Body {
        bytes: body,
        _budget: budget,
    } = read.await?;
    let deadline = tokio::time::Instant::now() + state.review_timeout;
    if body.len() <= BLOCKING_BODY_BYTES && may_inline {
        // Backpressure: wait for a turn rather than failing, within the deadline.
        let Ok(permit) = tokio::time::timeout_at(deadline, state.reviews.acquire()).await else {
            return Err(review_queue_full(state, label));
        };
        let _permit = permit.expect("semaphore is never closed");
        return Ok(work(&body));
    }
    let acquire = Arc::clone(&state.reviews).acquire_owned();
    let Ok(permit) = tokio::time::timeout_at(deadline, acquire).await else {
        return Err(review_queue_full(state, label));
    };
    let permit = permit.expect("semaphore is never closed");
    // The permit and the body budget go with the evaluation: released when it
    // really ends, even after its caller has stopped waiting, so blocking
    // threads never outnumber the permits.
    let review = tokio::task::spawn_blocking(move || {
        let out = work(&body);
        drop((permit, budget));
        out
    });
    match tokio::time::timeout_at(deadline, review).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(err)) => Err(review_failed(&err)),
        Err(_) => Err(review_too_slow(state, label)),
    }
}

/// An AdmissionReview's answer, or the refusal of its request.
async fn answer(state: &WebhookState, request: Request, webhook: Webhook) -> Reply {
    let may_inline = !state.reviewer.may_run_policies(webhook);
    let reviewer = Arc::clone(&state.reviewer);
    let work = move |body: &[u8]| reviewer.review(webhook, body);
    bounded(
        state,
        request,
        webhook.label(),
        "AdmissionReview",
        may_inline,
        work,
    )
    .await
    .unwrap_or_else(Refusal::into_reply)
}

async fn admit(State(state): State<WebhookState>, request: Request, webhook: Webhook) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!(
        "admission",
        webhook = webhook.label(),
        uid = tracing::field::Empty,
        operation = tracing::field::Empty,
        namespace = tracing::field::Empty,
        name = tracing::field::Empty,
        allowed = tracing::field::Empty,
        mutated = tracing::field::Empty,
        errors = tracing::field::Empty,
        warnings = tracing::field::Empty,
        dry_run = tracing::field::Empty,
    );
    async move {
        let reply = answer(&state, request, webhook).await;
        let s = &reply.summary;
        let span = tracing::Span::current();
        span.record("uid", s.uid.as_str());
        span.record("operation", s.operation);
        span.record("namespace", s.namespace.as_str());
        span.record("name", s.name.as_str());
        span.record("allowed", s.allowed);
        span.record("mutated", s.mutated);
        span.record("errors", s.errors);
        span.record("warnings", s.warnings);
        span.record("dry_run", s.dry_run);
        let elapsed = started.elapsed();
        state.metrics.observe_admission(
            webhook.label(),
            s.operation,
            s.allowed && reply.status == 200,
            elapsed,
        );
        tracing::info!(
            status = reply.status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "admission review answered"
        );
        json_reply(reply)
    }
    .instrument(span)
    .await
}

/// The CRD's conversion webhook: a ConversionReview converted within the
/// same limits as the admission reviews.
async fn convert(State(state): State<WebhookState>, request: Request) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!(
        "conversion",
        uid = tracing::field::Empty,
        objects = tracing::field::Empty,
        converted = tracing::field::Empty,
    );
    async move {
        let reply = bounded(
            &state,
            request,
            "convert",
            "ConversionReview",
            true,
            conversion::review,
        )
        .await
        .unwrap_or_else(|refusal| {
            let reply = refusal.into_reply();
            ConversionReply {
                status: reply.status,
                body: reply.body,
                uid: String::new(),
                converted: false,
                tally: conversion::Tally::default(),
            }
        });
        let span = tracing::Span::current();
        span.record("uid", reply.uid.as_str());
        span.record("objects", reply.tally.total());
        span.record("converted", reply.converted);
        let elapsed = started.elapsed();
        let objects = reply.tally.counts().map(|(d, n)| (d.label(), n));
        state
            .metrics
            .observe_conversion(objects, reply.converted, elapsed);
        tracing::info!(
            status = reply.status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "conversion review answered"
        );
        let status =
            StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            reply.body,
        )
            .into_response()
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_review_timeout_is_below_the_webhooks_timeout() {
        let webhooks = crate::admission::registration::Selection::default();
        let limit = Duration::from_secs(u64::try_from(webhooks.timeout_seconds).unwrap());
        assert!(default_review_timeout() < limit);
        assert!(default_review_timeout() > Duration::ZERO);
    }

    #[tokio::test]
    async fn a_failed_review_answers_without_the_panic_message() {
        let err = tokio::spawn(async { panic!("spec.chart.repository.password=hunter2") })
            .await
            .unwrap_err();
        let reply = review_failed(&err).into_reply();
        assert_eq!(reply.status, 500);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["reason"], "InternalError");
        assert!(!body.to_string().contains("hunter2"), "{body}");
    }
}
