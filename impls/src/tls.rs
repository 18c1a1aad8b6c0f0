//! Who may speak to a node: mutual TLS between nodes, clients and administrators.
//!
//! A hello frame only *claims* an identity (`{"Hello":{"id":1,"role":"Peer"}}`); without more, any
//! process that reaches a node's port could speak for a peer (a forged `AppendEntries` of a high
//! term) or an administrator (a partition). So every connection of the runtime is TLS with a
//! certificate on *both* sides, issued by the cluster's own certificate authority, and the node
//! accepts a hello only when the sender's certificate names what the hello claims:
//! - node `N` holds `node-N.pem` (its certificate names the DNS name `node-N`): the only one that
//!   may say hello as peer `N`, and the name a client or peer checks when it connects to node `N`;
//! - `client.pem` names `client`: any client id, never a peer's;
//! - `admin.pem` names `admin`: fault commands and status queries.
//!
//! [`make_certificates`] writes the authority (`ca.pem`, `ca-key.pem`) and these pairs into a
//! directory (`cluster` does it in the cluster's); [`Tls::load`] reads one party's. The handshake
//! refuses a missing, expired or foreign certificate (rustls' webpki verifier, with the reason
//! logged); [`Stream::certifies`] then compares the certificate with the hello.
//!
//! A TLS session cannot be cloned like a `TcpStream`, yet the runtime reads a connection in one
//! thread and writes it in another. A [`Stream`] therefore shares its session behind a mutex that
//! is held only while bytes are encrypted or decrypted, never while the reader waits on the
//! socket: the reader reads ciphertext from its own clone of the socket, then takes the lock to
//! feed it to the session.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig};

use crate::node::Role;

/// How long a handshake may take before the connection is dropped: a silent connection must not
/// hold a node's thread.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: {1} (make certificates with `cluster`, or run with --insecure)")]
    File(String, String),
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}: {1}")]
    Write(String, io::Error),
}

impl From<TlsError> for io::Error {
    fn from(e: TlsError) -> Self {
        io::Error::other(e.to_string())
    }
}

/// A party of the cluster, as its certificate names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Node(usize),
    Client,
    Admin,
}

impl Who {
    /// What a hello claims: a peer claims a node's id, the other roles only their role.
    pub fn claimed(id: usize, role: Role) -> Who {
        match role {
            Role::Peer => Who::Node(id),
            Role::Client => Who::Client,
            Role::Admin => Who::Admin,
        }
    }

    /// The DNS name in the party's certificate, and the stem of its files.
    pub fn name(&self) -> String {
        match self {
            Who::Node(i) => format!("node-{i}"),
            Who::Client => "client".to_string(),
            Who::Admin => "admin".to_string(),
        }
    }

    fn server_name(&self) -> ServerName<'static> {
        ServerName::try_from(self.name()).expect("node-N, client and admin are DNS names")
    }

    fn cert_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.pem", self.name()))
    }

    fn key_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}-key.pem", self.name()))
    }
}

/// The command-line flags of `node` and `client` that override the cluster file's choice.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TlsFlags {
    /// Where the cluster's certificates are (ca.pem, node-N.pem and node-N-key.pem,
    /// client.pem, admin.pem, ...); by default the cluster file's directory.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// Plaintext instead of mutual TLS: no authentication, any process that reaches a port may
    /// speak for a node, a client or an administrator.
    #[arg(long, conflicts_with = "tls_dir")]
    pub insecure: bool,
}

impl TlsFlags {
    /// Applies the flags to a cluster file's settings.
    pub fn apply(&self, config: &mut crate::config::ClusterConfig) {
        if self.insecure {
            config.tls_dir = None;
        } else if let Some(dir) = &self.tls_dir {
            config.tls_dir = Some(dir.clone());
        }
    }
}

