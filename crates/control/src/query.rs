//! Query parameters the admin API does not take are refused, on every route (once the caller is
//! authenticated: [`crate::access::Principal`]'s extractor calls [`check`], so a caller without
//! a token cannot map which parameters each operation takes).
//!
//! A list route names each unknown parameter (`unknown query parameter `q``), so a typo such as
//! `?limt=5` is not silently a page of the default size. A route that takes no query at all
//! (`/admin/v1/me`, a single use case, the gates) said nothing: `?q=1` was a 200. The names each
//! operation takes come from the OpenAPI document ([`crate::ApiDoc`]), so what is refused is what
//! the document does not describe, and the two cannot drift apart. A route the document does
//! not describe (the document itself) takes none.

use std::collections::HashSet;
use std::sync::LazyLock;
use tollgate_http::error::ApiError;
use tollgate_types::text::{ECHO_CHARS, clip};
use utoipa::OpenApi;

/// One operation of the document: its method (lower case), its path template cut into
/// segments (`{id}` for a path parameter), and the query parameters it takes.
struct Operation {
    method: String,
    segments: Vec<String>,
    query: HashSet<String>,
}

static OPERATIONS: LazyLock<Vec<Operation>> = LazyLock::new(|| {
    let Ok(doc) = serde_json::to_value(crate::ApiDoc::openapi()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            out.push(Operation {
                method: method.clone(),
                segments: path.split('/').map(str::to_string).collect(),
                query,
            });
        }
    }
    out
});

/// The operation `method path` is, if the document describes it: the one whose template
/// matches with the most literal segments (`/pods/{id}` and a literal sibling both match a
/// literal path; the literal one is meant).
fn operation(method: &str, path: &str) -> Option<&'static Operation> {
    let method = if method == "head" { "get" } else { method };
    let segments: Vec<&str> = path.split('/').collect();
    OPERATIONS
        .iter()
        .filter(|op| op.method == method && op.segments.len() == segments.len())
        .filter(|op| {
            op.segments
                .iter()
                .zip(&segments)
                .all(|(t, s)| t.starts_with('{') || t == s)
        })
        .max_by_key(|op| op.segments.iter().filter(|t| !t.starts_with('{')).count())
}

/// The first query parameter of `query` that `method path` does not take.
pub(crate) fn unknown(method: &str, path: &str, query: &str) -> Option<String> {
    let op = operation(method, path);
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, _)| k)
        .find(|k| !op.is_some_and(|op| op.query.contains(k.as_ref())))
        .map(|k| k.into_owned())
}

/// The 400 of a query parameter the operation does not take.
pub(crate) fn check(method: &axum::http::Method, uri: &axum::http::Uri) -> Result<(), ApiError> {
    let Some(query) = uri.query() else {
        return Ok(());
    };
    match unknown(&method.as_str().to_ascii_lowercase(), uri.path(), query) {
        Some(k) => {
            let k = clip(&k, ECHO_CHARS);
            Err(ApiError::invalid(
                format!("unknown query parameter `{k}`"),
                Some(k),
            ))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_document() {
        // A list takes its page and filters; an operation without a query takes nothing.
        assert_eq!(
            unknown("get", "/admin/v1/keys", "limit=5&use_case_id=u"),
            None
        );
        assert_eq!(
            unknown("get", "/admin/v1/keys", "limt=5").as_deref(),
            Some("limt")
        );
        assert_eq!(unknown("get", "/admin/v1/me", "q=1").as_deref(), Some("q"));
        assert_eq!(
            unknown("head", "/admin/v1/use-cases/uc_1", "x").as_deref(),
            Some("x")
        );
        assert_eq!(
            unknown("get", "/admin/v1/use-cases/uc_1/gate", "to=pilot"),
            None
        );
        // Percent-decoded, as the handlers read them.
        assert_eq!(unknown("get", "/admin/v1/keys", "use%5Fcase_id=u"), None);
        // An empty query names nothing; a route the document leaves out (the document itself)
        // takes nothing.
        assert_eq!(unknown("get", "/admin/v1/me", ""), None);
        assert_eq!(
            unknown("get", "/admin/v1/openapi.json", "x=1").as_deref(),
            Some("x")
        );
    }
}
