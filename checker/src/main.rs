//! `checker`: model-check a registered protocol, list the registry, keep the README table current.
//!
//! Exit codes: 0 every property came out as expected; 1 some property did not; 2 usage error;
//! 3 the run was cut short by a limit before every property was decided.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use checker::history::{check_file, HistoryError, HistoryFormat, HistoryModel};
use checker::outcome::{EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE};
use checker::run::{Engine, Fairness};
use checker::{reports, Protocol, RunOptions, Strategy, MODELS};
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use models::catalog::{ParamKind, Params, Value};

/// `--engine`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EngineArg {
    Ours,
    Stateright,
}

/// `--fairness`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FairnessArg {
    Weak,
    None,
}

/// Options shared by every model subcommand.
#[derive(Args, Debug)]
struct CheckArgs {
    /// Breadth-first search (the default): short counterexamples.
    #[arg(long, group = "strategy")]
    bfs: bool,
    /// Depth-first search: little memory.
    #[arg(long, group = "strategy")]
    dfs: bool,
    /// Random simulation; prints its seed. Never complete (exit 3 unless something is found).
    #[arg(long, group = "strategy")]
    sim: bool,
    /// Seed of the simulation, to replay one.
    #[arg(long, value_name = "N", requires = "sim")]
    seed: Option<u64>,
    /// Serve stateright's web explorer on ADDR instead of checking.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "localhost:3000")]
    explore: Option<String>,
    /// Worker threads [default: every core with our engine, 1 with stateright's]. Our BFS is
    /// level-synchronous: the same counts with any number of threads. stateright's BFS is not.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// The exploration engine for BFS and DFS: ours (fingerprints and parent ids, about 20 bytes a
    /// state, exact `eventually`) or stateright's own checkers, for comparison.
    #[arg(long, value_enum, default_value = "ours")]
    engine: EngineArg,
    /// Check states up to this depth only (the initial states are depth 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    depth: Option<u64>,
    /// Stop after this many generated states.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_states: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    timeout: Option<f64>,
    /// Explore one representative per symmetry class (stateright's engine: DFS or simulation only).
    #[arg(long)]
    symmetry: bool,
    /// Stop at the first counterexample to an always or eventually property (the other
    /// properties are then undecided). Handy with --bug.
    #[arg(long)]
    first_failure: bool,
    /// The fairness liveness (eventually, leads-to) is decided under: weak (a loop that keeps a
    /// message deliverable or a timer armed without ever taking it is no counterexample) or none
    /// [default: weak where the model declares fairness classes, else none].
    #[arg(long, value_enum)]
    fairness: Option<FairnessArg>,
    /// Decide only the always and sometimes properties: eventually and leads-to stay undecided,
    /// and the search records no liveness graph (less memory on a large model).
    #[arg(long, conflicts_with = "fairness")]
    skip_liveness: bool,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
    /// Shorten counterexamples to always properties by removing the steps they do not need
    /// (always done for --sim and --dfs, whose paths are not shortest).
    #[arg(long)]
    minimise: bool,
    /// Print each counterexample's last state in full (the summary cuts it at 60 lines).
    #[arg(long)]
    full_state: bool,
    /// Write the first counterexample (else the first example found) as a self-contained HTML
    /// page: a space-time diagram of the actors and the state after each step.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Record the default configuration's result in reports/<model>.json.
    #[arg(long, conflicts_with_all = ["explore", "sim", "dfs", "symmetry", "depth", "max_states", "timeout", "bug", "first_failure", "skip_liveness", "fairness"])]
    write_report: bool,
}

