//! The spill directory: where records go while the database cannot take them.
//!
//! A batch that cannot be written after a few quick retries is appended to this writer's spill file
//! (`<dir>/<id>.jsonl`, one JSON record per line, synced to disk) and the writer moves on, so the
//! queue keeps draining and nothing is dropped during a long outage. Whenever a write succeeds
//! again — and at start, for files a stopped or crashed process left — spilled records are written
//! back with [`LedgerQueries::insert_records_once`], which skips records already stored, so a file
//! replayed twice (a crash between the write and the delete) never counts a request twice.
//!
//! Each writer holds an exclusive lock on its own file while it exists, so two processes sharing a
//! data directory never replay each other's live file. A line that cannot be read (a torn last
//! line after a crash mid-append) is reported, and its file is kept as `*.unreadable` instead of
//! deleted.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use tollgate_store::{LedgerQueries, RequestRecord, Store};

/// This writer's spill file, created on the first spill.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    file: Option<(PathBuf, File)>,
}

/// The outcome of a replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Records written to the database (new ones).
    pub written: u64,
    /// Records that were already there.
    pub already: u64,
    /// Lines that could not be read (a torn last line).
    pub unreadable: u64,
}

fn read_records(path: &Path) -> std::io::Result<(Vec<RequestRecord>, u64)> {
    let mut records = Vec::new();
    let mut unreadable = 0;
    for line in BufReader::new(File::open(path)?).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<RequestRecord>(&line) {
            Ok(r) => records.push(r),
            Err(_) => unreadable += 1,
        }
    }
    Ok((records, unreadable))
}

async fn write_back(store: &Store, records: &[RequestRecord], batch: usize) -> Result<u64, String> {
    let mut written = 0;
    for chunk in records.chunks(batch.max(1)) {
        written += store
            .insert_records_once(chunk)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(written)
}

/// Writes one file's records back and retires the file.
async fn replay_file(
    store: &Store,
    path: &Path,
    batch: usize,
    done: &mut Replayed,
) -> Result<(), String> {
    let (records, unreadable) = read_records(path).map_err(|e| e.to_string())?;
    let written = write_back(store, &records, batch).await?;
    done.written += written;
    done.already += records.len() as u64 - written;
    done.unreadable += unreadable;
    retire(path, unreadable)
}

/// Deletes a replayed file — or, if some of its lines could not be read, keeps it as
/// `*.unreadable` for a person to look at (nothing is deleted that was not stored).
fn retire(path: &Path, unreadable: u64) -> Result<(), String> {
    if unreadable == 0 {
        std::fs::remove_file(path)
    } else {
        std::fs::rename(path, path.with_extension("jsonl.unreadable"))
    }
    .map_err(|e| e.to_string())
}

impl Spill {
    /// A spill in `dir` (created when first needed).
    pub fn new(dir: PathBuf) -> Spill {
        Spill { dir, file: None }
    }

    /// Whether this writer has records waiting in its file.
    pub fn pending(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `records` to this writer's file and syncs it.
    pub fn append(&mut self, records: &[RequestRecord]) -> std::io::Result<()> {
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let name = tollgate_store::new_id(&format!("spill{}", std::process::id()));
            // Created and locked under a name replays pass over, then renamed (the lock stays
            // with the open file): no other writer can take a file before its owner holds it.
            let fresh = self.dir.join(format!("{name}.jsonl.new"));
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&fresh)?;
            file.try_lock().map_err(std::io::Error::other)?;
            let path = self.dir.join(format!("{name}.jsonl"));
            std::fs::rename(&fresh, &path)?;
            self.file = Some((path, file));
        }
        let Some((_, file)) = self.file.as_mut() else {
            return Err(std::io::Error::other("no spill file"));
        };
        let mut text = Vec::with_capacity(records.len() * 600);
        for r in records {
            serde_json::to_writer(&mut text, r)?;
            text.push(b'\n');
        }
        file.write_all(&text)?;
        file.sync_data()
    }

    /// Writes back every spilled record this writer can reach — its own file and files no live
    /// writer holds — and deletes each file once its records are stored. Stops at the first
    /// database error (the files stay for the next try).
    pub async fn replay(&mut self, store: &Store, batch: usize) -> Result<Replayed, String> {
        let mut done = Replayed::default();
        if let Some((path, _)) = &self.file {
            replay_file(store, &path.clone(), batch, &mut done).await?;
            self.file = None; // closing the file releases the lock
        }
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
            Err(e) => return Err(e.to_string()),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|x| x.to_str()) != Some("jsonl") {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // A file another live writer holds is its own to replay.
            if file.try_lock().is_err() {
                continue;
            }
            replay_file(store, &path, batch, &mut done).await?;
            drop(file);
        }
        Ok(done)
    }
}
