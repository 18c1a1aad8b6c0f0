//! Bitcoin's consensus code for headers and proof of work, ported function by function from
//! Bitcoin Core (`src/arith_uint256.cpp`, `src/pow.cpp`, `src/consensus/merkle.cpp`,
//! `src/validation.cpp`, `src/primitives/`). A pure library: bytes in, verdicts out, no IO.
//!
//! # Proof of work (Nakamoto §4)
//! "The proof-of-work involves scanning for a value that when hashed, such as with SHA-256, the
//! hash begins with a number of zero bits." Concretely: the double SHA-256 of the 80-byte
//! [`Header`], read as a little-endian 256-bit number, must not exceed the *target* that the
//! header's `nBits` field encodes in a floating-point-like "compact" form ([`compact_to_target`],
//! Core's `arith_uint256::SetCompact`). [`check_proof_of_work`] is Core's `CheckProofOfWork`:
//! a negative, zero or overflowing target, or one above the chain's proof-of-work limit, is
//! refused before the hash is compared.
//!
//! "To compensate for increasing hardware speed and varying interest in running nodes over time,
//! the proof-of-work difficulty is determined by a moving average targeting an average number of
//! blocks per hour." Core retargets every 2016 blocks ([`get_next_work_required`],
//! [`calculate_next_work_required`]): the new target is the old one scaled by the time the last
//! 2016 blocks took over the two weeks they should have taken, the factor clamped to [¼, 4], the
//! result capped at the proof-of-work limit. [`permitted_difficulty_transition`] is the looser
//! check Core uses when the first block of the window is not at hand.
//!
//! "The majority decision is represented by the longest chain, which has the greatest
//! proof-of-work effort invested in it": [`block_proof`] is Core's `GetBlockProof`, the expected
//! number of hashes 2^256 / (target + 1) for one block; a chain's work is their sum.
//!
//! # Merkle roots (Nakamoto §7) and CVE-2012-2459
//! A block commits to its transactions through the Merkle root in its header
//! ([`merkle_root`], Core's `ComputeMerkleRoot`). A level with an odd number of hashes pairs its
//! last hash with itself, so the transaction lists `[a, b, c]` and `[a, b, c, c]` have the same
//! root. A node that cached "block with this header is invalid" after seeing the second list
//! could be made to reject the valid block: Core flags the list as `mutated` when two hashes it
//! pairs are equal, and [`check_block`] rejects it (`bad-txns-duplicate`) although its root
//! matches.
//!
//! # What is left out
//! Scripts, signatures, the UTXO set, sigop counts, timestamps against the median of the last
//! eleven blocks and the network-adjusted time, BIP 94's testnet4 rules. Transactions are parsed
//! only far enough to get their ids (legacy and BIP 144 segwit serialization).

use std::cmp::Ordering;
use std::fmt;

use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Hashes
// ---------------------------------------------------------------------------------------------

/// A double SHA-256 digest in internal byte order (as serialized). Bitcoin displays it reversed,
/// most significant byte first (Core's `uint256::GetHex`), which is what `Display` prints.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    pub const ZERO: Hash256 = Hash256([0; 32]);

    /// Parses the displayed form (64 hex digits, most significant byte first).
    pub fn from_display_hex(s: &str) -> Result<Hash256, ParseError> {
        let bytes = hex_decode(s)?;
        let mut out: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| ParseError::Length {
            what: "hash",
            expected: 32,
            got: b.len(),
        })?;
        out.reverse();
        Ok(Hash256(out))
    }

    /// The hash as a number (Core's `UintToArith256`: the bytes are little-endian).
    pub fn to_u256(self) -> U256 {
        U256::from_le_bytes(self.0)
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({self})")
    }
}

/// SHA-256 applied twice (Core's `Hash`, `CHash256`).
pub fn sha256d(data: &[u8]) -> Hash256 {
    let once = Sha256::digest(data);
    Hash256(Sha256::digest(once).into())
}

