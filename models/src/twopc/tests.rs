use stateright::{Checker, Model};

use super::model::TwoPcCfg;
use super::actor::TwoPcBug;

#[test]
fn explore_default() {
    let d = TwoPcCfg::default();
    for cfg in [TwoPcCfg { clients: 3, txns: 2, ..d.clone() }, TwoPcCfg { clients: 2, txns: 2, crashes: 2, ..d.clone() }, TwoPcCfg { clients: 3, crashes: 2, ..d.clone() },
      TwoPcCfg { crashes: 0, bug: Some(TwoPcBug::EarlyUnlock), ..d.clone() },
      TwoPcCfg { clients: 1, bug: Some(TwoPcBug::ForgetVote), ..d.clone() },
      TwoPcCfg { clients: 1, bug: Some(TwoPcBug::CoordinatorCommitsOnPartialVotes), ..d.clone() },
    ] {
        let t = std::time::Instant::now();
        let m = cfg.clone().into_model();
        let checker = m.checker().spawn_bfs().join();
        eprintln!("{cfg:?}: unique {} generated {} in {:?}", checker.unique_state_count(), checker.state_count(), t.elapsed());
        for (name, path) in checker.discoveries() {
            let actions = path.into_actions();
            eprintln!("{name}: {} steps", actions.len());
            if cfg.bug.is_some() && !name.contains("ometimes") && (name.contains("atomic") || name.contains("serializ") || name.contains("waits")) { for a in actions { eprintln!("   {}", checker.model().format_action(&a)); } }
        }
    }
}
