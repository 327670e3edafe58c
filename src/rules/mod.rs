//! Prometheus rules: rule files, evaluation, alert state, templates, notifier.

pub mod template;
