//! The result of a check: verdicts per property, counterexamples, the human summary, the `--json`
//! object and the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use models::catalog::Value;
use serde::{Deserialize, Serialize};
use stateright::Expectation;

/// A property's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// `always`: no reachable state violates it. `eventually`: no path avoids it to a dead end or
    /// a cycle (our engine; `--engine stateright` checks acyclic paths only).
    Holds,
    /// `always` / `eventually`: a counterexample was found.
    Violated,
    /// `sometimes`: an example was found.
    Found,
    /// `sometimes`: no reachable state satisfies it.
    NotFound,
    /// The run was cut short (a limit, or a simulation) before this property was decided.
    Unknown,
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Holds => "holds",
            Status::Violated => "violated",
            Status::Found => "found",
            Status::NotFound => "not_found",
            Status::Unknown => "unknown",
        }
    }

    /// Whether this is what the property's author expects of a correct model.
    pub fn as_expected(&self) -> bool {
        matches!(self, Status::Holds | Status::Found)
    }
}

/// One property's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyOutcome {
    pub name: String,
    /// `always`, `sometimes` or `eventually`.
    pub expectation: String,
    pub status: Status,
    /// The discovery (counterexample or example) as formatted actions, one per step.
    pub trace: Option<Vec<String>>,
    /// The fragment that opens the discovery in stateright's explorer, e.g. `#/steps/0/3/1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explorer_path: Option<String>,
    /// The discovery's last state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<String>,
    /// An `eventually` counterexample that loops forever: the step after which the cycle starts
    /// (0: from the initial state). The trace's last state is the state reached after this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_start: Option<usize>,
    /// Why the discovery's last state violates the property, in the paper's terms (the two
    /// leaders of one term, the dependency cycle), where the model says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The counterexample's length before steps it does not need were removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimised_from: Option<usize>,
    /// The last state in the paper's terms, where the model gives such a view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<String>,
    /// For each step, the lines of that view it changed (TLC's error trace shows the state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Vec<Vec<String>>>,
    /// A lasso's fairness classes that are enabled in every state of its loop and taken in it,
    /// each named by one of its actions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_enabled: Vec<String>,
    /// Those enabled in every state of the loop that it never takes: the loop is unfair to them
    /// (reported only with `--fairness none`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfair_to: Vec<String>,
}

/// The result of one run; serialised as the `--json` object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub model: String,
    /// `bfs`, `dfs` or `sim`.
    pub strategy: String,
    /// The simulation's seed, to replay it with `--sim --seed N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub params: BTreeMap<String, serde_json::Value>,
    pub bug: Option<String>,
    /// `ours` (the workbench's engine) or `stateright`.
    #[serde(default)]
    pub engine: String,
    pub threads: usize,
    pub symmetry: bool,
    pub unique_states: usize,
    pub generated_states: usize,
    /// Depth of the deepest state reached; the initial states are depth 1.
    pub max_depth: usize,
    pub elapsed_s: f64,
    /// Our engine: bytes of its visited set and trace data (parent ids and action indices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_bytes: Option<usize>,
    /// Whether every reachable state (within `--depth`) was checked. False for simulations, for runs
    /// cut short by `--max-states`, `--timeout` or `--depth`, and for runs that stopped early because
    /// every property already had a discovery.
    pub complete: bool,
    pub properties: Vec<PropertyOutcome>,
    /// Under `--bug`: the properties the bug names as the ones it breaks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bug_breaks: Vec<String>,
    /// `--depth N` when the depth was the run's only limit: every state up to depth `N` was
    /// checked, so an undecided `always` has no violation up to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_limit: Option<usize>,
    /// The fairness the liveness properties were decided under: `weak` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<String>,
    /// What deciding the liveness properties cost (our engine, when the model has any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessFigures>,
}

/// The liveness search's graph and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivenessFigures {
    pub states: usize,
    pub edges: usize,
    pub bytes: usize,
    pub elapsed_s: f64,
}

/// Exit code: every property came out as expected.
pub const EXIT_OK: u8 = 0;
/// Exit code: a property did not come out as expected.
pub const EXIT_UNEXPECTED: u8 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the run was cut short before every property was decided.
pub const EXIT_INCOMPLETE: u8 = 3;

