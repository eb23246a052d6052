//! Finding runbooks: the files named, and every `.adoc`/`.md` under the
//! folders named.

use std::path::{Path, PathBuf};

/// Folders never searched: hidden ones, build output, dependencies.
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", "book"];

/// An error naming a path that is neither a runbook nor a folder.
#[derive(Debug, thiserror::Error)]
pub enum FindError {
    /// The path does not exist.
    #[error("{0}: no such file or folder")]
    Missing(PathBuf),
    /// A folder could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The runbooks under `paths`, in path order. A file named directly is
/// taken whatever its extension (compiling it reports a wrong one); in
/// folders, `.adoc` and `.md` files are taken except partials whose names
/// start with `_` (AsciiDoc's convention for files meant to be included).
pub fn runbooks(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FindError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_file() {
            out.push(path.clone());
        } else if path.is_dir() {
            walk(path, &mut out)?;
        } else {
            return Err(FindError::Missing(path.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FindError> {
    let io = |source| FindError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if !SKIPPED_DIRS.contains(&name) {
                walk(&path, out)?;
            }
        } else if !name.starts_with('_') && crate::source::syntax_of(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}
