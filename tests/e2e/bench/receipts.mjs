// Settlement throughput of the attribution pallet on one --dev node, against plain transfers in
// the same run:
//   - `balances.transfer_keep_alive`,
//   - `attribution.submit_receipt`: one signed receipt per on-chain request,
//   - `attribution.submit_receipt_batch`: an operator's batch of prepaid receipts, which the
//     chain settles by its aggregates (one charge per payer, one credit per contribution).
// Each phase signs its transactions up front, submits them all, and counts what the blocks
// include. Two rates: "per second" is items / (timestamp of the last block − timestamp of the
// block before the first), what this run achieved (bounded by how fast one client submits when
// blocks are not full); "capacity per second" is what full blocks would settle: items × the
// normal class's maximum block weight / the normal weight those blocks used / the block time.
// Prints a table and writes it, with a bar chart of the capacity, to $BENCH_OUT (default
// bench-results/receipts).
//
//   npm run bench:receipts
//   BENCH_TRANSFERS=3000 BENCH_BATCH_RECEIPTS=256 npm run bench:receipts   (8 receipts per payer)

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { Keyring } from '@polkadot/api';
import { u8aToHex, stringToU8a } from '@polkadot/util';
import { blake2AsHex, cryptoWaitReady } from '@polkadot/util-crypto';

import { datanetsRpc } from '../datanets-rpc.mjs';
import { eventsOf, publishDatanet, receiptPayload, registerModel, TOWN_FILES } from '../poa.mjs';
import { devArgs, OpenLedgerNode, signAndWaitFinalized } from '../test/helpers.mjs';

const OPEN = 10n ** 18n;
const SENDERS = Number(process.env.BENCH_SENDERS) || 100;
const TRANSFERS = Number(process.env.BENCH_TRANSFERS) || 2000;
const RECEIPTS = Number(process.env.BENCH_RECEIPTS) || 600;
const BATCHES = Number(process.env.BENCH_BATCHES) || 40;
// What one batch stands for: receipts served to this many payers, weighing this many
// contributions. The chain's cost grows with payers and contributions, not with receipts.
const BATCH_RECEIPTS = Number(process.env.BENCH_BATCH_RECEIPTS) || 512;
const BATCH_PAYERS = Number(process.env.BENCH_BATCH_PAYERS) || 32;
const OUT = process.env.BENCH_OUT || path.resolve('../../bench-results/receipts');
const PROMPT = 'The copper bell of Quillon';

await cryptoWaitReady();
const keyring = new Keyring({ type: 'sr25519', ss58Format: 6736 });
const [alice, bob, charlie, dave] = ['Alice', 'Bob', 'Charlie', 'Dave'].map((n) => keyring.addFromUri(`//${n}`));
const senders = Array.from({ length: SENDERS }, (_, i) => keyring.addFromUri(`//bench//${i}`));
const log = (line) => process.stderr.write(`${line}\n`);

async function submit(tx, signer) {
  const { events, dispatchError } = await signAndWaitFinalized(tx, signer);
  if (dispatchError) throw new Error(`${tx.method.section}.${tx.method.method} failed: ${dispatchError}`);
  return events;
}

/**
 * Submits the signed `txs` without waiting for each, then follows the new blocks until `count`
 * items are seen (`itemsIn(events)` counts them in one block). Returns the items and seconds.
 */
