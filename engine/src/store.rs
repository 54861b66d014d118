//! The content-addressed model store: a directory holding one folder per model id, each
//! with the model's files and its SCALE-encoded manifest. The id is the blake2-256 of the
//! manifest, which lists every file's name, size and blake2-256, so an id commits to every
//! byte the model needs. Nothing is loaded from the store before its hashes are checked.

use crate::error::{EngineError, Result};
use codec::{DecodeAll, Encode};
use inferchain_primitives::{
    model::{Manifest, ManifestFile, ModelFormat},
    ModelId,
};
use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

/// The file an ONNX model is stored under.
pub const ONNX_FILE: &str = "model.onnx";
/// Files a BERT-family embedding model must have.
pub const BERT_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// The sentence-transformers pooling config, included when present.
pub const BERT_POOLING_FILE: &str = "1_Pooling/config.json";
/// The manifest's file name inside a model folder.
pub const MANIFEST_FILE: &str = "manifest.scale";
/// Bytes read per step while hashing, and between progress reports.
const CHUNK: usize = 1 << 20;

/// How far an import or verification has got, in bytes.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// A model's files, read from the store and checked against its manifest.
pub struct VerifiedFiles {
    pub manifest: Manifest,
    files: Vec<(String, Vec<u8>)>,
}

impl VerifiedFiles {
    /// The bytes of the file called `name`, if the manifest lists it.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, data)| data.as_slice())
    }

    /// Takes the bytes of `name` out, so large weights are not copied.
    pub fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        let pos = self.files.iter().position(|(n, _)| n == name)?;
        Some(self.files.swap_remove(pos).1)
    }

    /// Total bytes of all files.
    pub fn total_bytes(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.size).sum()
    }
}

/// A directory of models addressed by id.
#[derive(Clone, Debug)]
pub struct ModelStore {
    root: PathBuf,
}

