//! Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY when the config has none, and
//! the full `open_bucket` path for `type: s3`. Its own test binary (= own process) because it
//! sets environment variables.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use prometheus_client::registry::Registry;
use strata::storage::bucket::{open_bucket, BucketConfig};
use strata_testing::metrics::{metric_value, metrics_text};
use strata_testing::s3::{S3Server, ACCESS_KEY, BUCKET, SECRET_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_bucket_s3_with_env_credentials() {
    let server = S3Server::start();
    // Set before any client exists in this process; nothing else reads env concurrently.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let cfg: BucketConfig = serde_json::from_value(serde_json::json!({
        "type": "s3",
        "s3": {"endpoint": server.endpoint(), "bucket": BUCKET},
        "retry": {"max_attempts": 2, "initial_backoff_ms": 1, "max_backoff_ms": 2,
                  "op_timeout_secs": 30, "transfer_timeout_secs": 60}
    }))
    .unwrap();
    let mut reg = Registry::default();
    let store = open_bucket(&cfg, &mut reg).unwrap();
    assert_eq!(store.backend(), "s3");
    store
        .put_bytes("x/y", bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(&store.get("x/y").await.unwrap()[..], b"hello");
    assert!(store.get("x/missing").await.unwrap_err().is_not_found());
    let text = metrics_text(&reg);
    assert_eq!(
        metric_value(
            &text,
            "strata_bucket_operations_total{operation=\"put_bytes\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            "strata_bucket_transferred_bytes_total{operation=\"get\"}"
        ),
        Some(5.0)
    );
    // NotFound is not retried and not a failure.
    assert_eq!(
        metric_value(&text, "strata_bucket_operations_total{operation=\"get\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&text, "strata_bucket_retries_total{operation=\"get\"}"),
        None
    );

    // Wrong env secret: permanent 403, not retried.
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "wrong");
    let mut reg2 = Registry::default();
    let bad = open_bucket(&cfg, &mut reg2).unwrap();
    let err = bad.get("x/y").await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("403"), "{err}");
}
