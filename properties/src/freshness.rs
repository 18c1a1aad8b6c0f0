//! Freshness of a look-aside cache (Nishtala et al., "Scaling Memcache at Facebook", NSDI 2013,
//! §§2, 3.2.1, 3.3), checked on a recorded history of one key's reads and writes.
//!
//! Memcache is not linearizable and does not try to be: a read may miss a write still under
//! way. What leases and deletes promise is that a cache never keeps a value older than an
//! invalidation it has processed (the `memcache` model's *memcache never keeps a value older
//! than a delete it processed*). Seen from the clients: once a write has returned (the database
//! committed it *and* its delete is done), no read that starts later returns an older version,
//! unless it was served by the gutter pool, whose entries are not invalidated but expire after
//! their TTL (§3.3): such a read may be older only while that TTL has not run out since the
//! newer write returned.
//!
//! The check is one pass over the writes sorted by return time: for each read, the newest
//! version returned before it started (a binary search). `O(n log n)` for `n` operations.
//!
//! # The `jsonl` format
//! One JSON object per line, in the order the events happened, with `time` in seconds:
//! `{"process": 0, "type": "invoke", "f": "read", "time": 0.10}`, then
//! `{"process": 0, "type": "ok", "f": "read", "value": 3, "served": "memcache", "time": 0.12}`
//! (`served`: `memcache`, `gutter` or `database`; a gutter read also carries `ttl`, how many
//! seconds older than a returned write it may be), and for writes
//! `{"process": 1, "type": "ok", "f": "write", "value": 4, "time": 0.15}`. A completion of
//! type `fail` or `info` ends an operation without a result.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

pub use crate::linearizability::formats::ParseError;

/// Where a read's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Served {
    /// A hit in memcache (invalidated by deletes).
    Memcache,
    /// A hit in the gutter pool (not invalidated; its entries expire).
    Gutter,
    /// The database, after a miss.
    Database,
}

impl Served {
    pub fn name(self) -> &'static str {
        match self {
            Served::Memcache => "memcache",
            Served::Gutter => "gutter",
            Served::Database => "database",
        }
    }
}

/// A completed operation on the key.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    Read {
        version: u64,
        served: Served,
    },
    /// A write of `version` that returned: committed and invalidated.
    Write {
        version: u64,
    },
}

/// An operation of the history: what it did, when it started and returned (seconds).
#[derive(Clone, Debug, PartialEq)]
pub struct CacheOp {
    pub process: u64,
    pub access: Access,
    pub invoked: f64,
    pub returned: f64,
}

/// A read older than a write that had returned before it began: the first such write (by
/// return time).
#[derive(Clone, Debug, PartialEq)]
pub struct StaleRead {
    /// Indices into the checked operations.
    pub read: usize,
    pub write: usize,
    pub read_version: u64,
    pub write_version: u64,
    pub served: Served,
    /// How long before the read began the write had returned, in seconds.
    pub after: f64,
}

impl fmt::Display for StaleRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a read served by {} returned v{} {:.3} s after the write of v{} had returned (its delete done)",
            self.served.name(),
            self.read_version,
            self.after,
            self.write_version
        )
    }
}

/// The verdict on a history.
#[derive(Clone, Debug, PartialEq)]
pub struct Freshness {
    pub reads: usize,
    pub writes: usize,
    /// Every stale read (empty: the history is fresh).
    pub stale: Vec<StaleRead>,
}

