//! A local cluster of `node <protocol>` processes on 127.0.0.1: started, killed (`kill -9`),
//! restarted on their data directories, given faults, and stopped. Any registered protocol
//! ([`crate::service`]) runs in it; `cluster`, `jepsen` and the tests use it.
//!
//! Its directory holds `cluster.toml`, each node's data directory `node-N/`, log `node-N.log` and
//! pid file `node-N.pid` (for `cluster status`, `cluster kill`, `cluster start` from another
//! shell), and `node-N.down` while node N is meant to stay down. Unless the cluster is plaintext
//! ([`Cluster::start_plain`]), it also holds the cluster's certificate authority `ca.pem` and a
//! certificate and key for each node, for clients and for administrators ([`crate::tls`]).

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use stateright::actor::Id;

use crate::config::ClusterConfig;
use crate::node::{AdminTarget, Faults};
use crate::tls::{Tls, Who};

use crate::service::Tuning;
use crate::supervisor::{MakeCommand, Supervisor};

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The registered protocol the nodes run (`node PROTOCOL`).
    pub protocol: String,
    /// The `node` binary.
    pub node_bin: PathBuf,
    /// Holds `cluster.toml`, each node's data directory `node-N/` and log `node-N.log`.
    pub dir: PathBuf,
    pub nodes: usize,
    /// The first port; `None` picks free ports.
    pub base_port: Option<u16>,
    pub tuning: Tuning,
    /// A seeded bug every node runs with.
    pub bug: Option<&'static str>,
    /// The nodes' random seed (each node forks its own from it); `None`: their own.
    pub seed: Option<u64>,
    /// Each node's capacity, messages a second (`node --capacity`); `None`: unlimited.
    pub capacity: Option<u32>,
}

/// A running cluster. Dropping it kills its nodes.
pub struct Cluster {
    spec: ClusterSpec,
    pub config: ClusterConfig,
    pub config_path: PathBuf,
    /// Node `i` is process `i`.
    procs: Supervisor,
    /// The administrator's certificate (`None`: plaintext), for fault commands and queries.
    admin: Option<std::sync::Arc<Tls>>,
}

/// The `node` binary next to the running executable (where cargo puts the workspace's binaries).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test binaries live one level down, in deps/.
    let candidates = [dir.join(name), dir.parent().unwrap_or(&dir).join(name)];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| candidates[0].clone())
}

impl Cluster {
    /// Makes the certificates (or keeps those in the directory), writes the cluster file and
    /// starts every node: their connections are mutual TLS.
    pub fn start(spec: ClusterSpec) -> std::io::Result<Cluster> {
        Self::start_with(spec, true)
    }

    /// [`Cluster::start`] in plaintext (`cluster --insecure`): any process that reaches a port
    /// may speak for a node, a client or an administrator. For reading traffic, and for
    /// measuring what TLS costs.
    pub fn start_plain(spec: ClusterSpec) -> std::io::Result<Cluster> {
        Self::start_with(spec, false)
    }

    fn start_with(spec: ClusterSpec, tls: bool) -> std::io::Result<Cluster> {
        if spec.nodes == 0 {
            return Err(std::io::Error::other("a cluster needs at least one node"));
        }
        if !spec.node_bin.exists() {
            return Err(std::io::Error::other(format!(
                "node binary {} not found (build it with `cargo build -p impls`)",
                spec.node_bin.display()
            )));
        }
        fs::create_dir_all(&spec.dir)?;
        let mut config = ClusterConfig::default();
        let data_ports = crate::service::find(&spec.protocol).is_ok_and(|p| p.data_ports());
        let wanted = if data_ports {
            2 * spec.nodes
        } else {
            spec.nodes
        };
        let ports = match spec.base_port {
            Some(p) => (0..wanted)
                .map(|i| {
                    u16::try_from(usize::from(p) + i)
                        .map_err(|_| std::io::Error::other("port out of range"))
                })
                .collect::<std::io::Result<Vec<u16>>>()?,
            None => free_ports(wanted)?,
        };
        for (i, port) in ports.into_iter().enumerate() {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if i < spec.nodes {
                config.nodes.insert(Id::from(i), addr);
            } else {
                config.data.insert(Id::from(i - spec.nodes), addr);
            }
        }
        if tls {
            crate::tls::ensure_certificates(&spec.dir, 0..spec.nodes)?;
            config.tls_dir = Some(spec.dir.clone());
        }
        let admin = config.tls(Who::Admin)?;
        let config_path = spec.dir.join("cluster.toml");
        fs::write(&config_path, config.to_toml())?;
        let mut procs = Supervisor::new();
        for i in 0..spec.nodes {
            procs.add(format!("node {i}"), node_command(&spec, &config_path, i));
        }
        let mut cluster = Cluster {
            spec,
            config,
            config_path,
            procs,
            admin,
        };
        for i in 0..cluster.spec.nodes {
            cluster.restart(i)?;
        }
        Ok(cluster)
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.config.nodes[&Id::from(i)]
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.spec.dir.join(format!("node-{i}"))
    }

