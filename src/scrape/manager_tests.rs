use super::*;
use crate::storage::db::DbOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(addr: &str, jobs: &[(&str, &str)]) -> Arc<Config> {
    let mut y = "node:\n  id: t\nscrape_configs:\n".to_string();
    for (job, interval) in jobs {
        y.push_str(&format!("  - job_name: {job}\n    scrape_interval: {interval}\n    static_configs: [{{targets: ['{addr}']}}]\n"));
    }
    Arc::new(Config::from_yaml_str(&y, "t.yml").expect("config"))
}

fn db() -> (tempfile::TempDir, Arc<Db>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(
        dir.path(),
        DbOptions {
            wal_fsync: false,
            ..DbOptions::default()
        },
    )
    .expect("db");
    (dir, Arc::new(db))
}

/// Answers every request with one small exposition body.
async fn serve_one_body() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let body = "# TYPE m gauge\nm 1\n";
                    let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    if s.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn reload_sorts_jobs_into_unchanged_restarted_started_stopped() {
    let (_d, db) = db();
    let m = ScrapeManager::new(db, config("h:1", &[("a", "1s"), ("b", "1s"), ("c", "1s")]));
    // Not started: only the classification happens.
    let r = m.apply_config(config("h:1", &[("a", "1s"), ("b", "2s"), ("d", "1s")]));
    assert_eq!(
        r.unchanged,
        Vec::<String>::new(),
        "nothing runs before start"
    );
    assert_eq!(r.started, vec!["a", "b", "d"]);
}

#[tokio::test]
async fn targets_are_scraped_and_removed_jobs_stop() {
    let addr = serve_one_body().await;
    let (_d, db) = db();
    let m = ScrapeManager::new(db.clone(), config(&addr, &[("a", "100ms"), ("b", "100ms")]));
    let generation = m.start(Handle::current());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = m.snapshot();
        if snap.active.len() == 2
            && snap
                .active
                .iter()
                .all(|t| t.status.health == super::super::scrape_loop::Health::Up)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "targets never came up: {:?}",
            snap.active.iter().map(|t| &t.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(m.metadata().contains_key("m"));
    let r = m.apply_config(config(&addr, &[("a", "100ms")]));
    assert_eq!(r.unchanged, vec!["a"]);
    assert_eq!(r.stopped, vec!["b"]);
    assert_eq!(m.snapshot().active.len(), 1);
    m.stop(generation + 1);
    assert!(m.is_running(), "a stop for another generation is ignored");
    m.stop(generation);
    assert!(!m.is_running());
    assert!(m.snapshot().active.is_empty());
}

#[tokio::test]
async fn a_pool_over_its_target_limit_reports_every_target_down() {
    let addr = serve_one_body().await;
    let y = format!(
        "node:\n  id: t\nscrape_configs:\n  - job_name: a\n    scrape_interval: 100ms\n    target_limit: 1\n    static_configs: [{{targets: ['{addr}', 'localhost:1']}}]\n"
    );
    let (_d, db) = db();
    let m = ScrapeManager::new(
        db,
        Arc::new(Config::from_yaml_str(&y, "t.yml").expect("config")),
    );
    let generation = m.start(Handle::current());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let snap = m.snapshot();
        let errs: Vec<String> = snap
            .active
            .iter()
            .map(|t| t.status.last_error.clone())
            .collect();
        if errs.len() == 2
            && errs
                .iter()
                .all(|e| e.contains("target_limit exceeded (number of targets: 2, limit: 1)"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "errors: {errs:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    m.stop(generation);
}