/// One party's TLS set-up: its certificate and key, and the cluster's authority.
#[derive(Debug)]
pub struct Tls {
    pub who: Who,
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

/// The `ring` provider: it builds without cmake or nasm, which `aws-lc-rs` needs. rustls marks
/// it deprecated for lacking post-quantum key exchange, which a cluster's throwaway keys on one
/// network can do without.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem<T>(
    path: &Path,
    read: impl FnOnce(&Path) -> Result<T, rustls::pki_types::pem::Error>,
) -> Result<T, TlsError> {
    read(path).map_err(|e| TlsError::File(path.display().to_string(), pem_reason(e)))
}

fn pem_reason(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item found".to_string(),
        e => format!("not a PEM file ({e:?})"),
    }
}

impl Tls {
    /// Reads `who`'s certificate and key and the authority's certificate from `dir`.
    pub fn load(dir: &Path, who: Who) -> Result<Tls, TlsError> {
        let roots = read_roots(&ca_path(dir))?;
        let (chain, key) = read_identity(&who.cert_path(dir), &who.key_path(dir))?;
        let client = client_config(roots.clone(), chain.clone(), key.clone_key())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider()).build()?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        // Connections are long-lived and never resumed: tickets would be bytes for nothing.
        server.send_tls13_tickets = 0;
        Ok(Tls {
            who,
            client,
            server: Arc::new(server),
        })
    }

    /// Opens a connection to `server` at `addr` and completes the handshake, which checks that
    /// its certificate names `server`.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration, server: Who) -> io::Result<Stream> {
        connect_named(&self.client, addr, timeout, server.server_name())
    }

    /// Completes the server side of the handshake on an accepted connection: the peer's
    /// certificate must chain to the authority and be valid now.
    pub fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let conn = rustls::ServerConnection::new(self.server.clone()).map_err(io::Error::other)?;
        Stream::handshake(tcp, conn.into())
    }
}

/// The certificates of the authorities in the PEM file at `path`.
fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    let certs = read_pem(path, |p| {
        CertificateDer::pem_file_iter(p)?.collect::<Result<Vec<_>, _>>()
    })?;
    for ca in certs {
        roots
            .add(ca)
            .map_err(|e| TlsError::File(path.display().to_string(), e.to_string()))?;
    }
    Ok(Arc::new(roots))
}

/// A certificate chain and its private key, from PEM files.
fn read_identity(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain = read_pem(cert_path, |p| {
        CertificateDer::pem_file_iter(p)?.collect::<Result<Vec<_>, _>>()
    })?;
    if chain.is_empty() {
        return Err(TlsError::File(
            cert_path.display().to_string(),
            "no certificate in it".to_string(),
        ));
    }
    let key = read_pem(key_path, |p| PrivateKeyDer::from_pem_file(p))?;
    Ok((chain, key))
}

