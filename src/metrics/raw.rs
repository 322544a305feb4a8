//! Raw request samples (`results.collection.format.raw_data: true`): every request's time, step,
//! worker, VU, status, latency, bytes and error, kept beside the histograms. VUs add a small
//! [`RawSample`] to their thread's metrics shard (no message, no allocation but an error's text);
//! full shard buffers, and whatever is left when the collector merges the shards each second, go
//! over a bounded channel to one writer thread per run ([`spawn_writer`]), off the async threads.
//! The writer turns them into NDJSON lines ([`RawRecord`]) and zstd-compresses them into chunks of
//! about [`CHUNK_RAW_BYTES`] of text, each a whole zstd frame handed to a [`ChunkTarget`] with its
//! sequence number (1, 2, 3...). Frames concatenate: the chunks of a run, appended in order, are
//! one `.ndjson.zst` file that `zstd -d` and [`read`] decode. Memory is bounded by the channel
//! ([`CHANNEL_BATCHES`] of [`SHARD_BATCH`] samples) and one chunk being compressed.

use super::Sample;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::sync::mpsc;

/// Samples a shard buffers before handing them to the writer.
pub const SHARD_BATCH: usize = 4096;
/// Batches the channel to the writer holds; a VU recording into a full one waits (the disk is
/// slower than the load), so memory stays bounded.
pub const CHANNEL_BATCHES: usize = 64;
/// Uncompressed NDJSON bytes per chunk (one zstd frame).
pub const CHUNK_RAW_BYTES: usize = 4 << 20;
/// zstd's level for chunks: fast, and still about 10× on these lines.
const LEVEL: i32 = 3;

/// One request as a VU recorded it, before it is named and written.
#[derive(Debug, Clone)]
pub struct RawSample {
    /// When the request was sent (Unix µs).
    t_us: u64,
    step: u32,
    vu: Option<u64>,
    status: Option<u16>,
    latency_us: u64,
    bytes: u64,
    error: Option<String>,
}

impl RawSample {
    /// `s`, sent by VU `vu`, ending now.
    pub fn of(vu: Option<u64>, s: &Sample) -> Self {
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        RawSample {
            t_us: now_us.saturating_sub(s.latency_us),
            step: s.step as u32,
            vu,
            status: s.status,
            latency_us: s.latency_us,
            bytes: s.bytes,
            error: s
                .error
                .clone()
                .or_else(|| (!s.failed_checks.is_empty()).then(|| s.failed_checks.join("; "))),
        }
    }
}

/// One line of a raw data file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RawRecord {
    /// When the request was sent, Unix ms with µs precision.
    pub ts_ms: f64,
    pub step: String,
    pub worker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vu: Option<u64>,
    /// `null` when no response came back.
    pub status: Option<u16>,
    pub latency_us: u64,
    pub bytes: u64,
    /// Why the request counts as an error (or the checks that failed), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A line as the writer serializes it, borrowing the names.
#[derive(Serialize)]
struct Line<'a> {
    ts_ms: f64,
    step: &'a str,
    worker: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    vu: Option<u64>,
    status: Option<u16>,
    latency_us: u64,
    bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// Where a run's raw samples go: the writer's end of the channel. Clones feed the same writer,
/// which finishes when the last clone is dropped.
#[derive(Clone)]
pub struct RawSink(mpsc::SyncSender<Vec<RawSample>>);

impl RawSink {
    /// Hands a full buffer to the writer (waiting when it is behind by [`CHANNEL_BATCHES`]).
    pub fn send(&self, batch: Vec<RawSample>) {
        if batch.is_empty() {
            return;
        }
        // A writer that failed has logged why; its samples are lost, the run goes on.
        let _ = self.0.send(batch);
    }
}

/// A shard's buffer of raw samples (see [`crate::metrics::collector`]).
pub struct RawBuffer {
    buf: Vec<RawSample>,
    sink: RawSink,
}

impl RawBuffer {
    pub fn new(sink: RawSink) -> Self {
        RawBuffer {
            buf: Vec::new(),
            sink,
        }
    }

