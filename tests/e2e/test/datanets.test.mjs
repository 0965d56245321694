// End-to-end datanet flow on a `--dev` node, the way a dataset owner, curators
// and contributors use it through polkadot.js: create a datanet, add a curator,
// upload files through the node's RPC, contribute them on chain, review with a
// quorum, publish a version and check its Merkle root; a rejected contribution
// is slashed and its file pruned; bad uploads get the documented errors.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Keyring } from '@polkadot/api';
import { stringToU8a, u8aConcat, u8aToHex } from '@polkadot/util';
import { blake2AsHex, blake2AsU8a, encodeAddress } from '@polkadot/util-crypto';

import { DATANETS_ERRORS, datanetsRpc } from '../datanets-rpc.mjs';
import {
  OpenLedgerNode,
  START_TIMEOUT_MS,
  describeDispatchError,
  devArgs,
  eventNames,
  freeBalancesAt,
  parentHashOf,
  signAndWaitFinalized,
  stepDeclarer,
} from './helpers.mjs';

const OPEN = 10n ** 18n;
const MILLI_OPEN = OPEN / 1_000n;
const MICRO_OPEN = MILLI_OPEN / 1_000n;
// The runtime's datanet deposits (runtime/src/lib.rs).
const DATANET_DEPOSIT = 10n * OPEN;
const BYTE_DEPOSIT = MILLI_OPEN;
const ITEM_DEPOSIT = 100n * MILLI_OPEN;
const CONTRIBUTION_BASE_DEPOSIT = 100n * MILLI_OPEN;
const CONTRIBUTION_BYTE_DEPOSIT = MICRO_OPEN;
const REJECTION_SLASH_PERCENT = 20n;

// Small limits so the refusals are cheap to provoke.
const MAX_FILE_SIZE = 64 * 1024;
const PRUNE_AFTER_BLOCKS = 8;

const TX_TIMEOUT_MS = 60_000;
const PRUNE_TIMEOUT_MS = 120_000;

/** The treasury: `PalletId(*b"ol/trsry")` as an account (`modl` ++ id, zero padded). */
const TREASURY = encodeAddress(u8aConcat(stringToU8a('modlol/trsry'), new Uint8Array(20)), 6736);

/**
 * `binary-merkle-tree`'s root over leaves that are already hashes (`merkle_root_raw`): pairs
 * are hashed together with blake2-256, an odd last node moves up unchanged.
 */
function merkleRoot(leaves) {
  if (leaves.length === 0) return u8aToHex(new Uint8Array(32));
  let level = leaves;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? blake2AsU8a(u8aConcat(level[i], level[i + 1]), 256) : level[i]);
    }
    level = next;
  }
  return u8aToHex(level[0]);
}

