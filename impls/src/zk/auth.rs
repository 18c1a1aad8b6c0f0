//! ZooKeeper's access control: who a connection is, and what an ACL lets it do
//! (`ZooKeeperServer.checkACL`, `PrepRequestProcessor.fixupACL`, the providers of
//! `server/auth`).
//!
//! # Ids
//! A connection is a list of [`Id`]s (`ServerCnxn.authInfo`): `ip:<its address>` from the start,
//! then what each `addauth` adds ([`authenticate`]). Two schemes have a provider, as in a
//! ZooKeeper server with no `zookeeper.authProvider.*` set:
//! - `digest`: `addauth digest user:password` adds `digest:user:base64(sha1("user:password"))`
//!   ([`digest`]). If that id is the super digest, `super:` comes first (the super user).
//! - `ip`: `addauth ip` adds the connection's address again (no change).
//!
//! Any other scheme is `AUTH_FAILED`, and the server closes the connection.
//!
//! # ACLs
//! An ACL entry grants its [`perms`] bits to one id: `world:anyone` (everyone), `digest:user:hash`
//! (a connection with that id), `ip:a.b.c.d[/bits]` (a connection from that IPv4 network).
//! [`check`] passes if the connection has `super`, or if an entry with one of the asked bits
//! matches one of its ids. An op asks for: create CREATE on the parent, delete DELETE on the
//! parent, setData WRITE, check, getData, getChildren and getAllChildrenNumber READ, getACL READ
//! or ADMIN (without ADMIN the digests come back as `user:x`, [`redact`]), setACL ADMIN; exists,
//! sync and getEphemerals nothing.
//!
//! An ACL a client sends (create, setACL) is [`fixup`]'s first: duplicates go, every entry must
//! be valid, and `auth:` stands for each of the connection's ids whose provider authenticates:
//! its digests, never its address.
//!
//! # The super user
//! ZooKeeper has one when `-Dzookeeper.DigestAuthenticationProvider.superDigest` is set: a
//! connection whose digest equals it gets the id `super:`, which passes every check. Here the
//! digest is [`SUPER_DIGEST_VAR`] in a server's environment (`cluster` passes its own on to its
//! nodes). Unset, it is [`KAZOO_SUPER_DIGEST`], the one kazoo's test harness gives its servers
//! (user `super`, password `test`), so that kazoo's tests meet the server they expect: this is a
//! test ensemble, and anyone who knows that password may do anything. Set it empty for no
//! super user (ZooKeeper's default), or to `super:base64(sha1("super:<password>"))`.

use std::net::IpAddr;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};

use super::jute::{err, Acl, ClientInfo, Id};

/// The environment variable that sets a server's super digest (`user:base64(sha1)`).
pub const SUPER_DIGEST_VAR: &str = "ZK_SUPER_DIGEST";

/// What kazoo's harness gives ZooKeeper as its super digest: `super:test`.
pub const KAZOO_SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

/// The super digest from [`SUPER_DIGEST_VAR`]: unset, [`KAZOO_SUPER_DIGEST`]; empty, none.
pub fn super_digest_from_env() -> Option<String> {
    match std::env::var(SUPER_DIGEST_VAR) {
        Ok(v) if v.is_empty() => None,
        Ok(v) => Some(v),
        Err(_) => Some(KAZOO_SUPER_DIGEST.to_string()),
    }
}

fn id(scheme: &str, id: impl Into<String>) -> Id {
    Id {
        scheme: scheme.into(),
        id: id.into(),
    }
}

/// The ids of a new connection from `peer` (`NIOServerCnxn`: its address).
pub fn connection_ids(peer: IpAddr) -> Vec<Id> {
    vec![id("ip", peer.to_canonical().to_string())]
}

/// `DigestAuthenticationProvider.generateDigest`: `user:base64(sha1("user:password"))`, the user
/// being what comes before the first ':'.
pub fn digest(user_password: &str) -> String {
    let user = user_password
        .split(':')
        .next()
        .expect("split yields one item");
    let sha = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(sha)
    )
}

