//! The HTTP client settings Prometheus shares between scrape configs and Alertmanager configs
//! (`basic_auth`, `authorization`, `bearer_token[_file]`, `tls_config`, `follow_redirects`,
//! `enable_http2`), their secret type, and the mutual-exclusion rules of prometheus/common's
//! `HTTPClientConfig.Validate`.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A credential read from the config; printed as `<secret>` like Prometheus so dumping a
/// loaded config (e.g. `/api/v1/status/config`) never leaks it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The real value, for building requests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub password: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// The scheme put before the credentials in the `Authorization` header.
    #[serde(default = "default_auth_type", rename = "type")]
    pub auth_type: String,
    #[serde(default, skip_serializing_if = "Secret::is_empty")]
    pub credentials: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

fn default_auth_type() -> String {
    "Bearer".to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    TLS10,
    TLS11,
    TLS12,
    TLS13,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server_name: String,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
}

impl TlsConfig {
    /// prometheus/common's `TLSConfig.Validate`.
    pub fn check(&self) -> Result<(), String> {
        match (&self.cert_file, &self.key_file) {
            (Some(c), None) => Err(format!(
                "client cert file {:?} specified without client key file",
                c
            )),
            (None, Some(k)) => Err(format!(
                "client key file {:?} specified without client cert file",
                k
            )),
            _ => Ok(()),
        }
    }

    /// Every file the TLS settings name, for existence checks.
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut out = Vec::new();
        for (what, f) in [
            ("CA file", &self.ca_file),
            ("client cert file", &self.cert_file),
            ("client key file", &self.key_file),
        ] {
            if let Some(f) = f {
                out.push((what, f));
            }
        }
        out
    }
}

/// A borrowed view of the HTTP client settings of one scrape or Alertmanager config.
#[derive(Clone, Copy, Debug)]
pub struct HttpClientView<'a> {
    pub basic_auth: Option<&'a BasicAuth>,
    pub authorization: Option<&'a Authorization>,
    pub bearer_token: &'a Secret,
    pub bearer_token_file: Option<&'a PathBuf>,
    pub tls_config: &'a TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

/// What to put in the `Authorization` header, after folding the legacy `bearer_token[_file]`
/// into `authorization` as Prometheus does.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthHeader {
    None,
    Basic {
        username: String,
        password: Secret,
        password_file: Option<PathBuf>,
    },
    Credentials {
        auth_type: String,
        credentials: Secret,
        credentials_file: Option<PathBuf>,
    },
}

impl HttpClientView<'_> {
    /// prometheus/common's `HTTPClientConfig.Validate`, same wording.
    pub fn check(&self) -> Result<(), String> {
        let has_bearer = !self.bearer_token.is_empty() || self.bearer_token_file.is_some();
        if !self.bearer_token.is_empty() && self.bearer_token_file.is_some() {
            return Err(
                "at most one of bearer_token & bearer_token_file must be configured".into(),
            );
        }
        if self.basic_auth.is_some() && has_bearer {
            return Err("at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured".into());
        }
        if let Some(b) = self.basic_auth {
            if !b.password.is_empty() && b.password_file.is_some() {
                return Err(
                    "at most one of basic_auth password & password_file must be configured".into(),
                );
            }
        }
        if let Some(a) = self.authorization {
            if has_bearer {
                return Err(
                    "authorization is not compatible with bearer_token & bearer_token_file".into(),
                );
            }
            if !a.credentials.is_empty() && a.credentials_file.is_some() {
                return Err("at most one of authorization credentials & credentials_file must be configured".into());
            }
            if a.auth_type.eq_ignore_ascii_case("basic") {
                return Err(
                    r#"authorization type cannot be set to "basic", use "basic_auth" instead"#
                        .into(),
                );
            }
            if self.basic_auth.is_some() {
                return Err(
                    "at most one of basic_auth, oauth2 & authorization must be configured".into(),
                );
            }
        }
        self.tls_config.check()
    }

    pub fn auth_header(&self) -> AuthHeader {
        if let Some(b) = self.basic_auth {
            return AuthHeader::Basic {
                username: b.username.clone(),
                password: b.password.clone(),
                password_file: b.password_file.clone(),
            };
        }
        if let Some(a) = self.authorization {
            let auth_type = if a.auth_type.is_empty() {
                default_auth_type()
            } else {
                a.auth_type.clone()
            };
            return AuthHeader::Credentials {
                auth_type,
                credentials: a.credentials.clone(),
                credentials_file: a.credentials_file.clone(),
            };
        }
        if !self.bearer_token.is_empty() || self.bearer_token_file.is_some() {
            return AuthHeader::Credentials {
                auth_type: default_auth_type(),
                credentials: self.bearer_token.clone(),
                credentials_file: self.bearer_token_file.cloned(),
            };
        }
        AuthHeader::None
    }

    /// Every file named by the settings, labelled for error messages.
    pub fn files(&self) -> Vec<(&'static str, &PathBuf)> {
        let mut out = self.tls_config.files();
        if let Some(f) = self.basic_auth.and_then(|b| b.password_file.as_ref()) {
            out.push(("password file", f));
        }
        if let Some(f) = self.authorization.and_then(|a| a.credentials_file.as_ref()) {
            out.push(("credentials file", f));
        }
        if let Some(f) = self.bearer_token_file {
            out.push(("bearer token file", f));
        }
        out
    }
}

pub(crate) fn default_true() -> bool {
    true
}

pub(crate) fn is_true(b: &bool) -> bool {
    *b
}
