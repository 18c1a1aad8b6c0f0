//! A chunkserver's chunks on disk, its buffer of pushed data, and the data port that serves
//! pushes and reads (§3.2: "we decouple the flow of data from the flow of control").
//!
//! Each chunk is two files under `DATA_DIR/chunks/`: `<handle>.chunk`, the bytes (a hole reads
//! as zeros), and `<handle>.crc`, one entry per 64 KB block (§5.2): the CRC-32 of the block's
//! bytes and how many of them it covers. The actor's step writes data into the page cache
//! ([`ChunkDir::write`]); the node's save makes it durable ([`ChunkDir::sync`]: the data file
//! first, then the checksums), before any message of that step leaves. A crash between the two
//! leaves checksums that cover less than the file holds; a restart truncates each chunk to what
//! its checksums cover, dropping only writes no one was told of.
//!
//! The data port speaks a small binary protocol, one request after another on a connection:
//! - `PUSH`: a client's record (id, bytes), kept in an LRU buffer until it is written or
//!   ages out (§3.2);
//! - `READ`: bytes of a chunk, every block checked against its checksum first (§5.2); a
//!   mismatch is an error, and the reader goes to another replica.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use models::gfs::{Handle, Offset, RecId, Version};

/// Checksum blocks (§5.2: "A chunk is broken up into 64 KB blocks").
pub const BLOCK: u64 = 64 << 10;
/// How long pushed data waits to be written before it ages out (§3.2).
pub const PUSH_AGE: Duration = Duration::from_secs(60);
/// The most pushed data held at once; the oldest goes first.
pub const PUSH_BYTES: usize = 512 << 20;

const PUSH: u8 = 1;
const READ: u8 = 2;
const OK: u8 = 0;
const NO_CHUNK: u8 = 1;
const CORRUPT: u8 = 2;
const TOO_BIG: u8 = 3;

/// The largest push the data port takes.
pub const MAX_PUSH: u64 = 64 << 20;

/// A chunk's checksums: per block, the CRC-32 of its first `len` bytes.
#[derive(Clone, Debug, Default)]
struct Crcs {
    blocks: Vec<(u32, u32)>,
    /// Blocks changed since the last sync.
    dirty: bool,
    /// The data file has writes not yet synced.
    unsynced: bool,
}

impl Crcs {
    fn covered(&self) -> u64 {
        match self.blocks.last() {
            Some((_, len)) => (self.blocks.len() as u64 - 1) * BLOCK + u64::from(*len),
            None => 0,
        }
    }
}

/// Pushed data waiting to be written, oldest first.
#[derive(Default)]
struct PushBuffer {
    data: HashMap<RecId, (Arc<[u8]>, Instant)>,
    order: VecDeque<RecId>,
    bytes: usize,
}

impl PushBuffer {
    fn insert(&mut self, rec: RecId, bytes: Arc<[u8]>) {
        let now = Instant::now();
        if let Some((old, _)) = self.data.insert(rec, (bytes.clone(), now)) {
            self.bytes -= old.len();
        } else {
            self.order.push_back(rec);
        }
        self.bytes += bytes.len();
        while let Some(first) = self.order.front().copied() {
            let stale = self
                .data
                .get(&first)
                .is_none_or(|(_, at)| now.duration_since(*at) > PUSH_AGE);
            if !stale && self.bytes <= PUSH_BYTES {
                break;
            }
            self.order.pop_front();
            if let Some((b, _)) = self.data.remove(&first) {
                self.bytes -= b.len();
            }
        }
    }
}

/// A chunkserver's chunk files and push buffer, shared by its actor (writes), its store
/// (syncs, versions, deletions) and its data port (pushes, reads).
pub struct ChunkDir {
    dir: PathBuf,
    crcs: Mutex<BTreeMap<Handle, Crcs>>,
    pushed: Mutex<PushBuffer>,
}

