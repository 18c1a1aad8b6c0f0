//! The MapReduce runtime: the model's coordinator actor over TCP, real workers that run
//! applications on real files, and a sequential reference.
//!
//! The coordinator is `models::mapreduce::MrActor::Coordinator`, the very actor `checker mapreduce`
//! checks: same task states, same parking of requests, same re-assignment on timeout. The worker
//! speaks the model worker's protocol to it (`RequestTask`, `Assign`, `TaskDone`, `Exit`) and commits
//! its outputs the same way, by writing a temporary file and renaming it to `mr-<m>-<r>` or
//! `mr-out-<r>`. Where the model's worker reads and writes through the file-system actor, this one
//! streams real files: a map task holds one input split and its pairs, and a reduce task merges
//! the map tasks' sorted intermediate files one line at a time.

pub mod apps;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use models::mapreduce::{intermediate_name, output_name, MrMsg, Task};
use stateright::actor::{Actor, Id, Out};

use crate::rng::Rng;
use apps::{App, Combiner};
use rustc_hash::FxHashMap;

/// `ihash` of the classic lab: FNV-1a, so partitions do not depend on the process.
pub fn partition(key: &str, reduces: usize) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff) as usize % reduces
}

/// Intermediate files hold one `key\tvalue` pair a line, with `\\`, `\t` and `\n` escaped.
fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `path` through a temporary file in the same folder and renames it into place, so the
/// file appears whole or not at all (§3.3): [`crate::storage::write_atomic`] of what `write`
/// produces.
fn commit(
    path: &Path,
    write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    write(&mut bytes)?;
    crate::storage::write_atomic(path, &bytes)
}

/// The pairs of one partition of a map task, combined when the app has a combiner.
enum Partition {
    Values(FxHashMap<String, Vec<String>>),
    Sums(FxHashMap<String, u64>),
}

impl Partition {
    fn new(combiner: Combiner) -> Self {
        match combiner {
            Combiner::None => Partition::Values(FxHashMap::default()),
            Combiner::Sum => Partition::Sums(FxHashMap::default()),
        }
    }

    fn add(&mut self, k: &str, v: &str) {
        match self {
            Partition::Values(map) => match map.get_mut(k) {
                Some(values) => values.push(v.to_string()),
                None => {
                    map.insert(k.to_string(), vec![v.to_string()]);
                }
            },
            Partition::Sums(map) => {
                // A value that is not a number is a bug in the app, not in the input.
                let n: u64 = if v == "1" {
                    1
                } else {
                    v.parse().expect("a summing combiner's values are numbers")
                };
                match map.get_mut(k) {
                    Some(sum) => *sum += n,
                    None => {
                        map.insert(k.to_string(), n);
                    }
                }
            }
        }
    }

    /// The pairs sorted by key.
    fn into_sorted(self) -> Vec<(String, Vec<String>)> {
        let mut pairs: Vec<(String, Vec<String>)> = match self {
            Partition::Values(map) => map.into_iter().collect(),
            Partition::Sums(map) => map
                .into_iter()
                .map(|(k, n)| (k, vec![n.to_string()]))
                .collect(),
        };
        pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        pairs
    }
}

/// An input split: a whole file, or `PATH@START+LEN`, a byte range of it that starts and ends at
/// line ends (the paper's M pieces of 16-64 MB).
pub fn split_name(path: &Path, start: u64, len: u64) -> String {
    format!("{}@{start}+{len}", path.display())
}

