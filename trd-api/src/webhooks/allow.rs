//! Which webhook targets the service may connect to. Checked on resolved addresses, before any
//! connection, and the connection is then pinned to the checked address so a second DNS answer
//! cannot redirect it.

use std::net::{IpAddr, SocketAddr};

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
    LinkLocal(IpAddr),
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
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if link_local {
            return Err(Refused::LinkLocal(ip));
        }
        if self.networks.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(Refused::NotAllowed(ip.to_string()))
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
}