/// An auth packet (`ZooKeeperServer.processPacket`, then the scheme's provider): the ids it
/// adds to a connection from `peer`, or `AUTH_FAILED` for a scheme with no provider.
pub fn authenticate(
    scheme: &str,
    auth: &[u8],
    peer: IpAddr,
    super_digest: Option<&str>,
) -> Result<Vec<Id>, i32> {
    match provider(scheme) {
        Some(Provider::Digest) => {
            // Java's `new String(authData)`: bytes that are not UTF-8 are replaced.
            let digest = digest(&String::from_utf8_lossy(auth));
            let mut ids = Vec::new();
            if super_digest == Some(digest.as_str()) {
                ids.push(id("super", ""));
            }
            ids.push(id("digest", digest));
            Ok(ids)
        }
        Some(Provider::Ip) => Ok(connection_ids(peer)),
        None => Err(err::AUTH_FAILED),
    }
}

/// Adds ids to a connection's, each once (`ServerCnxn.addAuthInfo`).
pub fn add_ids(ids: &mut Vec<Id>, new: Vec<Id>) {
    for i in new {
        if !ids.contains(&i) {
            ids.push(i);
        }
    }
}

/// The schemes with a provider (`ProviderRegistry`'s defaults).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Provider {
    Digest,
    Ip,
}

fn provider(scheme: &str) -> Option<Provider> {
    match scheme {
        "digest" => Some(Provider::Digest),
        "ip" => Some(Provider::Ip),
        _ => None,
    }
}

impl Provider {
    /// Whether an `auth:` ACL entry may stand for an id of this scheme.
    fn is_authenticated(self) -> bool {
        self == Provider::Digest
    }

    fn is_valid(self, id: &str) -> bool {
        match self {
            // `id.split(":").length == 2`: Java's split drops trailing empty strings.
            Provider::Digest => id.trim_end_matches(':').split(':').count() == 2,
            Provider::Ip => ip_network(id).is_some(),
        }
    }

    /// Whether a connection's id (of this scheme) matches an ACL entry's.
    fn matches(self, id: &str, acl_id: &str) -> bool {
        match self {
            Provider::Digest => id == acl_id,
            Provider::Ip => {
                let (Some((net, bits)), Some(addr)) = (ip_network(acl_id), ipv4(id)) else {
                    return false;
                };
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                addr & mask == net & mask
            }
        }
    }
}

/// `IPAuthenticationProvider.v4addr2Bytes`: four decimal numbers of 0 to 255 (IPv4 only, as
/// in ZooKeeper 3.8).
fn ipv4(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    parts.iter().try_fold(0u32, |acc, p| {
        let v: i32 = p.parse().ok()?;
        let v = u8::try_from(v).ok()?;
        Some(acc << 8 | u32::from(v))
    })
}

/// An `ip` ACL id: an address and a prefix length (32 if none), as `isValid` accepts it.
fn ip_network(id: &str) -> Option<(u32, u32)> {
    let (addr, bits) = match id.split_once('/') {
        Some((addr, bits)) => (addr, Some(bits)),
        None => (id, None),
    };
    let addr = ipv4(addr)?;
    let bits = match bits {
        None => 32,
        Some(b) => u32::try_from(b.parse::<i32>().ok()?)
            .ok()
            .filter(|b| *b <= 32)?,
    };
    Some((addr, bits))
}

/// `ZooKeeperServer.checkACL`: `NO_AUTH` unless the ids may do one of `perm`'s bits. An empty
/// ACL lets anyone do anything.
pub fn check(acl: &[Acl], perm: i32, ids: &[Id]) -> Result<(), i32> {
    if acl.is_empty() || ids.iter().any(|i| i.scheme == "super") {
        return Ok(());
    }
    let allowed = acl.iter().filter(|a| a.perms & perm != 0).any(|a| {
        (a.scheme == "world" && a.id == "anyone")
            || provider(&a.scheme).is_some_and(|p| {
                ids.iter()
                    .any(|i| i.scheme == a.scheme && p.matches(&i.id, &a.id))
            })
    });
    match allowed {
        true => Ok(()),
        false => Err(err::NO_AUTH),
    }
}

