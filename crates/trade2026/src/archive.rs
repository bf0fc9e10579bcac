//! `trade2026 journal archive`, and where `journal export` finds archived history.
//!
//! The archive format, its crash safety and the rules of what may be archived live in the
//! `journal` crate (`journal::archive`); this file picks the store from `--to` (a folder, or
//! `s3://bucket/prefix` through `object_store` configured like the report store) and prints
//! what a run did.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use futures_util::{StreamExt, TryStreamExt};
use journal::{ArchiveOptions, ArchiveStore, HistoryReader, Journal, JournalError, LocalArchive};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

#[derive(Args)]
pub struct ArchiveArgs {
    /// The platform's data dir (default ./data, or platform.data_dir from --config).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    common: crate::CommonArgs,
    /// Where segments go: a folder, or s3://bucket/prefix. Default: where this journal archived
    /// before, else <data_dir>/archive. A journal's history stays in one archive.
    #[arg(long)]
    to: Option<String>,
    /// Archive through this sequence instead of the slowest durable consumer's acked position;
    /// refused when beyond it unless --force.
    #[arg(long)]
    through: Option<u64>,
    /// With --through: archive even what some consumer has not acked (it then cannot restart
    /// from before that point).
    #[arg(long, requires = "through")]
    force: bool,
    /// Events per segment file at most.
    #[arg(long, default_value_t = ArchiveOptions::default().segment_events)]
    segment_events: u64,
    /// Rewrite the journal file afterwards (SQLite VACUUM) to give the freed space back to the
    /// filesystem; without it, later appends reuse it.
    #[arg(long)]
    vacuum: bool,
    /// S3 endpoint for s3:// targets (default: seaweedfs.s3_endpoint from the config, else AWS).
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// `trade2026 journal archive`.
pub fn run(args: ArchiveArgs) -> Result<()> {
    let mut cfg = crate::load_config(&args.common)?.config;
    if let Some(dir) = &args.data_dir {
        cfg.platform.data_dir = dir.clone();
    }
    let path = cfg.journal_path();
    if !path.exists() {
        bail!("no journal at {} (is --data-dir right?)", path.display());
    }
    let (journal, _) = Journal::open(&path).context(
        "opening the journal (the platform must not be running on this data dir while archiving)",
    )?;
    let target = match (&args.to, journal.archive_location()) {
        (Some(to), _) => to.clone(),
        (None, Some(recorded)) => recorded,
        (None, None) => cfg.platform.data_dir.join("archive").display().to_string(),
    };
    let store = open_store(&target, &cfg, args.s3_endpoint.as_deref(), true)?;
    let options = ArchiveOptions {
        through: args.through,
        force: args.force,
        segment_events: args.segment_events,
        vacuum: args.vacuum,
    };
    let report = journal.archive(store.as_ref(), &options)?;
    let first_retained = journal.first_seq();
    journal.shutdown()?;

    if args.json {
        let segments: Vec<serde_json::Value> = report
            .segments
            .iter()
            .map(|s| {
                serde_json::json!({"name": s.name, "first_seq": s.first_seq, "last_seq": s.last_seq,
                "count": s.count, "bytes": s.bytes, "ndjson_bytes": s.ndjson_bytes, "sha256": s.sha256})
            })
            .collect();
        let disk = |d: journal::DiskUsage| serde_json::json!({"file_bytes": d.file_bytes, "wal_bytes": d.wal_bytes, "free_bytes": d.free_bytes});
        let json = serde_json::json!({
            "journal": path.display().to_string(),
            "location": report.location,
            "consumer_positions": report.consumer_positions,
            "archived_before": report.archived_before,
            "archived_through": report.archived_through,
            "first_retained_seq": first_retained,
            "segments": segments,
            "events_written": report.events_written(),
            "bytes_written": report.bytes_written(),
            "ndjson_bytes_written": report.ndjson_bytes_written(),
            "events_deleted": report.events_deleted,
            "orphans_removed": report.orphans_removed,
            "journal_disk_before": disk(report.disk_before),
            "journal_disk_after": disk(report.disk_after),
            "archive_events": report.archive_events,
            "archive_bytes": report.archive_bytes,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let positions: Vec<String> = report
        .consumer_positions
        .iter()
        .map(|(name, seq)| format!("{name}={seq}"))
        .collect();
    println!("journal            {}", path.display());
    println!("archive            {}", report.location);
    println!("consumer positions {}", positions.join(", "));
    if report.archived_through == report.archived_before {
        println!(
            "nothing to archive: the journal already starts at {first_retained} (archived through {})",
            report.archived_through
        );
    } else {
        println!(
            "archived           {}..={} (the journal now starts at {first_retained})",
            report.archived_before + 1,
            report.archived_through
        );
    }
    let (events, bytes, ndjson) = (
        report.events_written(),
        report.bytes_written(),
        report.ndjson_bytes_written(),
    );
    if events > 0 {
        println!(
            "segments written   {} ({events} events, {} compressed from {} NDJSON, {:.1} bytes/event)",
            report.segments.len(),
            human(bytes),
            human(ndjson),
            bytes as f64 / events as f64
        );
    }
    println!(
        "deleted            {} events from the journal",
        report.events_deleted
    );
    for name in &report.orphans_removed {
        println!("removed            {name} (left by an interrupted run)");
    }
    let (b, a) = (report.disk_before, report.disk_after);
    println!(
        "journal on disk    {} before, {} after ({} of it free pages, reused by later appends{})",
        human(b.total_bytes()),
        human(a.total_bytes()),
        human(a.free_bytes),
        if args.vacuum {
            ""
        } else {
            "; --vacuum returns them"
        }
    );
    // Segments cover 1..=N without gaps, so N is also the event count.
    println!(
        "archive holds      1..={} ({})",
        report.archive_events,
        human(report.archive_bytes)
    );
    Ok(())
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The archive at `target`: a folder or `s3://bucket/prefix`. For reading (`create` false) a
/// folder must exist.
pub fn open_store(
    target: &str,
    cfg: &config::Config,
    s3_endpoint: Option<&str>,
    create: bool,
) -> Result<Arc<dyn ArchiveStore>> {
    if let Some(rest) = target.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("{target}: no bucket (expected s3://bucket/prefix)");
        }
        let endpoint = s3_endpoint
            .map(str::to_owned)
            .or_else(|| cfg.seaweedfs.s3_endpoint.clone());
        let staging = cfg.platform.data_dir.join("archive-staging");
        let store = ObjectArchive::s3(bucket, prefix, endpoint.as_deref(), &staging)?;
        return Ok(Arc::new(store));
    }
    let dir = Path::new(target);
    if !create && !dir.is_dir() {
        bail!(
            "the journal archive folder {target} does not exist (pass --archive with its location)"
        );
    }
    Ok(Arc::new(LocalArchive::new(dir).with_context(|| {
        format!("opening the journal archive folder {target}")
    })?))
}

/// The journal's history from `from`: archived segments first when needed (from `archive`, or
/// where the journal recorded it archived to), then the journal.
pub fn history(
    journal: &Journal,
    cfg: &config::Config,
    archive: Option<&str>,
    s3_endpoint: Option<&str>,
    from: u64,
) -> Result<HistoryReader> {
    let needs_archive = from.max(1) < journal.first_seq();
    let store = match (archive, journal.archive_location()) {
        (Some(target), _) => Some(open_store(target, cfg, s3_endpoint, false)?),
        (None, Some(recorded)) if needs_archive => {
            Some(open_store(&recorded, cfg, s3_endpoint, false)?)
        }
        _ => None,
    };
    Ok(HistoryReader::new(journal, store, from)?)
}

/// Segment files bigger than this are uploaded in parts.
const MULTIPART_THRESHOLD: u64 = 8 << 20;

/// An archive in an object store (S3 / SeaweedFS), driven from synchronous code: the archiver
/// and history reader are blocking, so every call runs on a runtime of its own.
pub struct ObjectArchive {
    store: Arc<dyn ObjectStore>,
    /// "" or ending in `/`.
    prefix: String,
    location: String,
    staging: PathBuf,
    multipart_threshold: u64,
    rt: Arc<tokio::runtime::Runtime>,
}

impl ObjectArchive {
    /// Objects `<prefix><name>` in `store`; segments are built in `staging` (a local folder)
    /// before upload.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        location: String,
        prefix: &str,
        staging: &Path,
    ) -> Result<ObjectArchive> {
        std::fs::create_dir_all(staging)
            .with_context(|| format!("creating the staging folder {}", staging.display()))?;
        let prefix = prefix.trim_matches('/');
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(ObjectArchive {
            store,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            location,
            staging: staging.to_owned(),
            multipart_threshold: MULTIPART_THRESHOLD,
            rt: Arc::new(rt),
        })
    }

    /// `s3://bucket/prefix`, configured like the report store (`reports::ReportStore::s3`):
    /// with an endpoint (SeaweedFS, MinIO), plain HTTP allowed, credentials from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (default `trade2026`, which SeaweedFS without
    /// authentication accepts), region from `AWS_REGION`; without one, AWS itself with the
    /// usual `AWS_*` environment.
    pub fn s3(
        bucket: &str,
        prefix: &str,
        endpoint: Option<&str>,
        staging: &Path,
    ) -> Result<ObjectArchive> {
        let builder = match endpoint {
            Some(endpoint) => object_store::aws::AmazonS3Builder::new()
                .with_endpoint(endpoint)
                .with_allow_http(true)
                .with_region(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()))
                .with_access_key_id(
                    std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "trade2026".into()),
                )
                .with_secret_access_key(
                    std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "trade2026".into()),
                ),
            None => object_store::aws::AmazonS3Builder::from_env(),
        };
        let s3 = builder
            .with_bucket_name(bucket)
            .build()
            .with_context(|| format!("configuring S3 bucket {bucket}"))?;
        let prefix = prefix.trim_matches('/');
        ObjectArchive::new(
            Arc::new(s3),
            format!("s3://{bucket}/{prefix}"),
            prefix,
            staging,
        )
    }

    #[cfg(test)]
    fn with_multipart_threshold(mut self, bytes: u64) -> ObjectArchive {
        self.multipart_threshold = bytes;
        self
    }

    fn path(&self, name: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{name}", self.prefix))
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> JournalError {
        JournalError::ArchiveStore {
            location: self.location.clone(),
            message: format!("{what}: {e}"),
        }
    }

    async fn upload(&self, path: &ObjectPath, staged: &Path) -> Result<(), JournalError> {
        let len = std::fs::metadata(staged)?.len();
        if len <= self.multipart_threshold {
            let bytes = std::fs::read(staged)?;
            self.store
                .put(path, PutPayload::from(bytes::Bytes::from(bytes)))
                .await
                .map_err(|e| self.err(&format!("uploading {path}"), e))?;
            return Ok(());
        }
        // In parts, so memory stays at a few parts whatever the segment's size.
        let upload = self
            .store
            .put_multipart(path)
            .await
            .map_err(|e| self.err(&format!("starting the upload of {path}"), e))?;
        let part =
            usize::try_from(self.multipart_threshold.clamp(5 << 20, 64 << 20)).unwrap_or(5 << 20);
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part);
        let mut file = std::fs::File::open(staged)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = writer.wait_for_capacity(4).await {
                let _ = writer.abort().await;
                return Err(self.err(&format!("uploading {path}"), e));
            }
            writer.write(&buf[..n]);
        }
        writer
            .finish()
            .await
            .map_err(|e| self.err(&format!("completing the upload of {path}"), e))?;
        Ok(())
    }
}

