//! Loops over use cases, run by `serve` when workers are on: the webhook dispatcher, the deadline
//! sweeper, the inbox watcher (result files dropped in each channel's `inbox_dir`), and the
//! batch submitter (pending payouts of file channels become files in `outbox_dir`), and the
//! API-channel worker (pending payouts of `http-api` channels sent one request each, open
//! outcomes asked about with backoff). Each loop
//! stops when shutdown is asked for, after the step it is in. Several processes may run them
//! against one PostgreSQL: every step is a use case that serializes on the database, and imports
//! are idempotent by file hash.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use disburse_engine::{Actor, BatchSummary, Channel, Engine, EngineError, ImportSummary};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::webhooks::{Dispatcher, DispatcherConfig};

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often orders taken through the API get their first payout (API channels send it at once).
    pub payout_start_interval: Duration,
    pub sweep_interval: Duration,
    pub batch_interval: Duration,
    pub inbox_interval: Duration,
    /// A file is imported only once it has not changed for this long (it may still be copied in).
    pub inbox_settle: Duration,
    /// Files imported per channel per scan.
    pub inbox_files_max: usize,
    /// Batches made per channel per round.
    pub batches_max: usize,
    /// How often each `http-api` channel sends its pending payouts and asks about open outcomes
    /// (each open outcome is asked about on its own backoff, not every round).
    pub api_channel_interval: Duration,
    pub dispatcher: DispatcherConfig,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            payout_start_interval: Duration::from_secs(2),
            sweep_interval: Duration::from_secs(300),
            batch_interval: Duration::from_secs(900),
            inbox_interval: Duration::from_secs(10),
            inbox_settle: Duration::from_secs(5),
            inbox_files_max: 100,
            batches_max: 50,
            api_channel_interval: Duration::from_secs(1),
            dispatcher: DispatcherConfig::default(),
        }
    }
}

/// Runs `step` every `interval` until shutdown.
async fn every<F, Fut>(
    name: &'static str,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    tracing::info!(
        worker = name,
        interval_ms = interval.as_millis() as u64,
        "worker started"
    );
    loop {
        if *shutdown.borrow() {
            break;
        }
        step().await;
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break; // the sender is gone: nobody can ask for more
                }
            }
            _ = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!(worker = name, "worker stopped");
}