impl ChunkDir {
    /// The chunk directory of the data directory `data_dir`: one per directory in a process.
    pub fn open(data_dir: &Path) -> Arc<ChunkDir> {
        static DIRS: OnceLock<Mutex<HashMap<PathBuf, Arc<ChunkDir>>>> = OnceLock::new();
        let dir = data_dir.join("chunks");
        let mut dirs = DIRS
            .get_or_init(Default::default)
            .lock()
            .expect("dirs lock");
        dirs.entry(dir.clone())
            .or_insert_with(|| {
                Arc::new(ChunkDir {
                    dir,
                    crcs: Mutex::new(BTreeMap::new()),
                    pushed: Mutex::new(PushBuffer::default()),
                })
            })
            .clone()
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn data_path(&self, h: Handle) -> PathBuf {
        self.dir.join(format!("{h}.chunk"))
    }

    fn crc_path(&self, h: Handle) -> PathBuf {
        self.dir.join(format!("{h}.crc"))
    }

    fn version_path(&self, h: Handle) -> PathBuf {
        self.dir.join(format!("{h}.version"))
    }

    /// Keeps pushed data (§3.2).
    pub fn push(&self, rec: RecId, bytes: Arc<[u8]>) {
        self.pushed.lock().expect("push lock").insert(rec, bytes);
    }

    /// The first `len` bytes of pushed record `rec`, if it was pushed whole.
    pub fn pushed(&self, rec: RecId, len: u64) -> Option<Arc<[u8]>> {
        let buf = self.pushed.lock().expect("push lock");
        let (bytes, _) = buf.data.get(&rec)?;
        (bytes.len() as u64 >= len).then(|| bytes.clone())
    }

    /// Drops pushed record `rec`: written (a retry pushes it again).
    pub fn forget(&self, rec: RecId) {
        let mut buf = self.pushed.lock().expect("push lock");
        if let Some((b, _)) = buf.data.remove(&rec) {
            buf.bytes -= b.len();
        }
    }

    /// Writes `bytes` at `offset` of chunk `h` (into the page cache; [`ChunkDir::sync`] makes
    /// it durable) and updates the checksums of the blocks it touches.
    pub fn write(&self, h: Handle, offset: Offset, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.data_path(h))?;
        f.write_all_at(bytes, offset)?;
        let end = offset + bytes.len() as u64;
        let mut crcs = self.crcs.lock().expect("crc lock");
        let c = crcs.entry(h).or_default();
        let covered = c.covered();
        if offset == covered {
            // An append at the end (§5.2: "we just incrementally update the checksum for the
            // last partial checksum block").
            let mut at = offset;
            let mut rest = bytes;
            while !rest.is_empty() {
                let block = (at / BLOCK) as usize;
                let room = (BLOCK - at % BLOCK) as usize;
                let take = room.min(rest.len());
                if block == c.blocks.len() {
                    c.blocks.push((0, 0));
                }
                let (crc, len) = c.blocks[block];
                let mut hasher = crc32fast::Hasher::new_with_initial(crc);
                hasher.update(&rest[..take]);
                c.blocks[block] = (hasher.finalize(), len + take as u32);
                at += take as u64;
                rest = &rest[take..];
            }
        } else {
            // Anywhere else (a secondary writing past a region it missed): the touched blocks
            // again, from the file.
            let first = offset.min(covered) / BLOCK;
            let last = (end - 1) / BLOCK;
            let file_len = f.metadata()?.len();
            c.blocks
                .resize((last + 1).max(c.blocks.len() as u64) as usize, (0, 0));
            let mut buf = vec![0u8; BLOCK as usize];
            for block in first..=last {
                let start = block * BLOCK;
                let n = (file_len.min(start + BLOCK) - start) as usize;
                f.read_exact_at(&mut buf[..n], start)?;
                c.blocks[block as usize] = (crc32fast::hash(&buf[..n]), n as u32);
            }
        }
        c.dirty = true;
        c.unsynced = true;
        Ok(())
    }

