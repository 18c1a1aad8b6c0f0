//! The cluster file: which actor id listens where.
//!
//! ```toml
//! [nodes]
//! 0 = "127.0.0.1:7000"
//! 1 = "127.0.0.1:7001"
//! ```
//!
//! Connections are mutual TLS ([`crate::tls`]) with the certificates in the cluster file's
//! directory, unless the file says `insecure = true` (plaintext: `cluster --insecure` writes it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use stateright::actor::Id;

/// Why a cluster file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: {1}")]
    Parse(String, String),
}

/// Actor ids and their addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    pub nodes: BTreeMap<Id, SocketAddr>,
    /// Data ports, for protocols that move bulk data outside their messages (GFS, §3.2):
    /// the optional `[data]` table, id = "host:port".
    pub data: BTreeMap<Id, SocketAddr>,
    /// Where the cluster's certificates are ([`crate::tls`]); `None`: plaintext, anyone who
    /// reaches a port may speak for a node. A file read with [`ClusterConfig::load`] names its
    /// own directory unless it says `insecure = true`.
    pub tls_dir: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
struct File {
    nodes: BTreeMap<String, String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    insecure: bool,
}

impl ClusterConfig {
    pub fn parse(name: &str, text: &str) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::Parse(name.to_string(), m);
        let file: File = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let table = |t: BTreeMap<String, String>| {
            let mut out = BTreeMap::new();
            for (id, addr) in t {
                let id: u64 = id
                    .parse()
                    .map_err(|_| err(format!("node id '{id}' is not a number")))?;
                let addr: SocketAddr = addr
                    .parse()
                    .map_err(|_| err(format!("node {id}: '{addr}' is not a socket address")))?;
                out.insert(Id::from(id as usize), addr);
            }
            Ok::<_, ConfigError>(out)
        };
        let nodes = table(file.nodes)?;
        let data = table(file.data)?;
        if let Some(id) = data.keys().find(|id| !nodes.contains_key(id)) {
            return Err(err(format!(
                "data port of node {} which is not in [nodes]",
                usize::from(*id)
            )));
        }
        let tls_dir = (!file.insecure).then(|| PathBuf::from("."));
        Ok(ClusterConfig {
            nodes,
            data,
            tls_dir,
        })
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(name.clone(), e))?;
        let mut config = Self::parse(&name, &text)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        config.tls_dir = config.tls_dir.map(|d| {
            if d == Path::new(".") {
                dir.to_path_buf()
            } else {
                dir.join(d)
            }
        });
        Ok(config)
    }

    /// Loads `who`'s certificate ([`crate::tls::Tls::load`]), unless the cluster is plaintext.
    pub fn tls(
        &self,
        who: crate::tls::Who,
    ) -> Result<Option<std::sync::Arc<crate::tls::Tls>>, crate::tls::TlsError> {
        self.tls_dir
            .as_deref()
            .map(|dir| crate::tls::Tls::load(dir, who).map(std::sync::Arc::new))
            .transpose()
    }

    /// The file's text for these nodes.
    pub fn to_toml(&self) -> String {
        let mut out = String::new();
        if self.tls_dir.is_none() {
            out.push_str("# Plaintext: any process that reaches a port may speak for a node.\ninsecure = true\n\n");
        }
        out.push_str("[nodes]\n");
        for (id, addr) in &self.nodes {
            out.push_str(&format!("{} = \"{addr}\"\n", usize::from(*id)));
        }
        if !self.data.is_empty() {
            out.push_str("\n[data]\n");
            for (id, addr) in &self.data {
                out.push_str(&format!("{} = \"{addr}\"\n", usize::from(*id)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_clusters() {
        let c = ClusterConfig::parse(
            "c.toml",
            "[nodes]\n0 = \"127.0.0.1:7000\"\n2 = \"127.0.0.1:7002\"\n",
        )
        .unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.nodes[&Id::from(2)].port(), 7002);
        assert_eq!(c.tls_dir, Some(PathBuf::from(".")));
        let plain = ClusterConfig {
            tls_dir: None,
            ..c.clone()
        };
        assert_eq!(ClusterConfig::parse("x", &plain.to_toml()).unwrap(), plain);
        assert_eq!(ClusterConfig::parse("x", &c.to_toml()).unwrap(), c);
        let e = ClusterConfig::parse("c.toml", "[nodes]\nx = \"1.2.3.4:5\"\n").unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
        let e = ClusterConfig::parse("c.toml", "[nodes]\n1 = \"nowhere\"\n").unwrap_err();
        assert!(e.to_string().contains("not a socket address"), "{e}");
        let d = ClusterConfig::parse(
            "c.toml",
            "[nodes]\n0 = \"127.0.0.1:7000\"\n[data]\n0 = \"127.0.0.1:8000\"\n",
        )
        .unwrap();
        assert_eq!(d.data[&Id::from(0)].port(), 8000);
        assert_eq!(ClusterConfig::parse("x", &d.to_toml()).unwrap(), d);
        let e =
            ClusterConfig::parse("c.toml", "[nodes]\n[data]\n3 = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(e.to_string().contains("not in [nodes]"), "{e}");
    }
}
