//! Parsing, JSON output and HTML rendering never panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = warroom_postmortem::parse_bytes("fuzz.md", data) else { return };
    let _ = serde_json::to_string(&doc);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = warroom_postmortem::render_markdown(text);
        let _ = warroom_postmortem::pending_across(std::slice::from_ref(&doc));
    }
});
