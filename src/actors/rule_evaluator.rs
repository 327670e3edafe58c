//! The RuleEvaluator role (ruler): loads the rule files, evaluates its share of the rule
//! groups (the files' and those written through the ruler config API, `rules::api`, which
//! arrive with the files' through `RulesView::pending`) through the node's QueryService (the
//! global, deduplicated view, with partial responses kept as per-rule warnings), appends what
//! the rules produce (recorded series, ALERTS, ALERTS_FOR_STATE, staleness markers) to the
//! node's local TSDB like scraped samples, so they are queryable at once and shipped with the
//! node's external labels, and hands the alerts due for sending to the node's [`AlertSender`].
//!
//! Groups are owned by rendezvous hashing of their `file;name` key over the live
//! RuleEvaluators with `cluster.rule_replication` owners each (2 by default: two nodes
//! evaluate every group; their outputs differ only by the replica label, which the query side
//! deduplicates and the notifier removes, so an Alertmanager cluster deduplicates the alerts).
//! When ownership moves, the group's task stops here (writing staleness markers for what it
//! wrote) and starts on the new owner, which restores the alert state from ALERTS_FOR_STATE
//! through the global view before its first notification.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::role::{RoleActor, RoleWorker};
use super::scraper_shipper::{maintenance_interval, maintenance_round};
use super::RoleContext;
use crate::cluster::ownership;
use crate::config::Role;
use crate::promql::{Value, VectorSample};
use crate::query::service::{QueryOptions, QueryService};
use crate::rules::alerting::Expander;
use crate::rules::group::{Group, OutgoingAlert, RuleQuerier};
use crate::rules::manager::{load, owned_groups, GroupDefs};
use crate::rules::template::{
    expand_or_error_text, ExpandContext, QueryFunc as TemplateQuery, QuerySample, TemplateData,
};

/// How often ownership is recomputed against the live members.
const OWNERSHIP_POLL: Duration = Duration::from_secs(1);

/// Where alerts due for sending go (the notifier; a node without Alertmanagers drops them).
pub trait AlertSender: Send + Sync {
    fn send(&self, alerts: Vec<OutgoingAlert>);

    /// `/api/v1/alertmanagers`' data: `{activeAlertmanagers: [{url}], droppedAlertmanagers}`.
    fn alertmanagers(&self) -> serde_json::Value {
        serde_json::json!({"activeAlertmanagers": [], "droppedAlertmanagers": []})
    }
}

/// The querier of a node: the QueryService with dedup and partial responses on, its queries
/// counted as the group's (metric usage).
struct ServiceQuerier(Arc<QueryService>, crate::query::usage::Source);

impl RuleQuerier for ServiceQuerier {
    fn query<'a>(
        &'a self,
        expr: &'a str,
        ts_ms: i64,
    ) -> BoxFuture<'a, Result<(Value, Vec<String>), String>> {
        Box::pin(async move {
            let v = self
                .0
                .instant(
                    expr,
                    ts_ms,
                    &QueryOptions {
                        source: self.1.clone(),
                        ..QueryOptions::default()
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            Ok((v.value, v.warnings))
        })
    }
}

pub struct RuleEvaluator {
    ctx: Arc<RoleContext>,
    stop: CancellationToken,
}

impl RuleEvaluator {
    pub fn new(ctx: Arc<RoleContext>) -> Self {
        RuleEvaluator {
            ctx,
            stop: CancellationToken::new(),
        }
    }
}

impl RoleWorker for RuleEvaluator {
    fn started(&mut self, _ctx: &mut Context<RoleActor>) {
        // On the rules runtime (multi-threaded): a template's `query` call blocks its worker
        // thread while the query runs, which the actor's own thread must never do.
        match self.ctx.rules_runtime.handle() {
            Some(h) => {
                h.spawn(run(self.ctx.clone(), self.stop.clone()));
            }
            None => tracing::error!("the rules runtime has stopped; no rules are evaluated"),
        }
    }

    fn detail(&self) -> serde_json::Value {
        let view = self.ctx.rules.read();
        serde_json::json!({
            "groups_loaded": view.loaded,
            "groups_evaluated_here": view.groups.keys().collect::<Vec<_>>(),
            "load_errors": view.load_errors,
        })
    }

    fn shutdown(&mut self) -> futures::future::LocalBoxFuture<'static, ()> {
        self.stop.cancel();
        Box::pin(async {})
    }
}

/// The live RuleEvaluators, this node included.
fn live_evaluators(ctx: &RoleContext) -> Vec<String> {
    let mut ids: Vec<String> = ctx
        .cluster
        .live_peers_with_role(Role::RuleEvaluator)
        .into_iter()
        .map(|m| m.node_id)
        .collect();
    ids.push(ctx.config.node.id.clone());
    ids.sort();
    ids.dedup();
    ids
}

