//! GFS as real processes on loopback: a master and four chunkservers, writers appending
//! numbered records concurrently while chunkservers are killed -9 and restarted and the master
//! is killed and restarted; then every acknowledged record is read back, nothing read was
//! never appended, and `fsck` finds every acknowledged record in a defined region.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use impls::cluster::{Cluster, ClusterSpec};
use impls::gfs::client::{fsck, GfsClient, GfsError, Region};
use impls::gfs::GfsService;
use impls::rng::Rng;
use impls::service::{Service, Tuning};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gfs-cluster-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tuning() -> Tuning {
    Tuning {
        timeout: Duration::from_millis(1500)..Duration::from_millis(1500),
        heartbeat: Duration::from_millis(150),
        chunk_bytes: 64 << 10,
        ..GfsService::tuning()
    }
}

fn start(name: &str, nodes: usize) -> Cluster {
    Cluster::start(ClusterSpec {
        protocol: "gfs".into(),
        node_bin: PathBuf::from(env!("CARGO_BIN_EXE_node")),
        dir: scratch(name),
        nodes,
        base_port: None,
        tuning: tuning(),
        bug: None,
        seed: None,
        capacity: None,
    })
    .unwrap()
}

fn connect(cluster: &Cluster) -> GfsClient {
    let mut c = GfsClient::connect(&cluster.config).unwrap();
    c.timeout = Duration::from_secs(10);
    c
}

