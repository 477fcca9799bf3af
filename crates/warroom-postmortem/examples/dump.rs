//! Prints the parse of a file as JSON (development aid).
fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    let bytes = std::fs::read(&path).unwrap_or_default();
    match warroom_postmortem::parse_bytes(&path, &bytes) {
        Ok(doc) => println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default()),
        Err(e) => eprintln!("{e}"),
    }
}