/// Decodes hex (either case, even length).
pub fn hex_decode(s: &str) -> Result<Vec<u8>, ParseError> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return Err(ParseError::Hex("odd number of hex digits"));
    }
    let digit = |c: u8| -> Result<u8, ParseError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(ParseError::Hex("not a hex digit")),
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Lowercase hex of bytes in the given order.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// 256-bit unsigned integers (Core's arith_uint256)
// ---------------------------------------------------------------------------------------------

/// A 256-bit unsigned integer, as Core's `arith_uint256`: arithmetic wraps modulo 2^256.
/// Limbs are little-endian (`0` is the least significant).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256(pub [u64; 4]);

impl U256 {
    pub const ZERO: U256 = U256([0; 4]);
    pub const ONE: U256 = U256([1, 0, 0, 0]);
    pub const MAX: U256 = U256([u64::MAX; 4]);

    pub const fn from_u64(v: u64) -> U256 {
        U256([v, 0, 0, 0])
    }

    pub fn from_le_bytes(b: [u8; 32]) -> U256 {
        let mut limbs = [0u64; 4];
        for (i, limb) in limbs.iter_mut().enumerate() {
            *limb = u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        }
        U256(limbs)
    }

    pub fn to_le_bytes(self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, limb) in self.0.iter().enumerate() {
            b[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
        }
        b
    }

    /// Parses Core's `GetHex` form: up to 64 hex digits, most significant first.
    pub fn from_hex(s: &str) -> Result<U256, ParseError> {
        let s = s.trim().trim_start_matches("0x");
        if s.is_empty() || s.len() > 64 {
            return Err(ParseError::Hex("expected 1 to 64 hex digits"));
        }
        let padded = format!("{s:0>64}");
        let mut b: [u8; 32] = hex_decode(&padded)?.try_into().expect("64 digits");
        b.reverse();
        Ok(U256::from_le_bytes(b))
    }

    pub fn is_zero(self) -> bool {
        self.0 == [0; 4]
    }

    /// The position of the highest set bit plus one (0 for zero), as `base_uint::bits`.
    pub fn bits(self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + 64 - self.0[i].leading_zeros();
            }
        }
        0
    }

    pub fn low_u64(self) -> u64 {
        self.0[0]
    }

    pub fn wrapping_add(self, rhs: U256) -> U256 {
        let mut out = [0u64; 4];
        let mut carry = false;
        for (i, o) in out.iter_mut().enumerate() {
            let (s1, c1) = self.0[i].overflowing_add(rhs.0[i]);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            *o = s2;
            carry = c1 || c2;
        }
        U256(out)
    }

    pub fn checked_add(self, rhs: U256) -> Option<U256> {
        let sum = self.wrapping_add(rhs);
        (sum >= self).then_some(sum)
    }

    pub fn wrapping_sub(self, rhs: U256) -> U256 {
        self.wrapping_add((!rhs).wrapping_add(U256::ONE))
    }

    /// `self * rhs mod 2^256` (Core's `operator*=(uint32_t)`, widened).
    pub fn wrapping_mul_u64(self, rhs: u64) -> U256 {
        let mut out = [0u64; 4];
        let mut carry: u128 = 0;
        for (i, o) in out.iter_mut().enumerate() {
            let p = self.0[i] as u128 * rhs as u128 + carry;
            *o = p as u64;
            carry = p >> 64;
        }
        U256(out)
    }

    /// Quotient by shift and subtract, as `base_uint::operator/=`; `None` for division by zero
    /// (where Core throws `uint_error`).
    pub fn checked_div(self, div: U256) -> Option<U256> {
        let div_bits = div.bits();
        if div_bits == 0 {
            return None;
        }
        let num_bits = self.bits();
        let mut quotient = U256::ZERO;
        if div_bits > num_bits {
            return Some(quotient);
        }
        let mut num = self;
        let mut shift = num_bits - div_bits;
        let mut d = div << shift;
        loop {
            if num >= d {
                num = num.wrapping_sub(d);
                quotient.0[(shift / 64) as usize] |= 1 << (shift % 64);
            }
            d = d >> 1;
            if shift == 0 {
                return Some(quotient);
            }
            shift -= 1;
        }
    }

    pub fn checked_div_u64(self, div: u64) -> Option<U256> {
        self.checked_div(U256::from_u64(div))
    }
}

