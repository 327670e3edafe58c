//! `Config::validate`: the checks that need more than one value at a time or the whole file
//! (intervals against timeouts, unique job names and roles, S3 settings when the bucket is S3,
//! peer addresses, ...). Each error names the key path it is about, so the loader can point
//! at the line. Single values (durations, regexes, label names, listen addresses) are already
//! checked while parsing.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use regex::Regex;

use super::error::{ConfigError, Result};
use super::node::{check_host_port, BucketType};
use super::relabel::is_valid_label_name;
use super::units::PromDuration;
use super::Config;

fn positive(key: &str, d: PromDuration) -> Result<()> {
    if d.is_zero() {
        return Err(ConfigError::invalid(
            key,
            "must be a positive duration, got 0s",
        ));
    }
    Ok(())
}

/// Prometheus's `patRulePath`: at most one `*`, only in the last path element.
fn valid_rule_path(p: &str) -> bool {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[^*]*(\*[^/]*)?$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(p))
}

impl Config {
    /// Checks the whole config; the error names the offending key path.
    pub fn validate(&self) -> Result<()> {
        self.validate_global()?;
        for (i, rf) in self.rule_files.iter().enumerate() {
            if !valid_rule_path(rf) {
                return Err(ConfigError::invalid(
                    format!("rule_files[{i}]"),
                    format!("invalid rule file path {rf:?}"),
                ));
            }
        }
        for (i, f) in self.scrape_config_files.iter().enumerate() {
            if !valid_rule_path(f) {
                return Err(ConfigError::invalid(
                    format!("scrape_config_files[{i}]"),
                    format!("invalid scrape config file path {f:?}"),
                ));
            }
        }
        self.validate_scrape_configs()?;
        self.validate_remote_write()?;
        self.validate_alerting()?;
        self.validate_node()?;
        self.validate_cluster()?;
        self.validate_bucket()?;
        self.compactor.validate()?;
        self.ruler.validate()?;
        self.receive.validate()?;
        self.web.validate()?;
        if let Some(sidecar) = &self.sidecar {
            sidecar.validate(self.scrape_configs.len())?;
        }
        positive("tsdb.retention", self.tsdb.retention)?;
        positive("tsdb.block_duration", self.tsdb.block_duration)?;
        if self
            .admin
            .token_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "admin.token_file",
                "must not be empty when set",
            ));
        }
        Ok(())
    }

    fn validate_global(&self) -> Result<()> {
        let g = &self.global;
        positive("global.scrape_interval", g.scrape_interval)?;
        positive("global.scrape_timeout", g.scrape_timeout)?;
        positive("global.evaluation_interval", g.evaluation_interval)?;
        if g.scrape_timeout > g.scrape_interval {
            return Err(ConfigError::invalid(
                "global.scrape_timeout",
                "global scrape timeout greater than scrape interval",
            ));
        }
        for (name, value) in &g.external_labels {
            let key = format!("global.external_labels.{name}");
            if !is_valid_label_name(name) {
                return Err(ConfigError::invalid(
                    key,
                    format!("{name:?} is not a valid label name"),
                ));
            }
            if value.is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    format!("external label {name:?} has an empty value"),
                ));
            }
        }
        Ok(())
    }

    /// The scrape-job checks alone (for a job added through the API).
    pub(crate) fn validate_scrape_jobs(&self) -> Result<()> {
        self.validate_scrape_configs()
    }

    fn validate_scrape_configs(&self) -> Result<()> {
        let mut jobs = BTreeSet::new();
        for (i, job) in self.scrape_configs.iter().enumerate() {
            let key = |field: &str| format!("scrape_configs[{i}].{field}");
            if job.job_name.is_empty() {
                return Err(ConfigError::invalid(key("job_name"), "job_name is empty"));
            }
            if !jobs.insert(job.job_name.as_str()) {
                return Err(ConfigError::invalid(
                    key("job_name"),
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        job.job_name
                    ),
                ));
            }
            positive(&key("scrape_interval"), job.scrape_interval)?;
            positive(&key("scrape_timeout"), job.scrape_timeout)?;
            if job.scrape_timeout > job.scrape_interval {
                return Err(ConfigError::invalid(
                    key("scrape_timeout"),
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {:?}",
                        job.job_name
                    ),
                ));
            }
            if !job.metrics_path.starts_with('/') {
                return Err(ConfigError::invalid(
                    key("metrics_path"),
                    format!("metrics_path {:?} must start with '/'", job.metrics_path),
                ));
            }
            job.http_client()
                .check()
                .map_err(|m| ConfigError::invalid(format!("scrape_configs[{i}]"), m))?;
            if let Some(protocols) = &job.scrape_protocols {
                if protocols.is_empty() {
                    return Err(ConfigError::invalid(
                        key("scrape_protocols"),
                        "scrape_protocols cannot be empty",
                    ));
                }
                for (j, p) in protocols.iter().enumerate() {
                    if protocols[..j].contains(p) {
                        return Err(ConfigError::invalid(
                            format!("scrape_configs[{i}].scrape_protocols[{j}]"),
                            format!("duplicated protocol in scrape_protocols, got {p:?}"),
                        ));
                    }
                }
            }
            for (j, sd) in job.file_sd_configs.iter().enumerate() {
                positive(
                    &format!("scrape_configs[{i}].file_sd_configs[{j}].refresh_interval"),
                    sd.refresh_interval,
                )?;
            }
            for (j, sd) in job.dns_sd_configs.iter().enumerate() {
                positive(
                    &format!("scrape_configs[{i}].dns_sd_configs[{j}].refresh_interval"),
                    sd.refresh_interval,
                )?;
            }
            for (j, sd) in job.http_sd_configs.iter().enumerate() {
                positive(
                    &format!("scrape_configs[{i}].http_sd_configs[{j}].refresh_interval"),
                    sd.refresh_interval,
                )?;
                sd.http_client().check().map_err(|m| {
                    ConfigError::invalid(format!("scrape_configs[{i}].http_sd_configs[{j}]"), m)
                })?;
            }
        }
        Ok(())
    }

    fn validate_remote_write(&self) -> Result<()> {
        let mut names = BTreeSet::new();
        for (i, rw) in self.remote_write.iter().enumerate() {
            rw.check().map_err(|(key, message)| {
                let key = if key.is_empty() {
                    format!("remote_write[{i}]")
                } else {
                    format!("remote_write[{i}].{key}")
                };
                ConfigError::invalid(key, message)
            })?;
            if !rw.name.is_empty() && !names.insert(rw.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("remote_write[{i}].name"),
                    format!(
                        "found multiple remote write configs with job name {:?}",
                        rw.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_alerting(&self) -> Result<()> {
        for (i, am) in self.alerting.alertmanagers.iter().enumerate() {
            positive(&format!("alerting.alertmanagers[{i}].timeout"), am.timeout)?;
            am.http_client()
                .check()
                .map_err(|m| ConfigError::invalid(format!("alerting.alertmanagers[{i}]"), m))?;
        }
        Ok(())
    }

    fn validate_node(&self) -> Result<()> {
        let n = &self.node;
        if n.id.trim().is_empty() {
            return Err(ConfigError::invalid("node.id", "node id must not be empty"));
        }
        if n.id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::invalid(
                "node.id",
                format!("node id {:?} must not contain spaces", n.id),
            ));
        }
        for (i, r) in n.roles.iter().enumerate() {
            if n.roles[..i].contains(r) {
                return Err(ConfigError::invalid(
                    format!("node.roles[{i}]"),
                    format!("role {r} is listed twice"),
                ));
            }
        }
        if let Some(a) = &n.advertise {
            check_host_port(a).map_err(|m| ConfigError::invalid("node.advertise", m))?;
        }
        // Web and RPC are both TCP listeners: the same fixed address twice cannot bind.
        if n.web_listen == n.rpc_listen && n.web_listen.port() != 0 {
            return Err(ConfigError::invalid(
                "node.rpc_listen",
                format!(
                    "rpc_listen {} is the same address as web_listen",
                    n.rpc_listen
                ),
            ));
        }
        if n.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(
                "node.data_dir",
                "data_dir must not be empty",
            ));
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<()> {
        let c = &self.cluster;
        for (i, seed) in c.join.iter().enumerate() {
            check_host_port(seed)
                .map_err(|m| ConfigError::invalid(format!("cluster.join[{i}]"), m))?;
        }
        if !is_valid_label_name(&c.replica_label) {
            return Err(ConfigError::invalid(
                "cluster.replica_label",
                format!("{:?} is not a valid label name", c.replica_label),
            ));
        }
        if c.scrape_replication == 0 {
            return Err(ConfigError::invalid(
                "cluster.scrape_replication",
                "must be at least 1",
            ));
        }
        if c.receive_replication == 0 {
            return Err(ConfigError::invalid(
                "cluster.receive_replication",
                "must be at least 1",
            ));
        }
        if c.rule_replication == 0 {
            return Err(ConfigError::invalid(
                "cluster.rule_replication",
                "must be at least 1",
            ));
        }
        if c.key_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                "cluster.key_file",
                "must not be empty when set",
            ));
        }
        Ok(())
    }

    fn validate_bucket(&self) -> Result<()> {
        let b = &self.bucket;
        match b.bucket_type {
            BucketType::Filesystem => {
                if b.filesystem.dir.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "bucket.filesystem.dir",
                        "must not be empty",
                    ));
                }
            }
            BucketType::S3 => {
                let s3 = &b.s3;
                if s3.endpoint.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "bucket.s3.endpoint",
                        "is required when bucket.type is s3",
                    ));
                }
                if s3.bucket.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "bucket.s3.bucket",
                        "is required when bucket.type is s3",
                    ));
                }
                if s3.region.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "bucket.s3.region",
                        "is required when bucket.type is s3",
                    ));
                }
                if s3.access_key.is_empty() != s3.secret_key.is_empty() {
                    let missing = if s3.access_key.is_empty() {
                        "access_key"
                    } else {
                        "secret_key"
                    };
                    return Err(ConfigError::invalid(
                        format!("bucket.s3.{missing}"),
                        "access_key and secret_key must be set together (or both left out to use AWS_* variables)",
                    ));
                }
            }
        }
        Ok(())
    }
}
