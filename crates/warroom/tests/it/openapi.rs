//! The OpenAPI document matches the route table, and every documented route has a handler.

use reqwest::{Method, StatusCode};
use std::collections::BTreeSet;
use warroom_testkit::{TestApp, backends};

#[tokio::test]
async fn openapi_document_matches_the_handlers() {
    let app = TestApp::spawn(backends()[0]).await;
    let (st, doc) = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routed: BTreeSet<(String, String)> = warroom_server::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, routed,
        "the OpenAPI document and the route table disagree"
    );

    app.post(
        "/api/v1/incidents",
        serde_json::json!({"service": "api", "summary": "x", "severity": 2}),
    )
    .await;
    for (method, path) in &routed {
        let concrete = path
            .replace("{number}", "1")
            .replace("{item}", "incident.debriefed")
            .replace("{id}", "nope");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let body = if m == Method::GET || m == Method::DELETE {
            None
        } else {
            Some(serde_json::json!({}))
        };
        let (st, v) = app.call(m, &concrete, Some(&app.admin), body).await;
        assert_ne!(st, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {v}");
        assert!(
            !(st == StatusCode::NOT_FOUND
                && v["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no such route")),
            "{method} {path} has no handler"
        );
        assert!(!st.is_server_error(), "{method} {path}: {st} {v}");
    }
}

/// A browser pointed at warroom's address gets a page, not a JSON 404, and every link on it
/// leads to a route that answers without a token.
#[tokio::test]
async fn the_root_page_links_to_routes_that_answer() {
    let app = TestApp::spawn(backends()[0]).await;
    let resp = reqwest::get(format!("{}/", app.url)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/html"), "{kind}");
    let page = resp.text().await.unwrap();
    assert!(page.contains(env!("CARGO_PKG_VERSION")), "{page}");
    let links: Vec<&str> = page
        .split("href=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    for wanted in [
        "/postmortems/",
        "/api/v1/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        assert!(links.contains(&wanted), "no link to {wanted} in {links:?}");
    }
    for link in links {
        let (st, v) = app.call(Method::GET, link, None, None).await;
        assert!(
            !v.to_string().contains("no such route"),
            "{link} is not a route: {st} {v}"
        );
        assert!(!st.is_server_error(), "{link}: {st} {v}");
        assert_ne!(st, StatusCode::UNAUTHORIZED, "{link} needs a token: {v}");
    }
}