/// `checker history`.
#[derive(Args, Debug)]
struct HistoryArgs {
    /// What the history is checked against: a sequential object (linearizability), or
    /// transactions (txn), sessions (causal) or Elle's list-append transactions at --level, or
    /// a look-aside cache's reads and writes for freshness (cache: `jepsen memcache`'s history).
    #[arg(long, value_enum)]
    model: HistoryModel,
    /// How the file is written [default for txn, causal and cache: jsonl; for list-append: edn or
    /// json, as the file looks].
    #[arg(long, value_enum)]
    format: Option<HistoryFormat>,
    /// The history file.
    file: std::path::PathBuf,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Give up after this many seconds (verdict unknown, exit 3; linearizability only).
    #[arg(long, value_name = "SECS", value_parser = parse_secs, allow_negative_numbers = true)]
    timeout: Option<f64>,
    /// For `--model txn`: strict (the default; real time from `start`/`end`) or serializable.
    /// For `--model causal`: cc, cm, ccv (the default; COPS's causal+) or tcc (transactional).
    /// For `--model list-append`: strict (the default), serializable, snapshot-isolation,
    /// repeatable-read or read-committed.
    #[arg(long, value_name = "LEVEL")]
    level: Option<String>,
    /// For `--format edn` registers: the value the register starts with [default: nil].
    #[arg(long, value_name = "V", allow_negative_numbers = true)]
    initial: Option<i64>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("expected a positive number of seconds".into()),
    }
}

fn cli() -> Command {
    let mut cmd = Command::new("checker")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Model-check the protocols of the classic distributed-systems papers")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("list")
                .about("List every registered model: paper, parameters, properties, seeded bugs")
                .arg(
                    Arg::new("json")
                        .long("json")
                        .action(ArgAction::SetTrue)
                        .help("Print JSON"),
                ),
        )
        // `augment_args` sets `about` from the args struct's doc comment: set ours after it.
        .subcommand(
            HistoryArgs::augment_args(Command::new("history"))
                .about(
                    "Check a recorded history: linearizability, serializability of transactions, \
                     causal consistency, or Elle's list-append isolation anomalies",
                )
                .long_about(
                    "Check a recorded history for linearizability, a transaction history \
                     (--model txn) for strict serializability, a history of sessions \
                     (--model causal) for causal consistency, or an Elle list-append history \
                     (--model list-append) for the anomalies its --level forbids: exit 0 it \
                     holds, 1 it does not, \
                     3 unknown within --timeout, 2 unreadable or malformed",
                ),
        )
        .subcommand(
            Command::new("merkle")
                .about("Certificate Transparency Merkle trees (RFC 6962/9162)")
                .subcommand_required(true)
                .subcommand(
                    Command::new("verify")
                        .about(
                            "Check our Merkle tree against a file of published vectors \
                             (the schema of rfc6962_published.json)",
                        )
                        .arg(Arg::new("file").required(true).value_name("FILE"))
                        .arg(
                            Arg::new("json")
                                .long("json")
                                .action(ArgAction::SetTrue)
                                .help("Print JSON"),
                        ),
                ),
        )
        .subcommand(
            Command::new("table")
                .about("Print the README's model table, generated from reports/")
                .arg(
                    Arg::new("write")
                        .long("write")
                        .action(ArgAction::SetTrue)
                        .help("Rewrite the table in README.md"),
                )
                .arg(
                    Arg::new("check")
                        .long("check")
                        .action(ArgAction::SetTrue)
                        .conflicts_with("write")
                        .help("Exit 1 if README.md's table is stale"),
                ),
        );
    for m in MODELS {
        cmd = cmd.subcommand(model_command(*m));
    }
    cmd
}

fn model_command(m: &'static dyn Protocol) -> Command {
    // `augment_args` sets `about` from the args struct's doc comment: set ours after it.
    let mut cmd = CheckArgs::augment_args(Command::new(m.name()))
        .about(m.summary())
        .long_about(format!("{} ({})", m.summary(), m.paper()));
    for p in m.params() {
        let (value_name, default) = match p.kind {
            ParamKind::Int { default, min, max } => (format!("{min}..={max}"), default.to_string()),
            ParamKind::Choice { choices } => (choices.join("|"), choices[0].to_string()),
        };
        cmd = cmd.arg(
            Arg::new(p.name)
                .long(p.name)
                .value_name(value_name)
                .help(format!("{} [default: {default}]", p.help))
                .value_parser(move |s: &str| p.parse(s)),
        );
    }
    let bugs = m.bugs();
    let names: Vec<&str> = bugs.iter().map(|b| b.name).collect();
    cmd.arg(
        Arg::new("bug")
            .long("bug")
            .value_name("NAME")
            .help(format!(
                "Seed a bug the checker must catch: {}",
                names.join(", ")
            ))
            .value_parser(move |s: &str| {
                bugs.iter()
                    .find(|b| b.name == s)
                    .map(|b| b.name)
                    .ok_or_else(|| match bugs.len() {
                        0 => "this model has no seeded bugs".to_string(),
                        _ => format!(
                            "expected one of {}",
                            bugs.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
                        ),
                    })
            }),
    )
}

