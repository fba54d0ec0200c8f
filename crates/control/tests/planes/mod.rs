//! Both planes together, as the binary composes them: the gateway (from the gateway's own test
//! helpers, `common`) with the control plane's router beside it.

#![allow(dead_code)]

use crate::common::{self, Gw};
use std::sync::Arc;
use tollgate_control::Control;
use tollgate_gateway::Gateway;

/// The control plane over `gw`'s store and secret, telling `gw` about changes.
pub async fn control_for(gw: &Arc<Gateway>) -> Arc<Control> {
    Control::new_with_clock(
        &gw.config,
        gw.store.clone(),
        gw.keyring.secret().clone(),
        gw.clone(),
        gw.clock.clone(),
    )
    .await
    .unwrap()
}

/// One in-process app serving both planes, its control plane and the bootstrap admin token.
pub async fn app(gw: &Arc<Gateway>) -> (axum::Router, Arc<Control>, String) {
    let control = control_for(gw).await;
    let token = control
        .take_new_admin_token()
        .expect("a fresh store generates the admin token");
    let router =
        tollgate_gateway::router_with(gw.clone(), tollgate_control::router(control.clone()));
    (router, control, token)
}

/// A gateway for `yaml` served on port 0 with the control plane beside it, and the admin token.
pub async fn serve(yaml: &str) -> (Gw, String) {
    serve_at(yaml, tollgate_types::clock::Clock::system()).await
}

/// [`serve`] with both planes reading `clock`.
pub async fn serve_at(yaml: &str, clock: tollgate_types::clock::Clock) -> (Gw, String) {
    let gw = common::gateway_only_at(yaml, clock).await;
    let control = control_for(&gw).await;
    let token = control
        .take_new_admin_token()
        .expect("a fresh store generates the admin token");
    (
        common::serve_gateway(gw, tollgate_control::router(control)).await,
        token,
    )
}

/// One in-process call of `router` with `Authorization: Bearer <token>` and an optional JSON
/// body: the status and the JSON answer (`null` when it is not JSON).
pub async fn call(
    router: &axum::Router,
    method: http::Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (http::StatusCode, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            axum::body::Body::from(b.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let resp = router
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
