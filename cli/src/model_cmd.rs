//! `inferchain model …`: the local store and the engine.

use crate::{
    args::{FormatArg, ImportArgs, InputArgs, ModelCommand, StatusArg},
    output::{self, hex0x},
    progress,
};
use anyhow::{anyhow, bail, Context, Result};
use inferchain_engine::{npy, spec, Engine, LoadedModel, ModelStore, DEFAULT_CACHE_BYTES};
use inferchain_primitives::{
    dispute::ModelCommitments,
    io::{IoSpec, Payload},
    model::{Manifest, ModelFormat, ModelSpec, ModelStatus},
    ModelId,
};
use inferchain_runtime::RuntimeCall;
use serde_json::json;
use std::{path::Path, time::Instant};

pub fn run(store: &Path, cmd: ModelCommand) -> Result<()> {
    let store = ModelStore::open(store)?;
    match cmd {
        ModelCommand::Import {
            model,
            json,
            local_only: true,
        } => import_local(&store, model, json),
        ModelCommand::Import { model, json, .. } => import(&store, model, json),
        ModelCommand::Run {
            model,
            input,
            output,
            json,
        } => run_model(store, &model, &input, output.as_deref(), json),
        ModelCommand::Register {
            model,
            uri,
            suri,
            chain,
        } => {
            let (id, spec, commitments) = registration(&store, model, uri)?;
            crate::chain_cmd::register(id, spec, commitments, &suri, &chain)
        }
        ModelCommand::Propose { model, uri, motion } => {
            let (id, spec, commitments) = registration(&store, model, uri)?;
            let call = RuntimeCall::Utility(pallet_utility::Call::batch_all {
                calls: vec![
                    RuntimeCall::Models(pallet_models::Call::register_model { spec }),
                    RuntimeCall::Models(pallet_models::Call::set_model_commitments {
                        id,
                        commitments,
                    }),
                ],
            });
            crate::council_cmd::propose(call, &motion)
        }
        ModelCommand::ProposeFee { model, fee, motion } => {
            let client = crate::chain_cmd::connect(&motion.chain)?;
            let id = crate::chain_cmd::resolve_model(&client, &model)?;
            crate::council_cmd::propose(
                RuntimeCall::Models(pallet_models::Call::set_model_fee { id, fee }),
                &motion,
            )
        }
        ModelCommand::ProposeStatus {
            model,
            status,
            motion,
        } => {
            let client = crate::chain_cmd::connect(&motion.chain)?;
            let id = crate::chain_cmd::resolve_model(&client, &model)?;
            let status = match status {
                StatusArg::Active => ModelStatus::Active,
                StatusArg::Deprecated => ModelStatus::Deprecated,
                StatusArg::Retired => ModelStatus::Retired,
            };
            crate::council_cmd::propose(
                RuntimeCall::Models(pallet_models::Call::set_model_status { id, status }),
                &motion,
            )
        }
        ModelCommand::List { chain, json } => crate::chain_cmd::list(&chain, json),

        ModelCommand::Verify { model } => {
            let id = parse_id(&model)?;
            let manifest = store.verify(&id, &mut progress::bar("verifying"))?;
            println!(
                "ok: {} ({} files, {} bytes) matches its id",
                hex0x(id.as_bytes()),
                manifest.files.len(),
                manifest.files.iter().map(|f| f.size).sum::<u64>()
            );
            Ok(())
        }
        ModelCommand::Bench {
            model,
            input,
            iters,
            json,
        } => bench(store, &model, &input, iters, json),
    }
}

/// A model imported into `store` with the spec and dispute commitments to register.
fn registration(
    store: &ModelStore,
    model: ImportArgs,
    uri: Option<String>,
) -> Result<(ModelId, ModelSpec<u128>, ModelCommitments)> {
    let (manifest, spec) = import_with_spec(store, model)?;
    // A model without dispute commitments cannot be requested: register both.
    let files = store.read_verified(&manifest.id(), &mut progress::bar("verifying"))?;
    let commitments = inferchain_engine::dispute_plan::DisputePlan::compile(&files)
        .map(|plan| plan.commitments())
        .map_err(|e| {
            anyhow!(
                "this engine cannot build the model's dispute plan ({e}); a model \
                 without dispute commitments cannot be requested, so it is not registered"
            )
        })?;
    Ok((
        manifest.id(),
        crate::chain_cmd::with_mirror(spec, uri)?,
        commitments,
    ))
}

