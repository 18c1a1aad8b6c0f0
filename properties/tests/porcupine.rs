//! Every history Porcupine ships with its tests, checked against the verdict Porcupine's own tests
//! assert (`../shared/data/linearizability/porcupine/verdicts.tsv`): Jepsen's etcd compare-and-set
//! register runs and the get/put/append KV histories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use properties::linearizability::formats::{parse_jepsen, parse_porcupine_kv};
use properties::linearizability::{check, CasRegister, KvStore, Verdict};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/linearizability/porcupine")
}

#[test]
fn every_porcupine_verdict_is_reproduced() {
    let verdicts = std::fs::read_to_string(data().join("verdicts.tsv")).expect("verdicts.tsv");
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for line in verdicts.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, model, expected) = (cols[0], cols[1], cols[2] == "true");
        let text = std::fs::read_to_string(data().join(file)).expect(file);
        let budget = Some(Duration::from_secs(60));
        let verdict = match model {
            "etcd_cas_register" => check(
                &CasRegister,
                &parse_jepsen(&text, true).expect(file),
                budget,
            ),
            "kv_get_put_append" => {
                check(&KvStore, &parse_porcupine_kv(&text).expect(file).0, budget)
            }
            other => panic!("unknown model {other} in verdicts.tsv"),
        };
        let got = match verdict {
            Verdict::Linearizable => true,
            Verdict::NotLinearizable(ref failure) => {
                assert!(
                    !failure.unplaced.is_empty(),
                    "{file}: a failure names what it could not place"
                );
                false
            }
            Verdict::Unknown => panic!("{file}: unknown within the budget"),
        };
        if got != expected {
            mismatches.push(format!("{file}: expected {expected}, got {got}"));
        }
        checked += 1;
    }
    assert_eq!(checked, 56, "50 etcd histories and 6 KV histories");
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}
