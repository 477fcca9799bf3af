//! `warroom postmortem ...` and `warroom site build`.

use anyhow::{Context, anyhow, bail};
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use warroom_postmortem as pm;

use super::{client::Client, output};
use crate::cli::{MarkStatus, PostmortemCommand, SiteCommand};

fn read(path: &Path) -> anyhow::Result<pm::ParsedDocument> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() as usize > pm::MAX_DOCUMENT_BYTES {
        bail!(
            "{} is {} bytes; post-mortems over {} bytes are refused",
            path.display(),
            meta.len(),
            pm::MAX_DOCUMENT_BYTES
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    pm::parse_bytes(&path.display().to_string(), &bytes).map_err(|e| anyhow!("{e}"))
}

fn markdown_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "md")
                && !p
                    .file_name()
                    .is_some_and(|n| n.eq_ignore_ascii_case("README.md"))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn print_items(items: &[&pm::Item], file_of: impl Fn(usize) -> String) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .enumerate()
        .map(|(k, i)| {
            vec![
                i.id.clone(),
                i.priority.as_str().to_owned(),
                i.item_type.as_str().to_owned(),
                format!("{:?}", i.status).to_lowercase(),
                if i.safe {
                    "safe".into()
                } else {
                    "review".into()
                },
                format!("{}:{}", file_of(k), i.line),
                i.action.chars().take(70).collect(),
            ]
        })
        .collect();
    output::table(
        &["ID", "PRIO", "TYPE", "STATUS", "AUTO", "WHERE", "ACTION"],
        &rows,
    );
}

pub async fn run(cmd: PostmortemCommand) -> anyhow::Result<()> {
    match cmd {
        PostmortemCommand::New {
            number,
            no_commit,
            client,
        } => {
            let n: i64 = number
                .trim_start_matches('#')
                .parse()
                .map_err(|_| anyhow!("`{number}` is not an incident number"))?;
            let c = Client::new(&client)?;
            let v = c
                .call(
                    Method::POST,
                    &format!("/api/v1/incidents/{n}/postmortem"),
                    Some(json!({ "no_commit": no_commit })),
                )
                .await?;
            if client.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("wrote {}", v["path"].as_str().unwrap_or_default());
                if let Some(c) = v["commit"].as_str() {
                    println!("committed {c}");
                }
            }
        }
        PostmortemCommand::Parse { files, json } => {
            let docs: Vec<pm::ParsedDocument> = files
                .iter()
                .map(|f| read(f))
                .collect::<anyhow::Result<_>>()?;
            if json {
                let v = if docs.len() == 1 {
                    serde_json::to_value(&docs[0])?
                } else {
                    serde_json::to_value(&docs)?
                };
                println!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(());
            }
            for d in &docs {
                println!(
                    "{}: {} follow-ups, {} pending safe to automate, {} pending for people",
                    d.file,
                    d.items.len(),
                    d.todos().count(),
                    d.skipped().count()
                );
                for w in &d.warnings {
                    println!("  warning: {}", w.message);
                }
                if d.needs_review {
                    println!("  NEEDS REVIEW: {}", d.review_reasons.join("; "));
                }
                let items: Vec<&pm::Item> = d.items.iter().collect();
                print_items(&items, |_| {
                    d.file.rsplit('/').next().unwrap_or_default().to_owned()
                });
            }
        }
        PostmortemCommand::Todos { dir, json } => {
            let files = markdown_files(&dir)?;
            if files.is_empty() {
                bail!("no post-mortems (*.md) in {}", dir.display());
            }
            let docs: Vec<pm::ParsedDocument> = files
                .iter()
                .map(|f| read(f))
                .collect::<anyhow::Result<_>>()?;
            let pending = pm::pending_across(&docs);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "pending": pending }))?
                );
                return Ok(());
            }
            let items: Vec<&pm::Item> = pending.iter().map(|p| p.item).collect();
            print_items(&items, |k| {
                pending[k]
                    .file
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            });
            for d in docs.iter().filter(|d| d.needs_review) {
                eprintln!(
                    "warning: {} has follow-up sections that could not be read; review it by hand",
                    d.file
                );
            }
        }
        PostmortemCommand::Mark { file, item, status } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {} as UTF-8 text", file.display()))?;
            let new = match status {
                MarkStatus::Done => pm::EditStatus::Done,
                MarkStatus::NeedsHumanReview => pm::EditStatus::NeedsHumanReview,
            };
            let edited = pm::set_item_status(&file.display().to_string(), &text, &item, new)
                .map_err(|e| anyhow!("{e}"))?;
            // Write beside and rename, so a crash never leaves half a post-mortem.
            let tmp = file.with_extension("md.warroom-tmp");
            std::fs::write(&tmp, &edited)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &file)
                .with_context(|| format!("cannot replace {}", file.display()))?;
            println!("{}: {item} marked {:?}", file.display(), status);
        }
    }
    Ok(())
}

pub fn site(cmd: SiteCommand) -> anyhow::Result<()> {
    let SiteCommand::Build { postmortems, out } = cmd;
    let files = markdown_files(&postmortems)?;
    let mut docs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read {} as UTF-8 text", f.display()))?;
        docs.push(pm::SourceDoc {
            file_name: f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            text,
        });
    }
    let site =
        pm::build_site(&docs).map_err(|e| anyhow!("{e} (folder: {})", postmortems.display()))?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in &site {
        std::fs::write(out.join(&f.path), &f.contents)
            .with_context(|| format!("cannot write {}", out.join(&f.path).display()))?;
    }
    println!("wrote {} pages to {}", site.len(), out.display());
    Ok(())
}