/// `PrepRequestProcessor.fixupACL`: duplicates dropped; then it must not be empty, `auth:`
/// entries become one entry for each of `ids` whose provider authenticates (there must be
/// one), and every other entry must be `world:anyone` or valid for its provider.
pub fn fixup(acl: &[Acl], ids: &[Id]) -> Result<Vec<Acl>, i32> {
    let mut unique: Vec<&Acl> = Vec::new();
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(err::INVALID_ACL);
    }
    let mut fixed = Vec::new();
    for a in unique {
        if a.scheme == "world" && a.id == "anyone" {
            fixed.push(a.clone());
        } else if a.scheme == "auth" {
            let before = fixed.len();
            for i in ids {
                if provider(&i.scheme).is_some_and(Provider::is_authenticated) {
                    fixed.push(Acl {
                        perms: a.perms,
                        scheme: i.scheme.clone(),
                        id: i.id.clone(),
                    });
                }
            }
            if fixed.len() == before {
                return Err(err::INVALID_ACL);
            }
        } else if provider(&a.scheme).is_some_and(|p| p.is_valid(&a.id)) {
            fixed.push(a.clone());
        } else {
            return Err(err::INVALID_ACL);
        }
    }
    Ok(fixed)
}

/// An ACL as getACL shows it without ADMIN: each digest's hash replaced by `x`.
pub fn redact(acl: Vec<Acl>) -> Vec<Acl> {
    acl.into_iter()
        .map(|a| match (a.scheme.as_str(), a.id.split_once(':')) {
            ("digest", Some((user, _))) => Acl {
                id: format!("{user}:x"),
                ..a
            },
            _ => a,
        })
        .collect()
}

