//! Where webhooks may go. A merchant names the URL, so without a guard the service would POST
//! to whatever the URL reaches from inside our network: the loopback interface, private ranges,
//! the cloud metadata endpoint (169.254.169.254). The guard refuses, at registration and again
//! at every delivery:
//!
//! - every scheme but https (http only with the development setting `allow_http`);
//! - a host that is, or resolves to, a loopback, private, shared (CGNAT), link-local (the
//!   metadata endpoint), unspecified, multicast, broadcast, documentation or reserved address;
//!   IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo IPv6 forms (which carry an IPv4
//!   address the checks above would not see); `localhost` and the metadata host names.
//!   Odd spellings (`0x7f.1`, `2130706433`, `0177.0.0.1`) are normalized by the URL parser to
//!   the address they mean before the check, and that normalized URL is what is stored;
//! - at delivery the name is resolved by our resolver, every address it gives is checked, and
//!   the connection goes only to those checked addresses (reqwest uses our resolver; there is
//!   no second lookup to race). Redirects are not followed and no proxy is used.
//!
//! The development allow-list (`allowed_nets`) lets tests and local setups reach their own
//! receivers: an address inside one of its networks is accepted whatever its kind.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{ApiError, ApiResult};

pub const URL_MAX_LEN: usize = 2048;

/// A network in CIDR notation: an address and how many leading bits are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix_bits: u8,
}

impl Net {
    /// `10.0.0.0/8`, `::1/128`, or a bare address (all bits fixed).
    pub fn parse(text: &str) -> Result<Net, String> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|e| format!("{text:?} is not a network: {e}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match bits {
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|b| *b <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Net { addr, prefix_bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_match(
                u128::from(u32::from(n)),
                u128::from(u32::from(a)),
                32,
                self.prefix_bits,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_match(u128::from(n), u128::from(a), 128, self.prefix_bits)
            }
            _ => false,
        }
    }
}

fn prefix_match(net: u128, addr: u128, width: u32, bits: u8) -> bool {
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (net >> shift) == (addr >> shift)
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_bits)
    }
}

/// What webhook URLs may point at.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Accept `http://` URLs: for development only (messages are signed, not encrypted).
    pub allow_http: bool,
    /// Development allow-list: addresses in these networks are accepted whatever their kind.
    pub allowed_nets: Vec<Net>,
}

/// Host names that always mean something inside.
const REFUSED_NAMES: &[&str] = &[
    "localhost",
    "metadata",
    "metadata.google.internal",
    "metadata.goog",
    "instance-data",
];

impl UrlPolicy {
    /// http and the loopback networks allowed: tests and a developer's own receivers.
    pub fn loopback_for_development() -> UrlPolicy {
        UrlPolicy {
            allow_http: true,
            allowed_nets: vec![
                Net::parse("127.0.0.0/8").expect("valid"),
                Net::parse("::1/128").expect("valid"),
            ],
        }
    }

    /// Why this address may not receive webhooks, or `None` if it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        if self.allowed_nets.iter().any(|n| n.contains(ip)) {
            return None;
        }
        refused_kind(ip).map(|kind| format!("{ip} is {kind}"))
    }

    /// The URL a merchant registers, checked without any DNS lookup: its syntax, its scheme,
    /// and its host if that is an address or a refused name. Returns the normalized URL.
    pub fn check_url(&self, text: &str) -> ApiResult<reqwest::Url> {
        if text.len() > URL_MAX_LEN {
            return Err(ApiError::invalid(
                "url",
                format!("at most {URL_MAX_LEN} characters"),
            ));
        }
        let url = reqwest::Url::parse(text).map_err(|e| ApiError::invalid("url", e))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(ApiError::invalid(
                    "url",
                    "must be an https URL (http is allowed only in development)",
                ))
            }
            _ => return Err(ApiError::invalid("url", "must be an https URL")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ApiError::invalid(
                "url",
                "must not carry credentials; messages are signed instead",
            ));
        }
        match url.host() {
            None => return Err(ApiError::invalid("url", "must name a host")),
            Some(url::Host::Ipv4(ip)) => self.check_ip_field(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip_field(IpAddr::V6(ip))?,
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if name.is_empty()
                    || REFUSED_NAMES.contains(&name.as_str())
                    || name.ends_with(".localhost")
                    || name.ends_with(".internal")
                {
                    return Err(ApiError::invalid(
                        "url",
                        format!("{name} is an internal host name; webhooks go to public receivers"),
                    ));
                }
            }
        }
        Ok(url)
    }

    fn check_ip_field(&self, ip: IpAddr) -> ApiResult<()> {
        match self.refusal(ip) {
            Some(why) => Err(ApiError::invalid(
                "url",
                format!("{why}; webhooks go to public receivers"),
            )),
            None => Ok(()),
        }
    }
}

