//! The spill directory: where records go while the database cannot take them.
//!
//! A batch that cannot be written after a few quick retries is appended to this writer's spill file
//! (`<dir>/<id>.jsonl`, one JSON record per line, synced to disk, mode 0600) and the writer moves
//! on, so the queue keeps draining and nothing is dropped during a long outage. Once writes work
//! again — and at start, for files a stopped or crashed process left — spilled records are written
//! back with [`LedgerQueries::insert_records_once`], which skips records already stored (and
//! repeats within a batch), so a file replayed twice (a crash between the write and the delete)
//! never counts a request twice.
//!
//! Replay is incremental: each call writes back at most a given number of records, from a cursor
//! into one file, so the writer goes on taking live records in between and memory stays bounded
//! whatever the size of the backlog. A file is deleted when its end is reached.
//!
//! Each writer creates its file under a name replays pass over (`*.jsonl.new`), locks it, and
//! only then renames it to `*.jsonl`; it holds the lock while the file exists, so no other writer
//! (another process sharing the data directory) replays a live file. A failed append is cut back to
//! the file's previous length, so a half-written batch never stays behind. A line that cannot be
//! read anyway (a torn last line after a crash) is counted, and its file is kept as
//! `*.jsonl.unreadable` instead of deleted.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use tollgate_store::{LedgerQueries, RequestRecord, Store};

/// This writer's spill file, created on the first spill, and the replay cursor.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    file: Option<(PathBuf, File)>,
    cursor: Option<Cursor>,
}

/// Where replay stands in one file.
#[derive(Debug)]
struct Cursor {
    path: PathBuf,
    /// The lock on a file another writer left (`None` for this writer's own file, whose lock
    /// `Spill::file` holds).
    _lock: Option<File>,
    /// Bytes already written back.
    offset: u64,
    /// Lines that could not be read so far.
    unreadable: u64,
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
    /// Files written back and deleted (or kept aside as `*.unreadable`).
    pub retired: u64,
    /// Every spill file reachable now has been written back.
    pub finished: bool,
}

/// Up to `max` records of `path` from byte `offset`: the records, the offset after them, the
/// unreadable lines among them, and whether the end of the file was reached.
fn read_chunk(
    path: &Path,
    offset: u64,
    max: usize,
) -> std::io::Result<(Vec<RequestRecord>, u64, u64, bool)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let (mut records, mut unreadable, mut at) = (Vec::new(), 0u64, offset);
    let mut line = Vec::with_capacity(1024);
    while records.len() < max {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok((records, at, unreadable, true));
        }
        at += n as u64;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Bytes, not text: a line cut inside a character is unreadable, not an error of the file.
        match serde_json::from_slice::<RequestRecord>(text) {
            Ok(r) => records.push(r),
            Err(_) => unreadable += 1,
        }
    }
    let eof = reader.fill_buf()?.is_empty();
    Ok((records, at, unreadable, eof))
}

