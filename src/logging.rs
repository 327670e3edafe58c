//! Process-wide structured logging with `tracing`: `--log.level` (error|warn|info|debug|trace,
//! or a full `RUST_LOG`-style filter) and `--log.format` (logfmt like Prometheus, or json).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid --log.level {level:?}: {reason}")]
    Level { level: String, reason: String },
    #[error("invalid --log.format {0:?}: want logfmt or json")]
    Format(String),
    #[error("logging was already initialised: {0}")]
    Init(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = LoggingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "logfmt" => Ok(LogFormat::Logfmt),
            "json" => Ok(LogFormat::Json),
            other => Err(LoggingError::Format(other.to_string())),
        }
    }
}

/// Builds the filter; a plain level also quiets the noisiest dependencies.
pub fn filter(level: &str) -> Result<EnvFilter, LoggingError> {
    let spec = match level {
        "error" | "warn" | "info" | "debug" | "trace" => {
            format!("{level},actix_server=warn,actix_web=warn,hyper=warn,reqwest=warn,rustls=warn")
        }
        other => other.to_string(),
    };
    EnvFilter::try_new(&spec).map_err(|e| LoggingError::Level {
        level: level.to_string(),
        reason: e.to_string(),
    })
}

/// Installs the global subscriber writing to stderr.
pub fn init(level: &str, format: LogFormat) -> Result<(), LoggingError> {
    let filter = filter(level)?;
    let registry = tracing_subscriber::registry().with(filter);
    let res = match format {
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    res.map_err(|e| LoggingError::Init(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_and_levels() {
        assert_eq!("json".parse::<LogFormat>().ok(), Some(LogFormat::Json));
        assert!("xml".parse::<LogFormat>().is_err());
        assert!(filter("debug").is_ok());
        assert!(filter("strata=debug,info").is_ok());
        assert!(filter("[[[").is_err());
    }
}
