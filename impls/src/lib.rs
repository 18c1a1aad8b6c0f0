//! The TCP runtime that drives the same stateright actors the models check, and the runtimes of the
//! data-processing papers built on it.
//!
//! - [`frame`]: length-prefixed frames, with a size limit, over any byte stream.
//! - [`config`]: a cluster file (TOML) mapping actor ids to socket addresses.
//! - [`storage`]: an actor's `Save`d storage, and [`storage::write_atomic`], the one way files are
//!   replaced here (temp file, fsync, rename, directory fsync).
//! - [`rng`]: the seeded random generator of the runtime, the Jepsen-style test and the load
//!   generator; a run logs its seed so that it can be replayed.
//! - [`node`]: runs one actor: its messages over TCP, its timers with real durations, its storage.
//! - [`raft`]: the Raft KV service: the model's servers over TCP, a client, a local cluster of
//!   processes, and a Jepsen-style test with fault injection.
//! - [`mapreduce`]: the MapReduce runtime: the model's coordinator over TCP, real workers, apps.

pub mod config;
pub mod frame;
pub mod mapreduce;
pub mod node;
pub mod raft;
pub mod rng;
pub mod storage;

/// The command line of a binary, or the exit code to leave with: 0 after `--help` or `--version`
/// (printed), 2 after a usage error (explained on stderr).
pub fn parse_args<T: clap::Parser>() -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|e| {
        let _ = e.print();
        std::process::ExitCode::from(if e.use_stderr() { 2 } else { 0 })
    })
}
