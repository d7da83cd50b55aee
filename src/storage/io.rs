//! The only place storage touches glommio: O_DIRECT segment files on io_uring and small
//! buffered files (indexes). Every error carries the operation and the path.
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, DmaFile, OpenOptions};

use super::StorageError;
use crate::limits::DMA_ALIGN;

const PREALLOCATE_MIN: u64 = 1 << 20;
const PREALLOCATE_MAX: u64 = 16 << 20;

fn io_err(op: &'static str, path: &Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Io { op, path: path.to_path_buf(), reason: e.to_string() }
}

/// For the operations that claim space before data is accepted as written (creating a
/// file, preallocating, writing a small file): ENOSPC is `NoSpace`, which the writer waits
/// out; anything else is an I/O failure. Never used for fdatasync, whose failure is final.
pub(super) fn space_err(op: &'static str, path: &Path, errno: Option<i32>, e: impl std::fmt::Display) -> StorageError {
    if errno == Some(libc::ENOSPC) || errno == Some(libc::EDQUOT) {
        StorageError::NoSpace { op, path: path.to_path_buf() }
    } else {
        io_err(op, path, e)
    }
}

/// One write laid out by `SegmentFile::prepare_writes`.
pub struct PreparedWrite {
    pub buf: glommio::io::DmaBuffer,
    pub pos: u64,
    /// Where the data written ends (the padding after it does not count).
    pub end: u64,
    /// A partial block, which the next write rewrites.
    pub ends_partial: bool,
}

/// A segment's `.log` file opened with O_DIRECT.
pub struct SegmentFile {
    file: DmaFile,
    path: PathBuf,
    /// The file's size as set by preallocation (or found at open).
    allocated: std::cell::Cell<u64>,
}