impl ArchiveStore for ObjectArchive {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn staging_dir(&self) -> PathBuf {
        self.staging.clone()
    }

    fn put_file(&self, name: &str, staged: &Path) -> Result<(), JournalError> {
        let path = self.path(name);
        self.rt.block_on(self.upload(&path, staged))?;
        // The object is whole and durable once the upload completed; the staged copy is done.
        std::fs::remove_file(staged)?;
        Ok(())
    }

    fn put(&self, name: &str, bytes: &[u8]) -> Result<(), JournalError> {
        let path = self.path(name);
        self.rt
            .block_on(
                self.store
                    .put(&path, PutPayload::from(bytes::Bytes::from(bytes.to_vec()))),
            )
            .map_err(|e| self.err(&format!("writing {path}"), e))?;
        Ok(())
    }

    fn get(&self, name: &str) -> Result<Option<Vec<u8>>, JournalError> {
        let path = self.path(name);
        self.rt.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => Ok(Some(
                    r.bytes()
                        .await
                        .map_err(|e| self.err(&format!("reading {path}"), e))?
                        .to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.err(&format!("reading {path}"), e)),
            }
        })
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>, JournalError> {
        let path = self.path(name);
        let result = self
            .rt
            .block_on(self.store.get(&path))
            .map_err(|e| self.err(&format!("reading {path}"), e))?;
        Ok(Box::new(StreamReader {
            rt: Arc::clone(&self.rt),
            stream: result.into_stream(),
            chunk: bytes::Bytes::new(),
        }))
    }

    fn list(&self) -> Result<Vec<String>, JournalError> {
        let prefix =
            (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.trim_end_matches('/')));
        let objects: Vec<_> = self
            .rt
            .block_on(self.store.list(prefix.as_ref()).try_collect())
            .map_err(|e| self.err("listing", e))?;
        let mut names: Vec<String> = objects
            .iter()
            .filter_map(|o| {
                let name = o.location.as_ref().strip_prefix(self.prefix.as_str())?;
                (!name.contains('/')).then(|| name.to_owned())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> Result<(), JournalError> {
        let path = self.path(name);
        match self.rt.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(&format!("deleting {path}"), e)),
        }
    }
}