    /// Makes every write so far durable: each changed chunk's data, then its checksums.
    pub fn sync(&self) -> io::Result<()> {
        let mut crcs = self.crcs.lock().expect("crc lock");
        for (h, c) in crcs.iter_mut().filter(|(_, c)| c.dirty) {
            if c.unsynced {
                File::open(self.data_path(*h))?.sync_data()?;
                c.unsynced = false;
            }
            let mut bytes = Vec::with_capacity(c.blocks.len() * 8);
            for (crc, len) in &c.blocks {
                bytes.extend_from_slice(&crc.to_le_bytes());
                bytes.extend_from_slice(&len.to_le_bytes());
            }
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.crc_path(*h))?;
            f.write_all_at(&bytes, 0)?;
            f.set_len(bytes.len() as u64)?;
            f.sync_data()?;
            c.dirty = false;
        }
        Ok(())
    }

    /// Records chunk `h`'s version (§4.5), durably.
    pub fn set_version(&self, h: Handle, v: Version) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        // A chunk with a version and no data yet is an empty chunk, and reads as one.
        self.crcs.lock().expect("crc lock").entry(h).or_default();
        crate::storage::write_atomic(&self.version_path(h), v.to_string().as_bytes())
    }

    /// Deletes chunk `h` (§4.4).
    pub fn delete(&self, h: Handle) -> io::Result<()> {
        self.crcs.lock().expect("crc lock").remove(&h);
        for p in [self.version_path(h), self.crc_path(h), self.data_path(h)] {
            match fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Installs a whole replica copied from another chunkserver (§4.3).
    pub fn install(&self, h: Handle, bytes: &[u8]) -> io::Result<()> {
        self.delete(h)?;
        if !bytes.is_empty() {
            self.write(h, 0, bytes)?;
        }
        self.sync()
    }

    /// The chunks on disk, their versions and lengths. Each is truncated to what its
    /// checksums cover (a write the crash interrupted was never acknowledged); a chunk with
    /// a version but no data is empty; stray files are an error, not ignored.
    pub fn load(&self) -> io::Result<Vec<(Handle, Version, u64)>> {
        let mut found = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(e),
        };
        let mut crcs = self.crcs.lock().expect("crc lock");
        crcs.clear();
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some(h) = name.strip_suffix(".version") else {
                continue;
            };
            let bad = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
            let h: Handle = h.parse().map_err(|_| {
                bad(format!(
                    "{}: not a chunk file",
                    self.dir.join(&name).display()
                ))
            })?;
            let text = fs::read_to_string(self.version_path(h))?;
            let v: Version = text.trim().parse().map_err(|_| {
                bad(format!(
                    "{}: not a version number",
                    self.version_path(h).display()
                ))
            })?;
            let mut c = Crcs::default();
            if let Ok(bytes) = fs::read(self.crc_path(h)) {
                c.blocks = bytes
                    .chunks_exact(8)
                    .map(|e| {
                        let crc = u32::from_le_bytes(e[..4].try_into().expect("4 bytes"));
                        let len = u32::from_le_bytes(e[4..].try_into().expect("4 bytes"));
                        (crc, len)
                    })
                    .collect();
            }
            let len = c.covered();
            match OpenOptions::new().write(true).open(self.data_path(h)) {
                Ok(f) => {
                    if f.metadata()?.len() != len {
                        f.set_len(len)?;
                        f.sync_data()?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            crcs.insert(h, c);
            found.push((h, v, len));
        }
        found.sort();
        Ok(found)
    }

    /// Bytes `offset..offset + len` of chunk `h` (to its end at most), each block checked
    /// against its checksum (§5.2). `Ok(None)`: no such chunk.
    pub fn read(&self, h: Handle, offset: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
        let blocks = match self.crcs.lock().expect("crc lock").get(&h) {
            Some(c) => c.blocks.clone(),
            None => return Ok(None),
        };
        let covered = Crcs {
            blocks: blocks.clone(),
            ..Crcs::default()
        }
        .covered();
        let end = offset.saturating_add(len).min(covered);
        if offset >= end {
            return Ok(Some(Vec::new()));
        }
        let f = File::open(self.data_path(h))?;
        let first = offset / BLOCK;
        let last = (end - 1) / BLOCK;
        let start = first * BLOCK;
        let stop = ((last + 1) * BLOCK).min(covered);
        let mut buf = vec![0u8; (stop - start) as usize];
        f.read_exact_at(&mut buf, start)?;
        for b in first..=last {
            let (crc, n) = blocks[b as usize];
            let at = ((b - first) * BLOCK) as usize;
            if crc32fast::hash(&buf[at..at + n as usize]) != crc {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("chunk {h}: block {b} does not match its checksum"),
                ));
            }
        }
        Ok(Some(
            buf[(offset - start) as usize..(end - start) as usize].to_vec(),
        ))
    }
}