async fn run(ctx: Arc<RoleContext>, stop: CancellationToken) {
    let paths = match ctx.config.rule_file_paths() {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot expand rule_files");
            ctx.rules.write().load_errors = vec![e];
            return;
        }
    };
    let mut defs: GroupDefs = match load(&paths) {
        Ok(d) => d,
        Err(errors) => {
            for e in &errors {
                tracing::error!(error = %e, "invalid rule file; no rules are evaluated");
            }
            let mut view = ctx.rules.write();
            view.load_errors = errors;
            view.metrics.last_reload_successful.set(0);
            return;
        }
    };
    {
        // The API groups join the files' (and a hand-over made before this start is stale).
        let mut view = ctx.rules.write();
        view.file_groups = defs;
        view.pending = None;
        defs = view.all_groups();
        view.loaded = defs.len();
        view.load_errors.clear();
        view.metrics.last_reload_successful.set(1);
    }
    tracing::info!(
        groups = defs.len(),
        files = paths.len(),
        "rule files loaded"
    );
    let me = ctx.config.node.id.clone();
    let replication = ctx.config.cluster.rule_replication;
    let mut running: BTreeMap<String, (GroupTask, tokio::task::JoinHandle<()>)> = BTreeMap::new();
    let mut tick = tokio::time::interval(OWNERSHIP_POLL);
    let roles = ctx.cluster.local_roles();
    let every = maintenance_interval(ctx.config.tsdb.block_duration.as_millis());
    let mut last_round = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        // Rule output is in the local TSDB: without a ScraperShipper on this node to cut and
        // ship it (as a Thanos ruler ships its own blocks), this role does it.
        let scraper_here = roles.borrow().contains(&Role::ScraperShipper);
        if !scraper_here && last_round.elapsed() >= every {
            last_round = tokio::time::Instant::now();
            let round = maintenance_round(
                ctx.db.clone(),
                ctx.shipper.clone(),
                ctx.config.tsdb.retention.as_std(),
            );
            if let Err(e) = round.await {
                tracing::warn!(error = %e, "rule output shipping is behind; will retry");
            }
        }
        // A reload's new definitions: changed groups restart from them (taking over the old
        // group's alert state), removed ones stop and mark their series stale.
        let pending = ctx.rules.write().pending.take();
        if let Some(next) = pending {
            let changed: Vec<String> = running
                .keys()
                .filter(|k| next.get(*k) != defs.get(*k))
                .cloned()
                .collect();
            for key in changed {
                let Some((task, handle)) = running.remove(&key) else {
                    continue;
                };
                task.replaced
                    .store(next.contains_key(&key), std::sync::atomic::Ordering::SeqCst);
                task.stop.cancel();
                // An evaluation in flight finishes and publishes its state before the new
                // definition copies it, so no slot is evaluated twice nor state lost.
                let _ = handle.await;
            }
            defs = next;
            let mut view = ctx.rules.write();
            view.loaded = defs.len();
            tracing::info!(groups = defs.len(), "rule groups reloaded");
        }
        let live = live_evaluators(&ctx);
        let owned = owned_groups(&defs, &me, &live, replication, |k, n, l, r| {
            ownership::is_owner(k.as_bytes(), n, l, r)
        });
        running.retain(|key, (task, _)| {
            let keep = owned.contains(&key.as_str());
            if !keep {
                tracing::info!(group = %key, "rule group moved away from this node");
                task.stop.cancel();
            }
            keep
        });
        for key in owned {
            if running.contains_key(key) {
                continue;
            }
            let Some((file, def)) = defs.get(key) else {
                continue;
            };
            let interval = ctx.config.global.evaluation_interval.as_std();
            let mut group = match Group::new(file, def, interval, true) {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(group = %key, error = %e, "cannot schedule rule group");
                    continue;
                }
            };
            group.resend_delay = ctx.config.ruler.resend_delay.as_std();
            group.outage_tolerance = ctx.config.ruler.for_outage_tolerance.as_std();
            // A reloaded group takes over the state of the one it replaces.
            if let Some(old) = ctx.rules.read().groups.get(key) {
                group.copy_state(old);
            }
            let task = GroupTask {
                stop: stop.child_token(),
                replaced: Arc::default(),
            };
            let handle = tokio::spawn(run_group(ctx.clone(), group, task.clone()));
            running.insert(key.to_string(), (task, handle));
        }
    }
    for (task, _) in running.values() {
        task.stop.cancel();
    }
}

/// A running group's stop switch; `replaced` says a reload's new definition takes over (no
/// staleness markers, the state is copied) rather than the group going away.
#[derive(Clone)]
struct GroupTask {
    stop: CancellationToken,
    replaced: Arc<std::sync::atomic::AtomicBool>,
}