impl std::ops::Not for U256 {
    type Output = U256;
    fn not(self) -> U256 {
        U256(self.0.map(|l| !l))
    }
}

impl std::ops::Shl<u32> for U256 {
    type Output = U256;
    /// Shifts left; bits past 2^256 are lost and a shift of 256 or more gives zero.
    fn shl(self, shift: u32) -> U256 {
        let mut out = [0u64; 4];
        let (limbs, bits) = ((shift / 64) as usize, shift % 64);
        for (i, o) in out.iter_mut().enumerate().skip(limbs) {
            *o = self.0[i - limbs] << bits;
            if bits > 0 && i > limbs {
                *o |= self.0[i - limbs - 1] >> (64 - bits);
            }
        }
        U256(out)
    }
}

impl std::ops::Shr<u32> for U256 {
    type Output = U256;
    fn shr(self, shift: u32) -> U256 {
        let mut out = [0u64; 4];
        let (limbs, bits) = ((shift / 64) as usize, shift % 64);
        for (i, o) in out
            .iter_mut()
            .enumerate()
            .take(4usize.saturating_sub(limbs))
        {
            *o = self.0[i + limbs] >> bits;
            if bits > 0 && i + limbs + 1 < 4 {
                *o |= self.0[i + limbs + 1] << (64 - bits);
            }
        }
        U256(out)
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &U256) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &U256) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// 64 hex digits, most significant first (Core's `GetHex`).
impl fmt::Display for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for limb in self.0.iter().rev() {
            write!(f, "{limb:016x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256({self})")
    }
}

// ---------------------------------------------------------------------------------------------
// Compact targets (nBits)
// ---------------------------------------------------------------------------------------------

/// A decoded `nBits`: the target and Core's two flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compact {
    pub target: U256,
    /// The sign bit (0x00800000) is set and the mantissa is non-zero.
    pub negative: bool,
    /// The value does not fit in 256 bits.
    pub overflow: bool,
}

/// Core's `arith_uint256::SetCompact`: `nBits` is one byte of size (in bytes) and three of
/// mantissa, whose top bit is a sign. The target is `mantissa * 256^(size - 3)`.
pub fn compact_to_target(n_compact: u32) -> Compact {
    let size = n_compact >> 24;
    let mut word = n_compact & 0x007f_ffff;
    let target = if size <= 3 {
        word >>= 8 * (3 - size);
        U256::from_u64(word as u64)
    } else {
        U256::from_u64(word as u64) << (8 * (size - 3))
    };
    let negative = word != 0 && n_compact & 0x0080_0000 != 0;
    let overflow =
        word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
    Compact {
        target,
        negative,
        overflow,
    }
}

/// Core's `arith_uint256::GetCompact(fNegative)`: the shortest encoding, never with the sign bit
/// set by the mantissa itself (a mantissa with its top bit set moves one byte up).
pub fn target_to_compact(target: U256, negative: bool) -> u32 {
    let mut size = target.bits().div_ceil(8);
    let mut compact = if size <= 3 {
        (target.low_u64() << (8 * (3 - size))) as u32
    } else {
        (target >> (8 * (size - 3))).low_u64() as u32
    };
    if compact & 0x0080_0000 != 0 {
        compact >>= 8;
        size += 1;
    }
    debug_assert_eq!(compact & !0x007f_ffff, 0);
    compact |= size << 24;
    if negative && compact & 0x007f_ffff != 0 {
        compact |= 0x0080_0000;
    }
    compact
}

// ---------------------------------------------------------------------------------------------
// Block headers
// ---------------------------------------------------------------------------------------------

/// The serialized size of a header.
pub const HEADER_SIZE: usize = 80;

/// A block header (Core's `CBlockHeader`): 80 bytes, little-endian fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: i32,
    pub prev_blockhash: Hash256,
    pub merkle_root: Hash256,
    /// Seconds since 1970 (`nTime`).
    pub time: u32,
    /// The compact target (`nBits`).
    pub bits: u32,
    pub nonce: u32,
}

