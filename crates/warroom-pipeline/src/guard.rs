//! The guardrails that need no process: protected path globs, the plan's destroys, diff size.

/// The platform stacks the source document says automation must never modify.
pub const DEFAULT_PROTECTED: [&str; 4] = [
    "**/vault/**",
    "**/dbaas/**",
    "**/traefik/**",
    "**/authentik/**",
];

fn segment_matches(pat: &[u8], s: &[u8]) -> bool {
    match (pat.split_first(), s.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            segment_matches(rest, s)
                || (!s.is_empty() && segment_matches(pat, s.get(1..).unwrap_or_default()))
        }
        (Some((b'?', rest)), Some((_, srest))) => segment_matches(rest, srest),
        (Some((p, rest)), Some((c, srest))) if p == c => segment_matches(rest, srest),
        _ => false,
    }
}

fn parts_match(pat: &[&str], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => {
            (0..=path.len()).any(|k| parts_match(rest, path.get(k..).unwrap_or_default()))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, prest)) => {
                segment_matches(p.as_bytes(), s.as_bytes()) && parts_match(rest, prest)
            }
            None => false,
        },
    }
}

/// Whether a repository-relative path matches a glob: `*` and `?` within one segment, `**`
/// for any number of segments (including none), so `**/vault/**` matches `vault/main.tf`
/// and `stacks/vault/policy.hcl`. Matching is case-sensitive, like git.
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    parts_match(&pat, &p)
}

/// Checks a pattern is usable, for configuration errors.
pub fn check_glob(pattern: &str) -> Result<(), String> {
    if pattern.trim().is_empty() {
        return Err("is empty".into());
    }
    if pattern.contains('\\') || pattern.contains('[') {
        return Err("only `*`, `?` and `**` are supported (no brackets or escapes)".into());
    }
    Ok(())
}

/// The first changed path that a protected glob matches, with the glob.
pub fn protected_hit<'a>(globs: &'a [String], paths: &'a [String]) -> Option<(&'a str, &'a str)> {
    paths.iter().find_map(|p| {
        globs
            .iter()
            .find(|g| glob_matches(g, p))
            .map(|g| (p.as_str(), g.as_str()))
    })
}

/// A resource the plan would delete (alone or as part of a replace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destroy {
    /// `resource_changes[].address`.
    pub address: String,
    /// `change.actions`, e.g. `["delete","create"]` for a replace.
    pub actions: Vec<String>,
}

/// Reads Terraform/OpenTofu `show -json` output and lists every resource change whose
/// `change.actions` contains `delete`: a plain delete, or a replace in either order
/// (`["delete","create"]`, `["create","delete"]`). A plan without `resource_changes` (nothing
/// to do) has none. Anything that is not a plan document is an error, never "no destroys".
pub fn plan_destroys(json: &str) -> Result<Vec<Destroy>, String> {
    let v: serde_json::Value = serde_json::from_str(json.trim())
        .map_err(|e| format!("the plan output is not JSON ({e}); the plan command must print `terraform show -json` output"))?;
    let obj = v
        .as_object()
        .ok_or("the plan output is not a JSON object; expected `terraform show -json` output")?;
    if !obj.contains_key("format_version") {
        return Err(
            "the plan output has no `format_version`; expected `terraform show -json` output"
                .into(),
        );
    }
    let Some(changes) = obj.get("resource_changes") else {
        return Ok(vec![]);
    };
    let changes = changes
        .as_array()
        .ok_or("`resource_changes` is not a list")?;
    let mut out = Vec::new();
    for (i, rc) in changes.iter().enumerate() {
        let actions = rc
            .pointer("/change/actions")
            .and_then(|a| a.as_array())
            .ok_or_else(|| format!("resource_changes[{i}].change.actions is missing"))?;
        let actions: Vec<String> = actions
            .iter()
            .map(|a| a.as_str().unwrap_or("?").to_string())
            .collect();
        if actions.iter().any(|a| a == "delete") {
            out.push(Destroy {
                address: rc
                    .get("address")
                    .and_then(|a| a.as_str())
                    .unwrap_or("(unnamed)")
                    .to_string(),
                actions,
            });
        }
    }
    Ok(out)
}

/// Lines added plus removed from `git diff --numstat`; a binary file counts as `binary_cost`.
pub fn numstat_lines(numstat: &str, binary_cost: u64) -> u64 {
    numstat
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (a, d) = (f.next()?, f.next()?);
            Some(match (a.parse::<u64>(), d.parse::<u64>()) {
                (Ok(a), Ok(d)) => a + d,
                _ => binary_cost,
            })
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_segments() {
        for (p, path, m) in [
            ("**/vault/**", "vault/main.tf", true),
            ("**/vault/**", "stacks/vault/policy.hcl", true),
            ("**/vault/**", "stacks/vaultwarden/main.tf", false),
            ("**/vault/**", "stacks/my-vault.tf", false),
            ("stacks/*.tf", "stacks/a.tf", true),
            ("stacks/*.tf", "stacks/x/a.tf", false),
            ("**/*.tfstate", "a/b/terraform.tfstate", true),
            ("docs/?.md", "docs/a.md", true),
        ] {
            assert_eq!(glob_matches(p, path), m, "{p} vs {path}");
        }
    }

    #[test]
    fn plans_with_deletes_are_found_in_every_form() {
        let plan = r#"{"format_version":"1.2","resource_changes":[
            {"address":"a.create","change":{"actions":["create"]}},
            {"address":"a.update","change":{"actions":["update"]}},
            {"address":"a.noop","change":{"actions":["no-op"]}},
            {"address":"a.delete","change":{"actions":["delete"]}},
            {"address":"a.replace1","change":{"actions":["delete","create"]}},
            {"address":"a.replace2","change":{"actions":["create","delete"]}}]}"#;
        let d: Vec<String> = plan_destroys(plan)
            .unwrap()
            .into_iter()
            .map(|d| d.address)
            .collect();
        assert_eq!(d, ["a.delete", "a.replace1", "a.replace2"]);
        assert!(
            plan_destroys(r#"{"format_version":"1.2"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(plan_destroys("not json").is_err());
        assert!(plan_destroys("[]").is_err());
        assert!(plan_destroys(r#"{"resource_changes":[]}"#).is_err());
        assert!(
            plan_destroys(r#"{"format_version":"1","resource_changes":[{"change":{}}]}"#).is_err()
        );
    }

    #[test]
    fn numstat_counts_lines_and_binaries() {
        assert_eq!(numstat_lines("3\t2\ta.tf\n-\t-\tb.png\n", 100), 105);
    }
}