fn now_ns() -> i64 {
    let d = crate::time::since_epoch(std::time::SystemTime::now());
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Evaluates one group on its schedule until `stop`; then marks what it wrote stale and
/// removes it from the view.
async fn run_group(ctx: Arc<RoleContext>, mut group: Group, task: GroupTask) {
    let stop = task.stop.clone();
    let key = group.key();
    let querier = ServiceQuerier(
        ctx.query.clone(),
        crate::query::usage::Source::Rule { group: key.clone() },
    );
    let expander = ctx.expander.clone();
    let ignore: Vec<String> = ctx.config.shipping_labels().into_keys().collect();
    let mut eval_ns = group.schedule.first_eval(now_ns());
    loop {
        let wait = Duration::from_nanos(u64::try_from(eval_ns - now_ns()).unwrap_or(0));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
        let mut out = group.eval(eval_ns, &querier, expander.as_ref()).await;
        if group.needs_restore {
            // The first evaluation made the alerts (pending, nothing written or sent); with
            // their `for` state restored, evaluating the same instant again gives the state
            // they really have, so an alert that was firing on another node (or before a
            // restart) is firing from this node's first published evaluation, never pending.
            group.restore(now_ns(), &querier, &ignore).await;
            out = group.eval(eval_ns, &querier, expander.as_ref()).await;
        }
        append(&ctx, &out.samples, &key);
        if !out.alerts.is_empty() {
            ctx.alerts.send(out.alerts);
        }
        let tick = group.schedule.next_tick(
            eval_ns,
            now_ns().max(eval_ns + group.schedule.interval_ns()),
        );
        if tick.missed > 0 {
            tracing::warn!(group = %key, missed = tick.missed, "rule group missed iterations");
        }
        {
            let mut view = ctx.rules.write();
            view.metrics.observe_group(
                &key,
                &crate::rules::metrics::GroupEvaluation {
                    eval_ns,
                    seconds: group.last_duration.as_secs_f64(),
                    interval_seconds: group.interval.as_secs_f64(),
                    rules: group.rules.len(),
                    failures: out.failures,
                    missed: tick.missed,
                },
            );
            view.groups.insert(key.clone(), group.clone());
        }
        eval_ns = tick.eval_ns;
    }
    if task.replaced.load(std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let ts_ms = now_ns() / 1_000_000;
    append(&ctx, &group.stale_markers(ts_ms), &key);
    let mut view = ctx.rules.write();
    view.groups.remove(&key);
    view.metrics.forget_group(&key);
}

/// Appends rule output to the local TSDB in one commit.
fn append(ctx: &RoleContext, samples: &[VectorSample], group: &str) {
    if samples.is_empty() {
        return;
    }
    let mut app = ctx.db.appender();
    let mut refused = 0usize;
    for s in samples {
        if app.add(&s.labels, s.t, s.v).is_err() {
            refused += 1;
        }
    }
    if let Err(e) = app.commit() {
        tracing::error!(group = %group, error = %e, "cannot write rule output");
    } else if refused > 0 {
        tracing::warn!(group = %group, refused, "rule output samples refused by the TSDB");
    }
}

/// An expander for templates, shared by all groups of the node.
pub type SharedExpander = Arc<dyn Expander + Send + Sync>;

/// Prometheus's template language over this node's query service: `$labels`, `$value`,
/// `$externalLabels`, `$externalURL` and the `query` function (run through the global view at
/// the evaluation time). Runs on the rules runtime, where blocking on a query is allowed.
pub struct TemplateExpander {
    pub query: Arc<QueryService>,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

impl TemplateQuery for TemplateExpander {
    fn query(&self, expr: &str, ts_ms: i64) -> Result<Vec<QuerySample>, String> {
        let service = self.query.clone();
        let expr = expr.to_string();
        let run = async move {
            service
                .instant(&expr, ts_ms, &QueryOptions::default())
                .await
                .map_err(|e| e.to_string())
        };
        let answer = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(run))
            }
            _ => return Err("queries in templates need the rules runtime".to_string()),
        }?;
        crate::rules::template::query_samples(answer.value)
    }
}

impl Expander for TemplateExpander {
    fn expand(
        &self,
        alert: &str,
        text: &str,
        labels: &crate::storage::model::Labels,
        value: f64,
        ts_ns: i64,
    ) -> String {
        let data =
            TemplateData::for_alert(labels, value, &self.external_labels, &self.external_url);
        let ctx = ExpandContext {
            data: &data,
            eval_time_ms: ts_ns.div_euclid(1_000_000),
            query: self,
            external_url: Some(&self.external_url),
        };
        expand_or_error_text(alert, text, &ctx)
    }
}
