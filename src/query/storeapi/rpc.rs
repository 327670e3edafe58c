//! What this node answers on the RPC transport: requests are addressed to a role (or to the
//! node's `cluster` service) and a method. Today: the role-assignment map for peers that missed
//! gossip, this node's view of the members, and the StoreAPI (`server`); further role APIs plug
//! in here.

use std::sync::Arc;

use async_trait::async_trait;

use super::{server, STORE_TARGET};
use crate::cluster::service::ClusterService;
use crate::cluster::transport::{
    role_not_here, single_response, RemoteError, RemoteErrorKind, Request, ResponseStream,
    RpcHandler,
};
use crate::query::sources::SourceSet;

pub struct NodeRpc {
    pub cluster: Arc<ClusterService>,
    pub sources: Arc<SourceSet>,
}

#[async_trait]
impl RpcHandler for NodeRpc {
    async fn handle(&self, req: Request) -> Result<ResponseStream, RemoteError> {
        match (req.target_role.as_str(), req.method.as_str()) {
            ("cluster", "assignments") => {
                let map = self.cluster.assignments();
                let body = serde_json::to_vec(&map).map_err(|e| RemoteError {
                    kind: RemoteErrorKind::Internal,
                    message: e.to_string(),
                })?;
                Ok(single_response(body))
            }
            ("cluster", "members") => {
                let ids: Vec<(String, String)> = self
                    .cluster
                    .members()
                    .into_iter()
                    .map(|m| (m.meta.node_id, format!("{:?}", m.state)))
                    .collect();
                let body = serde_json::to_vec(&ids).map_err(|e| RemoteError {
                    kind: RemoteErrorKind::Internal,
                    message: e.to_string(),
                })?;
                Ok(single_response(body))
            }
            (STORE_TARGET, _) => server::serve(&self.sources, req).await,
            ("cluster", other) => Err(RemoteError {
                kind: RemoteErrorKind::NotFound,
                message: format!("unknown cluster method {other:?}"),
            }),
            (role, _) => Err(role_not_here(role)),
        }
    }
}
