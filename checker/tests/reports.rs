//! Every registered model's default configuration against its checked-in baseline in `reports/`,
//! and the README's model table against the baselines. A failure here means a state count or a
//! verdict changed: look at why before running `checker <model> --write-report`.

use checker::reports::{self, Baseline};
use checker::MODELS;

/// The largest default configuration (raft: 2.9M states), checked in a test of its own so that
/// it runs beside the others on a second core.
const LARGEST: &str = "raft";

#[test]
fn every_model_matches_its_baseline() {
    for m in MODELS.iter().filter(|m| m.name() != LARGEST) {
        matches_its_baseline(*m);
    }
}

#[test]
fn the_largest_model_matches_its_baseline() {
    matches_its_baseline(checker::find(LARGEST).expect("registered"));
}

fn matches_its_baseline(m: &dyn checker::Protocol) {
    let dir = reports::reports_dir();
    let expected = reports::read(&dir, m.name()).unwrap_or_else(|e| {
        panic!(
            "{e:#}: run `cargo run -p checker -- {} --write-report`",
            m.name()
        )
    });
    let outcome = reports::run_default(m);
    let actual = Baseline::from_outcome(m, &outcome);
    assert_eq!(
        actual,
        expected,
        "{} differs from reports/{}.json",
        m.name(),
        m.name()
    );
    assert!(
        actual.as_expected(),
        "{}: default configuration must pass",
        m.name()
    );
}

#[test]
fn every_baseline_belongs_to_a_registered_model() {
    for entry in std::fs::read_dir(reports::reports_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            assert!(
                checker::find(stem).is_some(),
                "reports/{stem}.json has no registered model"
            );
        }
    }
}

#[test]
fn readme_table_is_generated_from_the_baselines() {
    let table = reports::table(MODELS, &reports::reports_dir()).unwrap();
    let readme = std::fs::read_to_string(reports::readme_path()).unwrap();
    let updated = reports::splice_table(&readme, &table).unwrap();
    assert!(
        updated == readme,
        "README.md's model table is stale: run `cargo run -p checker -- table --write`"
    );
}