/// Deletes a replayed file — or, if some of its lines could not be read, keeps it as
/// `*.unreadable` for a person to look at (nothing is deleted that was not stored).
fn retire(path: &Path, unreadable: u64) -> Result<(), String> {
    #[cfg(test)]
    if tests::refuses(path) {
        return Err("refused by the test".into());
    }
    if unreadable == 0 {
        std::fs::remove_file(path)
    } else {
        std::fs::rename(path, path.with_extension("jsonl.unreadable"))
    }
    .map_err(|e| e.to_string())
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create_new(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

impl Spill {
    /// A spill in `dir` (created when first needed).
    pub fn new(dir: PathBuf) -> Spill {
        Spill {
            dir,
            file: None,
            cursor: None,
        }
    }

    /// Appends `records` to this writer's file and syncs it; on failure the file is cut back to
    /// where it was.
    pub fn append(&mut self, records: &[RequestRecord]) -> std::io::Result<()> {
        if self.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            let name = tollgate_store::new_id(&format!("spill{}", std::process::id()));
            // Created and locked under a name replays pass over, then renamed (the lock stays
            // with the open file): no other writer can take a file before its owner holds it.
            let fresh = self.dir.join(format!("{name}.jsonl.new"));
            let file = create_private(&fresh)?;
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
        let before = file.metadata()?.len();
        let result = file.write_all(&text).and_then(|()| file.sync_data());
        if result.is_err() {
            // Never leave half a batch: the caller retries the whole of it.
            let _ = file.set_len(before);
        }
        result
    }

    /// The next file to replay: this writer's own, else one no live writer holds.
    fn next_cursor(&self) -> Result<Option<Cursor>, String> {
        if let Some((path, _)) = &self.file {
            return Ok(Some(Cursor {
                path: path.clone(),
                _lock: None,
                offset: 0,
                unreadable: 0,
            }));
        }
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
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
            // It may have been replayed and deleted between the listing and the lock.
            if !path.exists() {
                continue;
            }
            return Ok(Some(Cursor {
                path,
                _lock: Some(file),
                offset: 0,
                unreadable: 0,
            }));
        }
        Ok(None)
    }

    /// Writes back up to `budget` spilled records (in batches of `batch`), from this writer's own
    /// file and files no live writer holds, deleting each file whose end is reached. Stops at the
    /// first error (the database's, or a file that cannot be read or deleted); the cursor stays,
    /// so the next call goes on from there. What was done before the error is returned with it:
    /// records written before a file could not be deleted are stored, and counted.
    pub async fn replay(
        &mut self,
        store: &Store,
        batch: usize,
        budget: usize,
    ) -> (Replayed, Result<(), String>) {
        let mut done = Replayed::default();
        let result = self.replay_into(store, batch, budget, &mut done).await;
        (done, result)
    }

    async fn replay_into(
        &mut self,
        store: &Store,
        batch: usize,
        budget: usize,
        done: &mut Replayed,
    ) -> Result<(), String> {
        let mut left = budget.max(1);
        loop {
            if self.cursor.is_none() {
                self.cursor = self.next_cursor()?;
            }
            let Some(c) = self.cursor.as_mut() else {
                done.finished = true;
                return Ok(());
            };
            let (records, offset, unreadable, eof) = match read_chunk(
                &c.path,
                c.offset,
                batch.max(1).min(left),
            ) {
                Ok(chunk) => chunk,
                Err(e) => {
                    // Unreadable as a file (gone, no permission): skip it, say so.
                    tracing::error!(file = %c.path.display(), error = %e, "cannot read a ledger spill file; left in place");
                    if self.file.as_ref().is_some_and(|(p, _)| *p == c.path) {
                        self.file = None;
                    }
                    self.cursor = None;
                    return Err(e.to_string());
                }
            };
            let written = store
                .insert_records_once(&records)
                .await
                .map_err(|e| e.to_string())?;
            done.written += written;
            done.already += records.len() as u64 - written;
            done.unreadable += unreadable;
            c.offset = offset;
            c.unreadable += unreadable;
            left = left.saturating_sub(records.len().max(1));
            if eof {
                let path = c.path.clone();
                retire(&path, c.unreadable)?;
                done.retired += 1;
                if self.file.as_ref().is_some_and(|(p, _)| *p == path) {
                    self.file = None; // closing our file releases its lock
                }
                self.cursor = None;
            }
            if left == 0 {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    /// Set by a test: spill files in this directory cannot be deleted (the writer runs on a
    /// thread of its own, so the test names its directory rather than its thread).
    pub static REFUSE_RETIRE: Mutex<Option<PathBuf>> = Mutex::new(None);

    /// Whether a test refuses to let `path` be deleted.
    pub fn refuses(path: &Path) -> bool {
        REFUSE_RETIRE
            .lock()
            .ok()
            .and_then(|d| d.as_ref().map(|d| path.starts_with(d)))
            .unwrap_or(false)
    }
}