/// An object's byte stream as a blocking reader: one downloaded chunk in memory at a time.
struct StreamReader {
    rt: Arc<tokio::runtime::Runtime>,
    stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{
        AccountId, Decimal, Event, InstrumentId, OrderId, Price, Quantity, Symbol, Timestamp,
        TradeTick, Venue,
    };

    /// Trade prints (which the interchange export carries) and order acks, alternating.
    fn event(n: u64) -> Event {
        let n_i = n as i64;
        if n.is_multiple_of(2) {
            return Event::OrderAccepted {
                order_id: OrderId(n),
                account: AccountId::new("acct1").unwrap(),
                ts: Timestamp::from_millis(1_700_000_000_000 + n_i),
            };
        }
        Event::Trade(TradeTick {
            instrument: InstrumentId::new(
                Venue::new("binance").unwrap(),
                Symbol::new("BTCUSDT").unwrap(),
            ),
            price: Price::new(Decimal::new(4_500_000 + n_i * 37 % 1_000, 2)).unwrap(),
            quantity: Quantity::new(Decimal::new(1 + n_i % 97, 3)).unwrap(),
            aggressor: None,
            trade_id: format!("t{n}"),
            // Not in journal order, as fills and market data can be.
            ts: Timestamp::from_millis(1_700_000_000_000 + (n_i * 7_919) % 5_000),
        })
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// A journal with `n` events, everything up to `acked` acked by one consumer.
    fn journal_with(dir: &Path, n: u64, acked: u64) -> Journal {
        let (journal, _) = Journal::open(&dir.join("events.db")).unwrap();
        block_on(journal.append_batch((1..=n).map(event).collect())).unwrap();
        journal.ack("oms", acked).unwrap();
        block_on(journal.flush()).unwrap();
        journal
    }

    #[test]
    fn an_object_store_archive_round_trips_with_a_prefix_and_multipart_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with(dir.path(), 400, 350);
        let memory: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        // Something else in the bucket, beside and below the prefix, must be left alone.
        block_on(memory.put(&ObjectPath::from("other/x"), PutPayload::from("x"))).unwrap();
        let store: Arc<dyn ArchiveStore> = Arc::new(
            ObjectArchive::new(
                Arc::clone(&memory),
                "memory://bucket/journal".into(),
                "journal/",
                &dir.path().join("staging"),
            )
            .unwrap()
            .with_multipart_threshold(1_000),
        );
        let before: Vec<_> = HistoryReader::new(&journal, None, 1)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let options = ArchiveOptions {
            segment_events: 100,
            ..ArchiveOptions::default()
        };
        let report = journal.archive(store.as_ref(), &options).unwrap();
        assert_eq!(report.archived_through, 350);
        assert!(
            report.segments.iter().any(|s| s.bytes > 1_000),
            "{report:?}"
        );
        assert_eq!(
            store.list().unwrap(),
            [
                "manifest.json",
                &journal::archive::segment_name(1, 100),
                &journal::archive::segment_name(101, 200),
                &journal::archive::segment_name(201, 300),
                &journal::archive::segment_name(301, 350),
            ]
        );
        // Staged files were uploaded and removed.
        assert_eq!(
            std::fs::read_dir(dir.path().join("staging"))
                .unwrap()
                .count(),
            0
        );
        let after: Vec<_> = HistoryReader::new(&journal, Some(Arc::clone(&store)), 1)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(after, before);
        journal::verify_archive(store.as_ref(), Some(journal.journal_id())).unwrap();
        assert!(block_on(memory.head(&ObjectPath::from("other/x"))).is_ok());
    }