impl Outcome {
    /// 1 if any property came out other than expected, else 3 if any is undecided, else 0.
    pub fn exit_code(&self) -> u8 {
        let statuses = || self.properties.iter().map(|p| p.status);
        if statuses().any(|s| matches!(s, Status::Violated | Status::NotFound)) {
            EXIT_UNEXPECTED
        } else if statuses().any(|s| s == Status::Unknown) {
            EXIT_INCOMPLETE
        } else {
            EXIT_OK
        }
    }

    /// The human summary. `replay` is the command line that reproduces this run, used to say how
    /// to open a counterexample in the explorer.
    pub fn summary(&self, replay: &str) -> String {
        self.summary_with(replay, false)
    }

    /// Whether `p` is one the seeded bug names.
    fn targeted(&self, p: &PropertyOutcome) -> bool {
        self.bug_breaks.contains(&p.name)
    }

    /// [`Outcome::summary`], with each counterexample's last state in full if `full_state`.
    pub fn summary_with(&self, replay: &str, full_state: bool) -> String {
        let mut out = String::new();
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
            .collect();
        let _ = writeln!(
            out,
            "{} [{}] {}{}{}, {} thread{}, {} engine",
            self.model,
            params.join(" "),
            self.strategy,
            self.seed
                .map(|s| format!(" (seed {s})"))
                .unwrap_or_default(),
            if self.symmetry { " with symmetry" } else { "" },
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.engine,
        );
        if let Some(bug) = &self.bug {
            let _ = if self.bug_breaks.is_empty() {
                writeln!(out, "seeded bug: {bug}")
            } else {
                writeln!(
                    out,
                    "seeded bug: {bug} (it should break: {})",
                    self.bug_breaks.join("; ")
                )
            };
        }
        // A random walk's states are not a search's: count steps walked, not unique states.
        let counts = if self.strategy == "sim" {
            format!("{} steps walked at random", self.generated_states)
        } else {
            format!(
                "{} unique states, {} generated",
                self.unique_states, self.generated_states
            )
        };
        let _ = writeln!(
            out,
            "{counts}, max depth {}, {:.2} s, {}",
            self.depth_limit
                .map_or(self.max_depth, |d| self.max_depth.min(d)),
            self.elapsed_s,
            match (self.complete, self.depth_limit) {
                (true, _) => "complete".to_string(),
                (false, Some(d)) => format!("every state up to depth {d} checked, none beyond"),
                (false, None) =>
                    "INCOMPLETE (cut short: not every reachable state was checked)".to_string(),
            }
        );
        if let Some(bytes) = self.table_bytes {
            // The visited set starts at 8 MB; below a million states a per-state figure says
            // more about that floor than about the engine.
            let per_state = if self.unique_states >= 1 << 20 {
                format!(
                    ", {:.1} bytes per unique state",
                    bytes as f64 / self.unique_states as f64
                )
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "visited set and traces: {:.1} MB{per_state}",
                bytes as f64 / (1 << 20) as f64
            );
        }
        if let Some(l) = &self.liveness {
            let _ = writeln!(
                out,
                "liveness ({} fairness): graph of {} states and {} edges, {:.1} MB, {:.2} s",
                self.fairness.as_deref().unwrap_or("no"),
                l.states,
                l.edges,
                l.bytes as f64 / (1 << 20) as f64,
                l.elapsed_s
            );
        }
        // Under --bug the properties it names come first.
        let mut listed: Vec<&PropertyOutcome> = self.properties.iter().collect();
        listed.sort_by_key(|p| !self.targeted(p));
        for p in listed {
            let bugged = self.bug.is_some() && !self.bug_breaks.is_empty();
            let depth = self.depth_limit.map(|d| match p.expectation.as_str() {
                "always" => format!("  (no violation up to depth {d})"),
                "sometimes" => format!("  (no example up to depth {d})"),
                _ => format!("  (undecided: paths cut at depth {d})"),
            });
            let note = match (p.expectation.as_str(), p.status) {
                (_, Status::Violated | Status::NotFound) if bugged && self.targeted(p) => {
                    "  <- the bug's target: broken, as expected".to_string()
                }
                (_, s) if bugged && self.targeted(p) && s != Status::Unknown => {
                    "  <- the bug's target: NOT broken".to_string()
                }
                ("sometimes", Status::NotFound) if bugged => {
                    "  (not reached in the bug's small configuration)".to_string()
                }
                (_, Status::Violated) if bugged => {
                    "  <- unexpected: the bug breaks this too".into()
                }
                ("eventually", Status::Holds) if self.engine == "stateright" => {
                    "  (no counterexample on acyclic paths)".to_string()
                }
                ("eventually" | "leads-to", Status::Holds) => match self.fairness.as_deref() {
                    Some("weak") => "  (no dead end or weakly fair cycle avoids it)".to_string(),
                    _ => "  (no dead end or cycle avoids it; no fairness)".to_string(),
                },
                (_, s) if s.as_expected() => String::new(),
                (_, Status::Unknown) => depth.unwrap_or_else(|| "  (undecided)".to_string()),
                _ => "  <- unexpected".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<10} {:<10} {}{}",
                p.status.name(),
                p.expectation,
                p.name,
                note
            );
        }
        for p in &self.properties {
            let Some(trace) = &p.trace else { continue };
            if p.status.as_expected() {
                continue;
            }
            let _ = writeln!(
                out,
                "\ncounterexample to \"{}\" ({}), {} step{}{}:",
                p.name,
                p.expectation,
                trace.len(),
                if trace.len() == 1 { "" } else { "s" },
                p.minimised_from
                    .map(|n| format!(" (minimised from {n})"))
                    .unwrap_or_default()
            );
            for (i, step) in trace.iter().enumerate() {
                let _ = writeln!(out, "  {:>3}. {step}", i + 1);
                for line in p.changes.iter().filter_map(|c| c.get(i)).flatten() {
                    let _ = writeln!(out, "         ~ {line}");
                }
            }
            if let Some(why) = &p.evidence {
                let _ = writeln!(out, "  why: {why}");
            }
            if let Some(k) = p.cycle_start {
                let fairness = match self.fairness.as_deref() {
                    Some("weak") => "a weakly fair loop",
                    _ => "no fairness assumed",
                };
                let _ = writeln!(
                    out,
                    "  ... and forever: steps {}..{} repeat (the last state is the state after step {k}; {fairness})",
                    k + 1,
                    trace.len()
                );
                if !p.kept_enabled.is_empty() {
                    let _ = writeln!(out, "  the loop keeps enabled, and takes:");
                    for c in &p.kept_enabled {
                        let _ = writeln!(out, "    {c}");
                    }
                }
                if !p.unfair_to.is_empty() {
                    let _ = writeln!(
                        out,
                        "  the loop keeps enabled and never takes (unfair: --fairness weak would not report it):"
                    );
                    for c in &p.unfair_to {
                        let _ = writeln!(out, "    {c}");
                    }
                }
            }
            if let Some(view) = p.view.as_ref().filter(|_| !full_state) {
                let _ = writeln!(out, "  last state (--full-state for every field):");
                for line in view.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            } else if let Some(last) = &p.last_state {
                let max_lines = if full_state { usize::MAX } else { 60 };
                let _ = writeln!(out, "  last state:");
                for line in last.lines().take(max_lines) {
                    let _ = writeln!(out, "    {line}");
                }
                let more = last.lines().count().saturating_sub(max_lines);
                if more > 0 {
                    let _ = writeln!(
                        out,
                        "    ... {more} more lines (--full-state prints them, --json has them too)"
                    );
                }
            }
            if let Some(path) = &p.explorer_path {
                let _ = writeln!(
                    out,
                    "  explorer: run `{replay} --explore`, then open http://localhost:3000/{path}"
                );
            }
        }
        let unexpected = self
            .properties
            .iter()
            .filter(|p| matches!(p.status, Status::Violated | Status::NotFound))
            .count();
        let unknown = self
            .properties
            .iter()
            .filter(|p| p.status == Status::Unknown)
            .count();
        let targets_broken = self
            .properties
            .iter()
            .filter(|p| self.targeted(p))
            .all(|p| matches!(p.status, Status::Violated | Status::NotFound));
        let others_violated = self
            .properties
            .iter()
            .filter(|p| !self.targeted(p) && p.status == Status::Violated)
            .count();
        if self.bug.is_some() && !self.bug_breaks.is_empty() {
            let _ = writeln!(
                out,
                "\nresult: {}",
                match (targets_broken, others_violated) {
                    (true, 0) => format!(
                        "the bug breaks what it names ({}), and nothing else",
                        self.bug_breaks.join("; ")
                    ),
                    (true, n) => format!(
                        "the bug breaks what it names ({}), and {n} other propert{} too",
                        self.bug_breaks.join("; "),
                        if n == 1 { "y" } else { "ies" }
                    ),
                    (false, _) => format!(
                        "the bug was not caught: not all of {} broken{}",
                        self.bug_breaks.join("; "),
                        if self.complete {
                            ""
                        } else {
                            " (the run was cut short)"
                        }
                    ),
                }
            );
            return out;
        }
        let _ = writeln!(
            out,
            "\nresult: {}",
            match self.exit_code() {
                EXIT_OK => format!("all {} properties as expected", self.properties.len()),
                EXIT_UNEXPECTED => format!(
                    "{unexpected} of {} properties not as expected",
                    self.properties.len()
                ),
                _ => match self.depth_limit {
                    Some(d) => format!(
                        "no counterexample up to depth {d}; {unknown} of {} properties undecided beyond it",
                        self.properties.len()
                    ),
                    None => format!(
                        "no counterexample yet, but {unknown} of {} properties undecided: the run was cut short",
                        self.properties.len()
                    ),
                },
            }
        );
        out
    }
}