/// Starts every worker; each ends when `shutdown` turns true.
pub fn spawn_workers(
    engine: Arc<Engine>,
    settings: WorkerSettings,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::new();
    let dispatcher = Dispatcher::new(engine.clone(), settings.dispatcher.clone())?;
    handles.push(tokio::spawn(dispatcher.run(shutdown.clone())));

    let e = engine.clone();
    handles.push(tokio::spawn(every(
        "sweeper",
        settings.sweep_interval,
        shutdown.clone(),
        move || {
            let e = e.clone();
            async move {
                // Stored idempotent answers past their retention go with each sweep.
                match crate::idempotency::purge_expired(e.db(), Utc::now()).await {
                    Ok(n) if n > 0 => tracing::info!(
                        worker = "sweeper",
                        idempotency_keys.expired = n,
                        "expired idempotency keys removed"
                    ),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(worker = "sweeper", error = %err,
                        "removing expired idempotency keys failed"),
                }
                match e.sweep(Utc::now(), &Actor::system("sweeper")).await {
                    Ok(r) if !r.expired.is_empty() || !r.presumed_succeeded.is_empty() => {
                        tracing::info!(
                            worker = "sweeper",
                            expired = r.expired.len(),
                            presumed_succeeded = r.presumed_succeeded.len(),
                            still_waiting = r.still_waiting,
                            "deadline sweep changed payouts"
                        )
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(worker = "sweeper", error = %err, "deadline sweep failed")
                    }
                }
            }
        },
    )));

    let e = engine.clone();
    let (settle, files_max) = (settings.inbox_settle, settings.inbox_files_max);
    handles.push(tokio::spawn(every(
        "inbox",
        settings.inbox_interval,
        shutdown.clone(),
        move || {
            let e = e.clone();
            async move {
                import_inboxes(&e, settle, files_max).await;
            }
        },
    )));

    let e = engine.clone();
    handles.push(tokio::spawn(every(
        "payouts",
        settings.payout_start_interval,
        shutdown.clone(),
        move || {
            let e = e.clone();
            async move {
                // Orders taken through the API get their first payout on the channel that
                // serves them; file channels send it with their next batch.
                match e
                    .pay_open_orders(Utc::now(), &Actor::system("payout-starter"), 1000)
                    .await
                {
                    Ok(started) if !started.is_empty() => tracing::info!(
                        worker = "payouts",
                        payouts.started = started.len(),
                        "first payouts created for open orders"
                    ),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(worker = "payouts", error = %err, "starting payouts failed")
                    }
                }
            }
        },
    )));

    // The API-channel worker: its clients (and their secrets) are made now, so a channel whose
    // secret is missing stops `serve` from starting rather than failing every round.
    let api_worker = crate::bank_api::ApiChannelWorker::new(&engine, None)?;
    if !api_worker.is_empty() {
        let e = engine.clone();
        let worker = Arc::new(tokio::sync::Mutex::new(api_worker));
        handles.push(tokio::spawn(every(
            "api-channels",
            settings.api_channel_interval,
            shutdown.clone(),
            move || {
                let (e, worker) = (e.clone(), worker.clone());
                async move {
                    for r in worker.lock().await.round(&e, Utc::now()).await {
                        match r {
                            Ok(r) if r.sent + r.status_queries > 0 => tracing::info!(
                                worker = "api-channels", channel = %r.channel, sent = r.sent,
                                resent = r.resent, status_queries = r.status_queries,
                                paid = r.paid.len(), rejected = r.rejected.len(),
                                accepted = r.accepted.len(), unknown = r.unknown.len(),
                                exceptions = r.exceptions.len(), "api channel round"
                            ),
                            Ok(r) => {
                                if let Some(held) = r.held {
                                    tracing::warn!(worker = "api-channels", channel = %r.channel, held = %held, "api channel held")
                                }
                            }
                            Err(err) => tracing::warn!(worker = "api-channels", error = %err, "api channel round failed"),
                        }
                    }
                }
            },
        )));
    }

    let e = engine;
    let batches_max = settings.batches_max;
    handles.push(tokio::spawn(every(
        "batches",
        settings.batch_interval,
        shutdown,
        move || {
            let e = e.clone();
            async move {
                submit_batches(&e, batches_max).await;
            }
        },
    )));
    Ok(handles)
}

/// What happened to one file found in an inbox.
#[derive(Debug)]
pub struct InboxOutcome {
    pub channel: String,
    /// Where the file is now: `done/` or `failed/` beside where it was.
    pub moved_to: PathBuf,
    pub result: Result<ImportSummary, String>,
}

fn ready_files(dir: &Path, settle: Duration, max: usize) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part") {
            continue;
        }
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let quiet = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age >= settle);
        if quiet {
            files.push(entry.path());
        }
    }
    files.sort();
    files.truncate(max);
    Ok(files)
}

/// Moves `file` into `dir`, under a new name if one of its name is there already.
fn move_into(file: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let mut target = dir.join(&name);
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}

/// Whether an import error is the file's fault (move it to `failed/`) or ours (leave it and
/// try again at the next scan: the database was away, say).
fn file_at_fault(e: &EngineError) -> bool {
    !matches!(e, EngineError::Store(_) | EngineError::Key(_))
}