fn usage_error(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_USAGE)
}

/// A clap error as an exit code: help and version exit 0, anything else prints one line.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            // clap's message up to its first blank line (the usage and tips follow),
            // folded into one line.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see --help)", message.join(" "));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // `checker bitcoin headers FILE` is a tool, not a model run: only the word `headers` after
    // `bitcoin` is special, so that `checker bitcoin ...` stays free for a model of that name.
    if args.get(1).map(String::as_str) == Some("bitcoin")
        && args.get(2).map(String::as_str) == Some("headers")
    {
        return bitcoin_headers(&args[3..]);
    }
    // An unknown model gets one line naming the valid ones (clap would print its usage instead).
    if let Some(first) = args.get(1) {
        let known = ["list", "history", "merkle", "table", "help"]
            .into_iter()
            .chain(MODELS.iter().map(|m| m.name()));
        if !first.starts_with('-') && !known.clone().any(|k| k == first) {
            let valid: Vec<&str> = known.filter(|k| *k != "help").collect();
            return usage_error(format!(
                "unknown model '{first}'; expected one of: {}",
                valid.join(", ")
            ));
        }
    }
    let matches = match cli().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => return clap_error(e),
    };
    match run(matches) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn run(matches: ArgMatches) -> Result<ExitCode> {
    let (name, sub) = matches.subcommand().expect("subcommand_required");
    match name {
        "list" => {
            list(sub.get_flag("json"));
            Ok(ExitCode::SUCCESS)
        }
        "table" => table(sub.get_flag("write"), sub.get_flag("check")),
        "history" => history(HistoryArgs::from_arg_matches(sub)?),
        "merkle" => {
            let (_, verify) = sub.subcommand().expect("subcommand_required");
            let file: &String = verify.get_one("file").expect("required");
            merkle_verify(file, verify.get_flag("json"))
        }
        _ => {
            let protocol = checker::find(name).expect("clap knows only registered models");
            check(protocol, sub)
        }
    }
}