/** A JSON-RPC call over HTTP that must fail; resolves with the error object. */
async function rpcError(node, method, params) {
  const response = await fetch(`http://127.0.0.1:${node.rpcPort}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = await response.json();
  assert.ok(body.error, `${method} should fail, got ${JSON.stringify(body.result)?.slice(0, 200)}`);
  return body.error;
}

describe('datanets on a --dev node', () => {
  /** @type {OpenLedgerNode | undefined} */
  let node;
  let startError;
  let alice; let bob; let charlie; let dave; let eve;

  const step = stepDeclarer('the dev node', () => startError, (name, timeoutMs, fn) =>
    node.step(name, timeoutMs, fn));

  before(async () => {
    try {
      node = await OpenLedgerNode.start({
        args: (setup) => [
          ...devArgs(setup),
          '--datanets-max-file-size', String(MAX_FILE_SIZE),
          '--datanets-prune-after', String(PRUNE_AFTER_BLOCKS),
          '--datanets-prune-interval', '1',
        ],
        apiOptions: { rpc: datanetsRpc },
      });
      const keyring = new Keyring({ type: 'sr25519', ss58Format: 6736 });
      [alice, bob, charlie, dave, eve] = ['Alice', 'Bob', 'Charlie', 'Dave', 'Eve']
        .map((name) => keyring.addFromUri(`//${name}`));
    } catch (error) {
      startError = error;
    }
  }, { timeout: START_TIMEOUT_MS + 10_000 });

  after(async () => { await node?.stop(); }, { timeout: 60_000 });

  /** Submits, waits for finality, asserts success; returns the extrinsic's events. */
  async function submit(api, tx, signer) {
    const { events, dispatchError } = await signAndWaitFinalized(tx, signer);
    assert.equal(dispatchError, undefined,
      `${tx.method.section}.${tx.method.method} failed: ${describeDispatchError(api, dispatchError)}`);
    return events;
  }

  /** Submits a call that must fail with `datanets.<error>`. */
  async function submitFailing(api, tx, signer, error) {
    const { dispatchError } = await signAndWaitFinalized(tx, signer);
    assert.ok(dispatchError, `${tx.method.section}.${tx.method.method} should fail with ${error}`);
    assert.equal(describeDispatchError(api, dispatchError).split(' ')[2], `datanets.${error}`);
  }

  function findEvent(events, method) {
    const found = events.find(({ event }) => event.section === 'datanets' && event.method === method);
    assert.ok(found, `no datanets.${method} among ${eventNames(events)}`);
    return found.event;
  }

  const reserved = async (api, who) => (await api.query.system.account(who.address)).data.reserved.toBigInt();

  /** Uploads through RPC and checks the answer against the file itself. */
  async function upload(api, bytes) {
    // A hex string: polkadot.js reads a Uint8Array given for `Bytes` as SCALE (length-prefixed).
    const { hash, size } = (await api.rpc.datanets.upload(u8aToHex(bytes))).toJSON();
    assert.equal(hash, blake2AsHex(bytes, 256), 'upload returns the blake2-256 of the bytes');
    assert.equal(size, bytes.length);
    return hash;
  }

  async function waitUntilNotStored(api, hash) {
    for (;;) {
      const status = (await api.rpc.datanets.status(hash)).toJSON();
      if (!status.stored) return status;
      await sleep(1_000);
    }
  }

  const datanetId = 0;
  const fileA = new Uint8Array(randomBytes(3_000));
  const fileB = new Uint8Array(randomBytes(5_000));
  const spam = new Uint8Array(randomBytes(1_000));
  let hashA; let hashB; let spamHash;
  let contributionA; let contributionB;

  step('Alice creates an open datanet and holds its deposit', TX_TIMEOUT_MS, async (api) => {
    const before = await reserved(api, alice);
    const tx = api.tx.datanets.createDatanet({
      name: 'rust-docs',
      description: 'Rust documentation snippets',
      tags: ['rust', 'docs'],
      license: 'CC-BY-4.0',
    }, 'Open');
    const events = await submit(api, tx, alice);
    const created = findEvent(events, 'DatanetCreated');
    assert.equal(created.data.datanetId.toNumber(), datanetId);
    const expected = DATANET_DEPOSIT + BYTE_DEPOSIT * BigInt(tx.method.args[0].encodedLength);
    assert.equal(created.data.deposit.toBigInt(), expected);
    assert.equal(await reserved(api, alice) - before, expected, "Alice's held balance");
  });

  step('Alice adds Bob as curator: the default quorum is then both of them', TX_TIMEOUT_MS, async (api) => {
    const before = await reserved(api, alice);
    await submit(api, api.tx.datanets.addCurator(datanetId, bob.address), alice);
    const datanet = (await api.query.datanets.datanets(datanetId)).unwrap();
    assert.deepEqual(datanet.curators.map((c) => c.toString()), [bob.address]);
    assert.equal(await reserved(api, alice) - before, ITEM_DEPOSIT);
  });

  step('Charlie uploads two files through RPC and contributes them', TX_TIMEOUT_MS * 2, async (api) => {
    hashA = await upload(api, fileA);
    hashB = await upload(api, fileB);
    const status = (await api.rpc.datanets.status(hashA)).toJSON();
    assert.equal(status.stored, true);
    assert.equal(status.size, fileA.length);
    assert.deepEqual(status.contributions, [], 'not contributed yet');

    const before = await reserved(api, charlie);
    const events = await submit(api, api.tx.utility.batchAll([
      api.tx.datanets.contribute(datanetId, hashA, fileA.length, 'a.bin'),
      api.tx.datanets.contribute(datanetId, hashB, fileB.length, 'b.bin'),
    ]), charlie);
    const contributed = events
      .filter(({ event }) => event.section === 'datanets' && event.method === 'Contributed')
      .map(({ event }) => event.data);
    assert.equal(contributed.length, 2, eventNames(events));
    [contributionA, contributionB] = contributed.map((data) => data.contributionId.toNumber());
    const deposit = (size) => CONTRIBUTION_BASE_DEPOSIT + CONTRIBUTION_BYTE_DEPOSIT * BigInt(size);
    assert.equal(contributed[0].deposit.toBigInt(), deposit(fileA.length));
    assert.equal(await reserved(api, charlie) - before, deposit(fileA.length) + deposit(fileB.length));

    const after = (await api.rpc.datanets.status(hashA)).toJSON();
    assert.deepEqual(after.contributions, [{
      contributionId: contributionA,
      datanetId,
      contributor: charlie.address,
      status: 'pending',
    }]);
  });

  step('one approval is not a quorum; the second accepts and returns the deposit', TX_TIMEOUT_MS * 2, async (api) => {
    const before = await reserved(api, charlie);
    await submit(api, api.tx.utility.batchAll([
      api.tx.datanets.review(contributionA, 'Approve', 90),
      api.tx.datanets.review(contributionB, 'Approve', 70),
    ]), alice);
    const pending = (await api.query.datanets.contributions(contributionA)).unwrap();
    assert.ok(pending.status.isPending, 'one of two votes decides nothing');
    assert.equal(await reserved(api, charlie), before);

    const events = await submit(api, api.tx.utility.batchAll([
      api.tx.datanets.review(contributionA, 'Approve', 70),
      api.tx.datanets.review(contributionB, 'Approve', 90),
    ]), bob);
    const accepted = events.filter(({ event }) => event.method === 'ContributionAccepted');
    assert.equal(accepted.length, 2, eventNames(events));
    assert.equal(accepted[0].event.data.quality.toNumber(), 80, 'average of 90 and 70');
    assert.equal(await reserved(api, charlie), 0n, "Charlie's deposits are back");
    const status = (await api.rpc.datanets.status(hashA)).toJSON();
    assert.equal(status.contributions[0].status, 'accepted');
  });

  step('the same file cannot be contributed twice to the datanet', TX_TIMEOUT_MS, async (api) => {
    await submitFailing(api, api.tx.datanets.contribute(datanetId, hashA, fileA.length, 'again'), eve,
      'DuplicateContent');
  });

  step('Alice publishes version 1: both files, their bytes, and their Merkle root', TX_TIMEOUT_MS, async (api) => {
    const events = await submit(api, api.tx.datanets.publishVersion(datanetId), alice);
    const published = findEvent(events, 'VersionPublished');
    assert.equal(published.data.version.toNumber(), 1);

    const version = (await api.query.datanets.versions(datanetId, 1)).unwrap();
    assert.deepEqual(version.contributions.map((id) => id.toNumber()), [contributionA, contributionB]);
    assert.equal(version.count.toNumber(), 2);
    assert.equal(version.totalBytes.toNumber(), fileA.length + fileB.length);
    const expectedRoot = merkleRoot([hashA, hashB].map((h) => Buffer.from(h.slice(2), 'hex')));
    assert.equal(version.merkleRoot.toHex(), expectedRoot);
    assert.equal(published.data.merkleRoot.toHex(), expectedRoot);
    assert.equal((await api.query.datanets.datanets(datanetId)).unwrap().latestVersion.toNumber(), 1);
  });

  step('the files download with the bytes that were uploaded', TX_TIMEOUT_MS, async (api) => {
    const bytes = (await api.rpc.datanets.download(hashB)).toU8a(true);
    assert.deepEqual(Buffer.from(bytes), Buffer.from(fileB));
  });

  step('a rejected contribution is slashed to the treasury and its file pruned', TX_TIMEOUT_MS + PRUNE_TIMEOUT_MS, async (api) => {
    spamHash = await upload(api, spam);
    const events = await submit(api, api.tx.datanets.contribute(datanetId, spamHash, spam.length, 'spam'), dave);
    const contribution = findEvent(events, 'Contributed').data;
    const deposit = contribution.deposit.toBigInt();
    // Owner + one curator with a quorum of two: one rejection already decides.
    const { events: reviewEvents, blockHash } = await signAndWaitFinalized(
      api.tx.datanets.review(contribution.contributionId, 'Reject', 0), bob);
    const rejected = findEvent(reviewEvents, 'ContributionRejected');
    const slashed = deposit * REJECTION_SLASH_PERCENT / 100n;
    assert.equal(rejected.data.slashed.toBigInt(), slashed);
    assert.equal(rejected.data.reputation.toNumber(), 75, 'initial 100 minus the 25 penalty');
    const parent = await parentHashOf(api, blockHash);
    const [daveBefore, treasuryBefore] = await freeBalancesAt(api, parent, [dave, { address: TREASURY }]);
    const [daveAfter, treasuryAfter] = await freeBalancesAt(api, blockHash, [dave, { address: TREASURY }]);
    assert.equal(daveAfter - daveBefore, deposit - slashed, 'Dave gets the rest back');
    assert.equal(await reserved(api, dave), 0n);
    // The treasury also collects Bob's fee in that block.
    const fee = reviewEvents.find(({ event }) => event.method === 'TransactionFeePaid').event.data.actualFee.toBigInt();
    assert.equal(treasuryAfter - treasuryBefore, slashed + fee);

    const status = await waitUntilNotStored(api, spamHash);
    assert.deepEqual(status.contributions, []);
  });

  step('a file nobody contributes is deleted after the grace period', PRUNE_TIMEOUT_MS, async (api) => {
    const orphan = await upload(api, new Uint8Array(randomBytes(500)));
    const status = await waitUntilNotStored(api, orphan);
    assert.equal(status.size, null);
    // Accepted files stay.
    for (const hash of [hashA, hashB]) assert.equal((await api.rpc.datanets.status(hash)).toJSON().stored, true);
  });

  step('bad uploads and downloads get the documented errors and store nothing', TX_TIMEOUT_MS, async () => {
    const tooLarge = await rpcError(node, 'datanets_upload', [u8aToHex(new Uint8Array(MAX_FILE_SIZE + 1))]);
    assert.equal(tooLarge.code, DATANETS_ERRORS.FILE_TOO_LARGE, tooLarge.message);
    assert.deepEqual(tooLarge.data, { size: MAX_FILE_SIZE + 1, limit: MAX_FILE_SIZE });
    assert.equal((await rpcError(node, 'datanets_upload', ['0xzz'])).code, DATANETS_ERRORS.INVALID_ENCODING);
    assert.equal((await rpcError(node, 'datanets_upload', ['not base64!'])).code, DATANETS_ERRORS.INVALID_ENCODING);
    assert.equal((await rpcError(node, 'datanets_upload', ['0x'])).code, DATANETS_ERRORS.EMPTY_FILE);
    assert.equal((await rpcError(node, 'datanets_download', ['0x1234'])).code, DATANETS_ERRORS.INVALID_HASH);
    const unknown = u8aToHex(randomBytes(32));
    assert.equal((await rpcError(node, 'datanets_download', [unknown])).code, DATANETS_ERRORS.UNKNOWN_HASH);
    const status = await node.rpc('datanets_status', [blake2AsHex(new Uint8Array(MAX_FILE_SIZE + 1), 256)]);
    assert.equal(status.stored, false, 'the refused upload left nothing behind');
  });
});