/// Parses a model id written as 64 hex digits, with or without `0x`.
pub fn parse_id(text: &str) -> Result<ModelId> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(digits, &mut bytes)
        .map_err(|_| anyhow!("`{text}` is not a model id (64 hex digits)"))?;
    Ok(ModelId::from(bytes))
}

fn default_name(path: &Path) -> String {
    let named = if path.file_name().and_then(|n| n.to_str()) == Some("model.onnx") {
        path.parent().and_then(|p| p.file_name())
    } else if path.is_file() {
        path.file_stem()
    } else {
        path.file_name()
    };
    named
        .and_then(|n| n.to_str())
        .unwrap_or("model")
        .to_string()
}

fn model_format(arg: FormatArg) -> ModelFormat {
    match arg {
        FormatArg::Onnx => ModelFormat::Onnx,
        FormatArg::Bert => ModelFormat::BertEmbedding,
        FormatArg::Llm => ModelFormat::Llm,
    }
}

/// Imports a model and derives the spec to register for it.
pub fn import_with_spec(
    store: &ModelStore,
    ImportArgs {
        path,
        format,
        name,
        fee,
        dynamic_max,
    }: ImportArgs,
) -> Result<(Manifest, ModelSpec<u128>)> {
    let format = format.map(model_format);
    let manifest = store
        .import(&path, format, &mut progress::bar("importing"))
        .with_context(|| format!("importing {}", path.display()))?;
    let id = manifest.id();
    // Load it once: a model the engine cannot load must not be registered.
    let engine = Engine::new(store.clone(), 0);
    let model = engine
        .load(&id, &mut progress::bar("loading"))
        .context("the model was stored but does not load; it cannot be registered")?;
    let (input, output) = model.registration_specs()?;
    let bound =
        |io| spec::bound_dynamic(io, dynamic_max).context("--dynamic-max must be at least 1");
    let (input, output) = (bound(input)?, bound(output)?);
    // The chain takes no input larger than this: no dry run beyond it either.
    let largest = spec::max_encoded_bytes(&input);
    let admitted = u64::from(inferchain_runtime::configs::MaxInputBytes::get());
    if largest > admitted {
        bail!(
            "the largest input the model's spec admits is {largest} bytes, over the chain's \
             {admitted}: bound its dynamic dimensions with --dynamic-max (now {dynamic_max})"
        );
    }
    // What one request costs at most, registered with the model so the chain refuses
    // requests beyond what executors must provide (a dry run for ONNX graphs, stopped at
    // the chain's cap: a costlier model could not be registered).
    eprintln!("estimating what one request costs at the largest input (a dry run)");
    let cost = model
        .estimate_cost(
            &input,
            Some(inferchain_runtime::configs::MaxModelCost::get()),
        )
        .context("the model's cost could not be bounded, so it cannot be registered")?;
    let name = name.unwrap_or_else(|| default_name(&path));
    let spec = spec::registration_template(&name, &manifest, input, output, fee, cost)?;
    Ok((manifest, spec))
}

/// `model import --local-only`: stores the model and checks that it loads; derives no spec.
fn import_local(store: &ModelStore, model: ImportArgs, json: bool) -> Result<()> {
    let manifest = store
        .import(
            &model.path,
            model.format.map(model_format),
            &mut progress::bar("importing"),
        )
        .with_context(|| format!("importing {}", model.path.display()))?;
    let id = manifest.id();
    Engine::new(store.clone(), 0)
        .load(&id, &mut progress::bar("loading"))
        .context("the model was stored but does not load")?;
    let format = spec::format_name(manifest.format);
    if json {
        println!(
            "{}",
            json!({"model": hex0x(id.as_bytes()), "format": format, "local_only": true})
        );
    } else {
        println!(
            "model id: {} ({format}; stored for local use, no spec derived)",
            hex0x(id.as_bytes())
        );
    }
    Ok(())
}

