//! `checker bitcoin headers FILE`: validate a file of Bitcoin block headers and find the
//! most-work tip (Nakamoto §4: "the longest chain, which has the greatest proof-of-work effort
//! invested in it").
//!
//! The file has one header a line, 160 hex digits (the 80 serialized bytes). Blank lines and
//! lines starting `#` are skipped. The first header is the trusted root (its own proof of work is
//! still checked). A plain line must extend the previous plain line: the main branch is listed in
//! order. A line starting `fork:` is a header of a competing branch and may extend any earlier
//! header. For every header, with `models::bitcoin::consensus`:
//!
//! 1. its `hashPrevBlock` names an earlier header (Core's `AcceptBlockHeader`: "prev-blk-not-found");
//! 2. its hash meets the target of its own nBits, within the chain's proof-of-work limit
//!    (`CheckProofOfWork`);
//! 3. its nBits is the one `GetNextWorkRequired` demands after its parent. At a retarget height
//!    whose window starts before the file does, the first block of the window is unknown and
//!    nBits is only checked against the ×4 bounds (`PermittedDifficultyTransition`).
//!
//! Heights count from `--height` (the first header's height, default 0), which places the
//! retarget boundaries. The tip with the most cumulative work (`GetBlockProof` summed from the
//! first header, which is included) wins; of tips with equal work the one listed first wins, as
//! Core prefers the block it received first. Timestamps (median time past, two hours in the
//! future), versions and checkpoints are not checked.

use std::cell::Cell;
use std::collections::HashMap;

use models::bitcoin::consensus::{
    block_proof, get_next_work_required, permitted_difficulty_transition, proof_of_work_error,
    BlockInfo, ChainParams, Hash256, Header, U256,
};
use serde::Serialize;

/// The options of `checker bitcoin headers`.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub chain: ChainParams,
    /// The height of the first header.
    pub first_height: i64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            chain: ChainParams::mainnet(),
            first_height: 0,
        }
    }
}

/// The chains `--chain` names.
pub fn chain_by_name(name: &str) -> Option<ChainParams> {
    match name {
        "main" => Some(ChainParams::mainnet()),
        "regtest" => Some(ChainParams::regtest()),
        _ => None,
    }
}

/// The first invalid header: its line (from 1) and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Invalid {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: invalid header: {}", self.line, self.reason)
    }
}

/// The most-work tip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tip {
    /// The line the tip's header is on.
    pub line: usize,
    pub hash: String,
    /// Headers above the first one.
    pub height_above_first: i64,
    /// `--height` plus `height_above_first`.
    pub height: i64,
    /// Cumulative work from the first header, included: 64 hex digits, as Core's `chainwork`.
    pub chain_work: String,
    /// Whether the tip is on a `fork:` line.
    pub on_fork: bool,
}

/// The result of a valid file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub chain: &'static str,
    pub headers: usize,
    pub fork_headers: usize,
    /// Headers that no other header extends.
    pub tips: usize,
    pub tip: Tip,
}

impl Summary {
    /// The human summary.
    pub fn text(&self) -> String {
        let t = &self.tip;
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} valid on {} ({} on fork: lines, {})\n\
             most-work tip: line {}{}, height {} above the first header (height {})\n\
             hash: {}\n\
             chain work: {} (from the first header, included)\n",
            plural(self.headers, "header", "headers"),
            self.chain,
            self.fork_headers,
            plural(self.tips, "tip", "tips"),
            t.line,
            if t.on_fork { " (fork)" } else { "" },
            t.height_above_first,
            t.height,
            t.hash,
            t.chain_work,
        )
    }
}

/// A header accepted so far.
struct Entry {
    line: usize,
    header: Header,
    hash: Hash256,
    height: i64,
    work: U256,
    parent: Option<usize>,
    fork: bool,
}

impl Entry {
    fn info(&self) -> BlockInfo {
        BlockInfo {
            height: self.height,
            time: self.header.time,
            bits: self.header.bits,
        }
    }
}

