//! Realistic post-mortems in every format, parsed and snapshotted as JSON.
//! The snapshots were reviewed by eye; see the crate README for the rules.

use std::path::Path;

use warroom_postmortem::parse_bytes;

#[test]
fn fixtures_parse_as_reviewed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    assert!(names.len() >= 10);
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let doc = parse_bytes(&format!("docs/post-mortems/{name}"), &bytes).unwrap();
        insta::assert_json_snapshot!(name.trim_end_matches(".md").to_string(), doc);
    }
}