impl ModelStore {
    /// The store the node and the CLI share unless told otherwise: `$INFERCHAIN_STORE`,
    /// else `$XDG_DATA_HOME/inferchain/models`, else `~/.local/share/inferchain/models`
    /// (else `./inferchain/models` when no home is known).
    pub fn default_root() -> PathBuf {
        if let Some(store) = std::env::var_os("INFERCHAIN_STORE") {
            return PathBuf::from(store);
        }
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("inferchain/models")
    }

    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| EngineError::io(&root, e))?;
        let store = ModelStore { root };
        store.sweep_leftovers();
        Ok(store)
    }

    /// Removes the staging and quarantine folders (`.fetch-<pid>-…`, `.corrupt-<id>-<pid>-…`)
    /// of processes that no longer run: a fetch or a quarantine cut short by a kill.
    fn sweep_leftovers(&self) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let pid = if let Some(rest) = name.strip_prefix(".fetch-") {
                rest.split('-').next()
            } else if let Some(rest) = name.strip_prefix(".corrupt-") {
                rest.split('-').nth(1)
            } else {
                continue;
            };
            let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let alive = Path::new("/proc").join(pid.to_string()).exists();
            if !alive && pid != std::process::id() {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, id: &ModelId) -> PathBuf {
        self.root.join(hex::encode(id.as_bytes()))
    }

    /// Whether the store has a folder for `id` (not whether it is intact: see [`Self::verify`]).
    pub fn contains(&self, id: &ModelId) -> bool {
        self.model_dir(id).join(MANIFEST_FILE).is_file()
    }

    /// The ids of every model in the store, sorted.
    pub fn list(&self) -> Result<Vec<ModelId>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(|e| EngineError::io(&self.root, e))? {
            let entry = entry.map_err(|e| EngineError::io(&self.root, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let mut bytes = [0u8; 32];
            if hex::decode_to_slice(name, &mut bytes).is_ok() {
                let id = ModelId::from(bytes);
                if self.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The manifest of `id`, checked to hash to `id`.
    pub fn manifest(&self, id: &ModelId) -> Result<Manifest> {
        if !self.contains(id) {
            return Err(EngineError::NotInStore(*id));
        }
        let path = self.model_dir(id).join(MANIFEST_FILE);
        let bytes = fs::read(&path).map_err(|e| EngineError::io(&path, e))?;
        let found = ModelId::from(inferchain_primitives::blake2_256(&bytes));
        if found != *id {
            return Err(EngineError::ManifestMismatch {
                path,
                expected: *id,
                found,
            });
        }
        // Exactly one encoding: trailing bytes would give one manifest many ids.
        Manifest::decode_all(&mut bytes.as_slice())
            .map_err(|e| EngineError::InvalidArtifact(format!("{}: {e}", path.display())))
    }

    /// Reads every file of `id` into memory and checks each against the manifest.
    pub fn read_verified(
        &self,
        id: &ModelId,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<VerifiedFiles> {
        let manifest = self.manifest(id)?;
        let dir = self.model_dir(id);
        let total = manifest.files.iter().map(|f| f.size).sum();
        let mut done = 0u64;
        let mut files = Vec::with_capacity(manifest.files.len());
        for entry in &manifest.files {
            let name = file_name(entry)?;
            let path = dir.join(&name);
            let (data, hash) = read_hashed(&path, &mut |n| {
                progress(Progress {
                    done: done + n,
                    total,
                })
            })?;
            if hash != entry.blake2_256 || data.len() as u64 != entry.size {
                return Err(EngineError::FileHashMismatch {
                    path,
                    expected: hex::encode(entry.blake2_256),
                    found: hex::encode(hash),
                });
            }
            done += entry.size;
            files.push((name, data));
        }
        Ok(VerifiedFiles { manifest, files })
    }

    /// Re-hashes every file of `id`, streaming (never the whole model in memory); `Ok`
    /// only if the store copy is intact.
    pub fn verify(&self, id: &ModelId, progress: &mut dyn FnMut(Progress)) -> Result<Manifest> {
        let manifest = self.manifest(id)?;
        let dir = self.model_dir(id);
        let total = manifest.files.iter().map(|f| f.size).sum();
        let mut done = 0u64;
        for entry in &manifest.files {
            let path = dir.join(file_name(entry)?);
            let (size, hash) = hash_file(&path, &mut |n| {
                progress(Progress {
                    done: done + n,
                    total,
                })
            })?;
            if hash != entry.blake2_256 || size != entry.size {
                return Err(EngineError::FileHashMismatch {
                    path,
                    expected: hex::encode(entry.blake2_256),
                    found: hex::encode(hash),
                });
            }
            done += entry.size;
        }
        Ok(manifest)
    }

    /// Moves `id`'s folder out of the store (to `.corrupt-<id>-<pid>-<n>` beside it, then
    /// removes it), so the model can be imported or fetched again.
    pub fn quarantine(&self, id: &ModelId) -> Result<()> {
        let dir = self.model_dir(id);
        let aside = self.root.join(format!(
            ".corrupt-{}-{}-{}",
            hex::encode(id.as_bytes()),
            std::process::id(),
            MOVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        fs::rename(&dir, &aside).map_err(|e| EngineError::io(&dir, e))?;
        fs::remove_dir_all(&aside).map_err(|e| EngineError::io(&aside, e))
    }

    /// Copies the model at `src` into the store, hashing as it goes, and returns its
    /// manifest (whose [`Manifest::id`] is the model id). `src` is an `.onnx` file, or a
    /// directory with a BERT model's `config.json`, `model.safetensors` and
    /// `tokenizer.json` (and `1_Pooling/config.json` if present). Importing a model that
    /// is already stored changes nothing.
    pub fn import(
        &self,
        src: &Path,
        format: Option<ModelFormat>,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Manifest> {
        let format = match format {
            Some(f) => f,
            None => detect_format(src)?,
        };
        let sources = source_files(src, format)?;
        let total = sources
            .iter()
            .map(|(_, p)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        let staging = self.root.join(format!(
            ".import-{}-{}",
            std::process::id(),
            unique_suffix()
        ));
        fs::create_dir_all(&staging).map_err(|e| EngineError::io(&staging, e))?;
        let result = (|| {
            let mut done = 0u64;
            let mut files = Vec::new();
            for (name, path) in &sources {
                let dest = staging.join(name);
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(|e| EngineError::io(parent, e))?;
                }
                let (size, hash) = copy_hashed(path, &dest, &mut |n| {
                    progress(Progress {
                        done: done + n,
                        total,
                    })
                })?;
                done += size;
                files.push(ManifestFile {
                    name: name.as_bytes().to_vec(),
                    size,
                    blake2_256: hash,
                });
            }
            let manifest = Manifest::new(format, files);
            let path = staging.join(MANIFEST_FILE);
            fs::write(&path, manifest.encode()).map_err(|e| EngineError::io(&path, e))?;
            Ok(manifest)
        })();
        let manifest = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let id = manifest.id();
        let dest = self.model_dir(&id);
        // Imports of one model may race (concurrent fetches): the first complete copy
        // stays, and a later one finding it in place discards its own.
        let mut placed =
            self.contains(&id) || fs::rename(&staging, &dest).is_ok() || self.contains(&id);
        if !placed {
            // An incomplete folder from an interrupted import is in the way: moved aside
            // (never deleted in place, where a reader could see it half gone).
            let aside = self.root.join(format!(
                ".corrupt-{}-{}-{}",
                hex::encode(id.as_bytes()),
                std::process::id(),
                MOVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            if fs::rename(&dest, &aside).is_ok() {
                let _ = fs::remove_dir_all(&aside);
            }
            placed = fs::rename(&staging, &dest).is_ok() || self.contains(&id);
        }
        let _ = fs::remove_dir_all(&staging);
        if !placed {
            return Err(EngineError::io(
                &dest,
                std::io::Error::other("the imported copy could not be put in place"),
            ));
        }
        Ok(manifest)
    }
}

/// Numbers the folders this process moves aside, so no two share a name.
static MOVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn file_name(entry: &ManifestFile) -> Result<String> {
    let name = String::from_utf8(entry.name.clone())
        .map_err(|_| EngineError::InvalidArtifact("file name is not UTF-8".into()))?;
    // A manifest names files inside its folder only.
    if name.is_empty()
        || name.starts_with('/')
        || name.split('/').any(|part| part.is_empty() || part == "..")
    {
        return Err(EngineError::InvalidArtifact(format!(
            "file name `{name}` leaves the model folder"
        )));
    }
    Ok(name)
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// The format `src` looks like: a file is ONNX; a directory with a `config.json` is an
/// LLM when the config names a llama-family `model_type` or a `*ForCausalLM`
/// architecture, BERT otherwise; another directory with a `model.onnx` is ONNX (its
/// external data files beside it).
pub fn detect_format(src: &Path) -> Result<ModelFormat> {
    if src.is_file() {
        return Ok(ModelFormat::Onnx);
    }
    let config = src.join("config.json");
    if config.is_file() {
        let text = fs::read(&config).map_err(|e| EngineError::io(&config, e))?;
        let value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| EngineError::InvalidArtifact(format!("{}: {e}", config.display())))?;
        let causal = value["architectures"].as_array().is_some_and(|a| {
            a.iter()
                .any(|v| v.as_str().is_some_and(|s| s.ends_with("ForCausalLM")))
        });
        let llama_family = value["model_type"]
            .as_str()
            .is_some_and(|t| crate::llm::config::SUPPORTED_MODEL_TYPES.contains(&t));
        return Ok(if causal || llama_family {
            ModelFormat::Llm
        } else {
            ModelFormat::BertEmbedding
        });
    }
    if src.join(ONNX_FILE).is_file() {
        return Ok(ModelFormat::Onnx);
    }
    Err(EngineError::UnknownFormat {
        path: src.to_path_buf(),
    })
}

/// The external data files the ONNX model at `path` stores tensors in, beside it:
/// (name in the manifest, path on disk). Each must be a file inside the model's folder;
/// a location that leaves it is refused.
fn onnx_external_files(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    use prost::Message;
    let bytes = fs::read(path).map_err(|e| EngineError::io(path, e))?;
    // The store keeps bytes; a file that does not decode names no other files, and
    // loading it reports what is wrong.
    let Ok(proto) = candle_onnx::onnx::ModelProto::decode(bytes.as_slice()) else {
        return Ok(Vec::new());
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for (name, tensor) in crate::onnx::tensor_data::external_files(&proto)? {
        if name == ONNX_FILE || name == MANIFEST_FILE {
            return Err(EngineError::InvalidArtifact(format!(
                "external data file `{name}` has a name the store keeps for itself; rename it"
            )));
        }
        let file = folder.join(&name);
        if !file.is_file() {
            return Err(EngineError::MissingExternalData { tensor, file: name });
        }
        files.push((name, file));
    }
    Ok(files)
}

/// (name in the manifest, path on disk) of every file a model at `src` needs.
fn source_files(src: &Path, format: ModelFormat) -> Result<Vec<(String, PathBuf)>> {
    match format {
        ModelFormat::Onnx => {
            let path = if src.is_dir() {
                src.join(ONNX_FILE)
            } else {
                src.to_path_buf()
            };
            if !path.is_file() {
                return Err(EngineError::MissingFile {
                    path: src.to_path_buf(),
                    file: ONNX_FILE,
                    format: "ONNX",
                });
            }
            let mut files = vec![(ONNX_FILE.to_string(), path.clone())];
            files.extend(onnx_external_files(&path)?);
            Ok(files)
        }
        ModelFormat::BertEmbedding => {
            let mut files = Vec::new();
            for name in BERT_FILES {
                let path = src.join(name);
                if !path.is_file() {
                    return Err(EngineError::MissingFile {
                        path: src.to_path_buf(),
                        file: name,
                        format: "BERT embedding",
                    });
                }
                files.push((name.to_string(), path));
            }
            let pooling = src.join(BERT_POOLING_FILE);
            if pooling.is_file() {
                files.push((BERT_POOLING_FILE.to_string(), pooling));
            }
            Ok(files)
        }
        ModelFormat::Llm => {
            let mut files = Vec::new();
            for name in crate::llm::LLM_REQUIRED_FILES {
                let path = src.join(name);
                if !path.is_file() {
                    return Err(EngineError::MissingFile {
                        path: src.to_path_buf(),
                        file: name,
                        format: "LLM",
                    });
                }
                files.push((name.to_string(), path));
            }
            for name in crate::llm::LLM_OPTIONAL_FILES {
                let path = src.join(name);
                if path.is_file() {
                    files.push((name.to_string(), path));
                }
            }
            let mut weights: Vec<(String, PathBuf)> = fs::read_dir(src)
                .map_err(|e| EngineError::io(src, e))?
                .filter_map(|entry| entry.ok())
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    (name.ends_with(".safetensors") && entry.path().is_file())
                        .then(|| (name, entry.path()))
                })
                .collect();
            if weights.is_empty() {
                return Err(EngineError::MissingFile {
                    path: src.to_path_buf(),
                    file: "*.safetensors",
                    format: "LLM",
                });
            }
            weights.sort();
            files.extend(weights);
            Ok(files)
        }
    }
}

fn hasher() -> blake2b_simd::State {
    blake2b_simd::Params::new().hash_length(32).to_state()
}

fn finish(state: &blake2b_simd::State) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(state.finalize().as_bytes());
    out
}

fn copy_hashed(src: &Path, dest: &Path, progress: &mut dyn FnMut(u64)) -> Result<(u64, [u8; 32])> {
    let mut input = fs::File::open(src).map_err(|e| EngineError::io(src, e))?;
    let mut output = fs::File::create(dest).map_err(|e| EngineError::io(dest, e))?;
    let mut state = hasher();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| EngineError::io(src, e))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        state.update(chunk);
        output
            .write_all(chunk)
            .map_err(|e| EngineError::io(dest, e))?;
        size += n as u64;
        progress(size);
    }
    output.sync_all().map_err(|e| EngineError::io(dest, e))?;
    Ok((size, finish(&state)))
}

/// The length and blake2-256 of the file at `path`, read in chunks.
fn hash_file(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<(u64, [u8; 32])> {
    let mut input = fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let mut state = hasher();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(|e| EngineError::io(path, e))?;
        if n == 0 {
            break;
        }
        state.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
        progress(size);
    }
    Ok((size, finish(&state)))
}

fn read_hashed(path: &Path, progress: &mut dyn FnMut(u64)) -> Result<(Vec<u8>, [u8; 32])> {
    let mut input = fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let len = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut data = Vec::with_capacity(len as usize);
    let mut state = hasher();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = input.read(&mut buf).map_err(|e| EngineError::io(path, e))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        state.update(chunk);
        data.extend_from_slice(chunk);
        progress(data.len() as u64);
    }
    Ok((data, finish(&state)))
}
