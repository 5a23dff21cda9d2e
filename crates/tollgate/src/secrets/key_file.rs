//! The master key file (`./tollgate.key` by default): base64 text, mode 0600, created
//! and replaced atomically so that no reader ever sees half a key.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use rand::distr::Alphanumeric;
use rand::Rng;

use super::{text, MasterKey, SecretsError};

/// Reads the key in `path`; `Ok(None)` when the file does not exist.
pub fn read(path: &Path) -> Result<Option<MasterKey>, SecretsError> {
    match std::fs::read_to_string(path) {
        Ok(content) => {
            let bytes =
                text::parse_key(&content, &format!("the master key file {}", path.display()))?;
            Ok(Some(MasterKey::from_bytes(bytes)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SecretsError::KeyFile {
            action: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates `path` holding `key` unless it exists; answers the key the file holds
/// afterwards and whether this call created it. Two processes racing here end up
/// with the same key: the file appears whole or not at all (temp file + hard link).
pub fn create_or_read(path: &Path, key: MasterKey) -> Result<(MasterKey, bool), SecretsError> {
    let temp = write_temp(path, &key)?;
    let linked = std::fs::hard_link(&temp, path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok((key, true))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => match read(path)? {
            Some(existing) => Ok((existing, false)),
            None => Err(key_file_error("create", path, e)),
        },
        Err(e) => Err(key_file_error("create", path, e)),
    }
}

/// Writes `key` to `path`, which must not exist yet (mode 0600).
pub fn write_new(path: &Path, key: &MasterKey) -> Result<(), SecretsError> {
    let mut file = open_private(path).map_err(|e| key_file_error("create", path, e))?;
    write_key(&mut file, key).map_err(|e| key_file_error("write", path, e))?;
    sync_parent(path);
    Ok(())
}

/// Replaces `path` with `key` atomically (temp file in the same directory, mode 0600,
/// then rename).
pub fn replace(path: &Path, key: &MasterKey) -> Result<(), SecretsError> {
    let temp = write_temp(path, key)?;
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        key_file_error("replace", path, e)
    })?;
    sync_parent(path);
    Ok(())
}

/// Moves a key file written with [`write_new`] over `path` atomically.
pub fn promote(from: &Path, path: &Path) -> Result<(), SecretsError> {
    std::fs::rename(from, path).map_err(|e| key_file_error("replace", path, e))?;
    sync_parent(path);
    Ok(())
}

/// Writes `key` to a fresh temp file beside `path`.
fn write_temp(path: &Path, key: &MasterKey) -> Result<PathBuf, SecretsError> {
    let suffix: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{suffix}"));
    let temp = path.with_file_name(name);
    let mut file = open_private(&temp).map_err(|e| key_file_error("create", &temp, e))?;
    if let Err(e) = write_key(&mut file, key) {
        let _ = std::fs::remove_file(&temp);
        return Err(key_file_error("write", &temp, e));
    }
    Ok(temp)
}

fn write_key(file: &mut File, key: &MasterKey) -> std::io::Result<()> {
    file.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
    file.sync_all()
}

/// Opens a new file readable and writable by its owner only.
fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes a rename or link durable; best effort (not every platform can open a
/// directory).
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

fn key_file_error(action: &'static str, path: &Path, source: std::io::Error) -> SecretsError {
    SecretsError::KeyFile {
        action,
        path: path.to_path_buf(),
        source,
    }
}
