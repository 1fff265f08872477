//! The dashboard page: three files compiled into the binary, served with a
//! strict Content-Security-Policy (only this origin's script, style and
//! fetches; no inline code, no frames, no forms posting elsewhere). The page
//! holds no cluster data: it asks for a token and reads the API with it.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_FRAME_OPTIONS};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub const INDEX_HTML: &str = include_str!("dashboard/index.html");
pub const SCRIPT: &str = include_str!("dashboard/dashboard.js");
pub const STYLE: &str = include_str!("dashboard/dashboard.css");

/// The page's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `/`, `/assets/dashboard.js` and `/assets/dashboard.css`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/assets/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for forbidden in [
            "<script>", "style=", "http://", "https://", "onclick", "<style",
        ] {
            assert!(
                !INDEX_HTML.contains(forbidden),
                "index.html holds {forbidden:?}"
            );
        }
        assert!(INDEX_HTML.contains("/assets/dashboard.js"));
        assert!(INDEX_HTML.contains("/assets/dashboard.css"));
        assert!(
            !SCRIPT.contains("innerHTML"),
            "data is written with textContent"
        );
        assert!(
            !SCRIPT.contains("localStorage"),
            "the token stays in sessionStorage"
        );
    }
}