/// Reads an input split named as [`split_name`] writes it (or a plain path); returns the name of
/// its file, which is what the application sees (an index names documents, not pieces), and the
/// text.
pub fn read_split(split: &str) -> std::io::Result<(String, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let range = split.rsplit_once('@').and_then(|(path, range)| {
        let (start, len) = range.split_once('+')?;
        Some((path, start.parse::<u64>().ok()?, len.parse::<u64>().ok()?))
    });
    let (path, contents) = match range {
        Some((path, start, len)) => {
            let mut f = File::open(path)?;
            f.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::with_capacity(len as usize);
            f.take(len).read_to_end(&mut bytes)?;
            let text = String::from_utf8(bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            (path, text)
        }
        None => (split, fs::read_to_string(split)?),
    };
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("input")
        .to_string();
    Ok((name, contents))
}

/// Runs map task `m` on the input split `input`, writing `dir/mr-<m>-<r>` for every partition.
pub fn run_map(
    app: &dyn App,
    m: usize,
    input: &str,
    reduces: usize,
    dir: &Path,
) -> std::io::Result<()> {
    let (name, contents) = read_split(input)?;
    map_text(app, m, &name, contents, reduces, dir)
}

/// Map task `m` on `contents`, the text of input `name`.
pub fn map_text(
    app: &dyn App,
    m: usize,
    name: &str,
    contents: String,
    reduces: usize,
    dir: &Path,
) -> std::io::Result<()> {
    let mut parts: Vec<Partition> = (0..reduces)
        .map(|_| Partition::new(app.combiner()))
        .collect();
    app.map(name, &contents, &mut |k, v| {
        parts[partition(k, reduces)].add(k, v)
    });
    drop(contents);
    for (r, part) in parts.into_iter().enumerate() {
        commit(&dir.join(intermediate_name(m, r)), |w| {
            let mut line = String::new();
            for (k, values) in part.into_sorted() {
                for v in values {
                    line.clear();
                    escape(&k, &mut line);
                    line.push('\t');
                    escape(&v, &mut line);
                    line.push('\n');
                    w.write_all(line.as_bytes())?;
                }
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// One intermediate file being merged: its next pair.
struct Cursor {
    lines: std::io::Lines<BufReader<File>>,
}

impl Cursor {
    fn next(&mut self) -> std::io::Result<Option<(String, String)>> {
        match self.lines.next() {
            None => Ok(None),
            Some(line) => {
                let line = line?;
                let (k, v) = line.split_once('\t').ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "intermediate line without a tab",
                    )
                })?;
                Ok(Some((unescape(k), unescape(v))))
            }
        }
    }
}

/// Runs reduce task `r` over the map tasks' intermediate files, merging them (each is sorted by
/// key), and writes `dir/mr-out-<r>` as `key value` lines in key order.
pub fn run_reduce(app: &dyn App, r: usize, inputs: &[PathBuf], dir: &Path) -> std::io::Result<()> {
    let mut cursors = Vec::new();
    let mut heap = BinaryHeap::new();
    for path in inputs {
        let mut c = Cursor {
            lines: BufReader::new(File::open(path)?).lines(),
        };
        if let Some((k, v)) = c.next()? {
            heap.push(Reverse((k, cursors.len(), v)));
        }
        cursors.push(c);
    }
    commit(&dir.join(output_name(r)), |w| {
        let mut values = Vec::new();
        while let Some(Reverse((key, i, v))) = heap.pop() {
            values.clear();
            values.push(v);
            if let Some((k, v)) = cursors[i].next()? {
                heap.push(Reverse((k, i, v)));
            }
            while heap.peek().is_some_and(|Reverse((k, _, _))| *k == key) {
                let Reverse((_, i, v)) = heap.pop().expect("peeked");
                values.push(v);
                if let Some((k, v)) = cursors[i].next()? {
                    heap.push(Reverse((k, i, v)));
                }
            }
            writeln!(w, "{key} {}", app.reduce(&key, &values))?;
        }
        Ok(())
    })
}

/// The single-process reference (the lab's `mrsequential`): every pair in memory, sorted, reduced,
/// written to `out` as `key value` lines.
pub fn sequential(app: &dyn App, inputs: &[PathBuf], out: &Path) -> std::io::Result<()> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for input in inputs {
        let contents = fs::read_to_string(input)?;
        let name = input
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("input");
        app.map(name, &contents, &mut |k, v| {
            pairs.push((k.to_string(), v.to_string()))
        });
    }
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut w = BufWriter::new(File::create(out)?);
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        let mut values = Vec::new();
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            values.push(std::mem::take(&mut pairs[j].1));
            j += 1;
        }
        writeln!(w, "{} {}", pairs[i].0, app.reduce(&pairs[i].0, &values))?;
        i = j;
    }
    w.flush()
}

/// The coordinator as a node runs it: the model's coordinator actor, plus a record of the workers
/// it has heard from and the ones it has told to exit, so that the process can end as soon as
/// every worker knows the job is done.
pub struct CoordinatorNode(pub models::mapreduce::MrActor);

/// The coordinator's state with that record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CoordinatorNodeState {
    pub inner: models::mapreduce::MrState,
    pub heard: std::collections::BTreeSet<Id>,
    pub told_exit: std::collections::BTreeSet<Id>,
}

impl CoordinatorNodeState {
    /// The job is done and every worker heard from has been told so.
    pub fn finished(&self) -> bool {
        self.done() && self.heard.is_subset(&self.told_exit)
    }

