//! The SSRF guard: a sink may not point the service at its own network. A sink whose host is, or
//! resolves to, a loopback, private, link-local, unique-local, multicast, broadcast or
//! unspecified address is refused unless the address falls in `events.allowed_sink_networks`;
//! `http` sinks only with `events.allow_http_sinks`. [`SinkGuard::check`] runs when a
//! subscription is created, and the delivery client runs [`SinkGuard::address_allowed`] on every
//! address it connects to (DNS may change between the two).

use std::net::IpAddr;
use std::str::FromStr;

use reqwest::Url;

/// How long the sink's host may take to resolve when a subscription is made.
const LOOKUP: std::time::Duration = std::time::Duration::from_secs(3);
/// The longest sink URL (CAMARA's `sink` `maxLength`).
pub const MAX_SINK_LEN: usize = 1024;

/// An IP network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("{text:?} is not a network in CIDR form (e.g. 10.0.0.0/8 or fc00::/7)");
        let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        if prefix > bits {
            return Err(bad());
        }
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    /// Whether `address` is in this network (an IPv4-mapped IPv6 address counts as its IPv4).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                masked(u128::from(u32::from(net)), self.prefix, 32)
                    == masked(u128::from(u32::from(a)), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                masked(u128::from(net), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `bits`-wide address.
fn masked(value: u128, prefix: u8, bits: u32) -> u128 {
    let shift = bits - u32::from(prefix);
    if shift >= 128 { 0 } else { value >> shift }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address belongs to the service's own side of the network: loopback, private
/// (RFC 1918), carrier-grade NAT, link-local, unique-local, site-local, multicast, broadcast,
/// unspecified, the documentation, benchmarking and IETF ranges, and the IPv6 forms that carry an
/// IPv4 address (IPv4-compatible, NAT64, 6to4) or discard.
pub fn is_internal(address: IpAddr) -> bool {
    static INTERNAL: std::sync::LazyLock<Vec<Cidr>> = std::sync::LazyLock::new(|| {
        [
            "0.0.0.0/8",
            "10.0.0.0/8",
            "100.64.0.0/10",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "172.16.0.0/12",
            "192.0.0.0/24",
            "192.0.2.0/24",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "224.0.0.0/3",
            "::/96",
            "::ffff:0:0/96",
            "64:ff9b::/96",
            "64:ff9b:1::/48",
            "100::/64",
            "2001:db8::/32",
            "2002::/16",
            "fc00::/7",
            "fe80::/10",
            "fec0::/10",
            "ff00::/8",
        ]
        .iter()
        .map(|net| net.parse().expect("a network"))
        .collect()
    });
    INTERNAL.iter().any(|net| net.contains(address))
}

/// Why a sink is refused (the 400 INVALID_SINK message names it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    #[error("must be an absolute https URL of at most 1024 characters")]
    NotUrl,
    #[error("must be an https URL (http sinks are not accepted here)")]
    NotHttps,
    #[error("must not carry credentials in the URL (use sinkCredential)")]
    Credentials,
    #[error("has a host that cannot be resolved")]
    Unresolvable,
    #[error("points to an internal network address, which is not accepted")]
    Internal,
}

/// The checks of `events.allow_http_sinks` and `events.allowed_sink_networks`.
#[derive(Debug, Clone)]
pub struct SinkGuard {
    allow_http: bool,
    allowed: Vec<Cidr>,
}

impl SinkGuard {
    pub fn new(allow_http: bool, allowed: Vec<Cidr>) -> Self {
        Self {
            allow_http,
            allowed,
        }
    }

    /// The guard of `events.allow_http_sinks` and `events.allowed_sink_networks` (validated with
    /// the configuration).
    pub fn from_config(config: &crate::config::EventsConfig) -> Self {
        let allowed = (config.allowed_sink_networks.iter())
            .filter_map(|n| n.parse().ok())
            .collect();
        Self::new(config.allow_http_sinks, allowed)
    }

    /// Whether the service may connect to `address`.
    pub fn address_allowed(&self, address: IpAddr) -> bool {
        !is_internal(canonical(address)) || self.allowed.iter().any(|net| net.contains(address))
    }

    /// The sink's URL if it may be used: https (or http when allowed), no credentials, and every
    /// address its host resolves to allowed.
    pub async fn check(&self, sink: &str) -> Result<Url, SinkError> {
        let url = self.check_form(sink)?;
        let host = url.host_str().ok_or(SinkError::NotUrl)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().ok_or(SinkError::NotUrl)?;
        let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(address) => vec![address],
            // A resolver that hangs does not hold the request for longer than this.
            Err(_) => tokio::time::timeout(LOOKUP, tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| SinkError::Unresolvable)?
                .map_err(|_| SinkError::Unresolvable)?
                .map(|a| a.ip())
                .collect(),
        };
        if addresses.is_empty() {
            return Err(SinkError::Unresolvable);
        }
        if addresses.iter().all(|a| self.address_allowed(*a)) {
            Ok(url)
        } else {
            Err(SinkError::Internal)
        }
    }

    /// The checks that need no DNS: the URL's form and scheme.
    pub fn check_form(&self, sink: &str) -> Result<Url, SinkError> {
        if sink.len() > MAX_SINK_LEN {
            return Err(SinkError::NotUrl);
        }
        let url = Url::parse(sink).map_err(|_| SinkError::NotUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(SinkError::NotHttps),
            _ => return Err(SinkError::NotUrl),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(SinkError::NotUrl);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SinkError::Credentials);
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow_http: bool, allowed: &[&str]) -> SinkGuard {
        SinkGuard::new(
            allow_http,
            allowed.iter().map(|n| n.parse().unwrap()).collect(),
        )
    }

    #[test]
    fn networks_contain_their_addresses() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        let v6: Cidr = "fc00::/7".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("2001:db8::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0", "10.0.0.0/33", "::/129", "x/8", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn internal_addresses_are_known() {
        for internal in [
            "127.0.0.1",
            "10.1.1.1",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn sinks_are_checked_for_form_scheme_and_address() {
        let strict = guard(false, &[]);
        assert_eq!(
            strict.check("https://127.0.0.1/sink").await,
            Err(SinkError::Internal)
        );
        assert_eq!(
            strict.check("https://[::1]:8443/sink").await,
            Err(SinkError::Internal)
        );
        assert_eq!(
            strict.check("https://localhost/sink").await,
            Err(SinkError::Internal)
        );
        assert_eq!(
            strict.check("http://8.8.8.8/sink").await,
            Err(SinkError::NotHttps)
        );
        assert_eq!(
            strict.check("ftp://8.8.8.8/sink").await,
            Err(SinkError::NotUrl)
        );
        assert_eq!(strict.check("sink").await, Err(SinkError::NotUrl));
        assert_eq!(
            strict.check("https://user:pw@8.8.8.8/sink").await,
            Err(SinkError::Credentials)
        );
        let long = format!("https://8.8.8.8/{}", "a".repeat(1024));
        assert_eq!(strict.check(&long).await, Err(SinkError::NotUrl));
        assert!(strict.check("https://8.8.8.8/sink").await.is_ok());
        let dev = guard(true, &["127.0.0.0/8"]);
        assert!(dev.check("http://127.0.0.1:9/sink").await.is_ok());
        assert_eq!(
            dev.check("http://10.0.0.1/sink").await,
            Err(SinkError::Internal)
        );
    }
}