async function measure(api, name, txs, count, itemsIn) {
  const startHeader = await api.rpc.chain.getHeader();
  const before = (await (await api.at(startHeader.hash)).query.timestamp.now()).toNumber();
  let seen = 0;
  let last = before;
  let blocks = 0;
  let refTime = 0n;
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: only ${seen} of ${count} after 600 s`)), 600_000);
    let unsubscribe;
    let next = startHeader.number.toNumber() + 1;
    api.rpc.chain.subscribeNewHeads(async (header) => {
      // Blocks are read in order, each once, even when heads arrive while one is being read.
      const target = header.number.toNumber();
      for (; next <= target; next++) {
        const hash = await api.rpc.chain.getBlockHash(next);
        const at = await api.at(hash);
        const found = itemsIn(await at.query.system.events());
        if (found > 0 || seen > 0) blocks += 1;
        seen += found;
        if (found > 0) {
          last = (await at.query.timestamp.now()).toNumber();
          refTime += (await at.query.system.blockWeight()).normal.refTime.toBigInt();
        }
        process.stderr.write(`  ${name}: block ${next}, ${seen}/${count}\r`);
        if (seen >= count) {
          clearTimeout(timer);
          unsubscribe?.();
          resolve();
          return;
        }
      }
    }).then((u) => { unsubscribe = u; }, reject);
  });
  // Send in chunks so the WebSocket and the pool keep up.
  for (let i = 0; i < txs.length; i += 200) {
    await Promise.all(txs.slice(i, i + 200).map((tx) => api.rpc.author.submitExtrinsic(tx)));
  }
  await done;
  process.stderr.write('\n');
  const maxNormal = api.consts.system.blockWeights.perClass.normal.maxTotal.unwrap().refTime.toBigInt();
  const blockSeconds = api.consts.aura.slotDuration.toNumber() / 1000;
  const capacity = Number((BigInt(seen) * maxNormal * 1000n) / refTime) / 1000 / blockSeconds;
  return { items: seen, seconds: (last - before) / 1000, blocks, capacity };
}

/** Signs `make(i)` from sender `i % SENDERS` at consecutive nonces. */
async function signAll(api, n, make) {
  const nonces = await Promise.all(senders.map(async (s) => (await api.rpc.system.accountNextIndex(s.address)).toNumber()));
  const txs = [];
  for (let i = 0; i < n; i++) {
    const s = i % SENDERS;
    txs.push((await make(i).signAsync(senders[s], { nonce: nonces[s]++, era: 0 })).toHex());
  }
  return txs;
}

const node = await OpenLedgerNode.start({ name: 'bench', args: devArgs, apiOptions: { rpc: datanetsRpc } });
try {
  const { api } = node;
  log(`node up; ${SENDERS} senders`);
  await submit(api.tx.utility.batchAll(senders.map((s) => api.tx.balances.transferKeepAlive(s.address, 300n * OPEN))), alice);

  // A model on a published datanet, served by Bob, whose key (not in the node) signs receipts
  // and batches here.
  const datanet = await publishDatanet(api, submit, { owner: alice, contributor: charlie, files: TOWN_FILES });
  const adapter = blake2AsHex('bench adapter', 256);
  const modelId = await registerModel(api, submit, {
    sudo: alice, owner: dave, manifestHash: blake2AsHex('manifest', 256), priceIn: 3n * OPEN, priceOut: 7n * OPEN,
    lineage: { base_model: blake2AsHex('bench base', 256), adapter, datanets: [{ datanet_id: datanet.datanetId, version: datanet.version }] },
  });
  await submit(api.tx.attribution.registerOperator(u8aToHex(bob.publicKey), [modelId]), bob);
  const contributions = datanet.contributionIds;

  // 1. Transfers.
  log(`transfers: ${TRANSFERS}`);
  const transfers = await signAll(api, TRANSFERS, () => api.tx.balances.transferKeepAlive(charlie.address, OPEN));
  const transferRun = await measure(api, 'transfer_keep_alive', transfers, TRANSFERS,
    (events) => events.filter(({ event }) => event.section === 'balances' && event.method === 'Transfer').length);

  // 2. Single receipts: the requests first (not measured), then one receipt each.
  log(`single receipts: ${RECEIPTS}`);
  const requests = await signAll(api, RECEIPTS, () => api.tx.attribution.requestInference(modelId, PROMPT, 12, OPEN));
  await measure(api, 'request_inference', requests, RECEIPTS,
    (events) => eventsOf(events, 'attribution', 'InferenceRequested').length);
  const open = (await api.query.attribution.assigned.keys(bob.address)).map((k) => k.args[1].toNumber()).sort((a, b) => a - b);
  const weights = contributions.map((id, i) => [id, i === 0 ? 1_000_000 - Math.floor(1_000_000 / contributions.length) * (contributions.length - 1) : Math.floor(1_000_000 / contributions.length)]);
  const text = ' rings at noon.';
  const receipts = await signAll(api, open.length, (i) => {
    const receipt = {
      requestId: open[i], operator: bob.address, modelId, adapterHash: adapter,
      promptHash: blake2AsHex(PROMPT, 256), outputHash: blake2AsHex(text, 256), inputTokens: 7, outputTokens: 4,
      method: 'Span', indexRoot: `0x${'11'.repeat(32)}`, recordHash: `0x${'22'.repeat(32)}`, weights, output: text,
    };
    return api.tx.attribution.submitReceipt(receipt, u8aToHex(bob.sign(receiptPayload(api, receipt))));
  });
  const receiptRun = await measure(api, 'submit_receipt', receipts, open.length,
    (events) => eventsOf(events, 'attribution', 'ReceiptSettled').length);

  // 3. Batches: the payers are the senders, each with prepaid credit.
  log(`batches: ${BATCHES} of ${BATCH_RECEIPTS} receipts, ${BATCH_PAYERS} payers, ${contributions.length} contributions`);
  const deposits = await signAll(api, SENDERS, () => api.tx.attribution.depositCredit(100n * OPEN));
  await measure(api, 'deposit_credit', deposits, SENDERS, (events) => eventsOf(events, 'attribution', 'CreditDeposited').length);
  const perReceipt = (7n * 3n + 4n * 7n) * OPEN / 1000n;
  const split = (await api.query.attribution.feeParams()).toJSON();
  const platform = BigInt(split.platformFee);
  const model = (await api.query.modelRegistry.models(modelId)).unwrap();
  const rates = { priceIn: model.priceIn, priceOut: model.priceOut, platformFee: platform };
  const sorted = [...senders].map((s) => s.address).sort((a, b) => (u8aToHex(keyring.decodeAddress(a)) < u8aToHex(keyring.decodeAddress(b)) ? -1 : 1));
  const firstNonce = (await api.query.attribution.batchNonce(bob.address)).toNumber();
  const batchTxs = [];
  for (let b = 0; b < BATCHES; b++) {
    const payers = Array.from({ length: BATCH_PAYERS }, (_, i) => sorted[(b * BATCH_PAYERS + i) % SENDERS])
      .sort((x, y) => (u8aToHex(keyring.decodeAddress(x)) < u8aToHex(keyring.decodeAddress(y)) ? -1 : 1));
    const perPayer = BigInt(Math.floor(BATCH_RECEIPTS / BATCH_PAYERS));
    // Each payer's requests in batch b are its nonces b·perPayer + 1 ..= (b + 1)·perPayer.
    const charges = payers.map((payer) => ({
      payer, amount: perPayer * (perReceipt + platform),
      firstNonce: BigInt(b) * perPayer + 1n, lastNonce: BigInt(b + 1) * perPayer,
    }));
    const shared = perPayer * BigInt(BATCH_PAYERS) * perReceipt;
    const influence = contributions.map((id) => [id, shared / BigInt(contributions.length)]);
    const batch = {
      operator: bob.address, modelId, nonce: firstNonce + b, receiptsRoot: blake2AsHex(`batch ${b}`, 256),
      receipts: Number(perPayer) * BATCH_PAYERS, rates, charges, influence,
    };
    const body = api.createType('PalletAttributionReceiptBatch', batch).toU8a();
    const tag = stringToU8a('openledger/batch/v1');
    const payload = new Uint8Array([...tag, ...api.genesisHash.toU8a(), ...body]);
    batchTxs.push(api.tx.attribution.submitReceiptBatch(batch, u8aToHex(bob.sign(payload))));
  }
  // Batches settle in nonce order: one relayer submits them all at consecutive nonces.
  let relayerNonce = (await api.rpc.system.accountNextIndex(alice.address)).toNumber();
  const signedBatches = [];
  for (const tx of batchTxs) signedBatches.push((await tx.signAsync(alice, { nonce: relayerNonce++, era: 0 })).toHex());
  const batchRun = await measure(api, 'submit_receipt_batch', signedBatches, BATCHES * Math.floor(BATCH_RECEIPTS / BATCH_PAYERS) * BATCH_PAYERS,
    (events) => eventsOf(events, 'attribution', 'BatchSettled').reduce((n, e) => n + e.data.receipts.toNumber(), 0));

  const row = (what, run) => ({
    what, items: run.items, blocks: run.blocks, seconds: run.seconds,
    'per second': Number((run.items / run.seconds).toFixed(1)),
    'capacity per second': Math.round(run.capacity),
    'capacity vs transfers': Number((run.capacity / transferRun.capacity).toFixed(2)),
  });
  const rows = [
    row('transfer_keep_alive', transferRun),
    row('submit_receipt (single receipts)', receiptRun),
    row(`submit_receipt_batch (receipts; ${Math.floor(BATCH_RECEIPTS / BATCH_PAYERS) * BATCH_PAYERS} per batch, ${BATCH_PAYERS} payers, ${contributions.length} contributions)`, batchRun),
  ];
  console.table(rows);

  mkdirSync(OUT, { recursive: true });
  writeFileSync(path.join(OUT, 'results.json'), `${JSON.stringify({ batchReceipts: BATCH_RECEIPTS, batchPayers: BATCH_PAYERS, rows }, null, 2)}\n`);
  writeFileSync(path.join(OUT, 'throughput.svg'), barChart(rows));
  log(`wrote ${OUT}/results.json and throughput.svg`);
} finally {
  await node.stop();
}

/** A horizontal bar chart of the capacity per second, on a log scale. */
function barChart(rows) {
  const width = 720;
  const bar = 28;
  const left = 250;
  const value = (r) => r['capacity per second'];
  const max = Math.max(...rows.map(value));
  const scale = (v) => ((Math.log10(Math.max(v, 1)) / Math.log10(Math.max(max, 10))) * (width - left - 90));
  const lines = rows.map((r, i) => {
    const y = 40 + i * (bar + 14);
    const label = r.what.replace(/ \(.*/, '');
    return `<text x="${left - 8}" y="${y + bar * 0.65}" text-anchor="end" font-size="13">${label}</text>`
      + `<rect x="${left}" y="${y}" width="${scale(value(r)).toFixed(1)}" height="${bar}" fill="#3b6ea5"/>`
      + `<text x="${left + scale(value(r)) + 6}" y="${y + bar * 0.65}" font-size="13">${value(r)}/s (×${r['capacity vs transfers']})</text>`;
  }).join('\n');
  const height = 60 + rows.length * (bar + 14);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">\n`
    + `<text x="10" y="22" font-size="15">Settled per second in full blocks, one dev node (log scale)</text>\n${lines}\n</svg>\n`;
}
