//! The lifecycle API's routes: the JSON reads, the stream, the OpenAPI
//! description and the page. Every `/api/v1` request is authenticated and
//! authorised before anything is read; a namespace the caller may not read
//! is 403 when asked for by name and left out of lists.

use super::LifecycleApi;
use super::auth::{AuthError, Identity, bearer};
use super::view::{LifecycleQuery, lifecycle_view};
use crate::metrics::LifecycleApiLabels;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, HOST, ORIGIN, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;

pub const ROOSTS: &str = "/api/v1/roosts";
pub const ROOST: &str = "/api/v1/namespaces/{namespace}/roosts/{name}";
pub const LIFECYCLE: &str = "/api/v1/namespaces/{namespace}/roosts/{name}/lifecycle";
pub const FINDINGS: &str = "/api/v1/namespaces/{namespace}/roosts/{name}/findings";
pub const STREAM: &str = "/api/v1/stream";
/// Every API route, as the OpenAPI description must list them.
pub const ROUTES: [&str; 5] = [ROOSTS, ROOST, LIFECYCLE, FINDINGS, STREAM];

/// Namespaces whose access is reviewed at once for one list.
const ACCESS_CHECKS_AT_ONCE: usize = 8;

/// Why a request gets no data.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    TooManyStreams(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(AuthError::Unavailable) | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooManyStreams(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::Auth(AuthError::Unavailable) | ApiError::Unavailable(_) => "unavailable",
            ApiError::Auth(_) => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::TooManyStreams(_) => "too_many_streams",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({"error": self.kind(), "message": self.to_string()});
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

type Api = State<Arc<LifecycleApi>>;

/// The router of the lifecycle API's port.
pub fn router(api: Arc<LifecycleApi>) -> Router {
    let metrics = Arc::clone(&api.metrics);
    Router::new()
        .route(ROOSTS, get(list))
        .route(ROOST, get(one))
        .route(LIFECYCLE, get(lifecycle))
        .route(FINDINGS, get(findings))
        .route(STREAM, get(super::stream::open))
        .route(super::openapi::PATH, get(super::openapi::serve))
        .merge(super::page::router())
        .fallback(|| async { ApiError::NotFound("no such path".into()) })
        .layer(axum::middleware::map_response(
            move |uri: Uri, mut response: Response| {
                let metrics = Arc::clone(&metrics);
                async move {
                    let headers = response.headers_mut();
                    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                    headers
                        .entry(CACHE_CONTROL)
                        .or_insert(HeaderValue::from_static("no-store"));
                    metrics
                        .lifecycle_api_requests
                        .get_or_create(&LifecycleApiLabels {
                            route: route_label(uri.path()),
                            code: response.status().as_u16(),
                        })
                        .inc();
                    response
                }
            },
        ))
        .with_state(api)
}

/// The route a path belongs to, as a bounded metric label.
fn route_label(path: &str) -> &'static str {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        ["", "api", "v1", "roosts"] => ROOSTS,
        ["", "api", "v1", "stream"] => STREAM,
        ["", "api", "v1", "namespaces", _, "roosts", _] => ROOST,
        ["", "api", "v1", "namespaces", _, "roosts", _, "lifecycle"] => LIFECYCLE,
        ["", "api", "v1", "namespaces", _, "roosts", _, "findings"] => FINDINGS,
        [""] | ["", "assets", ..] => "page",
        ["", "openapi.json"] => super::openapi::PATH,
        _ => "other",
    }
}

/// Whether a request's `Origin` (when it sends one) is the page's own or
/// an allowed one. No CORS headers are ever sent, so browsers keep other
/// origins' scripts from reading answers anyway; this refuses them outright.
fn origin_allowed(api: &LifecycleApi, headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| headers.get(HOST)?.to_str().ok().map(str::to_owned));
    host.is_some_and(|host| origin == format!("https://{host}"))
        || api.config.allowed_origins.iter().any(|o| o == origin)
}