/// Retries an operation while the master recovers (it answers after its restart).
fn eventually<T>(mut f: impl FnMut() -> Result<T, GfsError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f() {
            Ok(t) => return t,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn concurrent_appends_survive_chunkserver_and_master_kills() {
    let mut cluster = start("kills", 5);
    let mut c = connect(&cluster);
    eventually(|| c.create("/log"));
    let cluster_cfg = cluster.config.clone();
    let stop = Arc::new(AtomicBool::new(false));
    // What each writer tried and what was acknowledged: payload -> id.
    let tried = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let acked = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, tried, acked, cfg) = (
                stop.clone(),
                tried.clone(),
                acked.clone(),
                cluster_cfg.clone(),
            );
            std::thread::spawn(move || {
                let mut c = GfsClient::connect(&cfg).unwrap();
                c.timeout = Duration::from_secs(5);
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Records of different sizes, so that chunks fill unevenly and pad.
                    let payload = format!("w{w}-{n}-{}", "x".repeat((n * 37) % 900));
                    tried.lock().unwrap().insert(payload.clone());
                    if let Ok((_, _, id)) = c.append("/log", payload.as_bytes()) {
                        acked.lock().unwrap().insert(payload, id);
                    }
                    n += 1;
                }
            })
        })
        .collect();

    // The nemesis: kill -9 one chunkserver at a time and restart it; then the master.
    let mut rng = Rng::new(7);
    let t0 = Instant::now();
    let mut kills = 0;
    while t0.elapsed() < Duration::from_secs(9) {
        std::thread::sleep(Duration::from_millis(700));
        let victim = 1 + rng.below(4) as usize;
        cluster.kill(victim);
        kills += 1;
        std::thread::sleep(Duration::from_millis(400 + rng.below(1200)));
        cluster.restart(victim).unwrap();
    }
    cluster.kill(0);
    std::thread::sleep(Duration::from_millis(300));
    cluster.restart(0).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    let acked = acked.lock().unwrap().clone();
    let tried = tried.lock().unwrap().clone();
    eprintln!(
        "{kills} chunkserver kills; {} of {} appends acknowledged",
        acked.len(),
        tried.len()
    );
    assert!(
        acked.len() >= 50,
        "too few appends went through: {}",
        acked.len()
    );
    let mut c = connect(&cluster);
    let records = eventually(|| c.read_records("/log"));
    let read: BTreeSet<String> = records
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    let lost: Vec<&String> = acked.keys().filter(|p| !read.contains(*p)).collect();
    assert!(lost.is_empty(), "acknowledged but not read back: {lost:?}");
    let invented: Vec<&String> = read.iter().filter(|p| !tried.contains(*p)).collect();
    assert!(invented.is_empty(), "read but never appended: {invented:?}");

    // fsck: every chunk readable, every acknowledged record in a defined region, once the
    // replicas the kills left behind have caught up (a replica that missed the last appends
    // while its chunkserver was down is brought up to date by re-replication, §4.3).
    let settle = Instant::now() + Duration::from_secs(10);
    let (files, undefined) = loop {
        let files = eventually(|| fsck(&mut c, "/"));
        assert_eq!(files.len(), 1);
        let defined: BTreeSet<u64> = files[0]
            .chunks
            .iter()
            .flat_map(|c| c.records.clone())
            .collect();
        let undefined: Vec<String> = acked
            .iter()
            .filter(|(_, id)| !defined.contains(id))
            .map(|(p, _)| p.clone())
            .collect();
        if undefined.is_empty() || Instant::now() > settle {
            break (files, undefined);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let f = &files[0];
    for c in &f.chunks {
        assert!(!c.readable.is_empty(), "chunk {} unreadable", c.handle);
    }
    assert!(
        undefined.is_empty(),
        "fsck: acknowledged records not in a defined region: {undefined:?}"
    );
    let padding: u64 = f
        .chunks
        .iter()
        .filter_map(|c| c.bytes.get(&Region::Padding))
        .sum();
    assert!(padding > 0, "chunks filled, so some were padded");
    assert!(f.chunks.len() > 3, "the records span chunks");
    cluster.stop();
}

#[test]
fn a_lost_chunkserver_is_re_replicated_and_a_removed_file_collected() {
    let mut cluster = start("rereplicate", 5);
    let mut c = connect(&cluster);
    eventually(|| c.create("/a"));
    for i in 0..20 {
        c.append("/a", format!("record {i}").as_bytes()).unwrap();
    }
    let chunk = c.open("/a").unwrap()[0].clone();
    assert_eq!(chunk.locations.len(), 3);
    // One replica's chunkserver goes for good: the master notices its silence and copies the
    // chunk to the fourth chunkserver (§4.3).
    let gone = usize::from(chunk.locations[0]);
    cluster.kill(gone);
    let deadline = Instant::now() + Duration::from_secs(15);
    let moved = loop {
        let now = c.open("/a").unwrap()[0].clone();
        if now.locations.len() == 3 && !now.locations.iter().any(|l| usize::from(*l) == gone) {
            break now;
        }
        assert!(Instant::now() < deadline, "not re-replicated: {now:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let fresh = *moved
        .locations
        .iter()
        .find(|l| !chunk.locations.contains(l))
        .unwrap();
    let copy = c.read_replica(moved.handle, fresh).unwrap();
    let n = impls::gfs::client::scan(0, &copy).len();
    assert_eq!(n, 20, "the copy holds every record");

    // A removed file's chunks are deleted from the chunkservers as they report (§4.4).
    c.remove("/a").unwrap();
    assert!(c.list("").unwrap().is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while moved
        .locations
        .iter()
        .any(|l| c.read_replica(moved.handle, *l).is_ok())
    {
        assert!(
            Instant::now() < deadline,
            "chunk {} not collected",
            moved.handle
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.stop();
}

#[test]
fn mapreduce_on_gfs_equals_the_sequential_run() {
    let cluster = start("mr", 5);
    let mut c = connect(&cluster);
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/gutenberg");
    let inputs = [
        data.join("pg-frankenstein.txt"),
        data.join("pg-being_ernest.txt"),
    ];
    let mut gfs_inputs = Vec::new();
    for input in &inputs {
        let name = format!("/in/{}", input.file_name().unwrap().to_string_lossy());
        eventually(|| c.create(&name));
        c.put_text(&name, &std::fs::read(input).unwrap()).unwrap();
        gfs_inputs.push(name);
    }
    let chunks: usize = gfs_inputs.iter().map(|p| c.open(p).unwrap().len()).sum();
    assert!(chunks >= 8, "several splits: {chunks}");
    let work = scratch("mr-work");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mr"))
        .args([
            "run",
            "--app",
            "wc",
            "--reduces",
            "3",
            "--workers",
            "3",
            "--gfs",
        ])
        .arg(&cluster.config_path)
        .args(["--gfs-out", "/wc", "--out"])
        .arg(&work)
        .arg("--inputs")
        .args(&gfs_inputs)
        .status()
        .unwrap();
    assert!(status.success());
    let mut got: Vec<String> = Vec::new();
    for r in 0..3 {
        let text = c.read_text(&format!("/wc/mr-out-{r}")).unwrap();
        got.extend(String::from_utf8(text).unwrap().lines().map(str::to_string));
    }
    got.sort();
    let seq = work.join("sequential");
    impls::mapreduce::sequential(&impls::mapreduce::apps::WordCount, &inputs, &seq).unwrap();
    let mut want: Vec<String> = std::fs::read_to_string(&seq)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "mr run --gfs differs from mr sequential");
    // Four chunkservers, three replicas a chunk: a worker finds its chunk at home often,
    // not always.
    let log = std::fs::read_to_string(work.join("mr-locality")).unwrap();
    assert_eq!(log.lines().count(), chunks);
    assert!(log.lines().any(|l| l == "local"), "{log}");
}