fn check(protocol: &'static dyn Protocol, sub: &ArgMatches) -> Result<ExitCode> {
    let args = CheckArgs::from_arg_matches(sub)?;
    let defaults = Params::defaults(protocol.params());
    let bug: Option<&'static str> = sub.get_one::<&'static str>("bug").copied();
    // A seeded bug comes with the smallest configuration that shows it; flags override it.
    let mut params = match bug.and_then(|b| protocol.bugs().iter().find(|x| x.name == b)) {
        Some(b) => b.configure(protocol.params(), &defaults),
        None => defaults.clone(),
    };
    for p in protocol.params() {
        if let Some(v) = sub.get_one::<Value>(p.name) {
            params.set(p.name, *v);
        }
    }

    if args.symmetry && !protocol.has_symmetry() {
        return Ok(usage_error(format!(
            "model '{}' has no symmetry reduction; drop --symmetry",
            protocol.name()
        )));
    }
    let engine = match args.engine {
        EngineArg::Ours => Engine::Ours,
        EngineArg::Stateright => Engine::Stateright,
    };
    if args.fairness == Some(FairnessArg::Weak) && !protocol.has_fairness() {
        return Ok(usage_error(format!(
            "model '{}' declares no fairness classes; --fairness weak needs them",
            protocol.name()
        )));
    }
    if args.fairness.is_some() && engine == Engine::Stateright {
        return Ok(usage_error(
            "--fairness needs our engine: stateright's checks eventually on acyclic paths only",
        ));
    }
    if args.symmetry && args.bfs && engine == Engine::Stateright {
        return Ok(usage_error(
            "--symmetry with --engine stateright needs --dfs or --sim: stateright's BFS ignores symmetry",
        ));
    }
    if args.write_report && params != defaults {
        return Ok(usage_error(
            "--write-report records the default configuration; drop the model parameters",
        ));
    }

    if let Some(addr) = &args.explore {
        // A bad or busy address is a clear error, not a panic.
        let server = match checker::explorer::bind(addr) {
            Ok(server) => server,
            Err(e) => return Ok(usage_error(e)),
        };
        eprintln!("explorer: serving {} on http://{addr}/", protocol.name());
        protocol.explore(&params, bug, server);
        return Ok(ExitCode::SUCCESS);
    }

    let strategy = if args.sim {
        let seed = args.seed.unwrap_or_else(random_seed);
        eprintln!("simulation seed: {seed} (replay with --sim --seed {seed} --threads 1)");
        Strategy::Sim { seed }
    } else if args.dfs || (args.symmetry && engine == Engine::Stateright) {
        if args.symmetry && !args.dfs {
            eprintln!("--symmetry: checking with DFS (stateright's BFS ignores symmetry)");
        }
        Strategy::Dfs
    } else {
        Strategy::Bfs
    };
    let mut timeout = args.timeout.map(Duration::from_secs_f64);
    if args.sim && timeout.is_none() && args.max_states.is_none() {
        eprintln!("simulation: no --timeout or --max-states given, stopping after 10 s");
        timeout = Some(Duration::from_secs(10));
    }
    let opts = RunOptions {
        strategy,
        engine,
        threads: args.threads.map_or_else(
            || match (engine, strategy) {
                (Engine::Ours, Strategy::Bfs) => {
                    std::thread::available_parallelism().map_or(1, |n| n.get())
                }
                _ => 1,
            },
            |t| t as usize,
        ),
        // A baseline is made to the model's baseline depth (`--depth` conflicts with it).
        depth: match args.write_report {
            true => protocol.baseline_depth(),
            false => args.depth.map(|d| d as usize),
        },
        max_states: args.max_states.map(|n| n as usize),
        timeout,
        symmetry: args.symmetry,
        progress: !args.quiet,
        first_failure: args.first_failure,
        minimise: args.minimise,
        skip_liveness: args.skip_liveness,
        fairness: args.fairness.map(|f| match f {
            FairnessArg::Weak => Fairness::Weak,
            FairnessArg::None => Fairness::None,
        }),
    };
    let outcome = protocol.check(&params, bug, &opts);

    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print!(
            "{}",
            outcome.summary_with(
                &replay_command(protocol, &params, &defaults, bug),
                args.full_state
            )
        );
    }
    if let Some(file) = &args.html {
        let chosen = outcome
            .properties
            .iter()
            .find(|p| p.status == checker::Status::Violated && p.explorer_path.is_some())
            .or_else(|| {
                outcome
                    .properties
                    .iter()
                    .find(|p| p.explorer_path.is_some())
            });
        let Some(p) = chosen else {
            eprintln!("checker: --html: no counterexample or example to draw");
            return Ok(ExitCode::from(outcome.exit_code()));
        };
        let header = checker::trace_html::Header {
            model: protocol.name().to_string(),
            paper: protocol.paper().to_string(),
            params: outcome
                .params
                .iter()
                .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
                .collect::<Vec<_>>()
                .join(" "),
            bug: bug.map(str::to_string),
            property: p.name.clone(),
            expectation: p.expectation.clone(),
            evidence: p.evidence.clone(),
        };
        let path = p
            .explorer_path
            .as_deref()
            .and_then(|l| l.strip_prefix("#/steps/"))
            .unwrap_or_default();
        let page = protocol
            .trace_html(&params, bug, path, &header)
            .map_err(|e| anyhow::anyhow!("--html: {e}"))?;
        std::fs::write(file, page)
            .map_err(|e| anyhow::anyhow!("--html: cannot write {}: {e}", file.display()))?;
        eprintln!("wrote {} (\"{}\")", file.display(), p.name);
    }
    if args.write_report {
        let baseline = reports::Baseline::from_outcome(protocol, &outcome);
        let path = reports::write(&reports::reports_dir(), &baseline)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::from(outcome.exit_code()))
}

