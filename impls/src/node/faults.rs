//! Injected faults: what an administrator connection may set ([`Faults`]), how a node serves it,
//! and [`set_faults`], the administrator's side.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::transport::{encode, Role, Wire};
use super::Shared;
use crate::frame::{read_frame, write_frame};
use crate::tls::{Stream, Tls, Who};

/// The faults a node injects, as set by an administrator. The default is none.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Peers whose messages are dropped, to and from: one side of a partition.
    pub blocked: Vec<usize>,
    /// The probability that a message from a peer is dropped.
    pub loss: f64,
    /// Messages from peers are held for a uniformly random time up to this many milliseconds.
    pub max_delay_ms: u64,
    /// How many percent fast the node's clock runs (negative: slow): a timer armed for `d`
    /// fires after `d * 100 / (100 + clock_skew_percent)` of real time (clock drift, against
    /// which Raft's leases allow a bound, thesis §6.4.1). Between -90 and 900.
    #[serde(default)]
    pub clock_skew_percent: i32,
}

impl Faults {
    /// Whether the faults are within their ranges.
    pub fn valid(&self) -> bool {
        (0.0..=1.0).contains(&self.loss) && (-90..=900).contains(&self.clock_skew_percent)
    }
}

/// Serves an administrator: each `Admin` frame replaces the node's faults and is acknowledged;
/// a `Query` is answered with the node's role.
pub(super) fn admin<M>(
    shared: &Shared<M>,
    reader: &mut BufReader<Stream>,
    writer: &Stream,
    from: SocketAddr,
    number: u64,
) where
    M: Serialize + DeserializeOwned,
{
    loop {
        let Ok(Some(frame)) = read_frame(reader, shared.opts.max_frame) else {
            return;
        };
        match serde_json::from_slice::<Wire<M>>(&frame) {
            Ok(Wire::Admin(faults)) => {
                if faults.valid() {
                    tracing::info!(?faults, "faults set");
                    *shared.faults.lock().expect("faults lock") = faults;
                } else {
                    tracing::error!(
                        %from,
                        loss = faults.loss,
                        clock_skew_percent = faults.clock_skew_percent,
                        "loss rate outside [0, 1] or clock skew outside [-90, 900]: closed"
                    );
                    return;
                }
                if write_frame(&mut &*writer, &encode(&Wire::<M>::Ack)).is_err() {
                    return;
                }
            }
            Ok(Wire::Query) => {
                let status = shared.status.lock().expect("status lock").clone();
                if write_frame(&mut &*writer, &encode(&Wire::<M>::Status(status))).is_err() {
                    return;
                }
            }
            Ok(Wire::CountQuery) => {
                let mut counts: BTreeMap<String, u64> = {
                    let counts = shared.counts.lock().expect("counts lock");
                    counts.iter().map(|(k, n)| (k.to_string(), *n)).collect()
                };
                let bytes = shared
                    .bytes_to_peers
                    .load(std::sync::atomic::Ordering::Relaxed);
                if bytes > 0 {
                    counts.insert(super::BYTES_TO_PEERS.to_string(), bytes);
                }
                if write_frame(&mut &*writer, &encode(&Wire::<M>::Counted(counts))).is_err() {
                    return;
                }
            }
            Ok(Wire::Change { server, add }) => {
                tracing::info!(server, add, "configuration change asked");
                let answer = super::transport::change(shared, server, add, number);
                if write_frame(&mut &*writer, &encode(&answer)).is_err() {
                    return;
                }
            }
            _ => {
                tracing::error!(%from, "bad administrator frame: connection closed");
                return;
            }
        }
    }
}

/// The node an administrator speaks to: its id (named by its certificate), its address, and the
/// administrator's certificate (`None`: plaintext).
#[derive(Clone, Copy, Debug)]
pub struct AdminTarget<'a> {
    pub tls: Option<&'a Tls>,
    pub node: usize,
    pub addr: SocketAddr,
}

/// Opens an administrator connection to `to`, sends `request`, and returns the node's first
/// answer after its hello.
fn admin_request(to: AdminTarget, request: &Wire<()>, what: &str) -> std::io::Result<Wire<()>> {
    admin_request_waiting(to, request, what, Duration::from_secs(2))
}

/// [`admin_request`], waiting up to `wait` for the answer.
fn admin_request_waiting(
    to: AdminTarget,
    request: &Wire<()>,
    what: &str,
    wait: Duration,
) -> std::io::Result<Wire<()>> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let stream = crate::tls::connect(to.tls, to.addr, Duration::from_secs(1), Who::Node(to.node))?;
    stream.tcp().set_read_timeout(Some(wait))?;
    let hello = encode(&Wire::<()>::Hello {
        id: 0,
        role: Role::Admin,
    });
    write_frame(&mut &stream, &hello)?;
    write_frame(&mut &stream, &encode(request))?;
    let mut r = BufReader::new(stream);
    loop {
        let frame = read_frame(&mut r, 1 << 16)
            .map_err(|e| bad(e.to_string()))?
            .ok_or_else(|| bad(format!("connection closed ({what} refused: no --admin?)")))?;
        match serde_json::from_slice::<Wire<()>>(&frame) {
            Ok(Wire::Hello { .. }) => {}
            Ok(answer) => return Ok(answer),
            Err(e) => return Err(bad(format!("undecodable answer to a {what}: {e}"))),
        }
    }
}

fn unexpected(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unexpected answer to a {what}"),
    )
}

/// What a node answered an administrator's configuration change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeAnswer {
    /// Committed.
    Done,
    /// Not done here: the node does not lead (or did not finish in time), with the leader it
    /// knows of.
    NotDone { leader_hint: Option<usize> },
    /// The protocol has no configuration changes.
    Unsupported,
}

/// Asks the node `to` to add (`add`) or remove `server` from the configuration, and waits for
/// its answer.
pub fn change_membership(
    to: AdminTarget,
    server: usize,
    add: bool,
) -> std::io::Result<ChangeAnswer> {
    let wait = super::transport::CHANGE_WAIT + Duration::from_secs(1);
    match admin_request_waiting(
        to,
        &Wire::Change { server, add },
        "configuration change",
        wait,
    )? {
        Wire::Changed { ok: true, .. } => Ok(ChangeAnswer::Done),
        Wire::Changed {
            unsupported: true, ..
        } => Ok(ChangeAnswer::Unsupported),
        Wire::Changed { leader_hint, .. } => Ok(ChangeAnswer::NotDone { leader_hint }),
        _ => Err(unexpected("configuration change")),
    }
}

/// Sets the faults of the node listening at `addr`, and waits for its acknowledgement.
pub fn set_faults(to: AdminTarget, faults: &Faults) -> std::io::Result<()> {
    match admin_request(to, &Wire::Admin(faults.clone()), "fault command")? {
        Wire::Ack => Ok(()),
        _ => Err(unexpected("fault command")),
    }
}

/// Asks the node listening at `addr` how many messages of each kind it has handled since it
/// started (empty for a node whose service names no kinds).
pub fn query_counts(to: AdminTarget) -> std::io::Result<BTreeMap<String, u64>> {
    match admin_request(to, &Wire::CountQuery, "count query")? {
        Wire::Counted(counts) => Ok(counts),
        _ => Err(unexpected("count query")),
    }
}

/// Asks the node listening at `addr` for its role (its service's description, `leader of term
/// 3`); `None` for a node whose service describes none.
pub fn query_status(to: AdminTarget) -> std::io::Result<Option<String>> {
    match admin_request(to, &Wire::Query, "status query")? {
        Wire::Status(s) => Ok(s),
        _ => Err(unexpected("status query")),
    }
}
