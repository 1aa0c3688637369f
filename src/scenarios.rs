//! Finding the scenario files: `./scenarios` first, then the folder next to ksim's sources (so
//! `cargo run` works from anywhere in a checkout).

use ksim_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

pub fn dir() -> Result<PathBuf, String> {
    let local = PathBuf::from("scenarios");
    if local.is_dir() {
        return Ok(local);
    }
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    if bundled.is_dir() {
        return Ok(bundled);
    }
    Err("no scenarios/ folder here or in the ksim checkout".into())
}

pub fn find(name: &str) -> Result<PathBuf, String> {
    let path = dir()?.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("scenario {} not found", path.display()))
    }
}

/// Every scenario file with its title (or the error that stops it loading), sorted by path.
pub fn all(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ron") {
            continue;
        }
        let title = match Scenario::load(&path) {
            Ok(s) => s.title,
            Err(e) => format!("(does not load: {e})"),
        };
        out.push((path, title));
    }
    out.sort();
    Ok(out)
}
