//! Which webhook targets the service may connect to. Checked on resolved addresses, before any
//! connection, and the connection is then pinned to the checked address so a second DNS answer
//! cannot redirect it. An IPv6 address that carries an IPv4 one (mapped `::ffff:a.b.c.d`,
//! compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) reaches that IPv4 host, so it is judged as
//! the IPv4 address: `::ffff:169.254.169.254` is the metadata endpoint, whatever `::/0` allows.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

#[derive(Debug, Clone)]
pub struct AllowList {
    networks: Vec<IpNet>,
    hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("'{0}' cannot be resolved")]
    Unresolvable(String),
    #[error("{0} is link-local (cloud metadata endpoints live there): webhooks may not reach it")]
    LinkLocal(String),
    #[error("{0} is not in the webhook allow-list (setting `webhook_allow`)")]
    NotAllowed(String),
}

impl AllowList {
    pub fn new(entries: &[String]) -> Self {
        let mut networks = Vec::new();
        let mut hosts = Vec::new();
        for e in entries {
            match e.parse::<IpNet>() {
                Ok(n) => networks.push(n),
                Err(_) => match e.parse::<IpAddr>() {
                    Ok(ip) => networks.push(IpNet::from(ip)),
                    Err(_) => hosts.push(e.to_ascii_lowercase()),
                },
            }
        }
        Self { networks, hosts }
    }

    fn ip_allowed(&self, ip: IpAddr) -> Result<(), Refused> {
        let reached = reached_ip(ip);
        let named = || match reached == ip {
            true => ip.to_string(),
            false => format!("{ip} (IPv4 {reached})"),
        };
        let link_local = match reached {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if link_local {
            return Err(Refused::LinkLocal(named()));
        }
        if self.networks.iter().any(|n| n.contains(&reached)) {
            Ok(())
        } else {
            Err(Refused::NotAllowed(named()))
        }
    }

    /// Resolves `host:port` and returns the address to connect to, or why not. A host named in
    /// the allow-list passes whatever it resolves to, except link-local addresses.
    pub async fn check(&self, host: &str, port: u16) -> Result<SocketAddr, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|_| Refused::Unresolvable(host.to_owned()))?
            .collect();
        let first = *addrs
            .first()
            .ok_or_else(|| Refused::Unresolvable(host.to_owned()))?;
        let named = self.hosts.iter().any(|h| h == &bare.to_ascii_lowercase());
        for addr in &addrs {
            match self.ip_allowed(addr.ip()) {
                Err(Refused::NotAllowed(_)) if named => {}
                other => other?,
            }
        }
        Ok(first)
    }
}

/// The address a connection to `ip` reaches: the IPv4 address an IPv6 one carries, else `ip`.
fn reached_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => carried_ipv4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`), IPv4-compatible (`::/96`, but
/// not `::` or `::1`) or NAT64 well-known-prefix (`64:ff9b::/96`) IPv6 address.
fn carried_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let low = Ipv4Addr::from((u128::from(v6) & 0xffff_ffff) as u32);
    let compatible = s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::new(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn networks_and_names_decide_link_local_never_passes() {
        let l = list(&["127.0.0.0/8", "10.0.0.0/8"]);
        assert!(l.check("127.0.0.1", 80).await.is_ok());
        assert!(l.check("10.1.2.3", 80).await.is_ok());
        assert_eq!(
            l.check("192.168.1.1", 80).await,
            Err(Refused::NotAllowed("192.168.1.1".into()))
        );
        assert!(matches!(
            l.check("169.254.169.254", 80).await,
            Err(Refused::LinkLocal(_))
        ));
        let everything = list(&["0.0.0.0/0", "::/0"]);
        assert!(matches!(
            everything.check("169.254.169.254", 80).await,
            Err(Refused::LinkLocal(_))
        ));
        assert!(matches!(
            everything.check("fe80::1", 80).await,
            Err(Refused::LinkLocal(_))
        ));
        let named = list(&["localhost"]);
        assert!(named.check("localhost", 80).await.is_ok());
        assert!(list(&["127.0.0.1"]).check("127.0.0.2", 80).await.is_err());
    }

    #[tokio::test]
    async fn ipv6_addresses_carrying_ipv4_are_judged_as_that_ipv4() {
        let loopback = list(&["127.0.0.0/8", "::1/128"]);
        let all_ipv6 = list(&["::/0"]);
        for host in [
            "::ffff:169.254.169.254",
            "[::ffff:a9fe:a9fe]",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
        ] {
            for l in [&loopback, &all_ipv6] {
                assert!(
                    matches!(l.check(host, 80).await, Err(Refused::LinkLocal(_))),
                    "{host}"
                );
            }
        }
        for host in [
            "::ffff:10.0.0.1",
            "::ffff:192.168.1.1",
            "::10.0.0.1",
            "64:ff9b::10.0.0.1",
        ] {
            for l in [&loopback, &all_ipv6] {
                assert!(
                    matches!(l.check(host, 80).await, Err(Refused::NotAllowed(_))),
                    "{host}"
                );
            }
        }
        assert_eq!(
            all_ipv6.check("::ffff:10.0.0.1", 80).await,
            Err(Refused::NotAllowed(
                "::ffff:10.0.0.1 (IPv4 10.0.0.1)".into()
            ))
        );
        assert!(loopback.check("::ffff:127.0.0.1", 80).await.is_ok());
        assert!(loopback.check("::1", 80).await.is_ok());
        assert!(list(&["10.0.0.0/8"])
            .check("::ffff:10.1.2.3", 80)
            .await
            .is_ok());
    }

    /// What `check` applies to every address a name resolves to.
    #[test]
    fn resolved_addresses_are_judged_by_the_ipv4_they_carry() {
        let l = list(&["::/0", "192.168.0.0/16"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(matches!(
            l.ip_allowed(ip("::ffff:169.254.169.254")),
            Err(Refused::LinkLocal(_))
        ));
        assert!(matches!(
            l.ip_allowed(ip("::ffff:10.0.0.1")),
            Err(Refused::NotAllowed(_))
        ));
        assert!(l.ip_allowed(ip("::ffff:192.168.1.1")).is_ok());
        assert!(l.ip_allowed(ip("2001:db8::1")).is_ok());
        assert!(matches!(
            l.ip_allowed(ip("fe80::1")),
            Err(Refused::LinkLocal(_))
        ));
        assert_eq!(reached_ip(ip("::")), ip("::"));
        assert_eq!(reached_ip(ip("::1")), ip("::1"));
    }
}