    #[test]
    fn export_is_identical_before_and_after_archiving_in_both_formats() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_with(dir.path(), 300, 250);
        let mut cfg = config::Config::default();
        cfg.platform.data_dir = dir.path().to_owned();
        let export = |journal: &Journal, format: &str, from: u64| -> Vec<u8> {
            let reader =
                history(journal, &cfg, None, None, crate::export_start(format, from)).unwrap();
            let mut out = Vec::new();
            crate::write_export(reader, format, from, &mut out).unwrap();
            out
        };
        let formats = [
            ("events", 1),
            ("events", 120),
            ("ndjson", 1),
            ("ndjson", 200),
        ];
        let before: Vec<Vec<u8>> = formats
            .iter()
            .map(|(f, from)| export(&journal, f, *from))
            .collect();
        assert!(before.iter().all(|b| !b.is_empty()));

        let store = open_store(
            &dir.path().join("archive").display().to_string(),
            &cfg,
            None,
            true,
        )
        .unwrap();
        let options = ArchiveOptions {
            segment_events: 64,
            ..ArchiveOptions::default()
        };
        assert_eq!(
            journal
                .archive(store.as_ref(), &options)
                .unwrap()
                .archived_through,
            250
        );
        // The export finds the archive where the journal recorded it.
        let after: Vec<Vec<u8>> = formats
            .iter()
            .map(|(f, from)| export(&journal, f, *from))
            .collect();
        assert_eq!(after, before);

        // A moved archive: named explicitly it works; the recorded place is reported missing.
        std::fs::rename(dir.path().join("archive"), dir.path().join("moved")).unwrap();
        let err = history(&journal, &cfg, None, None, 1).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let moved = dir.path().join("moved").display().to_string();
        let reader = history(&journal, &cfg, Some(&moved), None, 1).unwrap();
        let mut out = Vec::new();
        crate::write_export(reader, "events", 1, &mut out).unwrap();
        assert_eq!(out, before[0]);
    }

    #[test]
    fn s3_targets_need_a_bucket() {
        let cfg = config::Config::default();
        let err = open_store("s3:///prefix", &cfg, None, true).err().unwrap();
        assert!(err.to_string().contains("no bucket"), "{err}");
    }
}