impl Header {
    /// Parses exactly 80 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Header, ParseError> {
        if bytes.len() != HEADER_SIZE {
            return Err(ParseError::Length {
                what: "header",
                expected: HEADER_SIZE,
                got: bytes.len(),
            });
        }
        let mut r = Reader::new(bytes);
        Header::read(&mut r)
    }

    /// Parses 160 hex digits.
    pub fn from_hex(s: &str) -> Result<Header, ParseError> {
        Header::parse(&hex_decode(s)?)
    }

    fn read(r: &mut Reader<'_>) -> Result<Header, ParseError> {
        Ok(Header {
            version: r.u32()? as i32,
            prev_blockhash: Hash256(r.array()?),
            merkle_root: Hash256(r.array()?),
            time: r.u32()?,
            bits: r.u32()?,
            nonce: r.u32()?,
        })
    }

    pub fn serialize(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev_blockhash.0);
        b[36..68].copy_from_slice(&self.merkle_root.0);
        b[68..72].copy_from_slice(&self.time.to_le_bytes());
        b[72..76].copy_from_slice(&self.bits.to_le_bytes());
        b[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// The block hash: double SHA-256 of the 80 bytes (Core's `CBlockHeader::GetHash`).
    pub fn hash(&self) -> Hash256 {
        sha256d(&self.serialize())
    }
}

// ---------------------------------------------------------------------------------------------
// Proof of work (src/pow.cpp)
// ---------------------------------------------------------------------------------------------

/// The proof-of-work parameters of a chain (Core's `Consensus::Params`, the fields `pow.cpp`
/// reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainParams {
    pub name: &'static str,
    /// The easiest target allowed (`powLimit`).
    pub pow_limit: U256,
    /// Two weeks (`nPowTargetTimespan`).
    pub pow_target_timespan: i64,
    /// Ten minutes (`nPowTargetSpacing`).
    pub pow_target_spacing: i64,
    /// Testnet's and regtest's 20-minute rule (`fPowAllowMinDifficultyBlocks`).
    pub pow_allow_min_difficulty_blocks: bool,
    /// Regtest keeps its difficulty (`fPowNoRetargeting`).
    pub pow_no_retargeting: bool,
}

impl ChainParams {
    /// Mainnet (`CMainParams`): powLimit 0x00000000ffff…ff, that is nBits 0x1d00ffff.
    pub fn mainnet() -> ChainParams {
        ChainParams {
            name: "main",
            pow_limit: !U256::ZERO >> 32,
            pow_target_timespan: 14 * 24 * 60 * 60,
            pow_target_spacing: 10 * 60,
            pow_allow_min_difficulty_blocks: false,
            pow_no_retargeting: false,
        }
    }

    /// Regtest (`CRegTestParams`): powLimit 0x7fff…ff (nBits 0x207fffff), no retargeting.
    pub fn regtest() -> ChainParams {
        ChainParams {
            name: "regtest",
            pow_limit: !U256::ZERO >> 1,
            pow_target_timespan: 14 * 24 * 60 * 60,
            pow_target_spacing: 10 * 60,
            pow_allow_min_difficulty_blocks: true,
            pow_no_retargeting: true,
        }
    }

    /// 2016 blocks (`DifficultyAdjustmentInterval`).
    pub fn difficulty_adjustment_interval(&self) -> i64 {
        self.pow_target_timespan / self.pow_target_spacing
    }

    /// The pow limit as nBits.
    pub fn pow_limit_bits(&self) -> u32 {
        target_to_compact(self.pow_limit, false)
    }
}

/// Core's `CheckProofOfWork`: the nBits decode to a positive target within the pow limit, and the
/// hash, as a number, does not exceed it.
pub fn check_proof_of_work(hash: Hash256, bits: u32, pow_limit: U256) -> bool {
    let c = compact_to_target(bits);
    if c.negative || c.target.is_zero() || c.overflow || c.target > pow_limit {
        return false;
    }
    hash.to_u256() <= c.target
}

