//! Prometheus config sections Strata does not implement yet. A `prometheus.yml` that uses one
//! must fail to load with a message naming the section, never load with the section quietly
//! ignored; each refused key is a field of type [`Unsupported`] whose deserialiser always
//! fails, so the error carries the key path and line like any other config error.

use serde::{Deserializer, Serialize, Serializer};

/// Placeholder for a refused section; it is never constructed from input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unsupported;

impl Serialize for Unsupported {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_none()
    }
}

/// The message every refusal uses, so tests and docs can rely on it.
pub fn message(section: &str) -> String {
    format!("{section} is not supported by Strata yet")
}

macro_rules! refusals {
    ($($name:ident),* $(,)?) => {
        $(
            pub fn $name<'de, D: Deserializer<'de>>(_d: D) -> Result<Unsupported, D::Error> {
                Err(serde::de::Error::custom(message(stringify!($name))))
            }
        )*
        /// Every Prometheus key refused by name.
        pub const REFUSED: &[&str] = &[$(stringify!($name)),*];
    };
}

refusals!(
    remote_read,
    storage,
    tracing,
    azure_sd_configs,
    consul_sd_configs,
    digitalocean_sd_configs,
    docker_sd_configs,
    dockerswarm_sd_configs,
    dns_sd_configs,
    ec2_sd_configs,
    eureka_sd_configs,
    gce_sd_configs,
    hetzner_sd_configs,
    http_sd_configs,
    ionos_sd_configs,
    kubernetes_sd_configs,
    kuma_sd_configs,
    lightsail_sd_configs,
    linode_sd_configs,
    marathon_sd_configs,
    nerve_sd_configs,
    nomad_sd_configs,
    openstack_sd_configs,
    ovhcloud_sd_configs,
    puppetdb_sd_configs,
    scaleway_sd_configs,
    serverset_sd_configs,
    triton_sd_configs,
    uyuni_sd_configs,
    vultr_sd_configs,
    oauth2,
    proxy_url,
    no_proxy,
    proxy_from_environment,
    proxy_connect_header,
    native_histogram_bucket_limit,
    scrape_classic_histograms,
    keep_dropped_targets,
    sigv4,
);
