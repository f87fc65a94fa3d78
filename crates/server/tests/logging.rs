//! Alone in its own process, so that its subscriber is the only one: query strings are not
//! logged.

/// Query strings are not logged: a key pasted into a URL stays out of the logs.
#[tokio::test(flavor = "current_thread")]
async fn query_strings_are_not_logged() {
    use std::io::Write;
    use tower::ServiceExt;
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let db = disburse_store::testing::TestDb::fresh(
        disburse_store::testing::TestBackend::Sqlite,
        "querylog",
    )
    .await
    .unwrap();
    let dir = disburse_store::testing::temp_dir();
    let engine = std::sync::Arc::new(disburse_engine::Engine::new(
        disburse_store::Db::open(&db.url).await.unwrap(),
        disburse_engine::Config::builtin(),
        disburse_core::crypto::AccountKey::generate(),
    ));
    let app = disburse_server::router(disburse_server::AppState::new(engine));
    let req = axum::http::Request::get("/v1/balance?api_key=dsk_SECRET_IN_QUERY")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 401);
    let logged = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("/v1/balance"),
        "the request is logged: {logged}"
    );
    assert!(!logged.contains("SECRET_IN_QUERY"), "{logged}");
    std::fs::remove_dir_all(dir).ok();
}