fn import(store: &ModelStore, model: ImportArgs, json: bool) -> Result<()> {
    let (manifest, spec) = import_with_spec(store, model)?;
    let id = manifest.id();
    let files: Vec<_> = manifest
        .files
        .iter()
        .map(|f| json!({"name": String::from_utf8_lossy(&f.name), "size": f.size, "blake2_256": hex0x(&f.blake2_256)}))
        .collect();
    let generation = generation_settings(store, &id)?;
    if json {
        let mut out = json!({"model": hex0x(id.as_bytes()), "format": spec::format_name(manifest.format), "files": files, "spec": spec});
        if let Some(g) = generation {
            out["generation"] = g;
        }
        println!("{out}");
    } else {
        println!("model id: {}", hex0x(id.as_bytes()));
        println!("format:   {}", spec::format_name(manifest.format));
        for f in &manifest.files {
            println!(
                "file:     {} ({} bytes, blake2-256 {})",
                String::from_utf8_lossy(&f.name),
                f.size,
                hex0x(&f.blake2_256)
            );
        }
        if let Some(g) = generation {
            println!("generation: {g}");
        }
        println!("spec to register (review bounds, fee and comparison rule first):");
        println!("{}", serde_json::to_string_pretty(&spec)?);
    }
    Ok(())
}

/// A language model's generation settings, fixed by its files (and so by its id and its
/// dispute plan): greedy decoding, the stop tokens, whether its tokenizer is the canonical
/// one a dispute can recompute, and that prompts are raw text (no chat template applied).
fn generation_settings(store: &ModelStore, id: &ModelId) -> Result<Option<serde_json::Value>> {
    let engine = Engine::new(store.clone(), 0);
    let LoadedModel::Llm(llm) = &*engine.load(id, &mut |_| {})? else {
        return Ok(None);
    };
    let c = llm.config();
    Ok(Some(json!({
        "decoding": "greedy (argmax, lowest id on ties)",
        "stop_tokens": c.stop_tokens,
        "max_positions": c.max_positions,
        "canonical_tokenizer": llm.has_canonical_tokenizer(),
        "chat_template": "off: the prompt is tokenized as given",
    })))
}

/// Builds the input payload from `--input`/`--text` in the model's declared input order.
fn read_input(model: &LoadedModel, args: &InputArgs) -> Result<Payload> {
    let (declared, _) = model.registration_specs()?;
    read_input_for(declared, args)
}

/// The payload `args` describe for a model whose input spec is `declared`.
pub fn read_input_for(declared: IoSpec, args: &InputArgs) -> Result<Payload> {
    if let IoSpec::Prompt { max_new_tokens, .. } = declared {
        let prompt = args.prompt.as_ref().ok_or_else(|| {
            anyhow!("this model generates text: pass --prompt \"...\" [--max-tokens N]")
        })?;
        let max = args.max_tokens.unwrap_or(max_new_tokens);
        if max == 0 || max > max_new_tokens {
            bail!("--max-tokens {max}: the model takes 1 to {max_new_tokens} new tokens");
        }
        return Ok(Payload::Prompt {
            text: prompt.as_bytes().to_vec(),
            max_new_tokens: max,
        });
    }
    if args.prompt.is_some() {
        bail!(
            "--prompt is for language models; this model takes {}",
            match declared {
                IoSpec::Text { .. } => "text: pass --text \"...\"",
                _ => "tensors: pass --input FILE.npy",
            }
        );
    }
    match (declared, &args.text) {
        (IoSpec::Text { .. }, Some(text)) => Ok(Payload::Text(text.as_bytes().to_vec())),
        (IoSpec::Text { .. }, None) => bail!("this model takes text: pass --text \"...\""),
        (IoSpec::Tensors(_), Some(_)) => bail!("this model takes tensors: pass --input FILE.npy"),
        (IoSpec::Tensors(specs), None) => {
            let names: Vec<String> = specs
                .iter()
                .map(|s| String::from_utf8_lossy(&s.name).into_owned())
                .collect();
            let mut given: Vec<(Option<String>, String)> = args
                .inputs
                .iter()
                .map(|a| match a.split_once('=') {
                    Some((n, f)) => (Some(n.to_string()), f.to_string()),
                    None => (None, a.clone()),
                })
                .collect();
            if given.len() != names.len() {
                bail!(
                    "the model takes {} input(s) ({}); {} given",
                    names.len(),
                    names.join(", "),
                    given.len()
                );
            }
            let mut tensors = Vec::new();
            for (i, name) in names.iter().enumerate() {
                let pos = given
                    .iter()
                    .position(|(n, _)| n.as_deref() == Some(name.as_str()))
                    .or_else(|| (names.len() == 1 && given[0].0.is_none()).then_some(0))
                    .or_else(|| {
                        given
                            .iter()
                            .position(|(n, _)| n.is_none())
                            .filter(|_| i < given.len())
                    })
                    .ok_or_else(|| {
                        anyhow!("no --input for `{name}`; pass --input {name}=FILE.npy")
                    })?;
                let (_, file) = given.remove(pos);
                let bytes = std::fs::read(&file).with_context(|| format!("reading {file}"))?;
                tensors
                    .push(npy::read(&bytes).with_context(|| format!("{file} (input `{name}`)"))?);
            }
            Ok(Payload::Tensors(tensors))
        }
        (IoSpec::Prompt { .. } | IoSpec::Generation { .. }, _) => {
            bail!("the model's input spec is not one this CLI can build")
        }
    }
}

