//! The server's own small HTML pages (acknowledgement links, the root page) share one frame.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

/// A page titled `title` (escaped) around `body` (HTML, trusted).
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}\
         button{{font-size:1.2rem;padding:.6rem 1.4rem}}</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = warroom_postmortem::escape_html(title)
    );
    (status, Html(html)).into_response()
}
