//! Scrape jobs as the scrape-config API takes them: one job per document, named by its job
//! name, kept as YAML in Prometheus's `scrape_configs` syntax (plus Strata's `lint`). A body
//! is YAML, or JSON when its content type says so (it is turned into the same YAML before it
//! is stored, so every node parses one syntax). A job is checked as one more job of the node's
//! config — the checks `Config::load` makes, errors naming the key inside the job — and may
//! not take the name of a job the config file defines.

use crate::config::{Config, ConfigError, ScrapeConfig};

/// The document kind of scrape jobs (`strata/config/scrape_configs/<job>.yaml`).
pub const KIND: &str = "scrape_configs";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Invalid(String),
    #[error("{key}: {message}")]
    Key { key: String, message: String },
    #[error("job {0:?} is defined in the config file; change it there (the API cannot overwrite or delete it)")]
    FileJob(String),
}

impl From<ConfigError> for JobError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Invalid { key, message } => JobError::Key { key, message },
            other => JobError::Invalid(other.to_string()),
        }
    }
}

/// A job accepted for storing: the config and the YAML text that is stored.
#[derive(Clone, Debug)]
pub struct ParsedJob {
    pub config: ScrapeConfig,
    pub yaml: String,
}

/// Reads a `PUT` body for job `job`. A body without `job_name` takes the path's; one with a
/// different `job_name` is refused.
pub fn parse_body(body: &[u8], content_type: &str, job: &str) -> Result<ParsedJob, JobError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| JobError::Invalid("the body is not UTF-8 text".to_string()))?;
    let mut value: serde_norway::Value = if content_type.contains("json") {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| JobError::Invalid(format!("the body is not valid JSON: {e}")))?;
        serde_norway::to_value(json)
            .map_err(|e| JobError::Invalid(format!("the body cannot be read as a config: {e}")))?
    } else {
        serde_norway::from_str(text)
            .map_err(|e| JobError::Invalid(format!("the body is not valid YAML: {e}")))?
    };
    let Some(map) = value.as_mapping_mut() else {
        return Err(JobError::Invalid(
            "the body must be one scrape config (a mapping with job_name, static_configs, ...)"
                .to_string(),
        ));
    };
    match map.get("job_name") {
        None => {
            map.insert("job_name".into(), job.into());
        }
        Some(serde_norway::Value::String(named)) if named == job => {}
        Some(other) => {
            return Err(JobError::Key {
                key: "job_name".to_string(),
                message: format!(
                    "job_name {} differs from the job in the path, {job:?}",
                    serde_norway::to_string(other)
                        .unwrap_or_default()
                        .trim_end()
                ),
            })
        }
    }
    let yaml = if content_type.contains("json") || !body_has_job_name(text) {
        serde_norway::to_string(&value)
            .map_err(|e| JobError::Invalid(format!("cannot render the config: {e}")))?
    } else {
        // The operator's own text, comments and order kept.
        text.to_string()
    };
    let config = Config::parse_scrape_job(&yaml, "scrape config")?;
    Ok(ParsedJob { config, yaml })
}

fn body_has_job_name(text: &str) -> bool {
    serde_norway::from_str::<serde_norway::Value>(text)
        .ok()
        .and_then(|v| v.get("job_name").cloned())
        .is_some()
}

/// Checks `job` against the config in use (`current`: the file's jobs and the API's).
pub fn validate(current: &Config, job: &ScrapeConfig) -> Result<(), JobError> {
    if is_file_job(current, &job.job_name) {
        return Err(JobError::FileJob(job.job_name.clone()));
    }
    current.validate_extra_job(job)?;
    Ok(())
}

/// Whether the config file defines `job`.
pub fn is_file_job(current: &Config, job: &str) -> bool {
    current
        .scrape_configs
        .iter()
        .any(|j| j.job_name == job && !j.from_api)
}

/// The jobs of a set of stored documents; a document that no longer parses (written by a
/// newer version, say) is skipped and logged, the others still apply.
pub fn jobs_from_documents(docs: &super::Documents) -> Vec<ScrapeConfig> {
    let mut jobs = Vec::new();
    for (name, text) in docs {
        match Config::parse_scrape_job(text, "stored scrape config") {
            Ok(mut job) => {
                job.from_api = true;
                jobs.push(job);
            }
            Err(e) => {
                tracing::error!(job = ?name, error = %e, "stored scrape config does not parse; skipped")
            }
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn file_config() -> Config {
        Config::from_yaml_str(
            "scrape_configs:\n  - job_name: file\n    static_configs: [{targets: ['a:1']}]\n",
            "test.yml",
        )
        .unwrap()
    }

    #[test]
    fn yaml_and_json_bodies_give_the_same_job() {
        let y = parse_body(
            b"static_configs:\n  - targets: ['h:9100']\nscrape_interval: 5s\n",
            "application/yaml",
            "node",
        )
        .unwrap();
        let j = parse_body(
            br#"{"job_name":"node","static_configs":[{"targets":["h:9100"]}],"scrape_interval":"5s"}"#,
            "application/json",
            "node",
        )
        .unwrap();
        assert_eq!(y.config, j.config);
        assert_eq!(y.config.job_name, "node");
        let again = Config::parse_scrape_job(&j.yaml, "x").unwrap();
        assert_eq!(again, j.config);
    }

    #[test]
    fn errors_name_the_key() {
        let e = parse_body(
            b"job_name: n\nscrape_interval: 5q\n",
            "application/yaml",
            "n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("scrape_interval"), "{e}");
        let e = parse_body(b"job_name: n\nbogus: 1\n", "", "n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e = parse_body(
            b"job_name: n\nmetric_relabel_configs: [{action: drop, regex: '(('}]\n",
            "",
            "n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("metric_relabel_configs"), "{e}");
        let e = parse_body(b"job_name: other\n", "", "n").unwrap_err();
        assert!(
            matches!(e, JobError::Key { ref key, .. } if key == "job_name"),
            "{e}"
        );
        let e = parse_body(b"[1, 2]", "", "n").unwrap_err();
        assert!(matches!(e, JobError::Invalid(_)), "{e}");
        let e = parse_body(b"{", "application/json", "n").unwrap_err();
        assert!(e.to_string().contains("JSON"), "{e}");
    }

    #[test]
    fn validation_names_the_key_inside_the_job_and_refuses_file_jobs() {
        let cfg = file_config();
        let job = parse_body(b"scrape_interval: 5s\nscrape_timeout: 10s\n", "", "n")
            .unwrap()
            .config;
        match validate(&cfg, &job).unwrap_err() {
            JobError::Key { key, message } => {
                assert_eq!(key, "scrape_timeout");
                assert!(
                    message.contains("greater than scrape interval"),
                    "{message}"
                );
            }
            other => panic!("{other}"),
        }
        let job = parse_body(b"static_configs: []\n", "", "file")
            .unwrap()
            .config;
        assert!(matches!(validate(&cfg, &job), Err(JobError::FileJob(_))));
        let job = parse_body(b"static_configs: []\n", "", "api")
            .unwrap()
            .config;
        validate(&cfg, &job).unwrap();
    }

    #[test]
    fn stored_documents_become_api_jobs_and_bad_ones_are_skipped() {
        let mut docs = super::super::Documents::new();
        docs.insert(vec!["a".into()], "job_name: a\n".into());
        docs.insert(vec!["b".into()], "job_name: [".into());
        let jobs = jobs_from_documents(&docs);
        assert_eq!(jobs.len(), 1);
        assert!(jobs[0].from_api);
    }
}
