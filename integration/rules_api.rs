//! Mimir's ruler config API on a node, called as mimirtool and Grafana call it (plain HTTP,
//! YAML bodies): a group is posted, listed, read, evaluated beside a rule file's group and
//! shown by `/api/v1/rules`; a dry run answers what a group would record and warns about a
//! selector that matches nothing; bad groups, a rule file's group and a missing token are
//! refused; the group survives a restart (it is in the bucket) and a delete removes it.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strata_testing::{http_client, wait_until, TestNode};

const GROUP: &str = "name: api-group
interval: 1s
rules:
  - record: strata:api_answer
    expr: vector(7)
    labels: {source: api}
  - alert: ApiAnswerIsBig
    expr: strata:api_answer > 5
";

async fn start(data: &Path, bucket: &Path, rule_file: &Path) -> TestNode {
    TestNode::builder()
        .roles(&["rule_evaluator", "query_planner"])
        .data_dir(data)
        .filesystem_bucket(bucket)
        .admin_token()
        .yaml(&format!("rule_files: [{}]\n", rule_file.display()))
        .start()
        .await
}

async fn post(node: &TestNode, path: &str, body: &str) -> (u16, String) {
    let req = http_client()
        .post(format!("{}{path}", node.base))
        .header("Content-Type", "application/yaml")
        .body(body.to_string());
    let resp = node.authed(req).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn get(node: &TestNode, path: &str) -> (u16, String) {
    let resp = http_client()
        .get(format!("{}{path}", node.base))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn delete(node: &TestNode, path: &str) -> u16 {
    let req = http_client().delete(format!("{}{path}", node.base));
    node.authed(req).send().await.unwrap().status().as_u16()
}

async fn query(node: &TestNode, expr: &str) -> Value {
    http_client()
        .post(format!("{}/api/v1/query", node.base))
        .form(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `(file, name)` of every group `/api/v1/rules` lists.
async fn listed_groups(node: &TestNode) -> Vec<(String, String)> {
    let v = node.get_json("/api/v1/rules").await;
    v["data"]["groups"]
        .as_array()
        .map(|gs| {
            gs.iter()
                .map(|g| {
                    (
                        g["file"].as_str().unwrap_or_default().to_string(),
                        g["name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[actix_rt::test]
async fn groups_written_through_the_ruler_api_are_evaluated_kept_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bucket = dir.path().join("bucket");
    let rule_file = dir.path().join("rules.yml");
    std::fs::write(
        &rule_file,
        "groups:\n- name: g1\n  interval: 1s\n  rules:\n  - record: strata:from_file\n    expr: vector(1)\n",
    )
    .unwrap();
    let node = start(&data, &bucket, &rule_file).await;

    // Grafana's detection.
    let info = node.get_json("/api/v1/status/buildinfo").await;
    assert_eq!(
        info["data"]["features"]["ruler_config_api"], "true",
        "{info}"
    );

    // Nothing yet: Mimir's 404.
    let (status, text) = get(&node, "/prometheus/config/v1/rules").await;
    assert_eq!((status, text.as_str()), (404, "no rule groups found\n"));

    // Writes need the admin token.
    let resp = http_client()
        .post(format!("{}/prometheus/config/v1/rules/team%2Fa", node.base))
        .header("Content-Type", "application/yaml")
        .body(GROUP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let (status, text) = post(&node, "/prometheus/config/v1/rules/team%2Fa", GROUP).await;
    assert_eq!(status, 202, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["status"], "success");

    // Listed at once, under both paths; names are percent-decoded.
    let (status, text) = get(&node, "/prometheus/config/v1/rules").await;
    assert_eq!(status, 200);
    let all: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(all["team/a"][0]["name"], "api-group", "{text}");
    assert_eq!(all["team/a"][0]["rules"][0]["expr"], "vector(7)", "{text}");
    let (status, text) = get(&node, "/config/v1/rules/team%2Fa").await;
    assert_eq!(status, 200);
    assert!(text.contains("api-group"), "{text}");
    let (status, text) = get(&node, "/config/v1/rules/team%2Fa/api-group").await;
    assert_eq!(status, 200);
    let one: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(one["name"], "api-group", "{text}");
    assert_eq!(one["interval"], "1s", "{text}");
    let (status, text) = get(&node, "/config/v1/rules/team%2Fa/nope").await;
    assert_eq!((status, text.as_str()), (404, "group does not exist\n"));
    let (status, _) = get(&node, "/config/v1/rules/nope").await;
    assert_eq!(status, 404);

    // Evaluated beside the rule file's group; the namespace is the group's file.
    wait_until(
        "the API group's recorded series",
        Duration::from_secs(30),
        || async {
            query(&node, "strata:api_answer").await["data"]["result"][0]["value"][1] == "7"
        },
    )
    .await;
    wait_until("both groups listed", Duration::from_secs(30), || async {
        let groups = listed_groups(&node).await;
        groups.contains(&("team/a".to_string(), "api-group".to_string()))
            && groups.iter().any(|(_, n)| n == "g1")
    })
    .await;

    // A dry run: what the group would record, and a selector that matches nothing.
    let dry = "name: dry\nrules:\n  - record: strata:dry\n    expr: vector(3)\n  - record: strata:nothing\n    expr: sum(strata_no_such_metric{job=\"x\"})\n  - alert: DryAlert\n    expr: vector(1) > 0\n    for: 5m\n    annotations: {value: '{{ $value }}'}\n";
    let (status, text) = post(
        &node,
        "/prometheus/config/v1/rules/team%2Fa?dry_run=true",
        dry,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"]["rules"][0]["series"][0]["value"][1], "3", "{v}");
    assert_eq!(
        v["data"]["rules"][0]["series"][0]["metric"]["__name__"], "strata:dry",
        "{v}"
    );
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("strata_no_such_metric") && warnings.contains("matches no series"),
        "{v}"
    );
    let alert = &v["data"]["rules"][2]["alerts"][0];
    assert_eq!(alert["state"], "pending", "{v}");
    assert_eq!(alert["annotations"]["value"], "1", "{v}");
    let (status, _) = get(&node, "/config/v1/rules/team%2Fa/dry").await;
    assert_eq!(status, 404, "a dry run stores nothing");

    // Invalid groups are refused with the problem named.
    let (status, text) = post(
        &node,
        "/prometheus/config/v1/rules/team%2Fa",
        "name: bad\nrules:\n  - record: x\n    expr: sum(\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("could not parse expression"), "{text}");
    let (status, text) = post(&node, "/prometheus/config/v1/rules/ns", "rules: []\n").await;
    assert_eq!(status, 400);
    assert!(text.contains("Groupname must not be empty"), "{text}");
    // A rule file's group cannot be shadowed.
    let file_ns = rule_file.display().to_string().replace('/', "%2F");
    let (status, text) = post(
        &node,
        &format!("/prometheus/config/v1/rules/{file_ns}"),
        "name: g1\nrules: []\n",
    )
    .await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("rules.yml"), "{text}");

    // Another node on the bucket answers reads alike at once.
    let other = TestNode::builder()
        .roles(&["query_planner"])
        .filesystem_bucket(&bucket)
        .yaml(&format!("rule_files: [{}]\n", rule_file.display()))
        .start()
        .await;
    let (status, text) = get(&other, "/config/v1/rules/team%2Fa/api-group").await;
    assert_eq!(status, 200, "{text}");
    // It knows the rule files' groups without being a RuleEvaluator.
    let (status, text) = post(
        &other,
        &format!("/config/v1/rules/{file_ns}"),
        "name: g1\nrules: []\n",
    )
    .await;
    assert_eq!(status, 409, "{text}");
    other.handle.stop().await;

    // The group is in the bucket: a restarted node has it.
    node.handle.stop().await;
    let node = start(&data, &bucket, &rule_file).await;
    wait_until(
        "the group after a restart",
        Duration::from_secs(30),
        || async { get(&node, "/config/v1/rules/team%2Fa/api-group").await.0 == 200 },
    )
    .await;
    wait_until(
        "the group evaluated after a restart",
        Duration::from_secs(30),
        || async {
            listed_groups(&node)
                .await
                .contains(&("team/a".to_string(), "api-group".to_string()))
        },
    )
    .await;

    // Deleting it stops its evaluation.
    assert_eq!(
        delete(&node, "/config/v1/rules/team%2Fa/api-group").await,
        202
    );
    assert_eq!(
        get(&node, "/config/v1/rules/team%2Fa/api-group").await.0,
        404
    );
    wait_until(
        "the group gone from /api/v1/rules",
        Duration::from_secs(30),
        || async {
            let groups = listed_groups(&node).await;
            !groups.iter().any(|(_, n)| n == "api-group") && groups.iter().any(|(_, n)| n == "g1")
        },
    )
    .await;
    assert_eq!(
        delete(&node, "/config/v1/rules/team%2Fa/api-group").await,
        404
    );
    assert_eq!(delete(&node, "/config/v1/rules/team%2Fa").await, 404);
    // A namespace goes with all its groups.
    let (status, _) = post(&node, "/config/v1/rules/other", "name: x\nrules: []\n").await;
    assert_eq!(status, 202);
    assert_eq!(delete(&node, "/config/v1/rules/other").await, 202);
    assert_eq!(get(&node, "/config/v1/rules").await.0, 404);
    node.handle.stop().await;
}