    pub fn done(&self) -> bool {
        matches!(&self.inner, models::mapreduce::MrState::Coordinator(c) if c.done())
    }
}

impl CoordinatorNode {
    fn wrap(
        &self,
        state: &mut std::borrow::Cow<CoordinatorNodeState>,
        inner_out: Out<models::mapreduce::MrActor>,
        o: &mut Out<Self>,
    ) {
        for command in inner_out {
            match command {
                stateright::actor::Command::Send(dst, msg) => {
                    if msg == MrMsg::Exit {
                        state.to_mut().told_exit.insert(dst);
                    }
                    o.send(dst, msg);
                }
                stateright::actor::Command::SetTimer(t, d) => o.set_timer(t, d),
                stateright::actor::Command::CancelTimer(t) => o.cancel_timer(t),
                stateright::actor::Command::Save(s) => o.save(s),
                stateright::actor::Command::ChooseRandom(k, c) => o.choose_random(k, c),
            }
        }
    }
}

impl Actor for CoordinatorNode {
    type Msg = MrMsg;
    type State = CoordinatorNodeState;
    type Timer = models::mapreduce::MrTimer;
    type Random = ();
    type Storage = u8;

    fn on_start(&self, id: Id, storage: &Option<u8>, o: &mut Out<Self>) -> CoordinatorNodeState {
        let mut inner_out = Out::new();
        let inner = self.0.on_start(id, storage, &mut inner_out);
        let mut state = std::borrow::Cow::Owned(CoordinatorNodeState {
            inner,
            heard: Default::default(),
            told_exit: Default::default(),
        });
        self.wrap(&mut state, inner_out, o);
        state.into_owned()
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut std::borrow::Cow<CoordinatorNodeState>,
        src: Id,
        msg: MrMsg,
        o: &mut Out<Self>,
    ) {
        state.to_mut().heard.insert(src);
        let mut inner = std::borrow::Cow::Borrowed(&state.inner);
        let mut inner_out = Out::new();
        self.0.on_msg(id, &mut inner, src, msg, &mut inner_out);
        if let std::borrow::Cow::Owned(inner) = inner {
            state.to_mut().inner = inner;
        }
        self.wrap(state, inner_out, o);
    }

    fn on_timeout(
        &self,
        id: Id,
        state: &mut std::borrow::Cow<CoordinatorNodeState>,
        timer: &models::mapreduce::MrTimer,
        o: &mut Out<Self>,
    ) {
        let mut inner = std::borrow::Cow::Borrowed(&state.inner);
        let mut inner_out = Out::new();
        self.0.on_timeout(id, &mut inner, timer, &mut inner_out);
        if let std::borrow::Cow::Owned(inner) = inner {
            state.to_mut().inner = inner;
        }
        self.wrap(state, inner_out, o);
    }
}

/// Misbehaviour for crash tests, like the lab's `crash` app: before each task a worker exits with
/// probability 1/3, or sleeps up to `max_delay` with probability 1/3.
#[derive(Clone, Copy, Debug)]
pub struct Chaos {
    pub max_delay: Duration,
}

/// A worker's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WorkerPhase {
    /// Asked for a task; counts the re-asks since the coordinator last said anything.
    Asking(u32),
    Exited,
}

/// A worker gives up when the coordinator has said nothing through this many re-asks (about 30 s):
/// the coordinator has finished and gone (it stays until every worker it heard from was told to
/// exit, or a crashed one leaves it waiting).
const SILENCE_LIMIT: u32 = 120;

/// The worker's timer: ask again (the request or its answer may have been lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AskAgain;

/// A worker's GFS (`mr run --gfs`): map inputs are chunks of GFS files, read from the
/// worker's own chunkserver when it holds a replica (§3.4 of MapReduce: "we conserve network
/// bandwidth by taking advantage of the fact that the input data ... is stored on the local
/// disks"), and reduce outputs are committed to GFS by an atomic rename.
pub struct GfsIo {
    pub client: std::sync::Mutex<crate::gfs::client::GfsClient>,
    /// The chunkserver on this worker's "machine".
    pub near: Option<Id>,
    /// Where outputs go: `PREFIX/mr-out-R`.
    pub out_prefix: String,
}

/// A map split of a GFS file: chunk `chunk` of `path`, without the records whose last copy
/// is in a later chunk (`skip`, see [`crate::gfs::client::last_copies`]).
pub fn gfs_split_name(path: &str, chunk: usize, skip: &[u64]) -> String {
    let skip: Vec<String> = skip.iter().map(|id| format!("{id:x}")).collect();
    format!("gfs:{path}#{chunk}!{}", skip.join(","))
}

