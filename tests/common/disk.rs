//! On-disk Kafka log segments: batches parsed from `.log` files, and byte-level file
//! surgery for corruption tests.

use super::*;

/// One record batch as found in a `.log` segment file.
#[derive(Debug, Clone)]
pub struct DiskBatch {
    /// Byte position of the batch in the file.
    pub pos: u64,
    /// Total size in bytes (12 + batchLength).
    pub size: u64,
    pub base_offset: i64,
    pub last_offset_delta: i32,
    pub magic: i8,
    pub crc: u32,
    pub crc_ok: bool,
}

impl DiskBatch {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn end(&self) -> u64 {
        self.pos + self.size
    }
}

/// CRC-32C (Castagnoli), as used by Kafka record batches.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0x82F6_3B78 ^ (c >> 1) } else { c >> 1 };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = t[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Parse the record batches of a segment file. Stops at the first position that
/// does not hold a complete batch (zero padding, torn tail, garbage).
pub fn parse_segment(path: &Path) -> Vec<DiskBatch> {
    let mut data = Vec::new();
    File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display())).read_to_end(&mut data).unwrap();
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 61 <= data.len() {
        let base_offset = i64::from_be_bytes(data[pos..pos + 8].try_into().unwrap());
        let batch_len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        if batch_len < 49 {
            break;
        }
        let size = 12 + batch_len as usize;
        if pos + size > data.len() {
            break;
        }
        let magic = data[pos + 16] as i8;
        let crc = u32::from_be_bytes(data[pos + 17..pos + 21].try_into().unwrap());
        let last_offset_delta = i32::from_be_bytes(data[pos + 23..pos + 27].try_into().unwrap());
        let crc_ok = crc32c(&data[pos + 21..pos + size]) == crc;
        out.push(DiskBatch { pos: pos as u64, size: size as u64, base_offset, last_offset_delta, magic, crc, crc_ok });
        pos += size;
    }
    out
}

/// Segment files (`*.log`) of a partition directory, sorted by base offset.
pub fn segment_files(partition_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", partition_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().map(|x| x == "log").unwrap_or(false))
        .collect();
    v.sort();
    v
}

/// Files in a partition dir with the given extension (e.g. "index").
pub fn files_with_ext(partition_dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", partition_dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().map(|x| x == ext).unwrap_or(false))
        .collect();
    v.sort();
    v
}

pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Overwrite bytes in a file at `pos`.
pub fn write_at(path: &Path, pos: u64, bytes: &[u8]) {
    use std::io::Write;
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(pos)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

pub fn read_at(path: &Path, pos: u64, len: usize) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    f.seek(SeekFrom::Start(pos)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    buf
}

pub fn set_len(path: &Path, len: u64) {
    let f = OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len).unwrap();
    f.sync_all().unwrap();
}