/// Why [`check_proof_of_work`] failed, for messages.
pub fn proof_of_work_error(hash: Hash256, bits: u32, pow_limit: U256) -> Option<String> {
    let c = compact_to_target(bits);
    if c.negative {
        Some(format!("nBits {bits:#010x} is negative"))
    } else if c.overflow {
        Some(format!("nBits {bits:#010x} overflows 256 bits"))
    } else if c.target.is_zero() {
        Some(format!("nBits {bits:#010x} is a zero target"))
    } else if c.target > pow_limit {
        Some(format!(
            "nBits {bits:#010x} is easier than the proof-of-work limit"
        ))
    } else if hash.to_u256() > c.target {
        Some(format!(
            "hash {hash} is above the target of nBits {bits:#010x}"
        ))
    } else {
        None
    }
}

/// Core's `CalculateNextWorkRequired`: the target after the interval that ends with the block
/// `(last_time, last_bits)` and began with a block stamped `first_time`.
pub fn calculate_next_work_required(
    params: &ChainParams,
    last_bits: u32,
    last_time: i64,
    first_time: i64,
) -> u32 {
    if params.pow_no_retargeting {
        return last_bits;
    }
    // Limit adjustment step.
    let actual = (last_time - first_time).clamp(
        params.pow_target_timespan / 4,
        params.pow_target_timespan * 4,
    );
    // Retarget. `actual` is positive and below 2^32 after the clamp; the product wraps as
    // arith_uint256's does.
    let mut new = compact_to_target(last_bits)
        .target
        .wrapping_mul_u64(actual as u64);
    new = new
        .checked_div_u64(params.pow_target_timespan as u64)
        .expect("the timespan is positive");
    if new > params.pow_limit {
        new = params.pow_limit;
    }
    target_to_compact(new, false)
}

/// What [`get_next_work_required`] needs of a block (Core's `CBlockIndex`: nHeight, nTime, nBits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    pub height: i64,
    pub time: u32,
    pub bits: u32,
}

/// Core's `GetNextWorkRequired`: the nBits the block after `last`, stamped `new_time`, must carry.
/// `ancestor(h)` returns `last`'s ancestor at height `h`, or `None` if it is not known; then the
/// answer is `None` where Core would need it to retarget (the caller may fall back on
/// [`permitted_difficulty_transition`]). The testnet walk back over min-difficulty blocks stops at
/// the first unknown ancestor, as Core's stops at genesis.
pub fn get_next_work_required(
    params: &ChainParams,
    last: BlockInfo,
    new_time: u32,
    ancestor: impl Fn(i64) -> Option<BlockInfo>,
) -> Option<u32> {
    let limit_bits = params.pow_limit_bits();
    let interval = params.difficulty_adjustment_interval();
    // Only change once per difficulty adjustment interval.
    if (last.height + 1) % interval != 0 {
        if params.pow_allow_min_difficulty_blocks {
            // Special difficulty rule for testnet: more than 2 × 10 minutes after the last block
            // a min-difficulty block is allowed.
            if new_time as i64 > last.time as i64 + params.pow_target_spacing * 2 {
                return Some(limit_bits);
            }
            // Otherwise the last block that was not a special min-difficulty one.
            let mut b = last;
            while b.height % interval != 0 && b.bits == limit_bits {
                match ancestor(b.height - 1) {
                    Some(prev) => b = prev,
                    None => break,
                }
            }
            return Some(b.bits);
        }
        return Some(last.bits);
    }
    // Go back by what we want to be 14 days worth of blocks.
    let first = ancestor(last.height - (interval - 1))?;
    Some(calculate_next_work_required(
        params,
        last.bits,
        last.time as i64,
        first.time as i64,
    ))
}

/// Core's `PermittedDifficultyTransition`: at a retarget height the new target must lie within
/// the ×4 clamps of the old one (rounded through the compact form, capped at the pow limit);
/// elsewhere nBits must not change. Chains with min-difficulty blocks allow anything.
pub fn permitted_difficulty_transition(
    params: &ChainParams,
    height: i64,
    old_bits: u32,
    new_bits: u32,
) -> bool {
    if params.pow_allow_min_difficulty_blocks {
        return true;
    }
    if height % params.difficulty_adjustment_interval() == 0 {
        let observed = compact_to_target(new_bits).target;
        let bound = |timespan: i64| {
            let mut t = compact_to_target(old_bits)
                .target
                .wrapping_mul_u64(timespan as u64)
                .checked_div_u64(params.pow_target_timespan as u64)
                .expect("the timespan is positive");
            if t > params.pow_limit {
                t = params.pow_limit;
            }
            // Round, then compare with what is observed.
            compact_to_target(target_to_compact(t, false)).target
        };
        if bound(params.pow_target_timespan * 4) < observed {
            return false;
        }
        if bound(params.pow_target_timespan / 4) > observed {
            return false;
        }
        true
    } else {
        old_bits == new_bits
    }
}