/// Checks the text of a headers file.
pub fn check_headers(text: &str, opts: &Options) -> Result<Summary, Invalid> {
    let params = &opts.chain;
    let mut entries: Vec<Entry> = Vec::new();
    let mut by_hash: HashMap<Hash256, usize> = HashMap::new();
    let mut last_main: Option<usize> = None;
    let mut has_child: Vec<bool> = Vec::new();
    let mut best: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let invalid = |reason: String| Invalid { line, reason };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (fork, hex) = match trimmed.strip_prefix("fork:") {
            Some(rest) => (true, rest.trim()),
            None => (false, trimmed),
        };
        let header = Header::from_hex(hex).map_err(|e| invalid(format!("not a header: {e}")))?;
        let hash = header.hash();
        if let Some(&j) = by_hash.get(&hash) {
            return Err(invalid(format!(
                "{hash} repeats the header of line {}",
                entries[j].line
            )));
        }
        // 2. Proof of work against its own nBits (CheckProofOfWork).
        if let Some(why) = proof_of_work_error(hash, header.bits, params.pow_limit) {
            return Err(invalid(format!("proof of work: {why}")));
        }
        let (parent, height, work) = match last_main {
            None => {
                if fork {
                    return Err(invalid("the first header cannot be a fork: line".into()));
                }
                (None, opts.first_height, block_proof(header.bits))
            }
            Some(_) => {
                // 1. Linkage.
                let Some(&p) = by_hash.get(&header.prev_blockhash) else {
                    return Err(invalid(format!(
                        "its previous block {} is not an earlier header",
                        header.prev_blockhash
                    )));
                };
                if !fork && Some(p) != last_main {
                    let prev = last_main.map_or(0, |m| entries[m].line);
                    return Err(invalid(format!(
                        "it extends line {} and not line {prev}, the previous main-branch \
                         header (mark a competing branch with fork:)",
                        entries[p].line
                    )));
                }
                let parent = &entries[p];
                let height = parent.height + 1;
                // 3. The difficulty after the parent (GetNextWorkRequired).
                check_bits(&entries, p, &header, params)
                    .map_err(|why| invalid(format!("nBits at height {height}: {why}")))?;
                let work = parent
                    .work
                    .checked_add(block_proof(header.bits))
                    .ok_or_else(|| invalid("chain work overflows 256 bits".into()))?;
                (Some(p), height, work)
            }
        };
        let index = entries.len();
        if let Some(p) = parent {
            has_child[p] = true;
        }
        entries.push(Entry {
            line,
            header,
            hash,
            height,
            work,
            parent,
            fork,
        });
        has_child.push(false);
        by_hash.insert(hash, index);
        if !fork {
            last_main = Some(index);
        }
        // More work wins; a tie keeps the earlier tip (CBlockIndexWorkComparator).
        if best.is_none_or(|b| work > entries[b].work) {
            best = Some(index);
        }
    }
    let Some(best) = best else {
        return Err(Invalid {
            line: 0,
            reason: "no headers in the file".into(),
        });
    };
    let e = &entries[best];
    Ok(Summary {
        chain: params.name,
        headers: entries.len(),
        fork_headers: entries.iter().filter(|e| e.fork).count(),
        tips: has_child.iter().filter(|c| !**c).count(),
        tip: Tip {
            line: e.line,
            hash: e.hash.to_string(),
            height_above_first: e.height - opts.first_height,
            height: e.height,
            chain_work: e.work.to_string(),
            on_fork: e.fork,
        },
    })
}

