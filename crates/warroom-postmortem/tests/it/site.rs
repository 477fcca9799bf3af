//! The static site: index ordering, page anchors, escaping.

use warroom_postmortem::{SiteError, SourceDoc, build_site, page_path};

fn src(name: &str, text: &str) -> SourceDoc {
    SourceDoc {
        file_name: name.into(),
        text: text.into(),
    }
}

#[test]
fn no_documents_is_an_error_that_says_what_to_do() {
    let err = build_site(&[]).unwrap_err();
    assert_eq!(err, SiteError::NoDocuments);
    assert!(err.to_string().contains("warroom postmortem new"));
}

#[test]
fn pages_have_stable_paths() {
    assert_eq!(
        page_path("docs/post-mortems/2026-04-14-nfs.md"),
        "2026-04-14-nfs.html"
    );
    assert_eq!(page_path("weird name?.md"), "weird-name-.html");
}

#[test]
fn duplicate_pages_are_refused() {
    let err = build_site(&[src("a b.md", "# A"), src("a?b.md", "# B")]).unwrap_err();
    assert!(matches!(err, SiteError::DuplicatePage { .. }));
}

#[test]
fn site_snapshot() {
    let docs = [
        src(
            "2026-03-02-grafana.md",
            "# Post-Mortem: Grafana <down>\n\n**Date:** 2026-03-02\n**Severity:** SEV2\n**Duration:** 45m\n**Affected services:** grafana\n\n## Action Items\n\n- [x] Add ping monitor\n- [ ] Write runbook\n\nSee [the NFS one](2026-04-14-nfs.md#timeline-utc).\n\n<script>alert(1)</script>\n\n[bad](javascript:alert(1))\n",
        ),
        src(
            "2026-04-14-nfs.md",
            "# Post-Mortem: NFS & Immich\n\n| Field | Value |\n|---|---|\n| Date | 2026-04-14 |\n| Severity | SEV-1 |\n\n## Timeline (UTC)\n\n| Time | Event |\n|---|---|\n| 14:00 | down |\n\n## Timeline (UTC)\n\n```sh\nmount | grep nfs\n```\n\n<!-- TODO(human): hidden prompt -->\n",
        ),
    ];
    let files = build_site(&docs).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "index.html",
            "2026-03-02-grafana.html",
            "2026-04-14-nfs.html"
        ]
    );
    let index = &files[0].contents;
    assert!(
        index.find("2026-04-14-nfs.html") < index.find("2026-03-02-grafana.html"),
        "newest first"
    );
    let grafana = &files[1].contents;
    assert!(!grafana.contains("<script>"));
    assert!(!grafana.contains("javascript:"));
    assert!(grafana.contains("href=\"2026-04-14-nfs.html#timeline-utc\""));
    let nfs = &files[2].contents;
    assert!(
        nfs.contains("id=\"timeline-utc-1\""),
        "duplicate headings get unique ids"
    );
    assert!(!nfs.contains("hidden prompt"));
    assert!(!nfs.contains("http"), "no external assets");
    for f in &files {
        insta::assert_snapshot!(f.path.clone(), f.contents);
    }
}
