//! Outgoing HTTP as Prometheus makes it from a config's HTTP client settings, shared by the
//! scraper and the Alertmanager notifier: the reqwest client (TLS files, redirects, no proxy
//! from the environment, a User-Agent), basic auth or an `Authorization` header with secret
//! files re-read on every request (so a rotated secret takes effect without a reload), and the
//! text of a request error with its causes ("connection refused"), as Prometheus shows it.

use std::path::{Path, PathBuf};

use crate::config::{AuthHeader, TlsConfig};

/// A client with `tls` (CA, client certificate and key read now), redirects followed up to 10
/// times or not at all, no proxy and `user_agent`. `resolve` maps a configured file name to
/// the file to read (relative names are relative to the config file).
pub fn build_client(
    tls: &TlsConfig,
    follow_redirects: bool,
    user_agent: &str,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .user_agent(user_agent)
        .danger_accept_invalid_certs(tls.insecure_skip_verify)
        .pool_max_idle_per_host(2)
        .redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    if let Some(ca) = &tls.ca_file {
        let path = resolve(ca);
        let pem =
            std::fs::read(&path).map_err(|e| format!("reading CA file {}: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
        b = b.add_root_certificate(cert);
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        let mut pem = std::fs::read(resolve(cert))
            .map_err(|e| format!("reading client cert {}: {e}", cert.display()))?;
        pem.extend(
            std::fs::read(resolve(key))
                .map_err(|e| format!("reading client key {}: {e}", key.display()))?,
        );
        let id =
            reqwest::Identity::from_pem(&pem).map_err(|e| format!("client certificate: {e}"))?;
        b = b.identity(id);
    }
    b.build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// A secret file that could not be read: what it is, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading {what} {path}: {reason}")]
pub struct SecretError {
    pub what: &'static str,
    pub path: String,
    pub reason: String,
}

/// Adds basic auth or the `Authorization` header of `auth`, reading secret files now.
pub fn apply_auth(
    req: reqwest::RequestBuilder,
    auth: &AuthHeader,
    resolve: impl Fn(&Path) -> PathBuf,
) -> Result<reqwest::RequestBuilder, SecretError> {
    let read = |what: &'static str, f: &Path| {
        let path = resolve(f);
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| SecretError {
                what,
                path: path.display().to_string(),
                reason: e.to_string(),
            })
    };
    Ok(match auth {
        AuthHeader::None => req,
        AuthHeader::Basic {
            username,
            password,
            password_file,
        } => {
            let pw = match password_file {
                Some(f) => read("password file", f.as_path())?,
                None => password.expose().to_string(),
            };
            req.basic_auth(username, Some(pw))
        }
        AuthHeader::Credentials {
            auth_type,
            credentials,
            credentials_file,
        } => {
            let c = match credentials_file {
                Some(f) => read("credentials file", f.as_path())?,
                None => credentials.expose().to_string(),
            };
            req.header(reqwest::header::AUTHORIZATION, format!("{auth_type} {c}"))
        }
    })
}

/// An error with its causes, each once: "error sending request: connection refused".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}