/// Checks `ops`: no read returns a version older than a write that returned before the read
/// was invoked, except a gutter read within `gutter_ttl` seconds of that write's return.
pub fn check(ops: &[CacheOp], gutter_ttl: f64) -> Freshness {
    // Writes by return time, with the newest version returned so far (and which write).
    let mut writes: Vec<(f64, u64, usize)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op.access {
            Access::Write { version } => Some((op.returned, version, i)),
            Access::Read { .. } => None,
        })
        .collect();
    writes.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The newest version returned by each prefix: non-decreasing.
    let newest: Vec<u64> = writes
        .iter()
        .scan(0, |max, (_, v, _)| {
            *max = (*max).max(*v);
            Some(*max)
        })
        .collect();
    let mut stale = Vec::new();
    let mut reads = 0;
    for (r, op) in ops.iter().enumerate() {
        let Access::Read { version, served } = op.access else {
            continue;
        };
        reads += 1;
        // The writes that returned strictly before the read began, and the first of them
        // (by return) to write a newer version than the read's.
        let before = writes.partition_point(|(at, _, _)| *at < op.invoked);
        let first_newer = newest.partition_point(|max| *max <= version);
        if first_newer >= before {
            continue;
        }
        let (returned, write_version, w) = writes[first_newer];
        let after = op.invoked - returned;
        if served == Served::Gutter && after <= gutter_ttl {
            continue;
        }
        stale.push(StaleRead {
            read: r,
            write: w,
            read_version: version,
            write_version,
            served,
            after,
        });
    }
    Freshness {
        reads,
        writes: writes.len(),
        stale,
    }
}

#[derive(Deserialize)]
struct Line {
    process: u64,
    #[serde(rename = "type")]
    ty: String,
    f: String,
    #[serde(default)]
    value: Option<u64>,
    #[serde(default)]
    served: Option<String>,
    #[serde(default)]
    ttl: Option<f64>,
    time: f64,
}

/// A history read from `jsonl`: its completed operations, and the longest `ttl` its gutter
/// reads carry (0 without any).
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    pub ops: Vec<CacheOp>,
    pub gutter_ttl: f64,
}

