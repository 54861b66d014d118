// What a dApp does with inferchain, using only @polkadot/api:
//   1. encode the model input in inferchain's canonical form (a SCALE `Payload`),
//   2. submit `inference.requestInference` and learn the request id and executor,
//   3. wait for `inference.ResultFinalized` (never act on `ResultSubmitted`: a result in
//      its challenge window can still be overturned),
//   4. read and decode the result.
//
// Run: npm ci && npx tsx request.ts   (INFERCHAIN_URL, default ws://127.0.0.1:9944)
// Prints one JSON line: {request, executor, output_hash, finalized_in, outputs}.

import { ApiPromise, Keyring, WsProvider } from "@polkadot/api";
import { blake2AsHex, cryptoWaitReady } from "@polkadot/util-crypto";
import { u8aToHex } from "@polkadot/util";

const URL = process.env.INFERCHAIN_URL ?? "ws://127.0.0.1:9944";
// tiny-mlp, registered at genesis on the dev chain: f32 [1, 4] -> softmax over 3 classes.
const TINY_MLP = "0x1c25ebdd7e0a463fc3886fbd891898d785e83a98e76765cb3bf91d179f0e7a86";

// inferchain's canonical I/O types (primitives/src/io.rs), for encoding and decoding.
const TYPES = {
  DType: { _enum: ["F32", "F64", "I64", "I32", "U8"] },
  Tensor: { dtype: "DType", shape: "Vec<u32>", data: "Bytes" },
  Payload: { _enum: { Tensors: "Vec<Tensor>", Text: "Bytes" } },
};

// Raw bytes go in as hex: polkadot.js reads a Uint8Array given for `Bytes` as already
// length-prefixed.
function f32Tensor(shape: number[], values: number[]) {
  const data = u8aToHex(new Uint8Array(new Float32Array(values).buffer)); // little-endian hosts
  return { dtype: "F32", shape, data };
}

async function main() {
  await cryptoWaitReady();
  const api = await ApiPromise.create({ provider: new WsProvider(URL), types: TYPES, noInitWarn: true });
  const charlie = new Keyring({ type: "sr25519" }).addFromUri("//Charlie");

  const model = (await api.query.models.models(TINY_MLP)) as any;
  if (model.isNone) throw new Error("tiny-mlp is not registered: is this the dev chain?");
  const fee = model.unwrap().spec.fee;
  const input = api.createType("Payload", { Tensors: [f32Tensor([1, 4], [0.5, -1.0, 2.0, 0.25])] });

  // Submit, and learn the request id from RequestSubmitted in the inclusion block.
  const { id, executor } = await new Promise<{ id: string; executor: string }>((resolve, reject) => {
    api.tx.inference
      .requestInference(TINY_MLP, u8aToHex(input.toU8a()), fee)
      .signAndSend(charlie, ({ status, events, dispatchError }) => {
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
    api.query.system.events((records: any) => {
      for (const { event } of records) {
        if (api.events.inference.ResultFinalized.is(event) && event.data[0].toString() === id) {
          api.query.system.number().then((n: any) => resolve(n.toNumber()));
        }
      }
    });
  });

  const result = ((await api.query.inference.results(id)) as any).unwrap();
  const output = api.createType("Payload", result.output.toU8a(true)) as any;
  const outputs = output.asTensors.map((t: any) => {
    const bytes = t.data.toU8a(true);
    return { shape: t.shape.map((d: any) => d.toNumber()), data: Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length))) };
  });
  const outputHash = blake2AsHex(result.output.toU8a(true), 256);
  if (outputHash !== result.outputHash.toHex()) throw new Error("the stored output does not hash to its recorded hash");
  console.log(JSON.stringify({ request: Number(id), executor, output_hash: outputHash, finalized_in: finalizedIn, outputs, input: u8aToHex(input.toU8a()) }));
  await api.disconnect();
  process.exit(0);
}

main().catch((e) => {
  console.error(`error: ${e.message ?? e}`);
  process.exit(1);
});