/// Core's `GetBlockProof`: the expected number of hashes for a block of this nBits,
/// 2^256 / (target + 1), computed as `~target / (target + 1) + 1` since 2^256 does not fit.
/// Zero for an invalid nBits.
pub fn block_proof(bits: u32) -> U256 {
    let c = compact_to_target(bits);
    if c.negative || c.overflow || c.target.is_zero() {
        return U256::ZERO;
    }
    match (!c.target).checked_div(c.target.wrapping_add(U256::ONE)) {
        Some(q) => q.wrapping_add(U256::ONE),
        // target + 1 wrapped to zero: target is 2^256 - 1, one hash in 1.
        None => U256::ONE,
    }
}

// ---------------------------------------------------------------------------------------------
// Merkle roots (src/consensus/merkle.cpp)
// ---------------------------------------------------------------------------------------------

/// Core's `ComputeMerkleRoot`: hashes pairs level by level, an odd level's last hash paired with
/// itself. `mutated` is true when some level pairs two equal hashes (CVE-2012-2459): another list
/// of transactions has the same root. The root of no hashes is zero.
pub fn merkle_root(hashes: &[Hash256]) -> (Hash256, bool) {
    let mut level: Vec<Hash256> = hashes.to_vec();
    let mut mutated = false;
    while level.len() > 1 {
        for pair in level.chunks_exact(2) {
            if pair[0] == pair[1] {
                mutated = true;
            }
        }
        if level.len() % 2 == 1 {
            level.push(*level.last().expect("non-empty"));
        }
        level = level
            .chunks_exact(2)
            .map(|p| {
                let mut buf = [0u8; 64];
                buf[..32].copy_from_slice(&p[0].0);
                buf[32..].copy_from_slice(&p[1].0);
                sha256d(&buf)
            })
            .collect();
    }
    (level.first().copied().unwrap_or(Hash256::ZERO), mutated)
}

// ---------------------------------------------------------------------------------------------
// Transactions and blocks (src/primitives/, src/serialize.h)
// ---------------------------------------------------------------------------------------------

/// Why bytes are not a header, transaction or block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("bad hex: {0}")]
    Hex(&'static str),
    #[error("{what} is {got} bytes, expected {expected}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("unexpected end of data at byte {0}")]
    Eof(usize),
    #[error("non-canonical compact size at byte {0}")]
    NonCanonicalSize(usize),
    #[error("compact size {0} exceeds MAX_SIZE")]
    SizeTooLarge(u64),
    #[error("unknown transaction optional data (flags {0:#04x})")]
    UnknownTxFlags(u8),
    #[error("superfluous witness record")]
    SuperfluousWitness,
    #[error("{0} trailing bytes after the block")]
    TrailingBytes(usize),
}

/// Core's `MAX_SIZE`: the largest compact size a deserializer accepts.
const MAX_SIZE: u64 = 0x0200_0000;

/// A cursor over bytes that never panics.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(ParseError::Eof(self.bytes.len()))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, ParseError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ParseError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Core's `ReadCompactSize`: 1, 3, 5 or 9 bytes, the shortest form only, at most MAX_SIZE.
    fn compact_size(&mut self) -> Result<u64, ParseError> {
        let at = self.pos;
        let n = match self.u8()? {
            0xfd => {
                let v = u16::from_le_bytes(self.array()?) as u64;
                if v < 0xfd {
                    return Err(ParseError::NonCanonicalSize(at));
                }
                v
            }
            0xfe => {
                let v = self.u32()? as u64;
                if v < 0x1_0000 {
                    return Err(ParseError::NonCanonicalSize(at));
                }
                v
            }
            0xff => {
                let v = self.u64()?;
                if v < 0x1_0000_0000 {
                    return Err(ParseError::NonCanonicalSize(at));
                }
                v
            }
            b => b as u64,
        };
        if n > MAX_SIZE {
            return Err(ParseError::SizeTooLarge(n));
        }
        Ok(n)
    }

    fn var_bytes(&mut self) -> Result<&'a [u8], ParseError> {
        let n = self.compact_size()? as usize;
        self.take(n)
    }
}