/// Serves the data port at `addr` in background threads, for as long as the process runs.
pub fn serve(addr: SocketAddr, dir: Arc<ChunkDir>) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    crate::serve_connections(listener, "data", move |conn| serve_conn(conn, &dir));
    Ok(())
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn serve_conn(conn: TcpStream, dir: &ChunkDir) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut w = BufWriter::new(conn);
    loop {
        let mut kind = [0u8; 1];
        match r.read_exact(&mut kind) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            other => other?,
        }
        match kind[0] {
            PUSH => {
                let rec = read_u64(&mut r)?;
                let len = read_u64(&mut r)?;
                if len > MAX_PUSH {
                    w.write_all(&[TOO_BIG])?;
                    w.flush()?;
                    return Err(io::Error::other(format!("a push of {len} bytes")));
                }
                let mut bytes = vec![0u8; len as usize];
                r.read_exact(&mut bytes)?;
                dir.push(rec, bytes.into());
                w.write_all(&[OK])?;
            }
            READ => {
                let h = read_u64(&mut r)?;
                let offset = read_u64(&mut r)?;
                let len = read_u64(&mut r)?;
                match dir.read(h, offset, len) {
                    Ok(Some(bytes)) => {
                        w.write_all(&[OK])?;
                        w.write_all(&(bytes.len() as u64).to_le_bytes())?;
                        w.write_all(&bytes)?;
                    }
                    Ok(None) => w.write_all(&[NO_CHUNK])?,
                    Err(e) => {
                        tracing::warn!(chunk = h, error = %e, "read failed");
                        w.write_all(&[CORRUPT])?;
                    }
                }
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown data request {other}"),
                ))
            }
        }
        w.flush()?;
    }
}