/// `whoAmI`'s answer: each id, a digest by its user alone (`AuthUtil.getUser`).
pub fn client_infos(ids: &[Id]) -> Vec<ClientInfo> {
    ids.iter()
        .map(|i| ClientInfo {
            auth_scheme: i.scheme.clone(),
            user: match i.scheme.as_str() {
                "digest" => i.id.split(':').next().unwrap_or_default().to_string(),
                _ => i.id.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zk::jute::perms;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// kazoo's `make_digest_acl_credential`, as its tests use it.
    #[test]
    fn digests_are_kazoos() {
        assert_eq!(digest("super:test"), KAZOO_SUPER_DIGEST);
        assert_eq!(digest("u:p"), "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=");
        // Only the first ':' ends the user; the whole string is hashed.
        assert!(digest("u:p:q").starts_with("u:"));
        assert_ne!(digest("u:p:q"), digest("u:p"));
    }

    #[test]
    fn digest_auth_adds_super_first_and_unknown_schemes_fail() {
        let super_digest = Some(KAZOO_SUPER_DIGEST);
        assert_eq!(
            authenticate("digest", b"super:test", LOCAL, super_digest).unwrap(),
            [id("super", ""), id("digest", KAZOO_SUPER_DIGEST)]
        );
        assert_eq!(
            authenticate("digest", b"super:test", LOCAL, None).unwrap(),
            [id("digest", KAZOO_SUPER_DIGEST)]
        );
        assert_eq!(
            authenticate("ip", b"anything", LOCAL, None).unwrap(),
            [id("ip", "127.0.0.1")]
        );
        for scheme in ["unknown-scheme", "world", "auth", "super", ""] {
            assert_eq!(
                authenticate(scheme, b"u:p", LOCAL, super_digest),
                Err(err::AUTH_FAILED)
            );
        }
        let mut ids = connection_ids(LOCAL);
        add_ids(&mut ids, authenticate("ip", b"", LOCAL, None).unwrap());
        add_ids(
            &mut ids,
            authenticate("digest", b"u:p", LOCAL, None).unwrap(),
        );
        add_ids(
            &mut ids,
            authenticate("digest", b"u:p", LOCAL, None).unwrap(),
        );
        assert_eq!(ids, [id("ip", "127.0.0.1"), id("digest", digest("u:p"))]);
    }

    #[test]
    fn check_grants_any_asked_bit_to_a_matching_id() {
        let alice = [id("ip", "10.1.2.3"), id("digest", "alice:h")];
        let bob = [id("ip", "192.168.0.9")];
        let su = [id("super", "")];
        let node = [
            acl(perms::READ, "world", "anyone"),
            acl(perms::ALL, "digest", "alice:h"),
            acl(perms::WRITE, "ip", "192.168.0.0/16"),
        ];
        assert_eq!(check(&node, perms::READ, &[]), Ok(()));
        assert_eq!(check(&node, perms::DELETE, &alice), Ok(()));
        assert_eq!(check(&node, perms::DELETE, &bob), Err(err::NO_AUTH));
        assert_eq!(check(&node, perms::WRITE, &bob), Ok(()));
        assert_eq!(check(&node, perms::ADMIN, &su), Ok(()));
        // getACL asks for READ or ADMIN.
        assert_eq!(check(&node, perms::READ | perms::ADMIN, &bob), Ok(()));
        let secret = [acl(perms::ALL, "digest", "alice:h")];
        assert_eq!(check(&secret, perms::READ, &bob), Err(err::NO_AUTH));
        // The scheme must match, not only the id.
        let wrong_scheme = [id("ip", "alice:h")];
        assert_eq!(
            check(&secret, perms::READ, &wrong_scheme),
            Err(err::NO_AUTH)
        );
        // Entries with a scheme nobody provides never match.
        let odd = [acl(perms::ALL, "world", "someone")];
        assert_eq!(
            check(&odd, perms::READ, &[id("world", "someone")]),
            Err(err::NO_AUTH)
        );
        assert_eq!(check(&[], perms::ADMIN, &[]), Ok(()));
    }

    #[test]
    fn ip_entries_match_their_network() {
        let p = Provider::Ip;
        assert!(p.matches("10.1.2.3", "10.0.0.0/8"));
        assert!(!p.matches("11.1.2.3", "10.0.0.0/8"));
        assert!(p.matches("127.0.0.1", "127.0.0.1"));
        assert!(!p.matches("127.0.0.2", "127.0.0.1"));
        assert!(p.matches("1.2.3.4", "9.9.9.9/0"));
        assert!(p.matches("10.0.0.129", "10.0.0.128/25"));
        assert!(!p.matches("10.0.0.127", "10.0.0.128/25"));
        for bad in [
            "10.0.0.256",
            "10.0.0.1/33",
            "10.0.0",
            "10.0.0.1/x",
            "::1",
            "a.b.c.d",
        ] {
            assert!(!p.is_valid(bad), "{bad}");
            assert!(!p.matches("10.0.0.1", bad), "{bad}");
        }
        assert!(!p.matches("::1", "0.0.0.0/0"));
    }

    #[test]
    fn fixup_expands_auth_to_the_digests_alone() {
        let ids = [
            id("ip", "127.0.0.1"),
            id("super", ""),
            id("digest", "a:1"),
            id("digest", "b:2"),
        ];
        let creator = [acl(perms::ALL, "auth", "")];
        assert_eq!(
            fixup(&creator, &ids).unwrap(),
            [
                acl(perms::ALL, "digest", "a:1"),
                acl(perms::ALL, "digest", "b:2")
            ]
        );
        assert_eq!(fixup(&creator, &ids[..2]), Err(err::INVALID_ACL));
        assert_eq!(fixup(&[], &ids), Err(err::INVALID_ACL));
        let open = acl(perms::ALL, "world", "anyone");
        let twice = [open.clone(), open.clone()];
        assert_eq!(fixup(&twice, &[]).unwrap(), twice[..1]);
        for bad in [
            acl(perms::ALL, "world", "someone"),
            acl(perms::ALL, "digest", "user"),
            acl(perms::ALL, "ip", "10.0.0.1/33"),
            acl(perms::ALL, "super", ""),
            acl(perms::ALL, "sasl", "user"),
        ] {
            assert_eq!(
                fixup(&[open.clone(), bad.clone()], &ids),
                Err(err::INVALID_ACL),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn redaction_and_who_am_i_hide_the_hashes() {
        let shown = redact(vec![
            acl(perms::ALL, "digest", "alice:h="),
            acl(perms::READ, "ip", "10.0.0.0/8"),
        ]);
        assert_eq!(shown[0].id, "alice:x");
        assert_eq!(shown[1].id, "10.0.0.0/8");
        let infos = client_infos(&[
            id("ip", "127.0.0.1"),
            id("super", ""),
            id("digest", "alice:h="),
        ]);
        let users: Vec<_> = infos
            .iter()
            .map(|i| (i.auth_scheme.as_str(), i.user.as_str()))
            .collect();
        assert_eq!(
            users,
            [("ip", "127.0.0.1"), ("super", ""), ("digest", "alice")]
        );
    }
}
