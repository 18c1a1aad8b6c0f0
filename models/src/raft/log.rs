//! A server's log with its snapshot (Raft §5.3, §7): entries after the snapshot's last included
//! index, numbered from 1 as in the paper.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stateright::actor::Id;

use super::kv::{Command, KvMachine};

/// A term number.
pub type Term = u64;
/// A log index; the first entry is 1, 0 means "before the first entry".
pub type Index = u64;

/// A log entry: what it carries and the term in which a leader appended it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub kind: EntryKind,
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EntryKind {
    /// A client's command for the state machine.
    Command(Command),
    /// The blank entry a leader appends at the start of its term (§8), so that it commits an
    /// entry of its own term, and with it every earlier one, without waiting for a client.
    Noop,
    /// A configuration: the servers of the cluster, in order (Ongaro's thesis §4.1). A server
    /// uses the latest configuration in its log, committed or not; a leader appends one that
    /// adds or removes one server to the one before.
    Config(Vec<Id>),
}

impl Entry {
    /// The client's command, if the entry carries one.
    pub fn command(&self) -> Option<&Command> {
        match &self.kind {
            EntryKind::Command(c) => Some(c),
            EntryKind::Noop | EntryKind::Config(_) => None,
        }
    }

    /// The configuration, if the entry carries one.
    pub fn config(&self) -> Option<&Vec<Id>> {
        match &self.kind {
            EntryKind::Config(c) => Some(c),
            _ => None,
        }
    }

    /// The entry in a model's view: `Put x=1`, `no-op`.
    pub fn brief(&self) -> String {
        match &self.kind {
            EntryKind::Command(c) => c.op.brief(),
            EntryKind::Noop => "no-op".into(),
            EntryKind::Config(servers) => format!("config {}", show_servers(servers)),
        }
    }
}

/// Servers as the model's views show them: `{S0,S1,S2}`.
pub fn show_servers(servers: &[Id]) -> String {
    let names: Vec<String> = servers
        .iter()
        .map(|s| format!("S{}", usize::from(*s)))
        .collect();
    format!("{{{}}}", names.join(","))
}

/// A snapshot (§7, Figure 12): the state machine after applying every entry up to
/// `last_included_index`, that entry's term, and the latest configuration up to it (thesis
/// §5.1: a snapshot keeps the configuration, since the entry that held it is discarded).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_included_index: Index,
    pub last_included_term: Term,
    /// Shared: the log, its saved copies and InstallSnapshot messages hold the same machine.
    pub machine: Arc<KvMachine>,
    /// `None`: no configuration entry up to `last_included_index` (the initial configuration).
    #[serde(default)]
    pub config: Option<Vec<Id>>,
}

/// The log: a snapshot, then the entries that follow it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Log {
    pub snapshot: Snapshot,
    pub entries: Vec<Entry>,
}

impl Log {
    /// The snapshot's last included index: entries up to it are compacted away.
    pub fn first_index(&self) -> Index {
        self.snapshot.last_included_index
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.last_included_index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.last_included_term, |e| e.term)
    }

    /// The term of the entry at `index`: known for the snapshot's last included entry and the
    /// entries after it, unknown (`None`) inside the snapshot and past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.first_index() {
            Some(self.snapshot.last_included_term)
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The entry at `index`, if it is after the snapshot and not past the end.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let first = self.first_index();
        if index <= first {
            return None;
        }
        self.entries.get((index - first - 1) as usize)
    }

    /// The entries from `index` (after the snapshot) to the end.
    pub fn entries_from(&self, index: Index) -> &[Entry] {
        let start = index.saturating_sub(self.first_index() + 1) as usize;
        &self.entries[start.min(self.entries.len())..]
    }

    /// Deletes the entry at `index` (after the snapshot) and all that follow it.
    pub fn truncate_from(&mut self, index: Index) {
        let keep = index.saturating_sub(self.first_index() + 1) as usize;
        self.entries.truncate(keep);
    }

    /// Compacts the entries up to `index` into a snapshot holding `machine` and the
    /// configuration in effect at `index`.
    pub fn compact(&mut self, index: Index, machine: KvMachine) {
        let term = self
            .term_at(index)
            .expect("compacting to an index the log holds");
        let drop = (index - self.first_index()) as usize;
        let config = self.entries[..drop]
            .iter()
            .rev()
            .find_map(Entry::config)
            .cloned()
            .or_else(|| self.snapshot.config.take());
        self.entries.drain(..drop);
        self.snapshot = Snapshot {
            last_included_index: index,
            last_included_term: term,
            machine: Arc::new(machine),
            config,
        };
    }

    /// The latest configuration in the log (its entries, then its snapshot), with the index
    /// where it was appended (the snapshot's last included index for the snapshot's); `None` if
    /// the log holds none (the initial configuration is in effect).
    pub fn latest_config(&self) -> Option<(Index, &Vec<Id>)> {
        let first = self.first_index();
        self.entries
            .iter()
            .enumerate()
            .rev()
            .find_map(|(k, e)| e.config().map(|c| (first + 1 + k as Index, c)))
            .or_else(|| self.snapshot.config.as_ref().map(|c| (first, c)))
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up-to-date as this
    /// one (§5.4.1: compare the last terms, then the lengths).
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::kv::KvOp;
    use stateright::actor::Id;

    fn entry(term: Term, seq: u64) -> Entry {
        Entry {
            term,
            kind: EntryKind::Command(Command {
                client: Id::from(9),
                seq,
                op: KvOp::Get("x".into()),
            }),
        }
    }

    #[test]
    fn indices_survive_compaction() {
        let mut log = Log {
            entries: vec![entry(1, 1), entry(1, 2), entry(2, 3)],
            ..Log::default()
        };
        assert_eq!((log.last_index(), log.last_term()), (3, 2));
        assert_eq!(log.term_at(0), Some(0));
        log.compact(2, KvMachine::default());
        assert_eq!(log.first_index(), 2);
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
        assert_eq!(log.entry(3).unwrap().command().unwrap().seq, 3);
        assert_eq!(log.entries_from(1).len(), 1);
        assert_eq!(log.entries_from(4).len(), 0);
        log.truncate_from(3);
        assert_eq!((log.last_index(), log.last_term()), (2, 1));
    }

    #[test]
    fn the_latest_configuration_survives_compaction() {
        let config = |ids: &[usize]| Entry {
            term: 1,
            kind: EntryKind::Config(ids.iter().map(|i| Id::from(*i)).collect()),
        };
        let mut log = Log {
            entries: vec![
                config(&[0, 1]),
                entry(1, 1),
                config(&[0, 1, 2]),
                entry(1, 2),
            ],
            ..Log::default()
        };
        assert_eq!(log.latest_config().map(|(i, c)| (i, c.len())), Some((3, 3)));
        // Compacted up to the first configuration only: the later one is still an entry.
        log.compact(2, KvMachine::default());
        assert_eq!(log.snapshot.config.as_ref().map(Vec::len), Some(2));
        assert_eq!(log.latest_config().map(|(i, c)| (i, c.len())), Some((3, 3)));
        // Compacted past it: the snapshot keeps it, at its last included index.
        log.compact(4, KvMachine::default());
        assert!(log.entries.is_empty());
        assert_eq!(log.latest_config().map(|(i, c)| (i, c.len())), Some((4, 3)));
        log.truncate_from(5);
        assert_eq!(Log::default().latest_config(), None);
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        let log = Log {
            entries: vec![entry(1, 1), entry(2, 2)],
            ..Log::default()
        };
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(5, 1));
        assert!(log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(1, 2));
    }
}
