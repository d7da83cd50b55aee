//! The single-node metadata log: `<log.dir>/__cluster_metadata/metadata.log`, records
//! framed as `[u32 length][u32 crc32c][json]`. Read at start-up (before the shards run),
//! appended durably by the controller shard. A torn tail is truncated on load.
use std::path::{Path, PathBuf};

use super::{MetadataImage, MetadataRecord};

#[derive(Debug, thiserror::Error)]
pub enum MetadataStoreError {
    #[error("{op} {path}: {reason}")]
    Io { op: &'static str, path: PathBuf, reason: String },
}

pub fn log_path(log_dir: &Path) -> PathBuf {
    log_dir.join("__cluster_metadata").join("metadata.log")
}

pub fn encode_record(record: &MetadataRecord) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("metadata records serialize");
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&json).to_be_bytes());
    out.extend_from_slice(&json);
    out
}

/// Loads the image from the log, truncating a torn or corrupt tail. Returns the image and
/// the valid length of the log (where the next record goes).
pub fn load(log_dir: &Path) -> Result<(MetadataImage, u64), MetadataStoreError> {
    let path = log_path(log_dir);
    let err = |op, e: std::io::Error| MetadataStoreError::Io { op, path: path.clone(), reason: e.to_string() };
    std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| err("mkdir", e))?;
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(err("read", e)),
    };
    let mut image = MetadataImage::default();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap());
        let Some(body) = data.get(pos + 8..pos + 8 + len) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice::<MetadataRecord>(body) else { break };
        image.apply(&record);
        pos += 8 + len;
    }
    if pos < data.len() {
        tracing::warn!(path = %path.display(), dropped_bytes = data.len() - pos, "metadata log had a torn tail; truncated");
        let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| err("open", e))?;
        f.set_len(pos as u64).map_err(|e| err("truncate", e))?;
        f.sync_data().map_err(|e| err("fdatasync", e))?;
    }
    Ok((image, pos as u64))
}

/// Appends `records` at `at` (the valid length `load` returned) and fdatasyncs them, before
/// the shards start (start-up records: registration, placement of partitions from a log
/// written before the placement table existed). Returns the new length.
pub fn append_at_startup(log_dir: &Path, at: u64, records: &[MetadataRecord]) -> Result<u64, MetadataStoreError> {
    use std::os::unix::fs::FileExt;
    let path = log_path(log_dir);
    let err = |op, e: std::io::Error| MetadataStoreError::Io { op, path: path.clone(), reason: e.to_string() };
    let bytes: Vec<u8> = records.iter().flat_map(encode_record).collect();
    let f =
        std::fs::OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(|e| err("open", e))?;
    f.write_all_at(&bytes, at).map_err(|e| err("write", e))?;
    f.sync_data().map_err(|e| err("fdatasync", e))?;
    Ok(at + bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn roundtrip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut bytes = Vec::new();
        let r1 = MetadataRecord::CreateTopic {
            name: "a".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 2,
            configs: BTreeMap::new(),
        };
        bytes.extend(encode_record(&r1));
        let good = bytes.len();
        bytes.extend(&encode_record(&MetadataRecord::DeleteTopic { name: "a".into() })[..5]);
        std::fs::write(&path, &bytes).unwrap();
        let (img, len) = load(dir.path()).unwrap();
        assert_eq!(len as usize, good);
        assert!(img.topic("a").is_some());
        assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, good);
    }
}