    /// Keeps one sample; a full buffer goes to the writer.
    pub fn push(&mut self, vu: Option<u64>, s: &Sample) {
        self.buf.push(RawSample::of(vu, s));
        if self.buf.len() >= SHARD_BATCH {
            self.flush();
        }
    }

    /// Hands what is buffered to the writer.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.sink.send(std::mem::take(&mut self.buf));
        }
    }
}

impl Drop for RawBuffer {
    /// Nothing recorded is left behind, whoever drops the buffer last.
    fn drop(&mut self) {
        self.flush();
    }
}

/// Where finished chunks go: a worker's spool directory, a local run's `-o` file.
pub trait ChunkTarget: Send + 'static {
    /// Chunk `seq` (1, 2, 3...), a whole zstd frame.
    fn chunk(&mut self, seq: u64, frame: &[u8]) -> io::Result<()>;
    /// Every chunk was handed over: `last` is the last chunk's number (0: none), `samples` the
    /// lines in them.
    fn done(&mut self, last: u64, samples: u64) -> io::Result<()>;
}

/// What a writer wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Written {
    pub samples: u64,
    pub chunks: u64,
    /// Compressed bytes, all chunks.
    pub bytes: u64,
}

/// Starts the writer thread for a run of `steps` (by index) on `worker`; it ends when every
/// [`RawSink`] clone is dropped, after [`ChunkTarget::done`].
pub fn spawn_writer(
    steps: Vec<String>,
    worker: String,
    target: impl ChunkTarget,
) -> (RawSink, std::thread::JoinHandle<io::Result<Written>>) {
    let (tx, rx) = mpsc::sync_channel(CHANNEL_BATCHES);
    let handle = std::thread::Builder::new()
        .name("raw-samples".into())
        .spawn(move || {
            let r = write_all(rx, &steps, &worker, target);
            if let Err(e) = &r {
                tracing::error!("raw samples could not be written: {e}");
            }
            r
        })
        .expect("a thread can be spawned");
    (RawSink(tx), handle)
}

fn write_all(
    rx: mpsc::Receiver<Vec<RawSample>>,
    steps: &[String],
    worker: &str,
    mut target: impl ChunkTarget,
) -> io::Result<Written> {
    let mut out = Written::default();
    let mut enc: Option<zstd::stream::Encoder<'static, Vec<u8>>> = None;
    let mut in_chunk = 0usize;
    let mut line = Vec::with_capacity(256);
    for batch in rx {
        for s in batch {
            line.clear();
            let l = Line {
                ts_ms: s.t_us as f64 / 1000.0,
                step: steps.get(s.step as usize).map_or("?", String::as_str),
                worker,
                vu: s.vu,
                status: s.status,
                latency_us: s.latency_us,
                bytes: s.bytes,
                error: s.error.as_deref(),
            };
            serde_json::to_writer(&mut line, &l).map_err(io::Error::other)?;
            line.push(b'\n');
            if enc.is_none() {
                enc = Some(zstd::stream::Encoder::new(Vec::new(), LEVEL)?);
                in_chunk = 0;
            }
            enc.as_mut().expect("just set").write_all(&line)?;
            in_chunk += line.len();
            out.samples += 1;
            if in_chunk >= CHUNK_RAW_BYTES {
                finish(&mut enc, &mut out, &mut target)?;
            }
        }
    }
    finish(&mut enc, &mut out, &mut target)?;
    target.done(out.chunks, out.samples)?;
    Ok(out)
}

/// Ends the chunk being compressed, if any, and hands it to `target`.
fn finish(
    enc: &mut Option<zstd::stream::Encoder<'static, Vec<u8>>>,
    out: &mut Written,
    target: &mut impl ChunkTarget,
) -> io::Result<()> {
    if let Some(e) = enc.take() {
        let frame = e.finish()?;
        out.chunks += 1;
        out.bytes += frame.len() as u64;
        target.chunk(out.chunks, &frame)?;
    }
    Ok(())
}

/// Appends every chunk to one file (a local run's `-o DIR/raw.ndjson.zst`).
pub struct FileTarget {
    file: std::fs::File,
}