/// Whether `header`'s nBits is the one required after `entries[parent]`.
fn check_bits(
    entries: &[Entry],
    parent: usize,
    header: &Header,
    params: &ChainParams,
) -> Result<(), String> {
    // Ancestors are asked for at decreasing heights: a cursor walks up the branch once.
    let cursor = Cell::new(Some(parent));
    let ancestor = |h: i64| {
        let mut at = cursor.get();
        while let Some(i) = at {
            if entries[i].height <= h {
                break;
            }
            at = entries[i].parent;
        }
        cursor.set(at);
        at.filter(|&i| entries[i].height == h)
            .map(|i| entries[i].info())
    };
    let last = entries[parent].info();
    let bits = header.bits;
    match get_next_work_required(params, last, header.time, ancestor) {
        Some(required) if required == bits => Ok(()),
        Some(required) => Err(format!(
            "{bits:#010x} is not the required {required:#010x} (GetNextWorkRequired)"
        )),
        None if permitted_difficulty_transition(params, last.height + 1, last.bits, bits) => Ok(()),
        None => Err(format!(
            "{bits:#010x} is outside the ×4 retarget bounds of {:#010x} \
             (PermittedDifficultyTransition; the window's first block is not in the file)",
            last.bits
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_invalid() {
        let e = check_headers("# nothing\n\n", &Options::default()).unwrap_err();
        assert_eq!(e.line, 0);
    }

    use models::bitcoin::consensus::{
        calculate_next_work_required, check_proof_of_work, compact_to_target, sha256d,
        target_to_compact,
    };

    /// Mainnet's rules on a 16-block interval (160 s at 10 s a block) and a proof-of-work limit
    /// of 2^246, so that headers mine in about a thousand tries. (At regtest's limit of 2^255
    /// the retarget product `target × timespan` would wrap, in Core as here: regtest does not
    /// retarget.)
    fn retargeting() -> ChainParams {
        ChainParams {
            name: "retargeting",
            pow_limit: U256::MAX >> 10,
            pow_target_timespan: 160,
            pow_target_spacing: 10,
            pow_allow_min_difficulty_blocks: false,
            pow_no_retargeting: false,
        }
    }

    fn mine(prev: &Header, bits: u32, params: &ChainParams) -> Header {
        let mut h = Header {
            prev_blockhash: prev.hash(),
            time: prev.time + 5,
            bits,
            nonce: 0,
            ..*prev
        };
        while !check_proof_of_work(h.hash(), h.bits, params.pow_limit) {
            h.nonce += 1;
        }
        h
    }

    /// A full interval mined twice too fast: the header after it must carry about half the
    /// target (GetNextWorkRequired), and nothing else will do.
    #[test]
    fn the_retarget_after_an_interval_is_enforced() {
        let params = retargeting();
        let interval = params.difficulty_adjustment_interval() as usize;
        assert_eq!(interval, 16);
        let limit = params.pow_limit_bits();
        let root = Header {
            version: 4,
            prev_blockhash: Hash256::ZERO,
            merkle_root: sha256d(b"root"),
            time: 1_000_000,
            bits: limit,
            nonce: 0,
        };
        let mut chain = vec![mine(&root, limit, &params)];
        chain[0].prev_blockhash = Hash256::ZERO;
        while !check_proof_of_work(chain[0].hash(), limit, params.pow_limit) {
            chain[0].nonce += 1;
        }
        while chain.len() < interval {
            let next = mine(chain.last().unwrap(), limit, &params);
            chain.push(next);
        }
        let last = chain.last().unwrap();
        let required =
            calculate_next_work_required(&params, limit, last.time as i64, chain[0].time as i64);
        // 15 × 5 s against 160 s: the target times 75/160.
        assert_eq!((limit, required), (0x1f3fffff, 0x1f1dffff));
        let text = |extra: &Header| {
            let mut lines: Vec<String> = chain.iter().map(hex).collect();
            lines.push(hex(extra));
            lines.join("\n")
        };
        let opts = Options {
            chain: params,
            first_height: 0,
        };
        let good = mine(last, required, &params);
        let summary = check_headers(&text(&good), &opts).unwrap();
        assert_eq!(summary.tip.height, 16);
        let stale = mine(last, limit, &params);
        let err = check_headers(&text(&stale), &opts).unwrap_err();
        assert_eq!(err.line, 17);
        assert!(
            err.reason.contains("is not the required 0x1f1dffff"),
            "{err}"
        );

        // With the file starting at height 1, the window's first block (height 0) is unknown:
        // the boundary is at the file's 16th header and only the ×4 bounds apply.
        let opts = Options {
            chain: params,
            first_height: 1,
        };
        let mut lines: Vec<String> = chain[..15].iter().map(hex).collect();
        let eighth = target_to_compact(compact_to_target(limit).target >> 3, false);
        let too_hard = mine(&chain[14], eighth, &params);
        lines.push(hex(&too_hard));
        let err = check_headers(&lines.join("\n"), &opts).unwrap_err();
        assert_eq!(err.line, 16);
        assert!(
            err.reason.contains("outside the ×4 retarget bounds"),
            "{err}"
        );
        *lines.last_mut().unwrap() = hex(&mine(&chain[14], required, &params));
        assert!(check_headers(&lines.join("\n"), &opts).is_ok());
    }

    fn hex(h: &Header) -> String {
        models::bitcoin::consensus::hex_encode(&h.serialize())
    }

    #[test]
    fn chains_by_name() {
        assert_eq!(chain_by_name("main").unwrap().pow_limit_bits(), 0x1d00ffff);
        assert_eq!(
            chain_by_name("regtest").unwrap().pow_limit_bits(),
            0x207fffff
        );
        assert!(chain_by_name("testnet").is_none());
    }
}
