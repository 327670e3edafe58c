//! DNS service discovery (`dns_sd_configs`) as Prometheus 2.42 does it: every
//! `refresh_interval`, each name is looked up as SRV, A, AAAA or MX records; each answer
//! record is one target and each name one target group (its source is the name). SRV targets
//! are `<target without the final dot>:<port>`, A/AAAA targets `<ip>:<configured port>`, MX
//! targets `<exchange without the final dot>:<configured port>`; CNAME records in the answer
//! are skipped. Every target carries `__meta_dns_name` (the name looked up),
//! `__meta_dns_srv_record_target` and `__meta_dns_srv_record_port` (SRV; the target keeps its
//! final dot), `__meta_dns_mx_record_target` (MX), the others empty, as Prometheus sets them.
//! Names refresh independently, as in Prometheus: a name whose lookup fails (a server error,
//! a refusal) keeps its previous group; one that has no such records gets an empty group.
//!
//! Name servers, search domains and `ndots` come from a resolv.conf (the system's unless the
//! node says otherwise); the hosts file is not consulted and answers are not cached, so
//! each refresh asks the servers, like Prometheus's own DNS client.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::Name;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};

use super::target::{TargetGroup, ADDRESS_LABEL};
use crate::config::{DnsRecordType, DnsSdConfig};

pub const NAME_LABEL: &str = "__meta_dns_name";
pub const SRV_TARGET_LABEL: &str = "__meta_dns_srv_record_target";
pub const SRV_PORT_LABEL: &str = "__meta_dns_srv_record_port";
pub const MX_TARGET_LABEL: &str = "__meta_dns_mx_record_target";

#[derive(Debug, thiserror::Error)]
pub enum DnsSdError {
    #[error("reading {path}: {reason}")]
    ResolvConf { path: String, reason: String },
    #[error("{path} names no nameserver")]
    NoServers { path: String },
    #[error("invalid DNS name {name:?}: {reason}")]
    Name { name: String, reason: String },
    #[error("cannot build the DNS resolver: {0}")]
    Resolver(String),
    #[error("DNS lookup of {name} ({record_type:?}) failed: {reason}")]
    Lookup {
        name: String,
        record_type: DnsRecordType,
        reason: String,
    },
}

/// What a resolv.conf says that discovery uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
}