    /// Where node `i`'s pid is written while it runs.
    pub fn pid_path(&self, i: usize) -> PathBuf {
        pid_path(&self.spec.dir, i)
    }

    /// The node's process id, if it runs.
    pub fn pid(&mut self, i: usize) -> Option<u32> {
        self.procs.pid(i)
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.procs.is_running(i)
    }

    /// Starts node `i` (again) on its data directory, unless it runs.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        if self.is_running(i) {
            return Ok(());
        }
        let pid = self.procs.start(i)?;
        fs::write(self.pid_path(i), pid.to_string())?;
        // Wait until it listens, so that the caller's next step reaches it.
        for _ in 0..200 {
            if std::net::TcpStream::connect_timeout(&self.addr(i), Duration::from_millis(50))
                .is_ok()
            {
                return Ok(());
            }
            if !self.is_running(i) {
                return Err(std::io::Error::other(format!(
                    "node {i} exited at start; see {}",
                    self.spec.dir.join(format!("node-{i}.log")).display()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(std::io::Error::other(format!("node {i} does not listen")))
    }

    /// `kill -9` node `i`: no chance to flush or say goodbye.
    pub fn kill(&mut self, i: usize) {
        self.procs.kill(i);
        let _ = fs::remove_file(self.pid_path(i));
    }

    /// `SIGSTOP` node `i`: it stops where it is, its sockets open, until [`Cluster::resume`].
    pub fn pause(&mut self, i: usize) -> std::io::Result<()> {
        self.signal(i, "-STOP")
    }

    /// `SIGCONT` node `i` (a node that is not paused, or not running, is left alone).
    pub fn resume(&mut self, i: usize) -> std::io::Result<()> {
        match self.signal(i, "-CONT") {
            Err(e) if !self.is_running(i) => {
                tracing::debug!(node = i, %e, "not resumed: not running");
                Ok(())
            }
            r => r,
        }
    }

    fn signal(&mut self, i: usize, signal: &str) -> std::io::Result<()> {
        let pid = self
            .pid(i)
            .ok_or_else(|| std::io::Error::other(format!("node {i} is not running")))?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill {signal} {pid} (node {i}) failed: {status}"
            )))
        }
    }

    /// Node `i` as an administrator reaches it.
    pub fn admin(&self, i: usize) -> AdminTarget<'_> {
        AdminTarget {
            tls: self.admin.as_deref(),
            node: i,
            addr: self.addr(i),
        }
    }

    /// Sets node `i`'s faults.
    pub fn set_faults(&self, i: usize, faults: &Faults) -> std::io::Result<()> {
        crate::node::set_faults(self.admin(i), faults)
    }

    /// Node `i`'s role, as its status query answers it ([`crate::node::query_status`]).
    pub fn query_status(&self, i: usize) -> std::io::Result<Option<String>> {
        crate::node::query_status(self.admin(i))
    }

    /// The messages node `i` has handled, by kind ([`crate::node::query_counts`]).
    pub fn query_counts(
        &self,
        i: usize,
    ) -> std::io::Result<std::collections::BTreeMap<String, u64>> {
        crate::node::query_counts(self.admin(i))
    }

    /// Cuts `side` off from the other nodes (both directions); clients still reach everyone.
    pub fn partition(&self, side: &[usize]) -> Vec<std::io::Error> {
        let mut errors = Vec::new();
        for i in 0..self.len() {
            let mine = side.contains(&i);
            let blocked = (0..self.len())
                .filter(|j| side.contains(j) != mine)
                .collect();
            let faults = Faults {
                blocked,
                ..Faults::default()
            };
            if let Err(e) = self.set_faults(i, &faults) {
                errors.push(e);
            }
        }
        errors
    }

    /// Sets the same faults on every running node; errors from nodes that are down are returned.
    pub fn set_all(&self, faults: &Faults) -> Vec<std::io::Error> {
        (0..self.len())
            .filter_map(|i| self.set_faults(i, faults).err())
            .collect()
    }

    /// The node that says it leads (its status query answers `leader of term N`, or `leader of
    /// epoch N` for Zab), if one does;
    /// of several (a cut-off leader has not heard of the new term), the one of the highest term.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len())
            .filter_map(|i| {
                let s = self.query_status(i).ok().flatten()?;
                let rest = s
                    .strip_prefix("leader of term ")
                    .or_else(|| s.strip_prefix("leader of epoch "))?;
                let term: u64 = rest.parse().ok()?;
                Some((term, i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// Adds (`add`) or removes `server` from the configuration ([`change_configuration`]),
    /// asking the leader first.
    pub fn change(&self, server: usize, add: bool, timeout: Duration) -> std::io::Result<()> {
        let first = self.leader().unwrap_or(0);
        change_configuration(self.len(), &|i| self.admin(i), first, server, add, timeout)
    }

    /// Stops every node.
    pub fn stop(&mut self) {
        for i in 0..self.len() {
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Adds (`add`) or removes `server` from the configuration of a cluster of `nodes` nodes
/// (Raft's AddServer and RemoveServer, thesis §4): asks node `first`, then the leader a node
/// names, or else each node in turn, until one answers that the change is committed, or
/// `timeout` has passed.
pub fn change_configuration<'a>(
    nodes: usize,
    admin: &dyn Fn(usize) -> crate::node::AdminTarget<'a>,
    first: usize,
    server: usize,
    add: bool,
    timeout: Duration,
) -> std::io::Result<()> {
    use crate::node::ChangeAnswer;
    let deadline = std::time::Instant::now() + timeout;
    let mut next = first % nodes.max(1);
    let mut last = String::from("no node answered");
    while std::time::Instant::now() < deadline {
        let asked = next;
        next = (asked + 1) % nodes;
        match crate::node::change_membership(admin(asked), server, add) {
            Ok(ChangeAnswer::Done) => return Ok(()),
            Ok(ChangeAnswer::Unsupported) => {
                return Err(std::io::Error::other(
                    "the protocol has no configuration changes",
                ))
            }
            Ok(ChangeAnswer::NotDone { leader_hint }) if leader_hint == Some(asked) => {
                return Err(std::io::Error::other(format!(
                    "node {asked}, the leader, refuses it (a server the cluster does not know, \
                     or its last one)"
                )));
            }
            Ok(ChangeAnswer::NotDone { leader_hint }) => {
                last = format!("node {asked} did not commit it");
                if let Some(l) = leader_hint.filter(|l| *l < nodes) {
                    next = l;
                    continue;
                }
            }
            Err(e) => last = format!("node {asked}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("not committed within {timeout:?} ({last})"),
    ))
}

/// `n` ports that were free a moment ago, below the kernel's ephemeral range: a port from that
/// range, once its node is killed, may be taken by any outgoing connection on the machine, and
/// the node could not listen on it again when it restarts.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    const LOW: u16 = 20_000;
    let high = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(LOW + 1_000);
    // Not the replay seed: two clusters started at once must not draw the same ports.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut rng =
        crate::rng::Rng::new(nanos ^ (u64::from(std::process::id()) << 40) ^ (call << 20));
    // Ports this process handed out before are never handed out again: a cluster's node that is
    // down (killed, or not yet started) leaves its port free, and another cluster of the same
    // process (tests run in parallel) must not take it.
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(n);
    for _ in 0..20 * n + 100 {
        if listeners.len() == n {
            break;
        }
        let port = LOW + rng.below(u64::from(high - LOW)) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            handed_out.insert(port);
            listeners.push(l);
        }
    }
    // A machine without free ports below the range: any free port will do.
    while listeners.len() < n {
        listeners.push(TcpListener::bind("127.0.0.1:0")?);
    }
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// Where node `i` of the cluster in `dir` has its pid written while it runs.
pub fn pid_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}.pid"))
}

/// The marker that keeps node `i` of the cluster in `dir` down (`cluster kill`).
pub fn down_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("node-{i}.down"))
}

/// The command that starts node `i` of the cluster `spec` describes: `node PROTOCOL ...`, its log
/// appended to `node-i.log`.
fn node_command(spec: &ClusterSpec, config_path: &Path, i: usize) -> MakeCommand {
    let (spec, config_path) = (spec.clone(), config_path.to_path_buf());
    Box::new(move || {
        let log = File::options()
            .create(true)
            .append(true)
            .open(spec.dir.join(format!("node-{i}.log")))?;
        let t = &spec.tuning;
        let mut command = Command::new(&spec.node_bin);
        command.arg(&spec.protocol);
        if let Some(bug) = spec.bug {
            command.arg("--bug").arg(bug);
        }
        if let Some(seed) = spec.seed {
            command.arg("--seed").arg(seed.to_string());
        }
        if let Some(capacity) = spec.capacity {
            command.arg("--capacity").arg(capacity.to_string());
        }
        command
            .arg("--config")
            .arg(&config_path)
            .arg("--id")
            .arg(i.to_string())
            .arg("--data-dir")
            .arg(spec.dir.join(format!("node-{i}")))
            .arg("--timeout-ms")
            .arg(format!(
                "{}-{}",
                t.timeout.start.as_millis(),
                t.timeout.end.as_millis()
            ))
            .arg("--heartbeat-ms")
            .arg(t.heartbeat.as_millis().to_string())
            .arg("--snapshot-every")
            .arg(t.snapshot_every.to_string())
            .arg("--snapshot-chunk")
            .arg(t.snapshot_chunk.to_string())
            .arg("--chunk-bytes")
            .arg(t.chunk_bytes.to_string())
            .arg("--session-min-ms")
            .arg(t.session_min.as_millis().to_string())
            .arg("--pow-bits")
            .arg(format!("{:#010x}", t.pow_bits))
            .args(t.log_reads.then_some("--log-reads"))
            .args(t.lease_reads.then_some("--lease-reads"))
            .arg("--drift-bound")
            .arg(t.drift_bound.to_string())
            .args((!t.parallel_write).then_some("--no-parallel-write"))
            .args(
                t.members
                    .iter()
                    .flat_map(|m| ["--members".to_string(), m.to_string()]),
            )
            .arg("--admin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        Ok(command)
    })
}
