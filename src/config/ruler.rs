//! The `ruler:` section: what Prometheus sets with its `--rules.alert.*` flags, for the
//! RuleEvaluator role. Defaults are Prometheus's (resend a firing alert every minute, look an
//! hour back for `ALERTS_FOR_STATE` when restoring). Prometheus's `for-grace-period` has no
//! counterpart: Strata restores every `for` length.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, Result};
use super::units::PromDuration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulerConfig {
    /// A firing alert is sent to the Alertmanagers again once this long has passed since its
    /// last send (`--rules.alert.resend-delay`).
    #[serde(default = "default_resend_delay")]
    pub resend_delay: PromDuration,
    /// How far back alert state is restored from after a restart or a group moving between
    /// nodes (`--rules.alert.for-outage-tolerance`).
    #[serde(default = "default_outage_tolerance")]
    pub for_outage_tolerance: PromDuration,
}

fn default_resend_delay() -> PromDuration {
    PromDuration::from_secs(60)
}

fn default_outage_tolerance() -> PromDuration {
    PromDuration::from_secs(3600)
}

impl Default for RulerConfig {
    fn default() -> Self {
        RulerConfig {
            resend_delay: default_resend_delay(),
            for_outage_tolerance: default_outage_tolerance(),
        }
    }
}

impl RulerConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<()> {
        if self.resend_delay.is_zero() {
            return Err(ConfigError::invalid(
                "ruler.resend_delay",
                "must be greater than 0s",
            ));
        }
        if self.for_outage_tolerance.as_std().as_secs() == 0 {
            return Err(ConfigError::invalid(
                "ruler.for_outage_tolerance",
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> std::result::Result<RulerConfig, String> {
        let c: RulerConfig = serde_norway::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_prometheus_flags() {
        let c = parse("{}").unwrap();
        assert_eq!(c, RulerConfig::default());
        assert_eq!(c.resend_delay.as_std().as_secs(), 60);
        assert_eq!(c.for_outage_tolerance.as_std().as_secs(), 3600);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = parse("resend_delay: 0s").unwrap_err();
        assert!(e.contains("ruler.resend_delay"), "{e}");
        let e = parse("for_outage_tolerance: 500ms").unwrap_err();
        assert!(e.contains("ruler.for_outage_tolerance"), "{e}");
        let e = parse("resend: 1m").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