/// Core's `WriteCompactSize`.
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// A transaction input's previous output (`COutPoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutPoint {
    pub txid: Hash256,
    pub vout: u32,
}

impl OutPoint {
    /// The coinbase's null prevout (`COutPoint::IsNull`).
    pub fn is_null(&self) -> bool {
        self.txid == Hash256::ZERO && self.vout == u32::MAX
    }
}

/// A transaction, parsed only as far as its ids need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    pub version: i32,
    pub prevouts: Vec<OutPoint>,
    /// Output values in satoshis.
    pub output_values: Vec<u64>,
    pub lock_time: u32,
    pub has_witness: bool,
    /// Hash of the serialization without witness (`GetHash`).
    pub txid: Hash256,
    /// Hash of the full serialization (`GetWitnessHash`); equal to `txid` without witness.
    pub wtxid: Hash256,
    /// Size without witness data (`TX_NO_WITNESS`).
    pub stripped_size: usize,
    /// The transaction as it was serialized.
    pub raw: Vec<u8>,
}

impl Transaction {
    /// `CTransaction::IsCoinBase`: one input, spending the null prevout.
    pub fn is_coinbase(&self) -> bool {
        self.prevouts.len() == 1 && self.prevouts[0].is_null()
    }

    /// Parses one transaction that fills `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Transaction, ParseError> {
        let mut r = Reader::new(bytes);
        let tx = Transaction::read(&mut r)?;
        match bytes.len() - r.pos {
            0 => Ok(tx),
            n => Err(ParseError::TrailingBytes(n)),
        }
    }

    /// Core's `UnserializeTransaction` with witness allowed (BIP 144: an empty input list
    /// followed by a flags byte marks the extended form).
    fn read(r: &mut Reader<'_>) -> Result<Transaction, ParseError> {
        let start = r.pos;
        let version = r.u32()? as i32;
        let mut stripped: Vec<u8> = version.to_le_bytes().to_vec();
        let mut flags = 0u8;
        let ins_start = r.pos;
        let mut n_in = r.compact_size()?;
        let mut n_out_known = None;
        if n_in == 0 {
            // A dummy (or truly empty) input list, then flags; with flags 0 Core reads no
            // output list either.
            flags = r.u8()?;
            if flags != 0 {
                n_in = r.compact_size()?;
            } else {
                n_out_known = Some(0);
            }
        }
        let body_start = if flags != 0 { ins_start + 2 } else { ins_start };
        let mut prevouts = Vec::new();
        for _ in 0..n_in {
            let txid = Hash256(r.array()?);
            let vout = r.u32()?;
            r.var_bytes()?; // scriptSig
            r.u32()?; // nSequence
            prevouts.push(OutPoint { txid, vout });
        }
        let n_out = match n_out_known {
            Some(n) => n,
            None => r.compact_size()?,
        };
        let mut output_values = Vec::new();
        for _ in 0..n_out {
            output_values.push(r.u64()?);
            r.var_bytes()?; // scriptPubKey
        }
        let body_end = r.pos;
        let mut has_witness = false;
        if flags & 1 != 0 {
            flags ^= 1;
            for _ in 0..n_in {
                let items = r.compact_size()?;
                for _ in 0..items {
                    r.var_bytes()?;
                    has_witness = true;
                }
            }
            if !has_witness {
                // "It's illegal to encode witnesses when all witness stacks are empty."
                return Err(ParseError::SuperfluousWitness);
            }
        }
        if flags != 0 {
            return Err(ParseError::UnknownTxFlags(flags));
        }
        let lock_time = r.u32()?;
        stripped.extend_from_slice(&r.bytes[body_start..body_end]);
        stripped.extend_from_slice(&lock_time.to_le_bytes());
        let raw = r.bytes[start..r.pos].to_vec();
        let txid = sha256d(&stripped);
        Ok(Transaction {
            version,
            prevouts,
            output_values,
            lock_time,
            has_witness,
            txid,
            wtxid: if has_witness { sha256d(&raw) } else { txid },
            stripped_size: stripped.len(),
            raw,
        })
    }
}