/// Reads a `jsonl` history (the module's format).
pub fn parse_jsonl(text: &str) -> Result<Parsed, ParseError> {
    let err = |line: usize, reason: String| ParseError { line, reason };
    let mut open: BTreeMap<u64, (String, f64)> = BTreeMap::new();
    let mut ops = Vec::new();
    let mut gutter_ttl: f64 = 0.0;
    for (n, raw) in text.lines().enumerate() {
        let n = n + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw).map_err(|e| err(n, e.to_string()))?;
        if !line.time.is_finite() {
            return Err(err(n, "time is not a number".into()));
        }
        if line.f != "read" && line.f != "write" {
            return Err(err(n, format!("f must be read or write, not {:?}", line.f)));
        }
        match line.ty.as_str() {
            "invoke" => {
                if open.insert(line.process, (line.f, line.time)).is_some() {
                    return Err(err(
                        n,
                        format!(
                            "process {} invokes while its last operation is open",
                            line.process
                        ),
                    ));
                }
            }
            "ok" | "fail" | "info" => {
                let Some((f, invoked)) = open.remove(&line.process) else {
                    return Err(err(
                        n,
                        format!(
                            "process {} completes an operation it did not invoke",
                            line.process
                        ),
                    ));
                };
                if f != line.f {
                    return Err(err(n, format!("completes a {f} as a {}", line.f)));
                }
                if line.ty != "ok" {
                    continue;
                }
                let version = line
                    .value
                    .ok_or_else(|| err(n, format!("an ok {f} needs a value (its version)")))?;
                let access = if f == "write" {
                    Access::Write { version }
                } else {
                    let served = match line.served.as_deref() {
                        Some("memcache") => Served::Memcache,
                        Some("gutter") => {
                            match line.ttl {
                                Some(t) if t.is_finite() && t >= 0.0 => {
                                    gutter_ttl = gutter_ttl.max(t)
                                }
                                None => {}
                                Some(_) => {
                                    return Err(err(n, "ttl must be a number of seconds".into()))
                                }
                            }
                            Served::Gutter
                        }
                        Some("database") => Served::Database,
                        other => {
                            return Err(err(
                                n,
                                format!(
                                    "served must be memcache, gutter or database, not {other:?}"
                                ),
                            ))
                        }
                    };
                    Access::Read { version, served }
                };
                ops.push(CacheOp {
                    process: line.process,
                    access,
                    invoked,
                    returned: line.time,
                });
            }
            other => {
                return Err(err(
                    n,
                    format!("type must be invoke, ok, fail or info, not {other:?}"),
                ))
            }
        }
    }
    Ok(Parsed { ops, gutter_ttl })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(version: u64, served: Served, invoked: f64, returned: f64) -> CacheOp {
        CacheOp {
            process: 0,
            access: Access::Read { version, served },
            invoked,
            returned,
        }
    }

    fn write(version: u64, invoked: f64, returned: f64) -> CacheOp {
        CacheOp {
            process: 1,
            access: Access::Write { version },
            invoked,
            returned,
        }
    }

    /// A read overlapping a write may return the old version; one that starts after the
    /// write returned may not, unless the gutter served it within its TTL.
    #[test]
    fn a_read_after_a_returned_write_must_not_be_older() {
        let fresh = [
            write(1, 0.0, 1.0),
            read(0, Served::Memcache, 0.5, 1.5),
            read(1, Served::Memcache, 1.1, 1.2),
            read(0, Served::Gutter, 1.5, 1.6),
        ];
        let v = check(&fresh, 1.0);
        assert_eq!((v.reads, v.writes, v.stale.len()), (3, 1, 0));

        let stale = [
            write(1, 0.0, 1.0),
            write(2, 1.5, 2.0),
            read(1, Served::Memcache, 2.5, 2.6),
            read(1, Served::Gutter, 3.5, 3.6),
        ];
        let v = check(&stale, 1.0);
        assert_eq!(v.stale.len(), 2);
        assert_eq!(
            (v.stale[0].read, v.stale[0].write, v.stale[0].write_version),
            (2, 1, 2)
        );
        assert_eq!(v.stale[1].served, Served::Gutter);
        assert!(v.stale[0].to_string().contains("returned v1"));
    }

    /// Writes that return out of version order: the newest version returned so far counts,
    /// and a stale read is timed from the first newer write's return.
    #[test]
    fn the_newest_version_returned_so_far_is_the_bar() {
        let ops = [
            write(2, 0.0, 1.0),
            write(1, 0.0, 2.0),
            read(1, Served::Database, 3.0, 3.1),
            write(3, 3.0, 4.0),
            read(1, Served::Gutter, 4.5, 4.6),
            read(2, Served::Gutter, 4.5, 4.6),
        ];
        let v = check(&ops, 1.0);
        assert_eq!(v.stale.len(), 2);
        assert_eq!((v.stale[0].write_version, v.stale[0].after), (2, 2.0));
        // Older than v2 for 3.5 s: beyond the TTL; older than v3 for 0.5 s: within it.
        assert_eq!((v.stale[1].read, v.stale[1].after), (4, 3.5));
    }

    #[test]
    fn jsonl_round_trip_and_malformed_lines() {
        let text = r#"{"process":0,"type":"invoke","f":"write","time":0.0}
{"process":1,"type":"invoke","f":"read","time":0.1}
{"process":0,"type":"ok","f":"write","value":1,"time":0.2}
{"process":1,"type":"ok","f":"read","value":0,"served":"memcache","time":0.3}
{"process":1,"type":"invoke","f":"read","time":0.4}
{"process":1,"type":"ok","f":"read","value":0,"served":"memcache","time":0.5}
{"process":1,"type":"invoke","f":"read","time":0.6}
{"process":1,"type":"ok","f":"read","value":0,"served":"gutter","ttl":1.5,"time":0.7}
"#;
        let Parsed { ops, gutter_ttl } = parse_jsonl(text).unwrap();
        assert_eq!((ops.len(), gutter_ttl), (4, 1.5));
        let v = check(&ops, gutter_ttl);
        assert_eq!(v.stale.len(), 1);
        assert_eq!(v.stale[0].read, 2);
        for (bad, why) in [
            (
                r#"{"process":0,"type":"ok","f":"read","value":1,"served":"memcache","time":0}"#,
                "did not invoke",
            ),
            (
                r#"{"process":0,"type":"invoke","f":"cas","time":0}"#,
                "read or write",
            ),
            ("{", "line 1"),
        ] {
            let e = parse_jsonl(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
