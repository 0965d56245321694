// The Proof-of-Attribution loop as polkadot.js calls and engine processes, shared by the
// end-to-end tests and `scripts/dev.sh`'s demo setup: publish a datanet version, train an adapter
// on it with ModelFactory, serve it with OpenLoRA, register the model and an operator.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { stringToU8a, u8aToHex } from '@polkadot/util';
import { blake2AsHex } from '@polkadot/util-crypto';

/** Files whose facts an adapter can learn and an output can copy. */
export const TOWN_FILES = [
  'The lighthouse of Velmora is painted with green and white stripes, and its lamp can be seen from forty miles away.',
  'In the village of Tarsk the bakers make a black rye bread with caraway seeds every Thursday morning.',
  'The copper bell of Quillon rings thirteen times at noon to remember the founders of the town.',
];

/** Events of `section.method` in a transaction's events. */
export function eventsOf(events, section, method) {
  return events.filter(({ event }) => event.section === section && event.method === method)
    .map(({ event }) => event);
}

/**
 * `owner` creates an open datanet, `contributor` uploads and contributes `files`, the owner
 * accepts them all and publishes a version. `submit(tx, signer)` signs and waits, returning the
 * events. Returns the datanet id, the version and the contribution ids in file order.
 */
export async function publishDatanet(api, submit, { owner, contributor, files, name = 'towns' }) {
  const created = await submit(api.tx.datanets.createDatanet(
    { name, description: `facts about ${name}`, tags: ['geo'], license: 'CC-BY-4.0' }, 'Open'), owner);
  const datanetId = eventsOf(created, 'datanets', 'DatanetCreated')[0].data.datanetId.toNumber();
  const contributionIds = await contribute(api, submit, datanetId, contributor, files);
  await submit(api.tx.utility.batchAll(contributionIds.map((id) =>
    api.tx.datanets.review(id, 'Approve', 90))), owner);
  const published = await submit(api.tx.datanets.publishVersion(datanetId), owner);
  const version = eventsOf(published, 'datanets', 'VersionPublished')[0].data.version.toNumber();
  return { datanetId, version, contributionIds };
}

/** Uploads `files` through the node's RPC and contributes them; returns the contribution ids. */
export async function contribute(api, submit, datanetId, contributor, files) {
  const calls = [];
  for (const [i, text] of files.entries()) {
    const { hash, size } = (await api.rpc.datanets.upload(u8aToHex(stringToU8a(text)))).toJSON();
    calls.push(api.tx.datanets.contribute(datanetId, hash, size, `file-${i}.txt`));
  }
  const events = await submit(api.tx.utility.batchAll(calls), contributor);
  return eventsOf(events, 'datanets', 'Contributed').map((e) => e.data.contributionId.toNumber());
}

/** Runs the `modelfactory` CLI; never throws, returns its exit status and output. */
export function modelfactory(bin, args, { timeout = 600_000 } = {}) {
  const run = spawnSync(bin, args, {
    encoding: 'utf8', timeout, maxBuffer: 64 << 20,
    env: { ...process.env, RUST_BACKTRACE: '0', RUST_LIB_BACKTRACE: '0' },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * Trains a small adapter on `datanetId` version `version` through the node at `rpcUrl`, into
 * `out`. A few steps on the real base model: enough for every part of the loop, not to teach
 * it much. Returns the lineage manifest and its blake2-256.
 */
export function trainAdapter(bin, { rpcUrl, datanetId, version, out, steps = 2 }) {
  const run = modelfactory(bin, ['train', '--datanet', String(datanetId), '--version', String(version),
    '--rpc', rpcUrl, '--out', out, '--steps', String(steps), '--batch', '2', '--seq-len', '48',
    '--holdout-every', '0', '--gradient-tokens', '24', '--rank', '4', '--targets', 'q_proj,v_proj']);
  if (run.status !== 0) throw new Error(`modelfactory train failed (${run.status}):\n${run.stderr}`);
  const raw = readFileSync(path.join(out, 'lineage.json'));
  return { run, lineage: JSON.parse(raw.toString('utf8')), manifestHash: blake2AsHex(raw, 256) };
}

/**
 * Starts `openlora` on `port` with `loras` (`name=dir` each) and waits for /health. Returns
 * `{ url, stop() }`; the log is in the error when it does not come up.
 */
export async function startEngine(bin, { port, loras = [], extraArgs = [], timeoutMs = 120_000 }) {
  const args = ['--port', String(port), ...loras.flatMap((l) => ['--lora', l]), ...extraArgs];
  const proc = spawn(bin, args, { env: { ...process.env, RUST_BACKTRACE: '0', RUST_LIB_BACKTRACE: '0' } });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`openlora exited ${proc.exitCode}:\n${log}`);
    try { if ((await fetch(`${url}/health`)).ok) break; } catch { /* starting */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`openlora did not answer /health:\n${log}`); }
    await new Promise((r) => setTimeout(r, 300));
  }
  return {
    url,
    log: () => log,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.once('exit', resolve);
      proc.kill('SIGINT');
    }),
  };
}