/// The caller, authenticated; refused before the first list completed.
pub async fn caller(
    api: &LifecycleApi,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Arc<Identity>, ApiError> {
    if !origin_allowed(api, headers, uri) {
        return Err(ApiError::Forbidden(
            "requests from this Origin are not allowed".into(),
        ));
    }
    let token = bearer(headers.get(AUTHORIZATION))?;
    let who = api.auth.authenticate(token).await?;
    if !api.store.is_synced() {
        return Err(ApiError::Unavailable(
            "the roosts are still being listed; try again".into(),
        ));
    }
    Ok(who)
}

/// Refuses unless `who` may list and watch roosts in `namespace`.
pub async fn require(api: &LifecycleApi, who: &Identity, namespace: &str) -> Result<(), ApiError> {
    if api.auth.may_read(who, "").await? || api.auth.may_read(who, namespace).await? {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "{} may not list and watch managedroosts in namespace {namespace:?}",
            who.username
        )))
    }
}

/// The namespaces a caller may read: all, or those listed.
#[derive(Clone, Debug)]
pub enum Readable {
    All,
    Only(BTreeSet<String>),
}

impl Readable {
    pub fn admits(&self, namespace: &str) -> bool {
        match self {
            Readable::All => true,
            Readable::Only(namespaces) => namespaces.contains(namespace),
        }
    }
}

/// What `who` may read of `namespace` (one namespace) or of every namespace
/// that holds roosts: access to each is reviewed (cached) with a few at once.
pub async fn readable(
    api: &LifecycleApi,
    who: &Identity,
    namespace: Option<&str>,
) -> Result<Readable, ApiError> {
    if let Some(namespace) = namespace {
        require(api, who, namespace).await?;
        return Ok(Readable::Only(BTreeSet::from([namespace.to_owned()])));
    }
    if api.auth.may_read(who, "").await? {
        return Ok(Readable::All);
    }
    let mut checks = futures::stream::iter(api.store.namespaces())
        .map(|namespace| async move {
            let allowed = api.auth.may_read(who, &namespace).await;
            (namespace, allowed)
        })
        .buffer_unordered(ACCESS_CHECKS_AT_ONCE);
    let mut allowed = BTreeSet::new();
    while let Some((namespace, may)) = checks.next().await {
        if may? {
            allowed.insert(namespace);
        }
    }
    Ok(Readable::Only(allowed))
}

#[derive(Deserialize)]
pub struct NamespaceFilter {
    namespace: Option<String>,
}

async fn list(
    State(api): Api,
    headers: HeaderMap,
    uri: Uri,
    Query(filter): Query<NamespaceFilter>,
) -> Result<Response, ApiError> {
    let who = caller(&api, &headers, &uri).await?;
    let readable = readable(&api, &who, filter.namespace.as_deref()).await?;
    let listing = api.store.list(|ns| readable.admits(ns));
    Ok(
        axum::Json(json!({"items": listing.items, "lastEventId": listing.last_event_id}))
            .into_response(),
    )
}

/// The roost at `namespace/name`, once the caller may read its namespace.
async fn find(
    api: &LifecycleApi,
    headers: &HeaderMap,
    uri: &Uri,
    namespace: &str,
    name: &str,
) -> Result<
    (
        super::view::RoostSummary,
        Arc<crate::controller::stored::StoredRoost>,
    ),
    ApiError,
> {
    let who = caller(api, headers, uri).await?;
    require(api, &who, namespace).await?;
    api.store
        .get(namespace, name)
        .ok_or_else(|| ApiError::NotFound(format!("no ManagedRoost {namespace}/{name}")))
}

async fn one(
    State(api): Api,
    headers: HeaderMap,
    uri: Uri,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (summary, _) = find(&api, &headers, &uri, &namespace, &name).await?;
    Ok(axum::Json(summary).into_response())
}

#[derive(Deserialize)]
pub struct LifecycleParams {
    last: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    within: Option<String>,
}