/// Parses resolv.conf text: `nameserver`, `search`/`domain` and `options ndots:n` (glibc's
/// rules: the last `search` or `domain` line wins; ndots defaults to 1).
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut out = ResolvConf {
        ndots: 1,
        ..Default::default()
    };
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                    out.nameservers.push(ip);
                }
            }
            Some("search") | Some("domain") => out.search = words.map(str::to_string).collect(),
            Some("options") => {
                for w in words {
                    if let Some(n) = w.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                        out.ndots = n;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A resolver for discovery, from the resolv.conf at `path`.
pub fn resolver(path: &Path) -> Result<TokioResolver, DnsSdError> {
    let text = std::fs::read_to_string(path).map_err(|e| DnsSdError::ResolvConf {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let conf = parse_resolv_conf(&text);
    if conf.nameservers.is_empty() {
        return Err(DnsSdError::NoServers {
            path: path.display().to_string(),
        });
    }
    let mut search = Vec::new();
    for s in &conf.search {
        search.push(Name::from_ascii(s).map_err(|e| DnsSdError::Name {
            name: s.clone(),
            reason: e.to_string(),
        })?);
    }
    let servers = conf
        .nameservers
        .iter()
        .map(|ip| NameServerConfig::udp_and_tcp(*ip))
        .collect();
    let config = ResolverConfig::from_parts(None, search, servers);
    let mut opts = ResolverOpts::default();
    opts.ndots = conf.ndots;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| DnsSdError::Resolver(e.to_string()))
}

/// `host:port`, with brackets around IPv6 addresses (Go's `net.JoinHostPort`).
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One refresh: each name's group, or why its lookup failed (Prometheus refreshes the names
/// independently; a failed one keeps its previous group).
pub async fn refresh(
    resolver: &TokioResolver,
    cfg: &DnsSdConfig,
) -> Vec<(String, Result<TargetGroup, DnsSdError>)> {
    let record_type = match cfg.record_type {
        DnsRecordType::Srv => RecordType::SRV,
        DnsRecordType::A => RecordType::A,
        DnsRecordType::Aaaa => RecordType::AAAA,
        DnsRecordType::Mx => RecordType::MX,
    };
    let mut out = Vec::with_capacity(cfg.names.len());
    for name in &cfg.names {
        let answers = match resolver.lookup(name.as_str(), record_type).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .map(|r| r.data.clone())
                .collect::<Vec<RData>>()),
            // No records, or no such name, is an empty group (Prometheus's answer when every
            // server says so), not a failed refresh.
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(DnsSdError::Lookup {
                name: name.clone(),
                record_type: cfg.record_type,
                reason: e.to_string(),
            }),
        };
        out.push((name.clone(), answers.map(|a| group_of(name, &a, cfg.port))));
    }
    out
}

/// The target group of one name's answer records.
pub fn group_of(name: &str, answers: &[RData], port: u16) -> TargetGroup {
    let mut targets = Vec::new();
    for rdata in answers {
        let (address, srv_target, srv_port, mx_target) = match rdata {
            RData::SRV(srv) => {
                let target = srv.target.to_string();
                (
                    host_port(target.trim_end_matches('.'), srv.port),
                    target,
                    srv.port.to_string(),
                    String::new(),
                )
            }
            RData::MX(mx) => {
                let exchange = mx.exchange.to_string();
                (
                    host_port(exchange.trim_end_matches('.'), port),
                    String::new(),
                    String::new(),
                    exchange,
                )
            }
            RData::A(a) => (
                host_port(&a.0.to_string(), port),
                String::new(),
                String::new(),
                String::new(),
            ),
            RData::AAAA(a) => (
                host_port(&a.0.to_string(), port),
                String::new(),
                String::new(),
                String::new(),
            ),
            // CNAMEs come with A/AAAA answers; anything else is not a target.
            _ => continue,
        };
        targets.push(BTreeMap::from([
            (ADDRESS_LABEL.to_string(), address),
            (NAME_LABEL.to_string(), name.to_string()),
            (SRV_TARGET_LABEL.to_string(), srv_target),
            (SRV_PORT_LABEL.to_string(), srv_port),
            (MX_TARGET_LABEL.to_string(), mx_target),
        ]));
    }
    TargetGroup {
        source: name.to_string(),
        targets,
        labels: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use hickory_resolver::proto::rr::rdata::{A, MX, SRV};

    #[test]
    fn resolv_conf_gives_servers_search_and_ndots() {
        let c = parse_resolv_conf(
            "# comment\nnameserver 127.0.0.2\nnameserver ::1\ndomain a.test\nsearch b.test c.test\noptions timeout:2 ndots:3\n",
        );
        assert_eq!(c.nameservers.len(), 2);
        assert_eq!(c.search, vec!["b.test", "c.test"]);
        assert_eq!(c.ndots, 3);
        assert_eq!(parse_resolv_conf("").ndots, 1);
    }

    #[test]
    fn answers_become_targets_with_prometheus_labels() {
        let srv = RData::SRV(SRV::new(
            0,
            0,
            9100,
            Name::from_ascii("t1.example.test.").unwrap(),
        ));
        let g = group_of("_n._tcp.example.test", &[srv], 0);
        assert_eq!(g.source, "_n._tcp.example.test");
        let t = &g.targets[0];
        assert_eq!(t[ADDRESS_LABEL], "t1.example.test:9100");
        assert_eq!(t[SRV_TARGET_LABEL], "t1.example.test.");
        assert_eq!(t[SRV_PORT_LABEL], "9100");
        assert_eq!(t[MX_TARGET_LABEL], "");
        let a = RData::A(A::new(10, 0, 0, 1));
        let aaaa = RData::AAAA("::1".parse::<std::net::Ipv6Addr>().unwrap().into());
        let g = group_of("h.example.test", &[a, aaaa], 80);
        assert_eq!(g.targets[0][ADDRESS_LABEL], "10.0.0.1:80");
        assert_eq!(g.targets[1][ADDRESS_LABEL], "[::1]:80");
        assert_eq!(g.targets[0][SRV_PORT_LABEL], "");
        let mx = RData::MX(MX::new(10, Name::from_ascii("mail.example.test.").unwrap()));
        let g = group_of("example.test", &[mx], 25);
        assert_eq!(g.targets[0][ADDRESS_LABEL], "mail.example.test:25");
        assert_eq!(g.targets[0][MX_TARGET_LABEL], "mail.example.test.");
    }
}