impl FileTarget {
    pub fn create(path: &std::path::Path) -> io::Result<Self> {
        Ok(FileTarget {
            file: std::fs::File::create(path)?,
        })
    }
}

impl ChunkTarget for FileTarget {
    fn chunk(&mut self, _seq: u64, frame: &[u8]) -> io::Result<()> {
        self.file.write_all(frame)
    }
    fn done(&mut self, _last: u64, _samples: u64) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// Why a raw data file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RawReadError {
    #[error("not zstd-compressed NDJSON: {0}")]
    Zstd(io::Error),
    #[error("line {line}: {why}")]
    Line { line: usize, why: String },
}

/// Calls `each` on every record of a raw data file's bytes (concatenated zstd frames of NDJSON;
/// plain NDJSON is read as it is).
pub fn read(bytes: &[u8], mut each: impl FnMut(RawRecord)) -> Result<u64, RawReadError> {
    use std::io::BufRead;
    const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let reader: Box<dyn BufRead + '_> = if bytes.starts_with(&ZSTD_MAGIC) {
        Box::new(io::BufReader::new(
            zstd::stream::read::Decoder::new(bytes).map_err(RawReadError::Zstd)?,
        ))
    } else {
        Box::new(bytes)
    };
    let mut n = 0;
    for (i, l) in reader.lines().enumerate() {
        let l = l.map_err(RawReadError::Zstd)?;
        if l.trim().is_empty() {
            continue;
        }
        let r: RawRecord = serde_json::from_str(&l).map_err(|e| RawReadError::Line {
            line: i + 1,
            why: e.to_string(),
        })?;
        each(r);
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Chunks by number, and what `done` was told.
    type Handed = (Vec<(u64, Vec<u8>)>, Option<(u64, u64)>);

    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Handed>>);

    impl ChunkTarget for Kept {
        fn chunk(&mut self, seq: u64, frame: &[u8]) -> io::Result<()> {
            self.0.lock().unwrap().0.push((seq, frame.to_vec()));
            Ok(())
        }
        fn done(&mut self, last: u64, samples: u64) -> io::Result<()> {
            self.0.lock().unwrap().1 = Some((last, samples));
            Ok(())
        }
    }

    fn sample(i: u64) -> Sample {
        Sample {
            step: (i % 2) as usize,
            latency_us: 1_000 + i,
            status: if i % 10 == 0 { None } else { Some(200) },
            error: (i % 10 == 0).then(|| "timeout".to_string()),
            checks_passed: 0,
            failed_checks: vec![],
            bytes: 42,
        }
    }

    #[test]
    fn chunks_concatenate_into_one_file_with_every_sample_once() {
        let kept = Kept::default();
        let (sink, handle) = spawn_writer(vec!["a".into(), "b".into()], "w1".into(), kept.clone());
        // Enough lines for several chunks.
        let n = 100_000u64;
        let mut buf = RawBuffer::new(sink.clone());
        for i in 0..n {
            buf.push(Some(i % 7), &sample(i));
        }
        buf.flush();
        drop((buf, sink));
        let w = handle.join().unwrap().unwrap();
        assert_eq!(w.samples, n);
        let (chunks, done) = kept.0.lock().unwrap().clone();
        assert!(chunks.len() > 1, "{} chunks", chunks.len());
        assert_eq!(done, Some((chunks.len() as u64, n)));
        let seqs: Vec<u64> = chunks.iter().map(|c| c.0).collect();
        assert_eq!(seqs, (1..=chunks.len() as u64).collect::<Vec<_>>());
        let file: Vec<u8> = chunks.into_iter().flat_map(|c| c.1).collect();
        let (mut count, mut errors, mut lat) = (0u64, 0u64, 0u64);
        read(&file, |r| {
            count += 1;
            errors += r.error.is_some() as u64;
            lat += r.latency_us;
            assert_eq!(r.worker, "w1");
        })
        .unwrap();
        assert_eq!(count, n);
        assert_eq!(errors, n / 10);
        assert_eq!(lat, (0..n).map(|i| 1_000 + i).sum::<u64>());
    }
}