async fn lifecycle(
    State(api): Api,
    headers: HeaderMap,
    uri: Uri,
    Path((namespace, name)): Path<(String, String)>,
    Query(params): Query<LifecycleParams>,
) -> Result<Response, ApiError> {
    let (summary, stored) = find(&api, &headers, &uri, &namespace, &name).await?;
    let query = LifecycleQuery::parse(
        params.last.as_deref(),
        params.type_.as_deref(),
        params.within.as_deref(),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let status = stored.status().ok().flatten();
    let view = lifecycle_view(&summary, status.as_ref(), &query, Timestamp::now());
    Ok(axum::Json(view).into_response())
}

async fn findings(
    State(api): Api,
    headers: HeaderMap,
    uri: Uri,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (summary, stored) = find(&api, &headers, &uri, &namespace, &name).await?;
    let busy = || ApiError::Unavailable("too many findings being worked out; try again".into());
    let _permit = tokio::time::timeout(super::auth::REVIEW_WAIT, api.judging.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let engine = api.engine.clone();
    let now = Timestamp::now();
    // Custom rules may take up to the review's CEL budget: off the async workers.
    let decoded = tokio::task::spawn_blocking(move || stored.decode(&engine, now))
        .await
        .map_err(|_| busy())?
        .map_err(|_| ApiError::Unavailable("the roost's status does not decode".into()))?;
    let result = decoded.result;
    let findings: Vec<serde_json::Value> = result
        .errors
        .iter()
        .chain(&result.warnings)
        .chain(&result.info)
        .map(|f| {
            let explained = crate::explain::explanation(&f.code);
            json!({
                "code": f.code,
                "level": f.level.as_str(),
                "field": f.field,
                "message": f.message,
                "summary": explained.map(|e| e.summary()),
                "fix": explained.map(|e| e.fix),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "namespace": summary.namespace,
        "name": summary.name,
        "generation": summary.generation,
        "valid": result.valid,
        "findings": findings,
    }))
    .into_response())
}

/// Counts open streams per user and in total; a guard gives its place back.
pub fn open_stream_slot(api: &Arc<LifecycleApi>, who: &Identity) -> Result<StreamSlot, ApiError> {
    let mut streams = api
        .streams
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let total: usize = streams.values().sum();
    if total >= api.config.max_streams {
        return Err(ApiError::TooManyStreams(
            "the server has as many event streams open as it serves".into(),
        ));
    }
    let mine = streams.entry(who.username.clone()).or_insert(0);
    if *mine >= api.config.max_streams_per_identity {
        return Err(ApiError::TooManyStreams(format!(
            "{} already holds {} event streams; close one",
            who.username, api.config.max_streams_per_identity
        )));
    }
    *mine += 1;
    api.metrics.lifecycle_api_streams.inc();
    Ok(StreamSlot {
        api: Arc::clone(api),
        user: who.username.clone(),
    })
}

/// One open stream's place in the limits.
pub struct StreamSlot {
    api: Arc<LifecycleApi>,
    user: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = self
            .api
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = streams.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.user);
            }
        }
        self.api.metrics.lifecycle_api_streams.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(route_label("/api/v1/roosts"), ROOSTS);
        assert_eq!(route_label("/api/v1/namespaces/a/roosts/b"), ROOST);
        assert_eq!(
            route_label("/api/v1/namespaces/a/roosts/b/lifecycle"),
            LIFECYCLE
        );
        assert_eq!(
            route_label("/api/v1/namespaces/a/roosts/b/findings"),
            FINDINGS
        );
        assert_eq!(route_label("/api/v1/stream"), STREAM);
        assert_eq!(route_label("/assets/dashboard.js"), "page");
        assert_eq!(route_label("/x/y/z/w/v/u/t/s/r"), "other");
        assert_eq!(route_label("/api/v1/namespaces/a/roosts/b/c/d"), "other");
    }
}