/// Parses [`gfs_split_name`].
pub fn parse_gfs_split(split: &str) -> Option<(&str, usize, Vec<u64>)> {
    let rest = split.strip_prefix("gfs:")?;
    let (path, rest) = rest.rsplit_once('#')?;
    let (chunk, skip) = rest.split_once('!')?;
    let skip = skip
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| u64::from_str_radix(s, 16).ok())
        .collect::<Option<Vec<u64>>>()?;
    Some((path, chunk.parse().ok()?, skip))
}

impl GfsIo {
    /// The text of a map split: the chunk's records, each once, from the nearest replica.
    fn read_split(&self, split: &str, dir: &Path) -> std::io::Result<(String, String)> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let (path, chunk, skip) =
            parse_gfs_split(split).ok_or_else(|| bad(format!("not a GFS split: {split}")))?;
        let mut c = self.client.lock().expect("gfs client lock");
        let chunks = c.open(path).map_err(|e| bad(e.to_string()))?;
        let info = chunks
            .get(chunk)
            .ok_or_else(|| bad(format!("{path} has no chunk {chunk}")))?;
        let mut order = info.locations.clone();
        order.sort_by_key(|l| Some(*l) != self.near);
        let mut bytes = None;
        for loc in &order {
            if let Ok(b) = c.read_replica(info.handle, *loc) {
                let local = Some(*loc) == self.near;
                let _ = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("mr-locality"))
                    .and_then(|mut f| writeln!(f, "{}", if local { "local" } else { "remote" }));
                bytes = Some(b);
                break;
            }
        }
        let bytes =
            bytes.ok_or_else(|| bad(format!("{path} chunk {chunk}: no replica could be read")))?;
        let records = crate::gfs::client::scan(chunk as u32, &bytes);
        let mut text = Vec::new();
        for r in crate::gfs::client::last_copies(&records) {
            if !skip.contains(&r.id) {
                text.extend_from_slice(&r.payload);
            }
        }
        let name = path.rsplit('/').next().unwrap_or(path).to_string();
        let text = String::from_utf8(text).map_err(|e| bad(e.to_string()))?;
        Ok((name, text))
    }

    /// Commits reduce output `r` (written locally in `dir`) to GFS: a file of its own, renamed
    /// into place, so that a re-executed task's output replaces, never doubles, the first.
    fn commit_output(&self, r: usize, dir: &Path) -> std::io::Result<()> {
        let text = fs::read(dir.join(output_name(r)))?;
        let fail = |e: crate::gfs::client::GfsError| std::io::Error::other(e.to_string());
        let final_path = format!("{}/{}", self.out_prefix, output_name(r));
        let tmp = format!(
            "{final_path}.tmp-{}-{}",
            std::process::id(),
            random_below(u64::MAX)
        );
        let mut c = self.client.lock().expect("gfs client lock");
        c.create(&tmp).map_err(fail)?;
        c.put_text(&tmp, &text).map_err(fail)?;
        c.rename(&tmp, &final_path).map_err(fail)
    }
}

/// A worker that runs tasks on real files in `dir`.
pub struct Worker {
    pub coordinator: Id,
    pub app: Arc<dyn App>,
    pub dir: PathBuf,
    pub chaos: Option<Chaos>,
    /// Extra time each task takes, for tests that look for parallelism.
    pub slow: Duration,
    /// Where to log task start and end times (one `start|end task pid millis` line each).
    pub log: Option<PathBuf>,
    /// Inputs from and outputs to GFS (`mr run --gfs`).
    pub gfs: Option<GfsIo>,
}

const ASK_AGAIN: std::ops::Range<Duration> = Duration::from_millis(200)..Duration::from_millis(300);

