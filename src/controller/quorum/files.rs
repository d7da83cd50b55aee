//! Small durable files of the quorum (vote, committed pointer, purge pointer, snapshot):
//! written to a temporary name, fdatasync'ed, renamed over the old one, and the directory
//! fsync'ed, so a crash leaves either the old content or the new, never a torn one.
use std::io::Write;
use std::path::Path;

pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    if durable {
        f.sync_data()?;
    }
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    if durable {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The file's content, `None` if it does not exist.
pub fn read_optional(dir: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(dir.join(name)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// A JSON file's value, `None` if it does not exist; a file that does not parse is an
/// error (never silently read as absent: a lost vote could let this node vote twice).
pub fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> std::io::Result<Option<T>> {
    match read_optional(dir, name)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", dir.join(name).display()))
        }),
    }
}