/// The command line that reproduces a run's configuration.
fn replay_command(
    protocol: &dyn Protocol,
    params: &Params,
    defaults: &Params,
    bug: Option<&str>,
) -> String {
    let mut cmd = format!("cargo run -p checker -- {}", protocol.name());
    for ((name, value), (_, default)) in params.iter().zip(defaults.iter()) {
        if value != default {
            cmd.push_str(&format!(" --{name} {value}"));
        }
    }
    if let Some(bug) = bug {
        cmd.push_str(&format!(" --bug {bug}"));
    }
    cmd
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS; the time mixes in a per-run value.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

fn list(json: bool) {
    if json {
        let models: Vec<serde_json::Value> = MODELS
            .iter()
            .map(|m| {
                let params: Vec<serde_json::Value> = m
                    .params()
                    .iter()
                    .map(|p| {
                        let mut v = serde_json::json!({
                            "name": p.name,
                            "help": p.help,
                            "default": checker::outcome::value_json(p.default_value()),
                        });
                        match p.kind {
                            ParamKind::Int { min, max, .. } => {
                                v["min"] = min.into();
                                v["max"] = max.into();
                            }
                            ParamKind::Choice { choices } => {
                                v["choices"] = choices.to_vec().into();
                            }
                        }
                        v
                    })
                    .collect();
                serde_json::json!({
                    "name": m.name(),
                    "paper": m.paper(),
                    "summary": m.summary(),
                    "params": params,
                    "properties": m.properties().iter().map(|(name, e)| serde_json::json!({
                        "name": name, "expectation": e,
                    })).collect::<Vec<_>>(),
                    "bugs": m.bugs().iter().map(|b| serde_json::json!({
                        "name": b.name, "breaks": b.breaks, "help": b.help,
                        "params": b.params.iter().map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect::<BTreeMap<_, _>>(),
                    })).collect::<Vec<_>>(),
                    "symmetry": m.has_symmetry(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&models).expect("JSON values serialise")
        );
        return;
    }
    for (i, m) in MODELS.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}  {}", m.name(), m.summary());
        println!("  paper: {}", m.paper());
        for p in m.params() {
            match p.kind {
                ParamKind::Int { default, min, max } => println!(
                    "  --{} N  {} (default {default}, {min}..={max})",
                    p.name, p.help
                ),
                ParamKind::Choice { choices } => println!(
                    "  --{} {}  {} (default {})",
                    p.name,
                    choices.join("|"),
                    p.help,
                    choices[0]
                ),
            }
        }
        for (name, e) in m.properties() {
            println!("  {e:<10} {name}");
        }
        for b in m.bugs() {
            println!("  --bug {}  {}", b.name, b.help);
            println!("      breaks {}", quoted(b.breaks));
            if !b.params.is_empty() {
                let flags: Vec<String> =
                    b.params.iter().map(|(k, v)| format!("--{k} {v}")).collect();
                println!("      shown with {}", flags.join(" "));
            }
        }
        if m.has_symmetry() {
            println!("  --symmetry supported");
        }
    }
}

/// `"a", "b" and "c"`.
fn quoted(names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn history(args: HistoryArgs) -> Result<ExitCode> {
    let budget = args.timeout.map(Duration::from_secs_f64);
    match check_file(
        args.model,
        args.format,
        &args.file,
        budget,
        args.level.as_deref(),
        args.initial,
    ) {
        Ok(report) => {
            if args.json {
                // With the process's peak resident memory (Linux), parse and check included.
                let mut json = serde_json::to_value(&report)?;
                json["peak_rss_kib"] = properties::peak_rss_kib().into();
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                print!("{}", report.summary());
            }
            Ok(ExitCode::from(report.exit_code()))
        }
        Err(
            e @ (HistoryError::Usage(_)
            | HistoryError::Read { .. }
            | HistoryError::Malformed { .. }),
        ) => Ok(usage_error(e)),
    }
}

fn merkle_verify(file: &str, json: bool) -> Result<ExitCode> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return Ok(usage_error(format!("cannot read {file}: {e}"))),
    };
    let report = match checker::merkle_vectors::verify_vectors(file, &text) {
        Ok(report) => report,
        Err(reason) => return Ok(usage_error(format!("{file}: {reason}"))),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
    }
    Ok(ExitCode::from(if report.failed == 0 {
        EXIT_OK
    } else {
        EXIT_UNEXPECTED
    }))
}

/// `checker bitcoin headers FILE [--chain main|regtest] [--height N] [--json]`.
fn bitcoin_headers(rest: &[String]) -> ExitCode {
    use checker::bitcoin_headers::{chain_by_name, check_headers, Options};
    let cmd = Command::new("checker bitcoin headers")
        .about(
            "Validate a file of Bitcoin block headers (hex, one a line; `fork:` lines are a \
             competing branch): linkage, proof of work and the difficulty rules from the first \
             header; print the most-work tip. Exit 0 valid, 1 an invalid header, 2 usage or IO",
        )
        .arg(Arg::new("file").required(true).value_name("FILE"))
        .arg(
            Arg::new("chain")
                .long("chain")
                .value_name("main|regtest")
                .default_value("main")
                .value_parser(["main", "regtest"])
                .help("The chain's proof-of-work limit and difficulty rules"),
        )
        .arg(
            Arg::new("height")
                .long("height")
                .value_name("N")
                .default_value("0")
                .value_parser(clap::value_parser!(u32))
                .help("The first header's height, which places the 2016-block retargets"),
        )
        .arg(
            Arg::new("json")
                .long("json")
                .action(ArgAction::SetTrue)
                .help("Print JSON"),
        );
    let argv = std::iter::once("checker bitcoin headers".to_string()).chain(rest.iter().cloned());
    let m = match cmd.try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => return clap_error(e),
    };
    let file: &String = m.get_one("file").expect("required");
    let chain: &String = m.get_one("chain").expect("defaulted");
    let opts = Options {
        chain: chain_by_name(chain).expect("clap checked the name"),
        first_height: *m.get_one::<u32>("height").expect("defaulted") as i64,
    };
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return usage_error(format!("cannot read {file}: {e}")),
    };
    let json = m.get_flag("json");
    match check_headers(&text, &opts) {
        Ok(summary) => {
            if json {
                let mut v = serde_json::to_value(&summary).expect("serializable");
                v["valid"] = true.into();
                println!("{v}");
            } else {
                print!("{}", summary.text());
            }
            ExitCode::from(EXIT_OK)
        }
        Err(invalid) if invalid.line == 0 => usage_error(format!("{file}: {}", invalid.reason)),
        Err(invalid) => {
            if json {
                let mut v = serde_json::to_value(&invalid).expect("serializable");
                v["valid"] = false.into();
                println!("{v}");
            }
            eprintln!("{file}: {invalid}");
            ExitCode::from(EXIT_UNEXPECTED)
        }
    }
}

fn table(write: bool, check: bool) -> Result<ExitCode> {
    let table = reports::table(MODELS, &reports::reports_dir())?;
    if !write && !check {
        print!("{table}");
        return Ok(ExitCode::SUCCESS);
    }
    let path = reports::readme_path();
    let readme = std::fs::read_to_string(&path)?;
    let updated = reports::splice_table(&readme, &table)?;
    if check {
        if updated != readme {
            eprintln!(
                "README.md's model table is stale: run `cargo run -p checker -- table --write`"
            );
            return Ok(ExitCode::from(EXIT_UNEXPECTED));
        }
        return Ok(ExitCode::from(EXIT_OK));
    }
    if updated != readme {
        std::fs::write(&path, updated)?;
        eprintln!("updated {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
