//! `checker merkle verify FILE`: our Merkle tree against published test vectors.
//!
//! The file has the schema of `rfc6962_published.json` (the vectors of transparency-dev/merkle):
//! `hasher_vectors` (`empty_root`, `leaf` and `node` hashes), `leaves` (hex), optionally
//! `leaf_hashes` and `node_hashes_by_level`, `roots` (size -> hash), and `inclusion_proofs` /
//! `consistency_proofs` with a `valid` flag. For every case our answer must equal the file's: each
//! hash recomputed, each root recomputed from the leaves, each proof verified with our verdict equal
//! to `valid`, and, where the leaves are known and the case is valid, our own proof equal to the
//! listed path.

use models::ct::merkle::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion, Hash, MerkleLog,
    ProofError,
};
use serde::Serialize;
use serde_json::Value;

/// One checked case.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub kind: &'static str,
    pub desc: String,
    pub passed: bool,
    pub detail: String,
}

/// The result of a file.
#[derive(Clone, Debug, Serialize)]
pub struct VectorReport {
    pub file: String,
    pub cases: Vec<Case>,
    pub passed: usize,
    pub failed: usize,
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("'{s}' is not hex (odd length)"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(s.get(i..i + 2).ok_or("not hex")?, 16)
                .map_err(|_| format!("'{s}' is not hex"))
        })
        .collect()
}

fn to_hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A field of a JSON object, with a path for error messages.
struct Obj<'a> {
    at: String,
    v: &'a Value,
}

impl<'a> Obj<'a> {
    fn get(&self, key: &str) -> Result<&'a Value, String> {
        self.v
            .get(key)
            .ok_or_else(|| format!("{}: missing \"{key}\"", self.at))
    }

    fn opt(&self, key: &str) -> Option<&'a Value> {
        self.v.get(key).filter(|v| !v.is_null())
    }

    fn str(&self, key: &str) -> Result<&'a str, String> {
        self.get(key)?
            .as_str()
            .ok_or_else(|| format!("{}: \"{key}\" is not a string", self.at))
    }

    fn hex(&self, key: &str) -> Result<Vec<u8>, String> {
        hex(self.str(key)?).map_err(|e| format!("{}: \"{key}\": {e}", self.at))
    }

    fn u64(&self, key: &str) -> Result<u64, String> {
        self.get(key)?
            .as_u64()
            .ok_or_else(|| format!("{}: \"{key}\" is not a non-negative integer", self.at))
    }

    fn bool(&self, key: &str) -> Result<bool, String> {
        self.get(key)?
            .as_bool()
            .ok_or_else(|| format!("{}: \"{key}\" is not a boolean", self.at))
    }

    fn hex_list(&self, key: &str) -> Result<Vec<Vec<u8>>, String> {
        self.get(key)?
            .as_array()
            .ok_or_else(|| format!("{}: \"{key}\" is not an array", self.at))?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .ok_or_else(|| format!("{}: \"{key}\"[{i}] is not a string", self.at))
                    .and_then(|s| hex(s).map_err(|e| format!("{}: \"{key}\"[{i}]: {e}", self.at)))
            })
            .collect()
    }

    fn list(&self, key: &str) -> Result<Vec<Obj<'a>>, String> {
        Ok(self
            .get(key)?
            .as_array()
            .ok_or_else(|| format!("{}: \"{key}\" is not an array", self.at))?
            .iter()
            .enumerate()
            .map(|(i, v)| Obj {
                at: format!("{key}[{i}]"),
                v,
            })
            .collect())
    }
}