impl SegmentFile {
    pub async fn open_or_create(path: &Path) -> Result<Rc<SegmentFile>, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(path)
            .await
            .map_err(|e| space_err("open", path, e.raw_os_error(), e))?;
        let allocated = file.file_size().await.map_err(|e| io_err("stat", path, e))?;
        Ok(Rc::new(SegmentFile { file, path: path.to_path_buf(), allocated: std::cell::Cell::new(allocated) }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file now, and waits for it, if `file` is its last holder (else the last
    /// reader's drop closes it later). The last close of an unlinked or replaced file frees
    /// its blocks, in the closing thread: callers close their descriptor first and leave the
    /// last one to the background I/O thread.
    pub async fn release(file: Rc<SegmentFile>) {
        if let Ok(f) = Rc::try_unwrap(file) {
            let _ = f.file.close().await;
        }
    }

    pub async fn size(&self) -> Result<u64, StorageError> {
        self.file.file_size().await.map_err(|e| io_err("stat", &self.path, e))
    }

    /// Lays out the writes for `tail` (the bytes of the partial block at the block-aligned
    /// `pos`, which are rewritten) followed by `chunks`: one write of the whole blocks, and,
    /// with `include_partial`, one of the partial last block, zero-padded.
    ///
    /// The two touch different blocks, and a whole-block write touches no block that a later
    /// write touches, so such writes can be in flight together. A partial-block write is a
    /// barrier: the next write rewrites that block and must wait for it. Returns the writes
    /// and the new partial block with its position, or `None` when there is nothing to write.
    pub fn prepare_writes(
        &self,
        pos: u64,
        tail: &[u8],
        chunks: &[bytes::Bytes],
        include_partial: bool,
    ) -> Option<(Vec<PreparedWrite>, Vec<u8>, u64)> {
        assert_eq!(pos % DMA_ALIGN, 0, "unaligned segment write");
        let align = DMA_ALIGN as usize;
        let total = tail.len() + chunks.iter().map(|c| c.len()).sum::<usize>();
        let whole = total / align * align;
        if whole == 0 && (!include_partial || total == 0) {
            return None;
        }
        // Copy everything once into a buffer laid out as on disk; the partial block is then
        // copied out of it (at most one block).
        let mut buf = self.file.alloc_dma_buffer(total.div_ceil(align).max(1) * align);
        let bytes = buf.as_bytes_mut();
        bytes[..tail.len()].copy_from_slice(tail);
        let mut at = tail.len();
        for c in chunks {
            bytes[at..at + c.len()].copy_from_slice(c);
            at += c.len();
        }
        bytes[total..].fill(0);
        let new_tail = bytes[whole..total].to_vec();
        let mut writes = Vec::with_capacity(2);
        if include_partial && total > whole {
            let mut block = self.file.alloc_dma_buffer(align);
            block.as_bytes_mut().copy_from_slice(&bytes[whole..whole + align]);
            writes.push(PreparedWrite {
                buf: block,
                pos: pos + whole as u64,
                end: pos + total as u64,
                ends_partial: true,
            });
        }
        if whole > 0 {
            buf.trim_to_size(whole);
            writes.insert(0, PreparedWrite { buf, pos, end: pos + whole as u64, ends_partial: false });
        }
        Some((writes, new_tail, pos + whole as u64))
    }

    /// Makes sure the file's size reaches `end` before a write up to there is submitted:
    /// an O_DIRECT write that extends an ext4 file takes the inode lock exclusively and runs
    /// on an io_uring worker thread, so writes in flight together would serialize. The file
    /// grows ahead by as much as it holds (1 to 16 MiB), as zeros that recovery recognizes as
    /// padding and finalization trims.
    pub async fn ensure_allocated(&self, end: u64) -> Result<(), StorageError> {
        if end <= self.allocated.get() {
            return Ok(());
        }
        #[cfg(test)]
        if let Err(e) = super::faults::check("fallocate", &self.path) {
            return Err(space_err("fallocate", &self.path, e.raw_os_error(), e));
        }
        let ahead = end.clamp(PREALLOCATE_MIN, PREALLOCATE_MAX);
        let size = (end + ahead).div_ceil(DMA_ALIGN) * DMA_ALIGN;
        let size = match self.file.pre_allocate(size, false).await {
            Ok(()) => size,
            // Too little space to run ahead: claim just what this write needs, so that the
            // disk fills up completely before appends are refused.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                let exact = end.div_ceil(DMA_ALIGN) * DMA_ALIGN;
                self.file
                    .pre_allocate(exact, false)
                    .await
                    .map_err(|e| space_err("fallocate", &self.path, e.raw_os_error(), e))?;
                exact
            }
            Err(e) => return Err(space_err("fallocate", &self.path, e.raw_os_error(), e)),
        };
        self.allocated.set(size);
        Ok(())
    }

    /// Submits a prepared write. O_DIRECT: when this returns the bytes are in the device's
    /// hands, not in a user-space buffer.
    pub async fn write_prepared(
        self: Rc<Self>,
        buf: glommio::io::DmaBuffer,
        pos: u64,
        len: usize,
    ) -> Result<(), StorageError> {
        #[cfg(test)]
        super::faults::check("write", &self.path).map_err(|e| io_err("write", &self.path, e))?;
        let written = self.file.write_at(buf, pos).await.map_err(|e| io_err("write", &self.path, e))?;
        if written < len {
            return Err(io_err("write", &self.path, format!("short write: {written} of {len} bytes")));
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `pos` (any alignment; glommio aligns internally).
    pub async fn read(&self, pos: u64, len: usize) -> Result<bytes::Bytes, StorageError> {
        let r = self.file.read_at(pos, len).await.map_err(|e| io_err("read", &self.path, e))?;
        Ok(bytes::Bytes::copy_from_slice(&r))
    }

    pub async fn truncate(&self, size: u64) -> Result<(), StorageError> {
        self.file.truncate(size).await.map_err(|e| io_err("truncate", &self.path, e))?;
        self.allocated.set(size);
        Ok(())
    }

    pub async fn fdatasync(&self) -> Result<(), StorageError> {
        #[cfg(test)]
        super::faults::wait_if_held(&self.path).await;
        #[cfg(test)]
        super::faults::check("fdatasync", &self.path).map_err(|e| io_err("fdatasync", &self.path, e))?;
        let started = std::time::Instant::now();
        self.file.fdatasync().await.map_err(|e| io_err("fdatasync", &self.path, e))?;
        crate::metrics::record_fdatasync(started.elapsed());
        #[cfg(test)]
        super::faults::synced(&self.path);
        Ok(())
    }
}

/// Where a small file is written before it is renamed over `path`: `00.index` -> `00.index.tmp`.
pub(super) fn temp_path(path: &Path) -> std::path::PathBuf {
    path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")))
}

/// Writes a small file whole (index files), replacing it atomically via a temp file.
pub async fn write_small_file(path: &Path, data: Vec<u8>) -> Result<(), StorageError> {
    let tmp = temp_path(path);
    let f = BufferedFile::create(&tmp).await.map_err(|e| space_err("create", &tmp, e.raw_os_error(), e))?;
    #[cfg(test)]
    if let Err(e) = super::faults::check("write", &tmp) {
        return Err(space_err("write", &tmp, e.raw_os_error(), e));
    }
    if !data.is_empty() {
        let len = data.len();
        let written = f.write_at(data, 0).await.map_err(|e| space_err("write", &tmp, e.raw_os_error(), e))?;
        if written < len {
            // A short buffered write is the file system running out of room.
            return Err(StorageError::NoSpace { op: "write", path: tmp });
        }
    }
    f.fdatasync().await.map_err(|e| io_err("fdatasync", &tmp, e))?;
    f.close().await.map_err(|e| io_err("close", &tmp, e))?;
    // On glommio's blocking thread: a rename waits for the file system journal, which can
    // take milliseconds while other writers commit, and must not hold up the shard.
    glommio::io::rename(&tmp, path).await.map_err(|e| io_err("rename", path, e))?;
    Ok(())
}

/// Reads a small file whole; `Ok(None)` if it does not exist.
pub async fn read_small_file(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    if !path.exists() {
        return Ok(None);
    }
    let f = BufferedFile::open(path).await.map_err(|e| io_err("open", path, e))?;
    let size = f.file_size().await.map_err(|e| io_err("stat", path, e))?;
    let r = f.read_at(0, size as usize).await.map_err(|e| io_err("read", path, e))?;
    let out = r.to_vec();
    f.close().await.map_err(|e| io_err("close", path, e))?;
    Ok(Some(out))
}

/// An append-only buffered file with explicit fdatasync (the metadata log).
pub struct AppendFile {
    file: BufferedFile,
    path: PathBuf,
    size: u64,
}

impl AppendFile {
    pub async fn open(path: &Path, size: u64) -> Result<AppendFile, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(path)
            .await
            .map_err(|e| io_err("open", path, e))?;
        Ok(AppendFile { file, path: path.to_path_buf(), size })
    }

    /// Appends and fdatasyncs: when this returns the bytes are durable.
    pub async fn append_durable(&mut self, data: Vec<u8>) -> Result<(), StorageError> {
        let len = data.len() as u64;
        self.file.write_at(data, self.size).await.map_err(|e| io_err("write", &self.path, e))?;
        self.file.fdatasync().await.map_err(|e| io_err("fdatasync", &self.path, e))?;
        self.size += len;
        Ok(())
    }
}

/// The file `prime_iopoll_probe` opens, written by `main` before the shards start.
pub const IO_PROBE_FILE: &str = ".sluice-io-probe";

/// glommio decides once per thread and device whether to use the io_uring poll ring, by
/// reading the first O_DIRECT file opened there. If that file is empty the read succeeds
/// without reaching the device, polling is wrongly enabled, and every later read fails
/// with EOPNOTSUPP. So each shard first opens a file that has a block of data.
pub fn write_iopoll_probe(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(IO_PROBE_FILE);
    std::fs::write(&path, vec![0u8; DMA_ALIGN as usize]).map_err(|e| io_err("write", &path, e))
}

pub async fn prime_iopoll_probe(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(IO_PROBE_FILE);
    let f = DmaFile::open(&path).await.map_err(|e| io_err("open", &path, e))?;
    f.close().await.map_err(|e| io_err("close", &path, e))?;
    Ok(())
}
