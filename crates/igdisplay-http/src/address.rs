//! [`AddressPolicy`]: which addresses a backend may connect to. A backend that fetches what
//! a response names (a media download) connects to public addresses only, so a link pointing at
//! loopback, the cloud's metadata address or the private network is never followed; a test's
//! mock on loopback is named as an exception.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which addresses a backend may connect to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressPolicy {
    /// Any address (the default: the Graph API and the token endpoints, or a mock on loopback,
    /// are configured by the application, not named by a response).
    #[default]
    Any,
    /// Public addresses only: never loopback, private, link-local (the cloud metadata address
    /// 169.254.169.254 among them), shared, unspecified, multicast or broadcast ones, whether
    /// the URL names the address or a host name resolves to it; except for the hosts listed
    /// (exactly as the URL writes them, e.g. a mock's `127.0.0.1`).
    PublicOnly {
        /// Hosts that may be private (a test's or a demo's mock).
        except_hosts: Vec<String>,
    },
}

impl AddressPolicy {
    /// Public addresses only, except for `hosts`.
    pub fn public_only<S: Into<String>>(hosts: impl IntoIterator<Item = S>) -> Self {
        AddressPolicy::PublicOnly {
            except_hosts: hosts.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether a connection to `ip`, reached through the URL host `host`, is allowed.
    ///
    /// ```
    /// use igdisplay_http::AddressPolicy;
    ///
    /// let policy = AddressPolicy::public_only(["127.0.0.1"]);
    /// assert!(policy.allows("scontent.cdninstagram.com", "157.240.1.174".parse()?));
    /// assert!(!policy.allows("169.254.169.254", "169.254.169.254".parse()?));
    /// assert!(!policy.allows("cdn.example", "10.0.0.7".parse()?), "a name resolving to a private address");
    /// assert!(policy.allows("127.0.0.1", "127.0.0.1".parse()?), "the configured mock");
    /// # Ok::<(), std::net::AddrParseError>(())
    /// ```
    pub fn allows(&self, host: &str, ip: IpAddr) -> bool {
        match self {
            AddressPolicy::Any => true,
            AddressPolicy::PublicOnly { except_hosts } => {
                is_public(ip) || except_hosts.iter().any(|allowed| host_eq(allowed, host))
            }
        }
    }

    /// Whether a URL host is allowed before any connection: an address written in the URL
    /// is checked as it is (no resolver sees it); a name is checked again on every address it
    /// resolves to.
    pub fn allows_host(&self, host: &str) -> bool {
        match literal(host) {
            Some(ip) => self.allows(host, ip),
            None => true,
        }
    }

    /// Whether this policy restricts anything.
    pub fn is_restricted(&self) -> bool {
        !matches!(self, AddressPolicy::Any)
    }
}

/// Hosts compare without case and without an IPv6 literal's brackets.
fn host_eq(a: &str, b: &str) -> bool {
    let bare = |h: &str| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// The address a URL host writes, if it writes one (`127.0.0.1`, `[::1]`).
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether `ip` is an address of the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15; reserved, 240.0.0.0/4.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7; link-local, fe80::/10; site-local (deprecated), fec0::/10.
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || (first & 0xffc0) == 0xfec0
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["157.240.1.174", "31.13.64.1", "2a03:2880:f12f:83:face:b00c::25de"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn an_address_in_the_url_is_checked_before_any_connection() {
        let policy = AddressPolicy::public_only(["127.0.0.1"]);
        assert!(policy.allows_host("127.0.0.1"));
        assert!(!policy.allows_host("[::1]"));
        assert!(!policy.allows_host("169.254.169.254"));
        assert!(
            policy.allows_host("scontent.cdninstagram.com"),
            "a name is checked when resolved"
        );
        assert!(AddressPolicy::Any.allows_host("10.0.0.1"));
    }
}