async fn import_channel_inbox(
    engine: &Engine,
    channel: &Channel,
    settle: Duration,
    files_max: usize,
) -> Vec<InboxOutcome> {
    let dir = &channel.inbox_dir;
    if !dir.is_dir() {
        return Vec::new();
    }
    let files = match ready_files(dir, settle, files_max) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(worker = "inbox", channel = %channel.id, dir = %dir.display(), error = %e, "inbox cannot be read");
            return Vec::new();
        }
    };
    let mut outcomes = Vec::new();
    for file in files {
        let actor = Actor::system(&format!("inbox:{}", channel.id));
        let result = engine
            .import_results(
                &file,
                Some(channel.id.as_str()),
                Utc::now(),
                &actor,
                &|_, _| {},
            )
            .await;
        let (sub, result) = match result {
            Ok(summary) => ("done", Ok(summary)),
            Err(e) if file_at_fault(&e) => ("failed", Err(e.to_string())),
            Err(e) => {
                tracing::warn!(worker = "inbox", channel = %channel.id, file.name = %file.display(), error = %e,
                    "result file not imported now; trying again at the next scan");
                continue;
            }
        };
        let moved = match move_into(&file, &dir.join(sub)) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(worker = "inbox", file.name = %file.display(), error = %e,
                    "result file handled but not moved; it will be seen again (an import is idempotent)");
                continue;
            }
        };
        match &result {
            Ok(s) => {
                tracing::info!(worker = "inbox", channel = %channel.id, file.name = %s.file_name,
                already_imported = s.already_imported, applied = s.applied, exceptions = s.exceptions,
                "result file imported")
            }
            Err(message) => {
                let note = moved.with_file_name(format!(
                    "{}.error.txt",
                    moved
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default()
                ));
                if let Err(e) = std::fs::write(&note, format!("{message}\n")) {
                    tracing::error!(worker = "inbox", file.name = %note.display(), error = %e, "error note not written");
                }
                tracing::warn!(worker = "inbox", channel = %channel.id, file.name = %moved.display(), error = %message,
                    "result file refused; moved to failed/")
            }
        }
        outcomes.push(InboxOutcome {
            channel: channel.id.to_string(),
            moved_to: moved,
            result,
        });
    }
    outcomes
}

/// One scan of every channel's inbox.
pub async fn import_inboxes(
    engine: &Engine,
    settle: Duration,
    files_max: usize,
) -> Vec<InboxOutcome> {
    let mut all = Vec::new();
    for channel in &engine.config().channels {
        all.extend(import_channel_inbox(engine, channel, settle, files_max).await);
    }
    all
}

/// One round of the batch submitter: batches whose file never reached the disk (a crash between
/// commit and write) are written again from their stored bytes, then every file channel's pending
/// payouts become files in its `outbox_dir`, each written atomically (temporary name, fsync,
/// rename) and recorded as written. A file that cannot be written stays listed as unwritten
/// (`batch list`, the exceptions queue, `disburse_exceptions{kind="batch_file_not_written"}`) and
/// is tried again next round.
pub async fn submit_batches(engine: &Engine, batches_max: usize) -> Vec<(BatchSummary, PathBuf)> {
    let mut made = Vec::new();
    let actor = Actor::system("batcher");
    match engine.export_unwritten_batches(Utc::now(), &actor).await {
        Ok(outcomes) => {
            for (batch, written) in outcomes {
                match written {
                    Ok(path) => {
                        tracing::warn!(worker = "batches", batch.id = batch.batch_id, file.name = %path.display(),
                            "batch file that never reached the disk written again from its stored bytes");
                        made.push((batch, path));
                    }
                    Err(e) => {
                        tracing::error!(worker = "batches", batch.id = batch.batch_id, error = %e, "batch file still not written")
                    }
                }
            }
        }
        Err(e) => tracing::warn!(worker = "batches", error = %e, "unwritten batches not checked"),
    }
    for channel in &engine.config().channels {
        if !channel.kind.makes_files() {
            continue;
        }
        for _ in 0..batches_max {
            match engine
                .create_batch_file(channel.id.as_str(), None, Utc::now(), &actor)
                .await
            {
                Ok(Some((batch, path))) => {
                    tracing::info!(worker = "batches", channel = %channel.id, batch.id = batch.batch_id,
                    payouts = batch.payout_count, file.name = %path.display(), "batch file written");
                    made.push((batch, path));
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(worker = "batches", channel = %channel.id, error = %e, "batch not made or its file not written");
                    break;
                }
            }
        }
    }
    made
}