impl Worker {
    fn log(&self, what: &str, task: Task) {
        if let Some(path) = &self.log {
            let millis = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let line = format!("{what} {task:?} {} {millis}\n", std::process::id());
            let _ = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
    }

    fn run(&self, task: Task, inputs: &[String], reduces: usize) -> std::io::Result<()> {
        match (task, &self.gfs) {
            (Task::Map(m), Some(gfs)) if inputs[0].starts_with("gfs:") => {
                let (name, text) = gfs.read_split(&inputs[0], &self.dir)?;
                map_text(&*self.app, m, &name, text, reduces, &self.dir)
            }
            (Task::Map(m), _) => run_map(&*self.app, m, &inputs[0], reduces, &self.dir),
            (Task::Reduce(r), gfs) => {
                let inputs: Vec<PathBuf> = inputs.iter().map(|i| self.dir.join(i)).collect();
                run_reduce(&*self.app, r, &inputs, &self.dir)?;
                match gfs {
                    Some(gfs) => gfs.commit_output(r, &self.dir),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Actor for Worker {
    type Msg = MrMsg;
    type State = WorkerPhase;
    type Timer = AskAgain;
    type Random = ();
    type Storage = ();

    fn on_start(&self, _id: Id, _storage: &Option<()>, o: &mut Out<Self>) -> WorkerPhase {
        o.send(self.coordinator, MrMsg::RequestTask);
        o.set_timer(AskAgain, ASK_AGAIN);
        WorkerPhase::Asking(0)
    }

    fn on_msg(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<WorkerPhase>,
        src: Id,
        msg: MrMsg,
        o: &mut Out<Self>,
    ) {
        if src != self.coordinator || **state == WorkerPhase::Exited {
            return;
        }
        *state.to_mut() = WorkerPhase::Asking(0);
        match msg {
            MrMsg::Exit => {
                *state.to_mut() = WorkerPhase::Exited;
                o.cancel_timer(AskAgain);
            }
            MrMsg::Assign {
                task,
                inputs,
                reduces,
            } => {
                if let Some(chaos) = self.chaos {
                    let r = random_below(1000);
                    if r < 330 {
                        tracing::warn!(?task, "chaos: exiting");
                        std::process::exit(1);
                    } else if r < 660 {
                        let ms = random_below(chaos.max_delay.as_millis().max(1) as u64);
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                }
                self.log("start", task);
                let started = Instant::now();
                std::thread::sleep(self.slow);
                match self.run(task, &inputs, reduces) {
                    Ok(()) => {
                        self.log("end", task);
                        tracing::info!(
                            ?task,
                            ms = started.elapsed().as_millis() as u64,
                            "task done"
                        );
                        o.send(self.coordinator, MrMsg::TaskDone(task));
                    }
                    Err(e) => {
                        // Not reported: the coordinator re-assigns the task after its timeout.
                        tracing::error!(?task, %e, "task failed");
                    }
                }
                o.set_timer(AskAgain, ASK_AGAIN);
            }
            _ => {}
        }
    }

    fn on_timeout(
        &self,
        _id: Id,
        state: &mut std::borrow::Cow<WorkerPhase>,
        _t: &AskAgain,
        o: &mut Out<Self>,
    ) {
        if let WorkerPhase::Asking(silent) = **state {
            if silent >= SILENCE_LIMIT {
                tracing::warn!("the coordinator is gone: exiting");
                *state.to_mut() = WorkerPhase::Exited;
                return;
            }
            *state.to_mut() = WorkerPhase::Asking(silent + 1);
            o.send(self.coordinator, MrMsg::RequestTask);
            o.set_timer(AskAgain, ASK_AGAIN);
        }
    }
}

/// Draws the chaos of this worker process from one generator, seeded once and logged so that a
/// run's choices can be replayed (see [`crate::rng`]).
fn random_below(n: u64) -> u64 {
    static RNG: std::sync::OnceLock<std::sync::Mutex<Rng>> = std::sync::OnceLock::new();
    RNG.get_or_init(|| {
        let seed = crate::rng::seed_from_env_or_time();
        tracing::info!(seed, "chaos seed");
        std::sync::Mutex::new(Rng::new(seed))
    })
    .lock()
    .expect("rng lock")
    .below(n)
}

/// A MapReduce job as its coordinator runs it, kept in the coordinator's data directory
/// ([`JOB_FILE`]) so that `node mapreduce` can run it like any other registered server.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// The map tasks' input splits: absolute paths, or byte ranges of them ([`split_name`]).
    pub inputs: Vec<String>,
    pub reduces: usize,
    /// Seconds a task may run before it is given to another worker.
    pub task_timeout_s: f64,
}

/// The job's file in the coordinator's data directory.
pub const JOB_FILE: &str = "mr-job.json";

impl Job {
    /// Writes the job into `dir` (atomically).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::storage::write_atomic(&dir.join(JOB_FILE), &bytes)
    }

    /// The job in `dir`.
    pub fn read(dir: &Path) -> Result<Job, String> {
        let path = dir.join(JOB_FILE);
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let job: Job = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a job: {e}", path.display()))?;
        if job.inputs.is_empty() || job.reduces == 0 {
            return Err(format!(
                "{}: a job needs inputs and reduces",
                path.display()
            ));
        }
        if !(job.task_timeout_s > 0.0 && job.task_timeout_s.is_finite()) {
            return Err(format!(
                "{}: task_timeout_s must be a positive number",
                path.display()
            ));
        }
        Ok(job)
    }
}

/// MapReduce's coordinator in the service registry: `node mapreduce --data-dir DIR` runs the
/// job in `DIR/mr-job.json` and exits once the job is done and its workers were told so. Its
/// workers are not nodes of the cluster file: they are `mr worker` processes, which the
/// coordinator accepts as unknown ids.
pub struct CoordinatorService;

impl crate::service::Service for CoordinatorService {
    type Actor = CoordinatorNode;
    type Msg = MrMsg;
    type State = CoordinatorNodeState;
    type Store = crate::storage::JsonFile;

    const NAME: &'static str = "mapreduce";
    const SUMMARY: &'static str =
        "MapReduce's coordinator (§3); its job in DATA_DIR/mr-job.json, workers are `mr worker`";
    const TUNING_HELP: &'static str = "none (the task timeout is the job's)";
    const ACCEPT_UNKNOWN: bool = true;

    fn bugs() -> Vec<&'static str> {
        Vec::new()
    }

    fn server(
        cluster: &crate::config::ClusterConfig,
        id: Id,
        _tuning: &crate::service::Tuning,
        _bug: Option<&'static str>,
        data_dir: &Path,
    ) -> Result<CoordinatorNode, crate::service::ServiceError> {
        crate::service::ServiceError::check_member(cluster, id)?;
        let job = Job::read(data_dir).map_err(crate::service::ServiceError::Invalid)?;
        let timeout = Duration::from_secs_f64(job.task_timeout_s);
        Ok(CoordinatorNode(models::mapreduce::MrActor::Coordinator {
            inputs: job.inputs,
            reduces: job.reduces,
            // Re-assign as often as needed: real workers may fail any number of times.
            reassignments: u8::MAX,
            task_timeout: timeout..timeout + timeout / 2,
            bug: None,
        }))
    }

    fn store(dir: &Path) -> crate::storage::JsonFile {
        crate::storage::JsonFile(dir.join("coordinator"))
    }

    fn describe(state: &CoordinatorNodeState) -> Option<String> {
        Some(if state.done() {
            "coordinator, job done".into()
        } else {
            "coordinator".into()
        })
    }

    /// Once the job is done the coordinator stays until every worker it heard from has been
    /// told to exit; a worker that crashed and never came back cannot be told, so it stops
    /// waiting for it after a while.
    fn finished(state: &CoordinatorNodeState) -> Option<Duration> {
        if state.finished() {
            Some(Duration::ZERO)
        } else if state.done() {
            Some(Duration::from_secs(3))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "tab\there", "new\nline", "back\\slash\\t", ""] {
            let mut e = String::new();
            escape(s, &mut e);
            assert!(!e.contains('\t') && !e.contains('\n'));
            assert_eq!(unescape(&e), s);
        }
    }

    #[test]
    fn map_then_reduce_equals_sequential() {
        let dir = std::env::temp_dir().join(format!("mr-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.txt");
        let b = dir.join("b.txt");
        fs::write(&a, "the cat\tsat on the mat\nthe end").unwrap();
        fs::write(&b, "a cat is\nnot a mat").unwrap();
        let app = apps::WordCount;
        // The second file as two byte ranges split at a line end.
        let b_text = fs::read_to_string(&b).unwrap();
        let cut = b_text.find('\n').map_or(b_text.len(), |i| i + 1) as u64;
        let splits = [
            a.display().to_string(),
            split_name(&b, 0, cut),
            split_name(&b, cut, b_text.len() as u64 - cut),
        ];
        for (m, split) in splits.iter().enumerate() {
            run_map(&app, m, split, 3, &dir).unwrap();
        }
        let mut got = Vec::new();
        for r in 0..3 {
            let inputs: Vec<PathBuf> = (0..3).map(|m| dir.join(intermediate_name(m, r))).collect();
            run_reduce(&app, r, &inputs, &dir).unwrap();
            got.extend(
                fs::read_to_string(dir.join(output_name(r)))
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
        got.sort();
        sequential(&app, &[a, b], &dir.join("seq")).unwrap();
        let mut want: Vec<String> = fs::read_to_string(dir.join("seq"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        want.sort();
        assert_eq!(got, want);
        assert!(want.contains(&"the 3".to_string()));
        fs::remove_dir_all(&dir).unwrap();
    }
}
