//! The write-ahead log's on-disk format: numbered segment files of checksummed records.
//!
//! A record is `[len: u32 LE][crc32(payload): u32 LE][payload]`, and a payload is
//! `[signal tag: u8][Arrow IPC stream of one batch]`. A crash can leave a torn record at
//! the end of the newest segment; readers stop at the first record that is short or fails
//! its checksum, and the writer truncates it away before appending. Such a record was never
//! acknowledged, because acknowledgement waits for the write (and, by default, the fsync).

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;

use crate::Signal;
use crate::error::{Result, StoreError};

const HEADER_LEN: usize = 8;
/// Records larger than this are treated as corruption when reading.
const MAX_RECORD_LEN: usize = 1 << 30;

/// Path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Ids of the segments present in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    let entries =
        fs::read_dir(dir).map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("reading WAL directory", e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
            continue;
        };
        if let Ok(id) = stem.parse::<u64>() {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Encodes one batch of `signal` as a complete WAL record (header included).
pub fn encode_record(signal: Signal, batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut out = vec![0u8; HEADER_LEN];
    out.push(signal.tag());
    {
        let mut writer = StreamWriter::try_new(&mut out, batch.schema_ref())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    let payload_len = out.len() - HEADER_LEN;
    let len = u32::try_from(payload_len)
        .map_err(|_| StoreError::WalWrite(format!("record of {payload_len} bytes is too large")))?;
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// One decoded record.
#[derive(Debug)]
pub struct WalRecord {
    /// Which table the batch belongs to.
    pub signal: Signal,
    /// The batch as it was appended.
    pub batch: RecordBatch,
}

/// What reading a segment found.
#[derive(Debug, Default)]
pub struct SegmentContents {
    /// Every intact record, in append order.
    pub records: Vec<WalRecord>,
    /// Byte length of the intact prefix; anything after it is a torn or corrupt tail.
    pub valid_len: u64,
    /// Total file length.
    pub file_len: u64,
}

/// Reads every intact record of the segment at `path`.
pub fn read_segment(path: &Path) -> Result<SegmentContents> {
    let file =
        File::open(path).map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    let file_len = file
        .metadata()
        .map_err(|e| StoreError::io(format!("stat {}", path.display()), e))?
        .len();
    let mut reader = BufReader::new(file);
    let mut contents = SegmentContents {
        file_len,
        ..Default::default()
    };
    loop {
        let mut header = [0u8; HEADER_LEN];
        if !read_full(&mut reader, &mut header, path)? {
            break;
        }
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_RECORD_LEN {
            break;
        }
        let mut payload = vec![0u8; len];
        if !read_full(&mut reader, &mut payload, path)? || crc32fast::hash(&payload) != crc {
            break;
        }
        let Some(signal) = Signal::from_tag(payload[0]) else {
            break;
        };
        let mut stream = StreamReader::try_new(&payload[1..], None)?;
        while let Some(batch) = stream.next().transpose()? {
            contents.records.push(WalRecord { signal, batch });
        }
        contents.valid_len += (HEADER_LEN + len) as u64;
    }
    Ok(contents)
}

/// Fills `buf`; false when the file ends first (a torn record or a clean end).
fn read_full(reader: &mut impl Read, buf: &mut [u8], path: &Path) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e)),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::io::Write;
    use std::sync::Arc;

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![n, n + 1])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 7);
        let mut file = File::create(&path).unwrap();
        let first = encode_record(Signal::Spans, &batch(1)).unwrap();
        let second = encode_record(Signal::Logs, &batch(10)).unwrap();
        file.write_all(&first).unwrap();
        file.write_all(&second).unwrap();
        // A torn third record: header and half a payload.
        let third = encode_record(Signal::Metrics, &batch(100)).unwrap();
        file.write_all(&third[..third.len() / 2]).unwrap();
        drop(file);

        let contents = read_segment(&path).unwrap();
        assert_eq!(contents.records.len(), 2);
        assert_eq!(contents.records[0].signal, Signal::Spans);
        assert_eq!(contents.records[1].signal, Signal::Logs);
        assert_eq!(contents.records[1].batch, batch(10));
        assert_eq!(contents.valid_len, (first.len() + second.len()) as u64);
        assert!(contents.file_len > contents.valid_len);
        assert_eq!(list_segments(dir.path()).unwrap(), vec![7]);
    }

    #[test]
    fn a_flipped_bit_ends_the_readable_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let mut bytes = encode_record(Signal::Spans, &batch(1)).unwrap();
        let good_len = bytes.len();
        let mut bad = encode_record(Signal::Spans, &batch(5)).unwrap();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        bytes.extend(bad);
        fs::write(&path, bytes).unwrap();
        let contents = read_segment(&path).unwrap();
        assert_eq!(contents.records.len(), 1);
        assert_eq!(contents.valid_len, good_len as u64);
    }
}