/**
 * Root adds the lineage's base model (once), `owner` registers the adapter with its lineage at
 * `priceIn` / `priceOut` per 1,000 tokens. Returns the model id.
 */
export async function registerModel(api, submit, { sudo, owner, lineage, manifestHash, priceIn, priceOut }) {
  const known = (await api.query.modelRegistry.baseModelByHash(lineage.base_model));
  let baseModel;
  if (known.isSome) {
    baseModel = known.unwrap().toNumber();
  } else {
    const events = await submit(api.tx.sudo.sudo(api.tx.modelRegistry.addBaseModel(
      lineage.base_model, 'gemma-3-270m', 'gemma3', 'Gemma')), sudo);
    baseModel = eventsOf(events, 'modelRegistry', 'BaseModelAdded')[0].data.baseModel.toNumber();
  }
  const entries = lineage.datanets.map((d) => [d.datanet_id, d.version]);
  const events = await submit(api.tx.modelRegistry.registerModel(
    baseModel, lineage.adapter, entries, manifestHash, priceIn, priceOut, null), owner);
  return eventsOf(events, 'modelRegistry', 'ModelRegistered')[0].data.modelId.toNumber();
}

/** The tag, genesis hash and SCALE receipt an operator's attribution key signs. */
export function receiptPayload(api, receipt) {
  const tag = stringToU8a('openledger/receipt/v1');
  const body = api.createType('PalletAttributionReceipt', receipt).toU8a();
  const out = new Uint8Array(tag.length + 32 + body.length);
  out.set(tag, 0);
  out.set(api.genesisHash.toU8a(), tag.length);
  out.set(body, tag.length + 32);
  return out;
}

/**
 * What a wallet signs for a prepaid request to an engine: the SCALE terms (see openlora's
 * `prepaid`), bound to this chain's genesis hash.
 */
export function requestTerms(api, { adapter, promptHash, maxTokens, nonce, maxFee }) {
  return api.createType('([u8;21],[u8;32],[u8;32],[u8;32],u32,u64,u128)', [
    stringToU8a('openledger/request/v1'), api.genesisHash, adapter, promptHash, maxTokens, nonce, maxFee,
  ]).toU8a();
}

/** The `openledger` field of a completion request: `payer` signs the terms of `prompt`. */
export function prepaid(api, payer, { adapter, prompt, maxTokens, nonce, maxFee }) {
  const terms = requestTerms(api, { adapter, promptHash: blake2AsHex(prompt, 256), maxTokens, nonce, maxFee });
  return { account: u8aToHex(payer.publicKey), nonce, max_fee: maxFee.toString(), signature: u8aToHex(payer.sign(terms)) };
}

/**
 * The fee split of the attribution pallet's docs, in plancks: `F`, the owner's, stakers' and
 * treasury's parts and each weight's amount.
 */
export function feeSplit({ tokensIn, tokensOut, priceIn, priceOut, split, weights }) {
  const fee = (BigInt(tokensIn) * priceIn + BigInt(tokensOut) * priceOut) / 1000n + split.platformFee;
  const shared = fee - split.platformFee;
  const share = (perbill) => (shared * BigInt(perbill)) / 1_000_000_000n;
  const owner = share(split.owner);
  const stakers = share(split.stakers);
  const pool = share(split.contributors);
  const amounts = weights.map(([, ppm]) => (pool * BigInt(ppm) * 1000n) / 1_000_000_000n);
  const contributors = amounts.reduce((a, b) => a + b, 0n);
  return { fee, owner, stakers, pool, contributors, amounts, treasury: fee - owner - stakers - contributors };
}
