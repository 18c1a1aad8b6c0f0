//! The Knossos compare-and-set register histories in `../shared/data/jepsen/` (EDN), checked
//! against the verdicts their source gives: `memstress3-9.edn` is linearizable, `cas-failure.edn`
//! is not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use properties::linearizability::formats::parse_knossos_edn;
use properties::linearizability::{check, CasRegister, Verdict};

fn data(file: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/jepsen");
    std::fs::read_to_string(path.join(file)).expect(file)
}

fn verdict(file: &str, initial: Option<i64>) -> Verdict {
    let h = parse_knossos_edn(&data(file), true, initial).expect(file);
    check(&CasRegister, &h, Some(Duration::from_secs(60)))
}

#[test]
fn knossos_histories_get_their_verdicts() {
    assert_eq!(verdict("memstress3-9.edn", None), Verdict::Linearizable);
    let Verdict::NotLinearizable(failure) = verdict("cas-failure.edn", None) else {
        panic!("cas-failure.edn must not be linearizable");
    };
    assert!(!failure.unplaced.is_empty());
}

#[test]
fn an_initial_value_is_written_before_everything() {
    let text = "[{:process 0, :type :invoke, :f :read, :value nil}\n\
                 {:process 0, :type :ok, :f :read, :value 0}]";
    let h = |initial| parse_knossos_edn(text, true, initial).unwrap();
    assert!(matches!(
        check(&CasRegister, &h(None), None),
        Verdict::NotLinearizable(_)
    ));
    assert_eq!(
        check(&CasRegister, &h(Some(0)), None),
        Verdict::Linearizable
    );
    // Nemesis ops are left out; a malformed op names its line.
    let nemesis = "[{:process :nemesis, :type :info, :f :start, :value nil}]";
    assert_eq!(parse_knossos_edn(nemesis, true, None).unwrap().len(), 0);
    let bad = "[{:process 0, :type :invoke, :f :read}\n {:process 0, :type :ok, :f :frob}]";
    assert_eq!(parse_knossos_edn(bad, true, None).unwrap_err().line, 2);
}
