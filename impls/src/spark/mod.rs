//! Spark's runtime (Zaharia et al., NSDI 2012): resilient distributed datasets ([`rdd`]), run
//! in one process or on worker processes whose scheduler is the model's driver actor
//! ([`cluster`]); the programs `spark run` runs ([`apps`]): PageRank ([`pagerank`]) and
//! MapReduce's apps on RDDs ([`run_app`]). The scheduler follows the rules `checker spark`
//! checks: stages cut at shuffles, lost map outputs resubmitted, lost cached partitions
//! recomputed from lineage.

pub mod apps;
pub mod cluster;
pub mod pagerank;
pub mod rdd;

use std::path::PathBuf;
use std::sync::Arc;

use crate::mapreduce::apps::App;
use rdd::{Context, Rdd};

/// A MapReduce application (`mr`'s apps) on RDDs: one partition per input file (its text,
/// read from stable storage), `flat_map` to the app's pairs, `group_by_key` into `reduces`
/// partitions, then the app's reduce: `(key, value)` pairs, sorted by key.
pub fn run_app(
    ctx: &Context,
    app: Arc<dyn App>,
    inputs: &[PathBuf],
    reduces: usize,
) -> std::io::Result<Vec<(String, String)>> {
    for input in inputs {
        // Missing inputs are an error here, not a failed task later.
        std::fs::metadata(input)?;
    }
    let files: Arc<Vec<PathBuf>> = Arc::new(inputs.to_vec());
    let texts: Rdd<(String, String)> = ctx.source(inputs.len(), move |p| {
        let path = &files[p];
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("input")
            .to_string();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        vec![(name, text)]
    });
    let map_app = app.clone();
    let pairs = texts.flat_map(move |(name, text)| {
        let mut out = Vec::new();
        map_app.map(&name, &text, &mut |k, v| {
            out.push((k.to_string(), v.to_string()))
        });
        out
    });
    let mut out = pairs
        .group_by_key(reduces.max(1))
        .map(move |(k, vs)| {
            let v = app.reduce(&k, &vs);
            (k, v)
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_count_on_rdds_equals_mr_sequential_with_and_without_a_lost_worker() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/gutenberg");
        let inputs = vec![
            dir.join("pg-being_ernest.txt"),
            dir.join("pg-frankenstein.txt"),
        ];
        let out = std::env::temp_dir().join(format!("spark-wc-{}", std::process::id()));
        crate::mapreduce::sequential(&crate::mapreduce::apps::WordCount, &inputs, &out).unwrap();
        let want: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        std::fs::remove_file(&out).unwrap();
        for kill in [None, Some(2)] {
            let ctx = Context::new(2);
            if let Some(after) = kill {
                ctx.kill_after(0, after);
            }
            let got: Vec<String> = run_app(
                &ctx,
                Arc::new(crate::mapreduce::apps::WordCount),
                &inputs,
                3,
            )
            .unwrap()
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
            assert_eq!(got.len(), want.len());
            assert!(got == want, "word count on RDDs differs from mr sequential");
            if kill.is_some() {
                assert!(ctx.stats().resubmitted > 0, "{:?}", ctx.stats());
            }
        }
    }
}