/// A client of chunkservers' data ports, keeping one connection to each.
#[derive(Default)]
pub struct DataClient {
    conns: HashMap<SocketAddr, (BufReader<TcpStream>, BufWriter<TcpStream>)>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the chunkserver has no such chunk")]
    NoChunk,
    #[error("the replica does not match its checksums")]
    Corrupt,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl DataClient {
    fn conn(
        &mut self,
        addr: SocketAddr,
    ) -> io::Result<&mut (BufReader<TcpStream>, BufWriter<TcpStream>)> {
        match self.conns.entry(addr) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.set_write_timeout(Some(Duration::from_secs(10)))?;
                Ok(e.insert((BufReader::new(s.try_clone()?), BufWriter::new(s))))
            }
        }
    }

    fn attempt<T>(
        &mut self,
        addr: SocketAddr,
        f: impl FnOnce(&mut BufReader<TcpStream>, &mut BufWriter<TcpStream>) -> Result<T, ReadError>,
    ) -> Result<T, ReadError> {
        let (r, w) = self.conn(addr)?;
        let out = f(r, w);
        if matches!(out, Err(ReadError::Io(_))) {
            self.conns.remove(&addr);
        }
        out
    }

    /// Pushes record `rec` to the chunkserver at `addr` (§3.2).
    pub fn push(&mut self, addr: SocketAddr, rec: RecId, bytes: &[u8]) -> Result<(), ReadError> {
        self.attempt(addr, |r, w| {
            w.write_all(&[PUSH])?;
            w.write_all(&rec.to_le_bytes())?;
            w.write_all(&(bytes.len() as u64).to_le_bytes())?;
            w.write_all(bytes)?;
            w.flush()?;
            let mut status = [0u8; 1];
            r.read_exact(&mut status)?;
            match status[0] {
                OK => Ok(()),
                s => Err(ReadError::Io(io::Error::other(format!(
                    "push refused ({s})"
                )))),
            }
        })
    }

    /// Bytes `offset..offset + len` of chunk `h` from the chunkserver at `addr`.
    pub fn read(
        &mut self,
        addr: SocketAddr,
        h: Handle,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, ReadError> {
        self.attempt(addr, |r, w| {
            w.write_all(&[READ])?;
            for x in [h, offset, len] {
                w.write_all(&x.to_le_bytes())?;
            }
            w.flush()?;
            let mut status = [0u8; 1];
            r.read_exact(&mut status)?;
            match status[0] {
                OK => {
                    let n = read_u64(r)?;
                    if n > len.min(MAX_PUSH.max(1 << 30)) {
                        return Err(ReadError::Io(io::Error::other("an oversized reply")));
                    }
                    let mut bytes = vec![0u8; n as usize];
                    r.read_exact(&mut bytes)?;
                    Ok(bytes)
                }
                NO_CHUNK => Err(ReadError::NoChunk),
                _ => Err(ReadError::Corrupt),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gfs-chunks-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_are_checksummed_and_a_restart_truncates_to_the_checksums() {
        let d = scratch("crc");
        let dir = ChunkDir::open(&d);
        dir.set_version(7, 3).unwrap();
        let a: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        dir.write(7, 0, &a).unwrap();
        // A write past a gap (a secondary that missed a mutation): the gap reads as zeros.
        dir.write(7, 150_000, b"tail").unwrap();
        dir.sync().unwrap();
        let got = dir.read(7, 0, u64::MAX).unwrap().unwrap();
        assert_eq!(got.len(), 150_004);
        assert_eq!(&got[..100_000], &a[..]);
        assert!(got[100_000..150_000].iter().all(|b| *b == 0));
        assert_eq!(&got[150_000..], b"tail");
        assert_eq!(
            dir.read(7, 99_998, 4).unwrap().unwrap(),
            vec![a[99_998], a[99_999], 0, 0]
        );
        assert!(dir.read(8, 0, 1).unwrap().is_none());

        // A write that never synced its checksums (a crash before the save): dropped at load.
        dir.write(7, 150_004, b"unacknowledged").unwrap();
        File::open(dir.data_path(7)).unwrap().sync_all().unwrap();
        assert_eq!(dir.load().unwrap(), vec![(7, 3, 150_004)]);
        assert_eq!(fs::metadata(dir.data_path(7)).unwrap().len(), 150_004);

        // A flipped byte on disk is found by the read's checksum check (§5.2).
        let f = OpenOptions::new()
            .write(true)
            .open(dir.data_path(7))
            .unwrap();
        f.write_all_at(&[a[70_000] ^ 1], 70_000).unwrap();
        let e = dir.read(7, 65_536, 10).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
        assert!(dir.read(7, 0, 10).is_ok(), "other blocks still read");
        dir.delete(7).unwrap();
        assert!(dir.load().unwrap().is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_data_port_takes_pushes_and_serves_reads() {
        let d = scratch("port");
        let dir = ChunkDir::open(&d);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        serve(port, dir.clone()).unwrap();
        let mut c = DataClient::default();
        c.push(port, 42, b"hello").unwrap();
        assert_eq!(dir.pushed(42, 5).unwrap().as_ref(), b"hello");
        assert!(
            dir.pushed(42, 6).is_none(),
            "a short push is not the record"
        );
        dir.write(1, 0, b"hello").unwrap();
        dir.sync().unwrap();
        assert_eq!(c.read(port, 1, 1, 100).unwrap(), b"ello");
        assert!(matches!(c.read(port, 2, 0, 1), Err(ReadError::NoChunk)));
        // A malformed request closes that connection only; the port still serves.
        let mut raw = TcpStream::connect(port).unwrap();
        raw.write_all(&[99, 1, 2, 3]).unwrap();
        let mut sink = Vec::new();
        let _ = raw.read_to_end(&mut sink);
        assert_eq!(c.read(port, 1, 0, 5).unwrap(), b"hello");
        fs::remove_dir_all(&d).unwrap();
    }
}
