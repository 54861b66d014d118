// What a dApp does with inferchain, using only @polkadot/api:
//   1. encode the model input in inferchain's canonical form (a SCALE `Payload`),
//   2. submit `inference.requestInference` and learn the request id and executor,
//   3. wait for `inference.ResultFinalized` (never act on `ResultSubmitted`: a result in
//      its challenge window can still be overturned),
//   4. read and decode the result.
//
// It does this twice: tiny-mlp on a tensor, then the language model tiny-llm on a prompt
// (priced per token: the prompt's bytes plus max_new_tokens, times the model's fee).
//
// Run: npm ci && npx tsx request.ts   (INFERCHAIN_URL, default ws://127.0.0.1:9944)
// Prints one JSON line: {request, executor, output_hash, finalized_in, outputs, input,
// llm: {request, executor, output_hash, finalized_in, tokens, text}}.

import { ApiPromise, Keyring, WsProvider } from "@polkadot/api";
import { blake2AsHex, cryptoWaitReady } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";

const URL = process.env.INFERCHAIN_URL ?? "ws://127.0.0.1:9944";
// tiny-mlp, registered at genesis on the dev chain: f32 [1, 4] -> softmax over 3 classes.
const TINY_MLP = "0x1c25ebdd7e0a463fc3886fbd891898d785e83a98e76765cb3bf91d179f0e7a86";
// tiny-llm, registered at genesis on the dev chain: a prompt -> its greedy generation.
const TINY_LLM = "0xc14ecb7915ead2e49e2ceee2cfa8ef00ef653282b878b289f06ff0cb0cdc6935";

// inferchain's canonical I/O types (primitives/src/io.rs), for encoding and decoding.
const TYPES = {
  DType: { _enum: ["F32", "F64", "I64", "I32", "U8"] },
  Tensor: { dtype: "DType", shape: "Vec<u32>", data: "Bytes" },
  Prompt: { text: "Bytes", max_new_tokens: "u32" },
  Generation: { tokens: "Vec<u32>", text: "Bytes" },
  Payload: { _enum: { Tensors: "Vec<Tensor>", Text: "Bytes", Prompt: "Prompt", Generation: "Generation" } },
};

// Raw bytes go in as hex: polkadot.js reads a Uint8Array given for `Bytes` as already
// length-prefixed.
function f32Tensor(shape: number[], values: number[]) {
  const data = u8aToHex(new Uint8Array(new Float32Array(values).buffer)); // little-endian hosts
  return { dtype: "F32", shape, data };
}

/// Submits `input` to `model` (paying at most `maxFee`), waits for the result to be
/// final, and returns the request, its executor, the block it was final in and the result.
async function request(api: ApiPromise, signer: any, model: string, input: any, maxFee: any) {
  // Submit, and learn the request id from RequestSubmitted in the inclusion block.
  const { id, executor } = await new Promise<{ id: string; executor: string }>((resolve, reject) => {
    api.tx.inference
      .requestInference(model, u8aToHex(input.toU8a()), maxFee)
      .signAndSend(signer, ({ status, events, dispatchError }) => {
        if (dispatchError) {
          const e = dispatchError.isModule ? api.registry.findMetaError(dispatchError.asModule) : null;
          reject(new Error(e ? `${e.section}.${e.name}: ${e.docs.join(" ")}` : dispatchError.toString()));
        } else if (status.isInBlock) {
          const ev = events.find(({ event }) => api.events.inference.RequestSubmitted.is(event));
          if (!ev) return reject(new Error("no RequestSubmitted event"));
          const [reqId, , , exec] = ev.event.data as any;
          resolve({ id: reqId.toString(), executor: exec.toString() });
        }
      })
      .catch(reject);
  });

  // Wait for the result to be final.
  const finalizedIn = await new Promise<number>((resolve) => {
    let unsubscribe: any;
    api.query.system
      .events((records: any) => {
        for (const { event } of records) {
          if (api.events.inference.ResultFinalized.is(event) && event.data[0].toString() === id) {
            if (unsubscribe) unsubscribe();
            api.query.system.number().then((n: any) => resolve(n.toNumber()));
          }
        }
      })
      .then((u: any) => (unsubscribe = u));
  });

  const result = ((await api.query.inference.results(id)) as any).unwrap();
  const outputHash = blake2AsHex(result.output.toU8a(true), 256);
  if (outputHash !== result.outputHash.toHex()) throw new Error("the stored output does not hash to its recorded hash");
  const output = api.createType("Payload", result.output.toU8a(true)) as any;
  return { id: Number(id), executor, finalizedIn, outputHash, output };
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(URL), types: TYPES, noInitWarn: true });
  const charlie = new Keyring({ type: "sr25519" }).addFromUri("//Charlie");

  const model = (await api.query.models.models(TINY_MLP)) as any;
  if (model.isNone) throw new Error("tiny-mlp is not registered: is this the dev chain?");
  const fee = model.unwrap().spec.fee;
  const input = api.createType("Payload", { Tensors: [f32Tensor([1, 4], [0.5, -1.0, 2.0, 0.25])] });
  const mlp = await request(api, charlie, TINY_MLP, input, fee);
  const outputs = mlp.output.asTensors.map((t: any) => {
    const bytes = t.data.toU8a(true);
    return { shape: t.shape.map((d: any) => d.toNumber()), data: Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))) };
  });

  // A language model: the prompt and how many tokens at most; the fee is per token.
  const llmModel = (await api.query.models.models(TINY_LLM)) as any;
  if (llmModel.isNone) throw new Error("tiny-llm is not registered: is this the dev chain?");
  const text = "KING.\nMy lord, ";
  const maxNewTokens = 16;
  const prompt = api.createType("Payload", { Prompt: { text: u8aToHex(new TextEncoder().encode(text)), max_new_tokens: maxNewTokens } });
  const units = new TextEncoder().encode(text).length + maxNewTokens;
  const llmFee = llmModel.unwrap().spec.fee.toBigInt() * BigInt(units);
  const llm = await request(api, charlie, TINY_LLM, prompt, llmFee);
  const generation = llm.output.asGeneration;

  console.log(
    JSON.stringify({
      request: mlp.id,
      executor: mlp.executor,
      output_hash: mlp.outputHash,
      finalized_in: mlp.finalizedIn,
      outputs,
      input: u8aToHex(input.toU8a()),
      llm: {
        request: llm.id,
        executor: llm.executor,
        output_hash: llm.outputHash,
        finalized_in: llm.finalizedIn,
        tokens: generation.tokens.map((t: any) => t.toNumber()),
        text: new TextDecoder().decode(generation.text.toU8a(true)),
      },
    }),
  );
  await api.disconnect();
  process.exit(0);
}

main().catch((e) => {
  console.error(`error: ${e.message ?? e}`);
  process.exit(1);
});
