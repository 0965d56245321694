// End-to-end check of the two-validator `local` chain: Alice and Bob run as
// separate nodes that find each other only through an explicit bootnode, and
// the chain must finalize. With two GRANDPA authorities of equal weight,
// finality needs both votes, so a finalized block proves the nodes talk.

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Keyring } from '@polkadot/api';

import {
  ALICE_PEER_ID,
  START_TIMEOUT_MS,
  runStep,
  startLocalNetwork,
  stepDeclarer,
  waitForFinalizedNumber,
} from './helpers.mjs';

const FINALIZED_TARGET = 3;
const QUERY_TIMEOUT_MS = 30_000;
const PEERING_TIMEOUT_MS = 60_000;
// 6 s blocks: #3 needs ~18 s once both validators are up; GRANDPA rounds and
// slot alignment add some, the rest is slack for slow CI machines.
const FINALITY_TIMEOUT_MS = 150_000;
const AUTHORING_TIMEOUT_MS = 120_000;

/** The slot number in a header's Aura pre-runtime digest (a SCALE u64). */
function auraSlot(header) {
  for (const log of header.digest.logs) {
    if (!log.isPreRuntime) continue;
    const [engine, data] = log.asPreRuntime;
    if (engine.isAura) return Buffer.from(data.toU8a(true)).readBigUInt64LE(0);
  }
  throw new Error(`block #${header.number.toNumber()} has no Aura pre-runtime digest`);
}

describe('openledger-node --chain local (Alice and Bob)', () => {
  /** @type {OpenLedgerNode | undefined} */
  let alice;
  /** @type {OpenLedgerNode | undefined} */
  let bob;
  let alicePeerId;
  // Kept and re-thrown by every test (see stepDeclarer).
  let startError;

  /** Declares a test that runs with both nodes' ApiPromises. */
  const step = stepDeclarer('the local network', () => startError, (name, timeoutMs, fn) =>
    runStep([alice, bob], name, timeoutMs, () => fn(alice.api, bob.api)));

  before(async () => {
    try {
      ({ alice, bob, alicePeerId } = await startLocalNetwork());
    } catch (error) {
      startError = error;
    }
  }, { timeout: 2 * START_TIMEOUT_MS + QUERY_TIMEOUT_MS + 30_000 });

  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
  }, { timeout: 60_000 });

  step('Alice\'s node key gives the well-known peer id', QUERY_TIMEOUT_MS, async () => {
    assert.equal(alicePeerId, ALICE_PEER_ID);
  });

  step('each node has the other as its only peer', PEERING_TIMEOUT_MS, async (aliceApi, bobApi) => {
    // Connecting takes a moment after start-up; poll until both see someone.
    let healths;
    for (;;) {
      healths = await Promise.all([aliceApi.rpc.system.health(), bobApi.rpc.system.health()]);
      if (healths.every((health) => health.peers.toNumber() >= 1)) break;
      await sleep(500);
    }
    const [aliceHealth, bobHealth] = healths;
    assert.equal(aliceHealth.peers.toNumber(), 1, "Alice's system_health peers");
    assert.equal(bobHealth.peers.toNumber(), 1, "Bob's system_health peers");

    // system_peers is an unsafe RPC; it is served because the RPC listens on
    // localhost only (--rpc-methods auto).
    const bobPeers = await bobApi.rpc.system.peers();
    assert.deepEqual(bobPeers.map((peer) => peer.peerId.toString()), [alicePeerId], "Bob's peers");
  });

  step(`both nodes finalize block #${FINALIZED_TARGET}`, FINALITY_TIMEOUT_MS, async (aliceApi, bobApi) => {
    const heads = await Promise.all([
      waitForFinalizedNumber(aliceApi, FINALIZED_TARGET),
      waitForFinalizedNumber(bobApi, FINALIZED_TARGET),
    ]);
    for (const head of heads) assert.ok(head.number.toNumber() >= FINALIZED_TARGET);
  });

  step('both nodes agree on the finalized chain', QUERY_TIMEOUT_MS, async (aliceApi, bobApi) => {
    assert.equal(aliceApi.genesisHash.toHex(), bobApi.genesisHash.toHex(), 'genesis hash');

    // Both finalized heads may differ by a block or two; the lower one is
    // final on both nodes, and finality means they must agree on its hash.
    const finalizedNumber = async (api) => (await api.rpc.chain.getHeader(await api.rpc.chain.getFinalizedHead())).number.toNumber();
    const [aliceFinal, bobFinal] = await Promise.all([finalizedNumber(aliceApi), finalizedNumber(bobApi)]);
    const common = Math.min(aliceFinal, bobFinal);
    assert.ok(common >= FINALIZED_TARGET, `common finalized height #${common} < #${FINALIZED_TARGET}`);

    const [aliceHash, bobHash] = await Promise.all([
      aliceApi.rpc.chain.getBlockHash(common),
      bobApi.rpc.chain.getBlockHash(common),
    ]);
    assert.ok(!aliceHash.isEmpty, `Alice has no block #${common}`);
    assert.equal(aliceHash.toHex(), bobHash.toHex(), `hash of finalized block #${common}`);
  });

  step('Alice and Bob both author blocks', AUTHORING_TIMEOUT_MS, async (aliceApi) => {
    // Keys derived only now: sr25519 needs the WASM crypto that ApiPromise
    // has initialised by the time it is ready.
    const keyring = new Keyring({ type: 'sr25519' });
    const names = new Map(['Alice', 'Bob'].map((name) => [
      `0x${Buffer.from(keyring.addFromUri(`//${name}`).publicKey).toString('hex')}`,
      name,
    ]));

    const genesisAt = await aliceApi.at(aliceApi.genesisHash);
    const authorities = (await genesisAt.query.aura.authorities()).map((key) => key.toHex());
    assert.deepEqual(
      authorities.map((key) => names.get(key) ?? key),
      ['Alice', 'Bob'],
      'Aura authorities of the local chain',
    );

    // pallet_aura's author of a block is authorities[slot % authorities.len()].
    // Only finalized blocks are read, so no fork can change the answer. Slots
    // are skipped now and then (a validator busy or a block arriving late),
    // so authors need not alternate strictly; both must show up, though.
    const authors = []; // authors[n - 1]: author of block #n
    let previousSlot = null;
    const deadline = Date.now() + AUTHORING_TIMEOUT_MS - 10_000;
    while (!(authors.includes('Alice') && authors.includes('Bob')) && Date.now() < deadline) {
      const finalized = (await aliceApi.rpc.chain.getHeader(await aliceApi.rpc.chain.getFinalizedHead())).number.toNumber();
      while (authors.length < finalized) {
        const number = authors.length + 1;
        const header = await aliceApi.rpc.chain.getHeader(await aliceApi.rpc.chain.getBlockHash(number));
        const slot = auraSlot(header);
        assert.ok(previousSlot === null || slot > previousSlot, `block #${number}: slot ${slot} after slot ${previousSlot}`);
        previousSlot = slot;
        authors.push(names.get(authorities[Number(slot % BigInt(authorities.length))]));
      }
      if (!(authors.includes('Alice') && authors.includes('Bob'))) await sleep(2_000);
    }
    assert.ok(
      authors.includes('Alice') && authors.includes('Bob'),
      `authors of finalized blocks #1..#${authors.length}: ${authors.join(', ') || '(none)'}`,
    );
  });
});
