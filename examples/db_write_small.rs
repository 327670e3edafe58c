//! Writes a small Db (WAL only, plus blocks when the span is long enough) for manual
//! inspection with `promtool tsdb dump`: `cargo run --example db_write_small -- <dir> <hours>`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use strata::storage::db::{Db, DbOptions};
use strata::storage::model::Labels;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: db_write_small <dir> <hours>")?;
    let hours: i64 = args.next().unwrap_or_else(|| "1".into()).parse()?;
    let db = Db::open(std::path::Path::new(&dir), DbOptions::default())?;
    let mut t = 1_700_000_000_000i64;
    let end = t + hours * 3600 * 1000;
    while t < end {
        let mut app = db.appender();
        for i in 0..3 {
            let l = Labels::from_pairs([("__name__", "demo_metric"), ("i", &i.to_string())]);
            app.add(&l, t, (t / 1000 % 1000) as f64 + i as f64 / 4.0)?;
        }
        app.commit()?;
        db.cut_blocks(t)?;
        t += 60_000;
    }
    db.close()?;
    Ok(())
}