fn v4_in(ip: Ipv4Addr, nets: &[(u32, u8)]) -> bool {
    let a = u128::from(u32::from(ip));
    nets.iter()
        .any(|(n, bits)| prefix_match(u128::from(*n), a, 32, *bits))
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// The kind of address that may not receive webhooks, if it is one.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip),
        IpAddr::V6(ip) => refused_v6(ip),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let kinds: &[(&str, &[(u32, u8)])] = &[
        ("unspecified", &[(v4(0, 0, 0, 0), 8)]),
        ("loopback", &[(v4(127, 0, 0, 0), 8)]),
        (
            "private",
            &[
                (v4(10, 0, 0, 0), 8),
                (v4(172, 16, 0, 0), 12),
                (v4(192, 168, 0, 0), 16),
            ],
        ),
        ("shared address space (CGNAT)", &[(v4(100, 64, 0, 0), 10)]),
        (
            "link-local (the cloud metadata endpoint lives here)",
            &[(v4(169, 254, 0, 0), 16)],
        ),
        (
            "reserved for protocols, documentation or benchmarks",
            &[
                (v4(192, 0, 0, 0), 24),
                (v4(192, 0, 2, 0), 24),
                (v4(198, 18, 0, 0), 15),
                (v4(198, 51, 100, 0), 24),
                (v4(203, 0, 113, 0), 24),
                (v4(192, 88, 99, 0), 24),
            ],
        ),
        ("multicast", &[(v4(224, 0, 0, 0), 4)]),
        ("reserved or broadcast", &[(v4(240, 0, 0, 0), 4)]),
    ];
    kinds
        .iter()
        .find(|(_, nets)| v4_in(ip, nets))
        .map(|(kind, _)| *kind)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let a = u128::from(ip);
    let within = |net: &str| Net::parse(net).expect("valid").contains(IpAddr::V6(ip));
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that carry an IPv4 address inside: refused whole, whatever the IPv4 address is.
    if a >> 32 == 0xffff {
        return Some("an IPv4-mapped address");
    }
    if a >> 32 == 0 {
        return Some("an IPv4-compatible address");
    }
    for (net, kind) in [
        ("64:ff9b::/96", "a NAT64 address"),
        ("64:ff9b:1::/48", "a NAT64 address"),
        ("2002::/16", "a 6to4 address"),
        ("2001::/32", "a Teredo address"),
        ("fc00::/7", "a unique local (private) address"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
        ("2001:db8::/32", "reserved for documentation"),
        ("100::/64", "a discard-only address"),
    ] {
        if within(net) {
            return Some(kind);
        }
    }
    None
}

/// Names to addresses: the seam tests replace to prove a refusal without connecting.
pub trait HostResolver: Send + Sync + 'static {
    fn lookup(
        &self,
        host: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'static>>;
}

/// The operating system's resolver.
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup(
        &self,
        host: &str,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'static>> {
        let host = host.to_string();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// The resolver the webhook client connects through: every address is checked first, and the
/// addresses it hands to the client (the only ones the client may connect to) are counted.
#[derive(Clone)]
pub struct GuardedResolver {
    inner: Arc<dyn HostResolver>,
    policy: UrlPolicy,
    handed_out: Arc<AtomicU64>,
}

impl GuardedResolver {
    pub fn new(inner: Arc<dyn HostResolver>, policy: UrlPolicy) -> GuardedResolver {
        GuardedResolver {
            inner,
            policy,
            handed_out: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Addresses handed to the HTTP client so far: each is a connection it may open.
    pub fn addresses_handed_out(&self) -> u64 {
        self.handed_out.load(Ordering::SeqCst)
    }

    /// Checks a URL at delivery: scheme and a literal address here (the client connects to a
    /// literal without asking a resolver); names are checked when the client resolves them.
    pub fn check_delivery(&self, url: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("refused: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.policy.allow_http => {}
            s => return Err(format!("refused: {s} URLs are not allowed")),
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err("refused: the URL has no host".into()),
        };
        if let Some(ip) = literal {
            if let Some(why) = self.policy.refusal(ip) {
                return Err(format!("refused: {why}"));
            }
            self.handed_out.fetch_add(1, Ordering::SeqCst);
        } else if let Err(e) = self.policy.check_url(url.as_str()) {
            return Err(format!("refused: {}", e.problem().detail));
        }
        Ok(())
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let me = self.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found = me.inner.lookup(&host).await?;
            if found.is_empty() {
                return Err(format!("refused: {host} has no address").into());
            }
            // One refused address refuses the name: a receiver with one foot inside is inside.
            for ip in &found {
                if let Some(why) = me.policy.refusal(*ip) {
                    return Err(format!("refused: {host} resolves to {why}").into());
                }
            }
            me.handed_out
                .fetch_add(found.len() as u64, Ordering::SeqCst);
            let addrs: reqwest::dns::Addrs =
                Box::new(found.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_addresses_and_odd_spellings_are_refused_at_registration() {
        let strict = UrlPolicy::default();
        for bad in [
            "http://shop.example/hook",
            "ftp://shop.example/",
            "https://127.0.0.1/",
            "https://127.1/",
            "https://0x7f.1/",
            "https://0x7f000001/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[::]/",
            "https://[::ffff:169.254.169.254]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[2002:a9fe:a9fe::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://localhost/",
            "https://LOCALHOST./",
            "https://api.localhost/",
            "https://metadata.google.internal/",
            "https://user:pw@shop.example/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
        ] {
            let e = strict.check_url(bad).err();
            assert!(e.is_some(), "{bad} accepted");
            assert_eq!(e.unwrap().problem().field.as_deref(), Some("url"));
        }
        for good in [
            "https://shop.example/hooks",
            "https://93.184.216.34/x",
            "https://[2606:4700::1111]/",
        ] {
            assert!(strict.check_url(good).is_ok(), "{good}");
        }
        let dev = UrlPolicy::loopback_for_development();
        assert!(dev.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(dev.check_url("http://[::1]:8080/hook").is_ok());
        assert!(
            dev.check_url("http://10.0.0.1/").is_err(),
            "only loopback is allowed"
        );
        assert_eq!(
            strict
                .check_url("https://0x7f.1/")
                .err()
                .unwrap()
                .problem()
                .detail,
            "127.0.0.1 is loopback; webhooks go to public receivers"
        );
    }

    #[test]
    fn networks_parse_and_contain() {
        let n = Net::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        assert!(Net::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Net::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Net::parse("10.0.0.0/33").is_err());
        assert!(Net::parse("nonsense").is_err());
    }
}