fn client_config(
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A client's TLS set-up from PEM files named on a command line (`kvbench etcd --cacert ...`,
/// as etcdctl takes them): for servers that are not a cluster's nodes.
pub fn client_config_from_files(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let (chain, key) = read_identity(cert, key)?;
    client_config(read_roots(ca)?, chain, key)
}

/// Opens a TLS connection to `addr` whose certificate must name `name`.
pub fn connect_named(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    timeout: Duration,
    name: ServerName<'static>,
) -> io::Result<Stream> {
    let tcp = tcp_connect(addr, timeout)?;
    let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    Stream::handshake(tcp, conn.into())
}

/// Connects, with Nagle's algorithm off: frames are small requests and answers.
pub fn tcp_connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Opens a connection to `server` at `addr`: TLS when `tls` is set, plaintext otherwise.
pub fn connect(
    tls: Option<&Tls>,
    addr: SocketAddr,
    timeout: Duration,
    server: Who,
) -> io::Result<Stream> {
    match tls {
        Some(tls) => tls.connect(addr, timeout, server),
        None => Ok(Stream::plain(tcp_connect(addr, timeout)?)),
    }
}

/// A connection, TLS or plaintext. Clones share the TLS session; one clone reads, any may write.
pub struct Stream {
    tcp: TcpStream,
    tls: Option<Arc<Mutex<Connection>>>,
    /// Ciphertext read from the socket and not yet fed to the session (this clone's reads).
    raw: Vec<u8>,
    /// How much of `raw` the session has taken.
    fed: usize,
}

impl Stream {
    pub fn plain(tcp: TcpStream) -> Stream {
        Stream {
            tcp,
            tls: None,
            raw: Vec::new(),
            fed: 0,
        }
    }

    fn handshake(mut tcp: TcpStream, mut conn: Connection) -> io::Result<Stream> {
        let timeout = tcp.read_timeout()?;
        tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        while conn.is_handshaking() {
            // On an error, complete_io has already sent the alert that tells the other side why.
            conn.complete_io(&mut tcp)?;
        }
        tcp.set_read_timeout(timeout)?;
        Ok(Stream {
            tcp,
            tls: Some(Arc::new(Mutex::new(conn))),
            raw: Vec::new(),
            fed: 0,
        })
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Another handle on the same connection (the TLS session is shared, not copied).
    pub fn try_clone(&self) -> io::Result<Stream> {
        Ok(Stream {
            tcp: self.tcp.try_clone()?,
            tls: self.tls.clone(),
            raw: Vec::new(),
            fed: 0,
        })
    }

    /// The socket underneath, to set timeouts or shut it down.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(std::net::Shutdown::Both);
    }

    /// Whether the certificate the other side presented names `who`. A plaintext connection
    /// proves nothing and is taken at its word: that is what `--insecure` means.
    pub fn certifies(&self, who: Who) -> Result<(), String> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        let conn = tls.lock().expect("tls lock");
        let cert = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or("no certificate")?;
        let cert = webpki::EndEntityCert::try_from(cert).map_err(|e| e.to_string())?;
        cert.verify_is_valid_for_subject_name(&who.server_name())
            .map_err(|_| format!("the certificate does not name {}", who.name()))
    }

    /// Sends what the session has to send (records, alerts, handshake messages).
    fn flush_tls(conn: &mut Connection, mut tcp: &TcpStream) -> io::Result<()> {
        while conn.wants_write() {
            conn.write_tls(&mut tcp)?;
        }
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.clone() else {
            return self.tcp.read(buf);
        };
        loop {
            {
                let mut conn = tls.lock().expect("tls lock");
                match conn.reader().read(buf) {
                    // 0: the other side closed the session.
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.fed < self.raw.len() {
                    // The plaintext buffer is empty, so the session has room for a record.
                    let mut rest = &self.raw[self.fed..];
                    self.fed += conn.read_tls(&mut rest)?;
                    let processed = conn.process_new_packets();
                    Self::flush_tls(&mut conn, &self.tcp)?;
                    processed.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    continue;
                }
            }
            // Nothing left to decrypt: wait for the network without holding the session, so
            // that writers go on meanwhile.
            self.raw.resize(16 * 1024, 0);
            let n = self.tcp.read(&mut self.raw);
            let n = n.inspect_err(|_| self.raw.clear())?;
            self.raw.truncate(n);
            self.fed = 0;
            if n == 0 {
                return Ok(0);
            }
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = &self.tls else {
            return (&self.tcp).write(buf);
        };
        let mut conn = tls.lock().expect("tls lock");
        let n = conn.writer().write(buf)?;
        Stream::flush_tls(&mut conn, &self.tcp)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &self.tls {
            None => (&self.tcp).flush(),
            Some(tls) => Stream::flush_tls(&mut tls.lock().expect("tls lock"), &self.tcp),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

/// The authority's certificate in a cluster's directory.
pub fn ca_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}

/// A certificate authority: its certificate and key, to issue the parties' certificates.
pub struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    /// A fresh authority, valid for ten years.
    pub fn new() -> Result<Authority, TlsError> {
        let key = KeyPair::generate()?;
        // Named after its key: a foreign authority is then refused as an unknown issuer rather
        // than as a bad signature from an authority of the same name.
        let tag: String = key.public_key_raw()[1..9]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("workbench cluster CA {tag}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key)?;
        Ok(Authority { cert, key })
    }

    /// Issues `who` a certificate valid from `not_before` to `not_after` (tests give
    /// expired ones), and its key, both PEM.
    pub fn issue(
        &self,
        who: Who,
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> Result<(String, String), TlsError> {
        let mut params = CertificateParams::new(vec![who.name()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, who.name());
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Writes `who`'s certificate (valid for ten years) and key into `dir`.
    pub fn write(&self, dir: &Path, who: Who) -> Result<(), TlsError> {
        let now = time::OffsetDateTime::now_utc();
        let (cert, key) = self.issue(
            who,
            now - time::Duration::days(1),
            now + time::Duration::days(3650),
        )?;
        write_file(&who.cert_path(dir), &cert, false)?;
        write_file(&who.key_path(dir), &key, true)
    }

    /// The authority's certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }
}

/// Writes `text` to `path`; a key only its owner may read (on Unix).
#[cfg_attr(not(unix), allow(unused_variables))]
fn write_file(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
    let err = |e| TlsError::Write(path.display().to_string(), e);
    let mut options = std::fs::File::options();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}

/// The parties of a cluster of `nodes`: each node, clients and administrators.
fn parties(nodes: impl IntoIterator<Item = usize>) -> impl Iterator<Item = Who> {
    nodes
        .into_iter()
        .map(Who::Node)
        .chain([Who::Client, Who::Admin])
}

/// Makes a fresh authority (`ca.pem`) and a certificate and key for each of `nodes`, for clients
/// and for administrators, in `dir`. The authority's key is not kept: nobody issues more.
pub fn make_certificates(
    dir: &Path,
    nodes: impl IntoIterator<Item = usize>,
) -> Result<(), TlsError> {
    let ca = Authority::new()?;
    write_certificates(&ca, dir, nodes)
}

/// Writes `ca`'s certificate and one for each party of a cluster of `nodes` into `dir`.
pub fn write_certificates(
    ca: &Authority,
    dir: &Path,
    nodes: impl IntoIterator<Item = usize>,
) -> Result<(), TlsError> {
    write_file(&ca_path(dir), &ca.cert_pem(), false)?;
    parties(nodes).try_for_each(|who| ca.write(dir, who))
}

/// Keeps the certificates in `dir` if every party of a cluster of `nodes` has one (a cluster
/// started again keeps its clients' certificates valid), else makes them afresh.
pub fn ensure_certificates(
    dir: &Path,
    nodes: impl IntoIterator<Item = usize> + Clone,
) -> Result<(), TlsError> {
    let complete = ca_path(dir).exists()
        && parties(nodes.clone()).all(|w| w.cert_path(dir).exists() && w.key_path(dir).exists());
    if complete {
        return Ok(());
    }
    make_certificates(dir, nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake and one exchange each way between a node and a client, and the names checked.
    #[test]
    fn mutual_tls_names_both_sides() {
        let dir = std::env::temp_dir().join(format!("tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        make_certificates(&dir, [0, 1]).unwrap();
        let node = Tls::load(&dir, Who::Node(0)).unwrap();
        let client = Tls::load(&dir, Who::Client).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let mut s = node.accept(tcp).unwrap();
            assert_eq!(s.certifies(Who::Client), Ok(()));
            assert!(s.certifies(Who::Node(1)).is_err());
            let mut buf = [0; 5];
            s.read_exact(&mut buf).unwrap();
            (&s).write_all(&buf).unwrap();
        });
        let mut c = client
            .connect(addr, Duration::from_secs(1), Who::Node(0))
            .unwrap();
        (&c).write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
        // Node 1's name is not node 0's: the client refuses the server.
        let wrong = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = wrong.local_addr().unwrap();
        let node1 = Tls::load(&dir, Who::Node(1)).unwrap();
        let t = std::thread::spawn(move || {
            let (tcp, _) = wrong.accept().unwrap();
            assert!(node1.accept(tcp).is_err());
        });
        assert!(client
            .connect(addr, Duration::from_secs(1), Who::Node(0))
            .is_err());
        t.join().unwrap();
        let e = Tls::load(&dir.join("nowhere"), Who::Client).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
