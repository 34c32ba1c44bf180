//! Reading and writing the node's small files (spec, config, keys) with bounds and safe
//! permissions.

use crate::error::NodeError;
use std::io::{Read, Write};
use std::path::Path;

/// Read a whole file of at most `max_bytes`.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, NodeError> {
    let error = |detail: String| NodeError::File {
        path: path.to_owned(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| error(format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    // One byte more than allowed tells an oversized file from one exactly at the cap.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| error(format!("cannot read: {e}")))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
        return Err(error(format!("larger than {max_bytes} bytes")));
    }
    Ok(bytes)
}

/// Write `bytes` to `path` through a temporary file and a rename, so a crash leaves either
/// the old or the new file. `secret` files are readable by their owner only.
pub fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), NodeError> {
    let error = |detail: String| NodeError::File {
        path: path.to_owned(),
        detail,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| error(format!("cannot create directory: {e}")))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(&tmp)
        .map_err(|e| error(format!("cannot write: {e}")))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| error(format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| error(format!("cannot replace: {e}")))
}
