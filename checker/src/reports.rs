//! Checked-in baselines (`reports/<model>.json`) and the README's model table generated from them.
//!
//! A baseline records the default configuration's state counts and verdicts. A test runs every
//! registered model's default configuration and compares it with its baseline (as the TLA+ Examples
//! compare TLC's output with their manifests), so a change in a state count is a visible, reviewed
//! event: rewrite a baseline with `checker <model> --write-report` only when you understand why it
//! changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use models::catalog::Params;
use serde::{Deserialize, Serialize};

use crate::outcome::{Outcome, Status};
use crate::registry::Protocol;
use crate::run::{RunOptions, Strategy};

/// The workspace's `reports/` folder.
pub fn reports_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports")
}

/// The workspace's README.
pub fn readme_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")
}

/// What a baseline pins for one property.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineProperty {
    pub name: String,
    pub expectation: String,
    pub status: Status,
}

/// `reports/<model>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub model: String,
    pub paper: String,
    pub params: BTreeMap<String, serde_json::Value>,
    pub strategy: String,
    /// The depth explored to, for a model too large to explore to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    pub unique_states: usize,
    pub generated_states: usize,
    pub max_depth: usize,
    pub complete: bool,
    pub properties: Vec<BaselineProperty>,
    pub bugs: Vec<String>,
}

impl Baseline {
    pub fn from_outcome(protocol: &dyn Protocol, outcome: &Outcome) -> Self {
        Baseline {
            model: outcome.model.clone(),
            paper: protocol.paper().to_string(),
            params: outcome.params.clone(),
            strategy: outcome.strategy.clone(),
            depth: protocol.baseline_depth(),
            unique_states: outcome.unique_states,
            generated_states: outcome.generated_states,
            max_depth: outcome.max_depth,
            complete: outcome.complete,
            properties: outcome
                .properties
                .iter()
                .map(|p| BaselineProperty {
                    name: p.name.clone(),
                    expectation: p.expectation.clone(),
                    status: p.status,
                })
                .collect(),
            bugs: protocol.bugs().iter().map(|b| b.name.to_string()).collect(),
        }
    }

    /// Whether every property came out as expected. A check to a depth decides an `always` or
    /// `eventually` property only by violating it, and a `sometimes` one only by finding it: it
    /// is as expected when nothing is violated and no example is missing.
    pub fn as_expected(&self) -> bool {
        match self.depth {
            None => self.complete && self.properties.iter().all(|p| p.status.as_expected()),
            Some(_) => self
                .properties
                .iter()
                .all(|p| !matches!(p.status, Status::Violated | Status::NotFound)),
        }
    }
}

/// How baselines are made: the default configuration, exhaustive BFS on one thread (with more,
/// stateright's BFS is not level-synchronous and its maximum depth varies from run to run).
pub fn baseline_options() -> RunOptions {
    RunOptions {
        strategy: Strategy::Bfs,
        threads: 1,
        ..RunOptions::default()
    }
}

/// Runs `protocol`'s default configuration the way baselines are made: to the end, or to the
/// model's baseline depth.
pub fn run_default(protocol: &dyn Protocol) -> Outcome {
    let opts = RunOptions {
        depth: protocol.baseline_depth(),
        ..baseline_options()
    };
    protocol.check(&Params::defaults(protocol.params()), None, &opts)
}

pub fn path_of(dir: &Path, model: &str) -> PathBuf {
    dir.join(format!("{model}.json"))
}

pub fn read(dir: &Path, model: &str) -> Result<Baseline> {
    let path = path_of(dir, model);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("malformed baseline {}", path.display()))
}

pub fn write(dir: &Path, baseline: &Baseline) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = path_of(dir, &baseline.model);
    let mut text = serde_json::to_string_pretty(baseline)?;
    text.push('\n');
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The markdown table of `models`, from their baselines in `dir`.
pub fn table(models: &[&dyn Protocol], dir: &Path) -> Result<String> {
    let mut out = String::from(
        "| model | paper | properties | seeded bugs | states (unique / generated) | verdict |\n\
         |---|---|---|---|---|---|\n",
    );
    for m in models {
        let b = read(dir, m.name())?;
        let props: Vec<String> = b
            .properties
            .iter()
            .map(|p| format!("{} {}", p.expectation, p.name))
            .collect();
        let params: Vec<String> = b
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect();
        let verdict = if let (true, Some(depth)) = (b.as_expected(), b.depth) {
            format!("no counterexample to depth {depth}")
        } else if b.as_expected() {
            "as expected".to_string()
        } else {
            let off: Vec<String> = b
                .properties
                .iter()
                .filter(|p| !p.status.as_expected())
                .map(|p| format!("{} {}", p.name, p.status.name()))
                .collect();
            format!("**{}**", off.join(", "))
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} / {} ({}) | {} |\n",
            b.model,
            b.paper,
            props.join("; "),
            b.bugs
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", "),
            b.unique_states,
            b.generated_states,
            params.join(" "),
            verdict
        ));
    }
    Ok(out)
}

const BEGIN: &str =
    "<!-- models:begin (generated by `cargo run -p checker -- table --write`) -->\n";
const END: &str = "<!-- models:end -->";

/// `readme` with the text between the table markers replaced by `table`.
pub fn splice_table(readme: &str, table: &str) -> Result<String> {
    let Some(start) = readme.find(BEGIN) else {
        bail!("README has no line `{}`", BEGIN.trim_end());
    };
    let body = start + BEGIN.len();
    let Some(end) = readme[body..].find(END) else {
        bail!("README has no line `{END}`");
    };
    Ok(format!(
        "{}{}{}",
        &readme[..body],
        table,
        &readme[body + end..]
    ))
}
