//! The metadata log of Sluice before the controller quorum:
//! `<log.dir>/__cluster_metadata/metadata.log`, records framed as `[u32 length][u32 crc32c]
//! [json]`. A node that has one hands its records to the quorum on its first start
//! (`ControllerOp::Import`); nothing writes it any more.
use std::path::{Path, PathBuf};

use super::MetadataRecord;

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

/// The records of the log, up to a torn or corrupt tail (a crash mid-append: never
/// acknowledged), which is left out.
pub fn read_records(log_dir: &Path) -> Result<Vec<MetadataRecord>, MetadataStoreError> {
    let path = log_path(log_dir);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(MetadataStoreError::Io { op: "read", path, reason: e.to_string() }),
    };
    let mut records = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(data[pos + 4..pos + 8].try_into().unwrap());
        let Some(body) = data.get(pos + 8..pos + 8 + len) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(record) = serde_json::from_slice::<MetadataRecord>(body) else { break };
        records.push(record);
        pos += 8 + len;
    }
    if pos < data.len() {
        tracing::warn!(path = %path.display(), dropped_bytes = data.len() - pos, "metadata log had a torn tail; left out");
    }
    Ok(records)
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
        bytes.extend(encode_record(&r1.clone()));
        let good = bytes.len();
        bytes.extend(&encode_record(&MetadataRecord::DeleteTopic { name: "a".into() })[..5]);
        std::fs::write(&path, &bytes).unwrap();
        let records = read_records(dir.path()).unwrap();
        assert_eq!(records, vec![r1]);
        let _ = good;
    }
}
