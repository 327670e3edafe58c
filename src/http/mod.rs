//! The node's HTTP surface (actix-web): the Prometheus HTTP API, Strata's admin API, health and
//! `/metrics`. Routes live in one submodule per area; errors become responses in `error`.

pub mod admin;
pub mod cluster;
pub mod error;
pub mod forward;
pub mod params;
pub mod query;
pub mod remote_write;
pub mod status;
pub mod status_api;
pub mod targets;
pub mod targets_cluster;

use actix_web::{web, App, HttpServer};

use crate::node::NodeState;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot serve HTTP on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Starts the HTTP server on an already bound listener; the returned server must be awaited
/// (or spawned) and is stopped through its handle.
pub fn serve(
    listener: std::net::TcpListener,
    state: web::Data<NodeState>,
    workers: usize,
) -> Result<actix_web::dev::Server, HttpError> {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let node_id = state.node_id.clone();
    let server = HttpServer::new(move || {
        App::new()
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add((forward::SERVED_BY, node_id.clone())),
            )
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(32 * 1024 * 1024))
            .configure(status::routes)
            .configure(status_api::routes)
            .configure(admin::routes)
            .configure(cluster::routes)
            .configure(query::routes)
            .configure(remote_write::routes)
            .configure(targets::routes)
    })
    .workers(workers.max(1))
    .disable_signals()
    .shutdown_timeout(10)
    .listen(listener)
    .map_err(|source| HttpError::Listen { addr, source })?
    .run();
    Ok(server)
}
