//! Fresh databases for tests: a new SQLite file, or a new PostgreSQL database, per test.
//!
//! PostgreSQL tests run whenever a server answers at `DISBURSE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When none answers, the test says so plainly on
//! stderr and returns; with `DISBURSE_REQUIRE_POSTGRES=1` (set by `.ci/run`) it fails instead, so
//! CI always runs every test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{Connection, Executor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    sqlite_dir: Option<PathBuf>,
    pg: Option<(String, String)>,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn admin_url() -> String {
    std::env::var("DISBURSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "disburse_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// A directory for one test's files, removed when the `TestDb` is dropped.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name());
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

impl TestDb {
    /// `None` when PostgreSQL was asked for and is not reachable (and not required).
    pub async fn fresh(backend: TestBackend, test_name: &str) -> Option<TestDb> {
        match backend {
            TestBackend::Sqlite => {
                let dir = temp_dir();
                let url = format!("sqlite://{}?mode=rwc", dir.join("disburse.db").display());
                Some(TestDb {
                    url,
                    sqlite_dir: Some(dir),
                    pg: None,
                })
            }
            TestBackend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = admin_url();
                let mut conn = match sqlx::AnyConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) => {
                        if std::env::var("DISBURSE_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                            panic!("PostgreSQL is required (DISBURSE_REQUIRE_POSTGRES=1) but {admin} is not reachable: {e}");
                        }
                        eprintln!(
                            "NOT RUN on PostgreSQL: {test_name} (no server at {admin}: {e}); set DISBURSE_TEST_POSTGRES to run it"
                        );
                        return None;
                    }
                };
                let name = unique_name();
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    sqlite_dir: None,
                    pg: Some((admin, name)),
                })
            }
        }
    }

    /// The directory of the SQLite file, or a scratch directory for PostgreSQL tests.
    pub fn dir(&self) -> Option<&PathBuf> {
        self.sqlite_dir.as_ref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            std::fs::remove_dir_all(dir).ok();
        }
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside any runtime we may block; use a thread with its own.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                        conn.execute(
                            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
                        )
                        .await
                        .ok();
                    }
                });
            })
            .join()
            .ok();
        }
    }
}
