//! The web dashboard: the files of `ui/dist` (built by Vite) embedded in the binary and
//! served at `/`, with a single-page-app fallback so that `/market/AAPL` loads the app.
//!
//! rust-embed includes the files at compile time in release builds and reads them from
//! `ui/dist` at run time in debug builds, so `npm run build -- --watch` gives live reload
//! against a debug server. `build.rs` sets `UI_DIST_DIR` to that folder's absolute path. When the UI has not been built, the build still succeeds
//! (`allow_missing`) and `/` serves a short page saying how to build it. Nothing here runs
//! npm: `scripts/run.sh` builds the UI, then cargo.
//!
//! Caching: Vite names everything under `assets/` by content hash, so those files are
//! cached for a year; `index.html` and the other files are revalidated by ETag.

use std::borrow::Cow;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;
use tower_http::compression::CompressionLayer;

#[derive(Embed)]
#[folder = "$UI_DIST_DIR"]
#[allow_missing = true]
struct Dist;

/// Files named by content hash: they never change under the same name.
const HASHED_PREFIX: &str = "assets/";
const CACHE_HASHED: &str = "public, max-age=31536000, immutable";
const CACHE_REVALIDATE: &str = "no-cache";

/// Served at `/` (and every app path) when `ui/dist` was not there at build time.
const NOT_BUILT_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tidewatch</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
code,pre{background:#f2f2f2;border-radius:4px;padding:.1rem .3rem}pre{padding:.6rem}</style></head>
<body><h1>Tidewatch</h1>
<p>The server is running, but this binary was built without the web dashboard (<code>ui/dist</code> did not exist).</p>
<p>Build the dashboard with Node.js 20 or newer, then rebuild and restart the server:</p>
<pre>cd ui &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p><code>scripts/run.sh</code> does both. The API works without the dashboard:
<a href="/api/v1/streams">/api/v1/streams</a>, <a href="/healthz">/healthz</a>, <a href="/metrics">/metrics</a>.</p>
</body></html>
"#;

/// The dashboard as a service for the router's fallback: every path that no API route
/// matched. Responses are gzip-compressed when the client accepts it.
pub fn service() -> Router {
    Router::new().fallback(serve).layer(CompressionLayer::new())
}

async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    // API paths keep the JSON 404; only reads are served.
    if is_api_path(path) || !(method == Method::GET || method == Method::HEAD) {
        return crate::api::ops::not_found(uri).await.into_response();
    }
    let relative = path.trim_start_matches('/');
    if !relative.is_empty()
        && !is_hidden(relative)
        && let Some(response) = embedded(relative, &headers)
    {
        return response;
    }
    // A missing hashed asset is a 404: answering index.html would feed HTML to a script tag.
    if relative.starts_with(HASHED_PREFIX) {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    index(&headers)
}

fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Build metadata such as Vite's `.vite/manifest.json` is not part of the site.
fn is_hidden(relative: &str) -> bool {
    relative.split('/').any(|segment| segment.starts_with('.'))
}

/// `index.html` for the app's own paths, or the "not built" page.
fn index(headers: &HeaderMap) -> Response {
    embedded("index.html", headers).unwrap_or_else(|| {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, CACHE_REVALIDATE),
            ],
            NOT_BUILT_PAGE,
        )
            .into_response()
    })
}

fn embedded(relative: &str, headers: &HeaderMap) -> Option<Response> {
    let file = Dist::get(relative)?;
    let hash = file.metadata.sha256_hash();
    let etag = format!(
        "\"{}\"",
        hash[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let cache = if relative.starts_with(HASHED_PREFIX) {
        CACHE_HASHED
    } else {
        CACHE_REVALIDATE
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match file.data {
            Cow::Borrowed(bytes) => Body::from(bytes),
            Cow::Owned(bytes) => Body::from(bytes),
        };
        let mut response = Response::new(body);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(relative)),
        );
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    Some(response)
}

/// The content type of the file kinds a Vite build emits.
fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> Response {
        service()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body_text(response: Response) -> String {
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_root_serves_an_html_page_built_or_not() {
        let response = get("/").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], CACHE_REVALIDATE);
        let page = body_text(response).await;
        if Dist::get("index.html").is_some() {
            assert!(page.contains("id=\"app\""), "{page}");
        } else {
            assert!(page.contains("npm run build"), "{page}");
        }
    }

    #[tokio::test]
    async fn app_paths_fall_back_to_the_same_page_as_the_root() {
        let root = body_text(get("/").await).await;
        for path in ["/market", "/market/AAPL", "/system?tab=1", "/alerts/"] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(body_text(response).await, root, "{path}");
        }
    }

    #[tokio::test]
    async fn api_paths_and_writes_keep_the_json_404() {
        for path in ["/api", "/api/v2/streams", "/api/nothing"] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(
                body_text(response).await.contains("\"not_found\""),
                "{path}"
            );
        }
        let post = service()
            .oneshot(Request::post("/market").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_missing_hashed_asset_is_a_404_and_build_metadata_is_not_served() {
        let response = get("/assets/index-00000000.js").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let root = body_text(get("/").await).await;
        assert_eq!(body_text(get("/.vite/manifest.json").await).await, root);
    }

    #[tokio::test]
    async fn hashed_assets_are_cached_for_a_year_and_revalidated_by_etag() {
        let Some(asset) = Dist::iter().find(|name| name.starts_with(HASHED_PREFIX)) else {
            return; // the UI is not built: nothing to check
        };
        let response = get(&format!("/{asset}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], CACHE_HASHED);
        let etag = response.headers()[header::ETAG].clone();
        let again = service()
            .oneshot(
                Request::get(format!("/{asset}"))
                    .header(header::IF_NONE_MATCH, etag)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }

    #[test]
    fn content_types_cover_what_vite_emits() {
        assert_eq!(
            content_type("assets/index-abc.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("assets/x.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }
}