/// A block: its header and transactions (`CBlock`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<Transaction>,
}

impl Block {
    /// Parses a serialized block that fills `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Block, ParseError> {
        let mut r = Reader::new(bytes);
        let header = Header::read(&mut r)?;
        let n = r.compact_size()?;
        let mut txs = Vec::new();
        for _ in 0..n {
            txs.push(Transaction::read(&mut r)?);
        }
        match bytes.len() - r.pos {
            0 => Ok(Block { header, txs }),
            n => Err(ParseError::TrailingBytes(n)),
        }
    }

    pub fn serialize(&self) -> Vec<u8> {
        let mut out = self.header.serialize().to_vec();
        write_compact_size(&mut out, self.txs.len() as u64);
        for tx in &self.txs {
            out.extend_from_slice(&tx.raw);
        }
        out
    }

    /// Core's `BlockMerkleRoot`: the Merkle root of the txids and whether it is mutated.
    pub fn merkle_root(&self) -> (Hash256, bool) {
        let txids: Vec<Hash256> = self.txs.iter().map(|t| t.txid).collect();
        merkle_root(&txids)
    }

    /// The size without witness data (`GetSerializeSize(TX_NO_WITNESS(block))`).
    pub fn stripped_size(&self) -> usize {
        let mut count = Vec::new();
        write_compact_size(&mut count, self.txs.len() as u64);
        HEADER_SIZE + count.len() + self.txs.iter().map(|t| t.stripped_size).sum::<usize>()
    }
}

/// Why [`check_block`] rejects a block: Core's reject reasons.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("high-hash: proof of work failed")]
    HighHash,
    #[error("bad-txnmrklroot: hashMerkleRoot mismatch")]
    BadMerkleRoot,
    #[error("bad-txns-duplicate: duplicate transaction")]
    Duplicate,
    #[error("bad-blk-length: size limits failed")]
    BadLength,
    #[error("bad-cb-missing: first tx is not coinbase")]
    CoinbaseMissing,
    #[error("bad-cb-multiple: more than one coinbase")]
    CoinbaseMultiple,
}

/// `MAX_BLOCK_WEIGHT` (BIP 141) and `WITNESS_SCALE_FACTOR`.
pub const MAX_BLOCK_WEIGHT: usize = 4_000_000;
pub const WITNESS_SCALE_FACTOR: usize = 4;

/// The context-free checks of Core's `CheckBlock` that this library can make: the header's proof
/// of work (`CheckBlockHeader`), the Merkle root and its mutation, the size limits, and exactly
/// one coinbase, first. In Core's order.
pub fn check_block(block: &Block, params: &ChainParams) -> Result<(), BlockError> {
    let h = &block.header;
    if !check_proof_of_work(h.hash(), h.bits, params.pow_limit) {
        return Err(BlockError::HighHash);
    }
    let (root, mutated) = block.merkle_root();
    if root != h.merkle_root {
        return Err(BlockError::BadMerkleRoot);
    }
    // A transaction list whose root matches only because a level repeats a hash (CVE-2012-2459).
    if mutated {
        return Err(BlockError::Duplicate);
    }
    if block.txs.is_empty()
        || block.txs.len() * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
        || block.stripped_size() * WITNESS_SCALE_FACTOR > MAX_BLOCK_WEIGHT
    {
        return Err(BlockError::BadLength);
    }
    if !block.txs[0].is_coinbase() {
        return Err(BlockError::CoinbaseMissing);
    }
    if block.txs[1..].iter().any(Transaction::is_coinbase) {
        return Err(BlockError::CoinbaseMultiple);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