/// Checks every case of the vectors in `text`. `Err` means the file is malformed.
pub fn verify_vectors(file: &str, text: &str) -> Result<VectorReport, String> {
    let root: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    if !root.is_object() {
        return Err("expected a JSON object".into());
    }
    let top = Obj {
        at: "top level".into(),
        v: &root,
    };
    let mut cases = Vec::new();
    let mut case = |kind: &'static str, desc: String, passed: bool, detail: String| {
        cases.push(Case {
            kind,
            desc,
            passed,
            detail,
        })
    };

    for v in top.list("hasher_vectors")? {
        let kind = v.str("kind")?;
        let desc = v
            .opt("desc")
            .and_then(Value::as_str)
            .unwrap_or(kind)
            .to_string();
        let expected = v.hex("hash")?;
        let got: Hash = match kind {
            "empty_root" => empty_root(),
            "leaf" => leaf_hash(&v.hex("input_hex")?),
            "node" => node_hash(&v.hex("left_hex")?, &v.hex("right_hex")?),
            other => return Err(format!("{}: unknown hasher kind \"{other}\"", v.at)),
        };
        let passed = got[..] == expected[..];
        case("hasher", desc, passed, format!("got {}", to_hex(&got)));
    }

    let leaves = top.hex_list("leaves")?;
    let mut log = MerkleLog::new();
    for l in &leaves {
        log.append(l);
    }
    if top.opt("leaf_hashes").is_some() {
        for (i, expected) in top.hex_list("leaf_hashes")?.iter().enumerate() {
            let got = leaves.get(i).map(|l| leaf_hash(l));
            let passed = got.is_some_and(|g| g[..] == expected[..]);
            case("leaf_hash", format!("leaf {i}"), passed, String::new());
        }
    }
    if let Some(levels) = top.opt("node_hashes_by_level") {
        let levels = levels
            .as_array()
            .ok_or("\"node_hashes_by_level\" is not an array")?;
        for (level, hashes) in levels.iter().enumerate() {
            let list = Obj {
                at: format!("node_hashes_by_level[{level}]"),
                v: &Value::Null,
            };
            let hashes = hashes
                .as_array()
                .ok_or_else(|| format!("{}: not an array", list.at))?;
            for (i, h) in hashes.iter().enumerate() {
                let expected = h
                    .as_str()
                    .ok_or_else(|| format!("{}[{i}]: not a string", list.at))
                    .and_then(|s| hex(s).map_err(|e| format!("{}[{i}]: {e}", list.at)))?;
                let (start, len) = ((i as u64) << level, 1u64 << level);
                // The complete subtree over these leaves is the root of a log holding just them.
                let got = (start + len <= leaves.len() as u64).then(|| {
                    let mut sub = MerkleLog::new();
                    for l in &leaves[start as usize..(start + len) as usize] {
                        sub.append(l);
                    }
                    sub.root(len).expect("size within the log")
                });
                let passed = got.is_some_and(|g| g[..] == expected[..]);
                case(
                    "node_hash",
                    format!("level {level} node {i}"),
                    passed,
                    String::new(),
                );
            }
        }
    }

    let roots = top
        .get("roots")?
        .as_object()
        .ok_or("\"roots\" is not an object")?;
    for (size, hash) in roots {
        let size: u64 = size
            .parse()
            .map_err(|_| format!("roots: key \"{size}\" is not a size"))?;
        let expected = hash
            .as_str()
            .ok_or_else(|| format!("roots[{size}]: not a string"))
            .and_then(|s| hex(s).map_err(|e| format!("roots[{size}]: {e}")))?;
        let got = log.root(size);
        let passed = got.as_ref().is_ok_and(|g| g[..] == expected[..]);
        let detail = match got {
            Ok(g) => format!("got {}", to_hex(&g)),
            Err(e) => e.to_string(),
        };
        case("root", format!("root of size {size}"), passed, detail);
    }

    for p in top.list("inclusion_proofs")? {
        let index = match p.opt("index") {
            Some(_) => Some(p.u64("index")?),
            None => None,
        };
        let size = p.u64("size")?;
        let path = p.hex_list("path")?;
        let valid = p.bool("valid")?;
        let leaf = match p.opt("leaf_hash") {
            Some(_) => p.hex("leaf_hash")?,
            None => Vec::new(),
        };
        let root = match p.opt("root") {
            Some(_) => p.hex("root")?,
            None => Vec::new(),
        };
        // A case without an index names no leaf: no leaf of any tree can be proven by it.
        let verdict = match index {
            Some(i) => verify_inclusion(i, size, &leaf, &path, &root),
            None => Err(ProofError::IndexOutOfRange { index: 0, size }),
        };
        let (mut passed, mut detail) = judge(&verdict, valid);
        if let (true, Some(i), true) = (valid, index, size <= leaves.len() as u64) {
            passed &= compare_paths(log.inclusion_proof(i, size), &path, &mut detail);
        }
        let desc = format!(
            "inclusion of leaf {} in size {size}, expected {}",
            index.map_or("none".to_string(), |i| i.to_string()),
            if valid { "valid" } else { "invalid" }
        );
        case("inclusion", desc, passed, detail);
    }

    for p in top.list("consistency_proofs")? {
        let (size1, size2) = (p.u64("size1")?, p.u64("size2")?);
        let (root1, root2) = (p.hex("root1")?, p.hex("root2")?);
        let path = p.hex_list("path")?;
        let valid = p.bool("valid")?;
        let verdict = verify_consistency(size1, size2, &root1, &root2, &path);
        let (mut passed, mut detail) = judge(&verdict, valid);
        if valid && size2 <= leaves.len() as u64 {
            passed &= compare_paths(log.consistency_proof(size1, size2), &path, &mut detail);
        }
        let desc = format!(
            "consistency {size1} -> {size2}, expected {}",
            if valid { "valid" } else { "invalid" }
        );
        case("consistency", desc, passed, detail);
    }

    let passed = cases.iter().filter(|c| c.passed).count();
    Ok(VectorReport {
        file: file.to_string(),
        failed: cases.len() - passed,
        passed,
        cases,
    })
}

/// Whether our verdict on a proof matches the file's `valid`, and what to say about it.
fn judge(verdict: &Result<(), ProofError>, valid: bool) -> (bool, String) {
    let detail = match verdict {
        Ok(()) => "verifies".to_string(),
        Err(e) => format!("rejected: {e}"),
    };
    (verdict.is_ok() == valid, detail)
}

/// Whether the proof we generate equals the file's path; notes the answer in `detail`.
fn compare_paths(
    ours: Result<Vec<Hash>, ProofError>,
    path: &[Vec<u8>],
    detail: &mut String,
) -> bool {
    let same = ours
        .is_ok_and(|o| o.len() == path.len() && o.iter().zip(path).all(|(a, b)| a[..] == b[..]));
    detail.push_str(if same {
        "; our proof is the listed path"
    } else {
        "; OUR PROOF DIFFERS from the listed path"
    });
    same
}

impl VectorReport {
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for c in &self.cases {
            out.push_str(&format!(
                "{} {:<11} {}{}\n",
                if c.passed { "ok  " } else { "FAIL" },
                c.kind,
                c.desc,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.detail)
                }
            ));
        }
        out.push_str(&format!("{} passed, {} failed\n", self.passed, self.failed));
        out
    }
}
