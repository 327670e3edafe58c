//! Command-line flags that override the config file (`strata node --web.listen-address ADDR
//! --data-dir DIR --node.id ID --join HOST:PORT ...`). Values the loader derived from an
//! overridden one follow it: the default bucket directory follows `--data-dir`, and the
//! embedded default's self-scrape target follows `--web.listen-address`.

use std::path::PathBuf;

use super::error::{ConfigError, Result};
use super::node::parse_socket_addr;
use super::Config;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub web_listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub node_id: Option<String>,
    /// When non-empty, replaces `cluster.join`.
    pub join: Vec<String>,
}

impl Config {
    /// Applies the flags, then validates the result; errors name the flag.
    pub fn apply_overrides(&mut self, o: &Overrides) -> Result<()> {
        if let Some(addr) = &o.web_listen {
            let new = parse_socket_addr(addr)
                .map_err(|m| ConfigError::invalid("--web.listen-address", m))?;
            if self.derived.self_scrape_target {
                let old = self.node.web_listen.to_string();
                for job in self
                    .scrape_configs
                    .iter_mut()
                    .filter(|j| j.job_name == "strata")
                {
                    for sc in &mut job.static_configs {
                        for t in sc.targets.iter_mut().filter(|t| **t == old) {
                            *t = new.to_string();
                        }
                    }
                }
            }
            self.node.web_listen = new;
        }
        if let Some(dir) = &o.data_dir {
            self.node.data_dir = dir.clone();
            if self.derived.bucket_dir {
                self.bucket.filesystem.dir = dir.join("bucket");
            }
        }
        if let Some(id) = &o.node_id {
            self.node.id = id.clone();
        }
        if !o.join.is_empty() {
            self.cluster.join = o.join.clone();
        }
        self.validate().map_err(|e| match e {
            ConfigError::Invalid { key, message } => {
                let flag = match key.as_str() {
                    "node.id" => "--node.id".to_string(),
                    "node.data_dir" => "--data-dir".to_string(),
                    k if k.starts_with("cluster.join") => format!("--join ({k})"),
                    _ => key,
                };
                ConfigError::Invalid { key: flag, message }
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_values_and_derived_ones_follow() {
        let mut c = Config::embedded_default();
        let o = Overrides {
            web_listen: Some("127.0.0.1:19090".into()),
            data_dir: Some(PathBuf::from("/var/lib/strata")),
            node_id: Some("n7".into()),
            join: vec!["seed:7946".into()],
        };
        c.apply_overrides(&o).unwrap();
        assert_eq!(c.node.web_listen.to_string(), "127.0.0.1:19090");
        assert_eq!(
            c.scrape_configs[0].static_configs[0].targets,
            vec!["127.0.0.1:19090".to_string()]
        );
        assert_eq!(
            c.bucket.filesystem.dir,
            PathBuf::from("/var/lib/strata/bucket")
        );
        assert_eq!(c.node.tsdb_dir(), PathBuf::from("/var/lib/strata/tsdb"));
        assert_eq!(c.node.id, "n7");
        assert_eq!(c.cluster.join, vec!["seed:7946".to_string()]);
    }

    #[test]
    fn explicit_file_values_do_not_follow() {
        let text = "bucket: {filesystem: {dir: /srv/bucket}}\nscrape_configs:\n  - job_name: strata\n    static_configs: [{targets: ['127.0.0.1:9090']}]\n";
        let mut c = Config::from_yaml_str(text, "t.yml").unwrap();
        let o = Overrides {
            web_listen: Some("127.0.0.1:1".into()),
            data_dir: Some(PathBuf::from("/d")),
            ..Overrides::default()
        };
        c.apply_overrides(&o).unwrap();
        assert_eq!(c.bucket.filesystem.dir, PathBuf::from("/srv/bucket"));
        assert_eq!(
            c.scrape_configs[0].static_configs[0].targets,
            vec!["127.0.0.1:9090".to_string()]
        );
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let mut c = Config::embedded_default();
        let e = c
            .apply_overrides(&Overrides {
                web_listen: Some("localhost".into()),
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("--web.listen-address"));
        let e = c
            .apply_overrides(&Overrides {
                join: vec!["nohost".into()],
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("--join (cluster.join[0])"));
        let e = c
            .apply_overrides(&Overrides {
                node_id: Some(String::new()),
                ..Overrides::default()
            })
            .unwrap_err();
        assert_eq!(e.key(), Some("--node.id"));
    }
}