/// A parameter value as JSON.
pub fn value_json(v: Value) -> serde_json::Value {
    match v {
        Value::Int(i) => serde_json::Value::from(i),
        Value::Choice(c) => serde_json::Value::from(c),
    }
}

/// `always`, `sometimes` or `eventually`.
pub fn expectation_name(e: &Expectation) -> &'static str {
    match e {
        Expectation::Always => "always",
        Expectation::Sometimes => "sometimes",
        Expectation::Eventually => "eventually",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property(expectation: &str, status: Status) -> PropertyOutcome {
        PropertyOutcome {
            name: format!("{expectation} property"),
            expectation: expectation.to_string(),
            status,
            trace: None,
            explorer_path: None,
            last_state: None,
            cycle_start: None,
            evidence: None,
            minimised_from: None,
            view: None,
            changes: None,
            kept_enabled: Vec::new(),
            unfair_to: Vec::new(),
        }
    }

    fn outcome(properties: Vec<PropertyOutcome>, complete: bool) -> Outcome {
        Outcome {
            model: "m".into(),
            strategy: "bfs".into(),
            seed: None,
            params: BTreeMap::new(),
            bug: None,
            engine: "stateright".to_string(),
            threads: 1,
            symmetry: false,
            unique_states: 1,
            generated_states: 1,
            max_depth: 1,
            elapsed_s: 0.0,
            table_bytes: None,
            bug_breaks: Vec::new(),
            depth_limit: None,
            fairness: None,
            liveness: None,
            complete,
            properties,
        }
    }

    #[test]
    fn eventually_passes_are_reported_with_the_acyclic_caveat() {
        let o = outcome(vec![property("eventually", Status::Holds)], true);
        assert_eq!(o.exit_code(), EXIT_OK);
        assert!(o.summary("checker m").contains(
            "holds      eventually eventually property  (no counterexample on acyclic paths)"
        ));
    }

    #[test]
    fn exit_codes_put_unexpected_before_undecided() {
        use Status::*;
        let cases = [
            (vec![Holds, Found], EXIT_OK),
            (vec![Holds, NotFound], EXIT_UNEXPECTED),
            (vec![Violated, Unknown], EXIT_UNEXPECTED),
            (vec![Unknown, Found], EXIT_INCOMPLETE),
        ];
        for (statuses, code) in cases {
            let props = statuses
                .into_iter()
                .map(|s| property("always", s))
                .collect();
            assert_eq!(outcome(props, false).exit_code(), code);
        }
    }

    #[test]
    fn json_uses_snake_case_statuses() {
        let o = outcome(vec![property("sometimes", Status::NotFound)], true);
        let v: serde_json::Value = serde_json::to_value(&o).unwrap();
        assert_eq!(v["properties"][0]["status"], "not_found");
        assert!(v["properties"][0]["trace"].is_null());
        assert!(v["bug"].is_null());
    }
}