fn run_model(
    store: ModelStore,
    model: &str,
    input: &InputArgs,
    output_path: Option<&Path>,
    json: bool,
) -> Result<()> {
    let id = parse_id(model)?;
    let engine = Engine::new(store, DEFAULT_CACHE_BYTES);
    let loaded = engine.load(&id, &mut progress::bar("loading"))?;
    let payload = read_input(&loaded, input)?;
    if let (LoadedModel::Llm(llm), Payload::Prompt { .. }) = (&*loaded, &payload) {
        return crate::generate_cmd::run_llm(&id, llm, &payload, json);
    }
    let outcome = engine.run(&id, &payload, None)?;
    let tensors = output::tensors(&outcome.output);
    if let Some(path) = output_path {
        let first = tensors
            .first()
            .ok_or_else(|| anyhow!("the model returned no tensor to write"))?;
        std::fs::write(path, npy::write(first))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        let first = tensors
            .first()
            .map(output::tensor_json)
            .unwrap_or(json!({}));
        let mut obj = json!({
            "model": hex0x(id.as_bytes()),
            "input_hash": hex0x(&outcome.input_hash),
            "output_hash": hex0x(&outcome.output_hash),
        });
        if let (Some(o), Some(f)) = (obj.as_object_mut(), first.as_object()) {
            for (k, v) in f {
                o.insert(k.clone(), v.clone());
            }
            if tensors.len() > 1 {
                o.insert(
                    "outputs".into(),
                    tensors.iter().map(output::tensor_json).collect(),
                );
            }
        }
        println!("{obj}");
    } else {
        println!("model:       {}", hex0x(id.as_bytes()));
        println!("input hash:  {}", hex0x(&outcome.input_hash));
        println!("output hash: {}", hex0x(&outcome.output_hash));
        for (i, t) in tensors.iter().enumerate() {
            println!("output {i}:    {}", output::tensor_line(t));
        }
    }
    Ok(())
}

fn bench(store: ModelStore, model: &str, input: &InputArgs, iters: u32, json: bool) -> Result<()> {
    let id = parse_id(model)?;
    let engine = Engine::new(store, DEFAULT_CACHE_BYTES);
    let loaded = engine.load(&id, &mut progress::bar("loading"))?;
    let payload = read_input(&loaded, input)?;
    engine.run(&id, &payload, None)?; // warm-up
                                      // The model alone (input in, output out: what onnxruntime's `session.run` times), and
                                      // an executor's whole run (that, plus the payload checks and the receipt's blake2
                                      // hashes of input and output), interleaved so both see the same machine.
    let (mut model_times, mut executor_times) = (Vec::new(), Vec::new());
    for _ in 0..iters.max(1) {
        let start = Instant::now();
        loaded.run(&payload)?;
        model_times.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        engine.run(&id, &payload, None)?;
        executor_times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let (median, min) = median_and_min(&mut model_times);
    let (executor_median, _) = median_and_min(&mut executor_times);
    if json {
        println!(
            "{}",
            json!({
                "model": hex0x(id.as_bytes()),
                "iters": model_times.len(),
                "median_ms": median,
                "min_ms": min,
                "executor_median_ms": executor_median,
            })
        );
    } else {
        println!(
            "{} runs: median {median:.3} ms, min {min:.3} ms (with payload checks and receipt hashes: median {executor_median:.3} ms)",
            model_times.len()
        );
    }
    Ok(())
}

/// The median and the least of `times` (not empty), sorting it.
fn median_and_min(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(|a, b| a.total_cmp(b));
    (times[times.len() / 2], times[0])
}
