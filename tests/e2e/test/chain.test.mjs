// End-to-end checks of a single `openledger-node --dev` chain through
// polkadot.js. The steps share one node and run in order (concurrency 1).

import assert from 'node:assert/strict';
import { after, before, describe } from 'node:test';

import { Keyring } from '@polkadot/api';

import {
  OpenLedgerNode,
  START_TIMEOUT_MS,
  describeDispatchError,
  eventNames,
  freeBalancesAt,
  parentHashOf,
  signAndWaitFinalized,
  stepDeclarer,
} from './helpers.mjs';

const SS58_PREFIX = 6736;
const DECIMALS = 18;
const OPEN = 10n ** BigInt(DECIMALS);

const QUERY_TIMEOUT_MS = 30_000;
// Inclusion plus GRANDPA finality of a dev block, with generous slack.
const TX_TIMEOUT_MS = 120_000;

describe('openledger-node --dev', () => {
  /** @type {OpenLedgerNode} */
  let node;
  // Kept and re-thrown by every step (see stepDeclarer).
  let startError;
  let alice;
  let bob;
  let charlie;
  let ferdie;

  /** Declares a test whose body gets the connected ApiPromise. */
  const step = stepDeclarer('openledger-node', () => startError, (name, timeoutMs, fn) =>
    node.step(name, timeoutMs, fn));

  /** The transactionPayment.TransactionFeePaid of `who` among `events`, as a bigint fee + tip. */
  function feePaidBy(api, events, who) {
    assert.ok(
      api.events.transactionPayment?.TransactionFeePaid,
      'runtime has no transactionPayment.TransactionFeePaid event',
    );
    const paid = events.find(({ event }) => api.events.transactionPayment.TransactionFeePaid.is(event));
    assert.ok(paid, `no transactionPayment.TransactionFeePaid event; got: ${eventNames(events)}`);
    const [payer, actualFee, tip] = paid.event.data;
    assert.equal(payer.toString(), who.address, 'TransactionFeePaid.who');
    return actualFee.toBigInt() + tip.toBigInt();
  }

  before(async () => {
    try {
      // The defaults: a single-node --dev chain, ready once block #1 is final.
      node = await OpenLedgerNode.start();
    } catch (error) {
      startError = error;
      return;
    }
    // Created only now: sr25519 needs the WASM crypto that ApiPromise has
    // initialised by the time it is ready.
    const keyring = new Keyring({ type: 'sr25519', ss58Format: SS58_PREFIX });
    [alice, bob, charlie, ferdie] = ['//Alice', '//Bob', '//Charlie', '//Ferdie'].map((uri) => keyring.addFromUri(uri));
  }, { timeout: START_TIMEOUT_MS + 30_000 });

  after(async () => {
    await node?.stop();
  }, { timeout: 30_000 });

  step('exposes the OPEN token properties', QUERY_TIMEOUT_MS, async (api) => {
    assert.deepEqual(api.registry.chainTokens, ['OPEN']);
    assert.deepEqual(api.registry.chainDecimals, [DECIMALS]);
    assert.equal(api.registry.chainSS58, SS58_PREFIX);

    const properties = await api.rpc.system.properties();
    assert.ok(properties.tokenSymbol.isSome, 'system_properties has no tokenSymbol');
    assert.ok(properties.tokenDecimals.isSome, 'system_properties has no tokenDecimals');
    assert.ok(properties.ss58Format.isSome, 'system_properties has no ss58Format');
    assert.deepEqual(properties.tokenSymbol.unwrap().map(String), ['OPEN']);
    assert.deepEqual(properties.tokenDecimals.unwrap().map((decimals) => decimals.toNumber()), [DECIMALS]);
    assert.equal(properties.ss58Format.unwrap().toNumber(), SS58_PREFIX);
    // The node's own RPCs read OpenLedger (prefix 6736) addresses too.
    assert.equal((await api.rpc.system.accountNextIndex(alice.address)).toNumber(),
      (await api.query.system.account(alice.address)).nonce.toNumber());
  });

  step('reports the openledger runtime version and chain name', QUERY_TIMEOUT_MS, async (api) => {
    const { specName, specVersion } = api.runtimeVersion;
    assert.equal(specName.toString(), 'openledger');
    assert.ok(specVersion.toNumber() >= 100, `specVersion ${specVersion.toNumber()} < 100`);

    const rpcVersion = await api.rpc.state.getRuntimeVersion();
    assert.equal(rpcVersion.specName.toString(), specName.toString());
    assert.equal(rpcVersion.specVersion.toNumber(), specVersion.toNumber());

    assert.equal((await api.rpc.system.chain()).toString(), 'OpenLedger Development');
  });

  step('has a total issuance of 1,000,000,000 OPEN and an ED of 0.01 OPEN', QUERY_TIMEOUT_MS, async (api) => {
    // Read at the first finalized block, before any test paid (and possibly
    // burned) a fee, so the result does not depend on test order.
    const apiAt = await api.at(node.startHash);
    const issuance = (await apiAt.query.balances.totalIssuance()).toBigInt();
    assert.equal(issuance, 1_000_000_000n * OPEN);
    assert.equal(issuance, 10n ** 27n);

    assert.equal(api.consts.balances.existentialDeposit.toBigInt(), 10n ** 16n);
  });

  step('finalizes a transferKeepAlive from Alice to Bob', TX_TIMEOUT_MS, async (api) => {
    const amount = 12_345n * 10n ** 15n; // 12.345 OPEN

    const { blockHash, events, dispatchError } = await signAndWaitFinalized(
      api.tx.balances.transferKeepAlive(bob.address, amount),
      alice,
    );
    assert.equal(dispatchError, undefined, describeDispatchError(api, dispatchError));
    assert.ok(
      events.some(({ event }) => api.events.system.ExtrinsicSuccess.is(event)),
      `no system.ExtrinsicSuccess; got: ${eventNames(events)}`,
    );

    const transfer = events.find(({ event }) => api.events.balances.Transfer.is(event));
    assert.ok(transfer, `no balances.Transfer event; got: ${eventNames(events)}`);
    const [from, to, value] = transfer.event.data;
    assert.equal(from.toString(), alice.address, 'Transfer.from');
    assert.equal(to.toString(), bob.address, 'Transfer.to');
    assert.equal(value.toBigInt(), amount, 'Transfer.amount');

    const fee = feePaidBy(api, events, alice);

    // Compare the finalized block with its parent (also finalized): exactly
    // the state change of the block holding our extrinsic, immune to any
    // other block produced while we waited.
    const [aliceBefore, bobBefore] = await freeBalancesAt(api, await parentHashOf(api, blockHash), [alice, bob]);
    const [aliceAfter, bobAfter] = await freeBalancesAt(api, blockHash, [alice, bob]);
    assert.equal(bobAfter - bobBefore, amount, "Bob's free balance increase");
    assert.equal(aliceBefore - aliceAfter, amount + fee, "Alice's free balance decrease (amount + fee)");
  });

  step('rejects a transfer beyond the sender balance with Token.FundsUnavailable', TX_TIMEOUT_MS, async (api) => {
    const [ferdieFree] = await freeBalancesAt(api, (await api.rpc.chain.getFinalizedHead()).toHex(), [ferdie]);
    assert.ok(ferdieFree > 0n, 'Ferdie must be endowed in the dev genesis');
    const amount = ferdieFree + OPEN;

    const { blockHash, events, dispatchError } = await signAndWaitFinalized(
      api.tx.balances.transferAllowDeath(charlie.address, amount),
      ferdie,
    );
    const failed = events.find(({ event }) => api.events.system.ExtrinsicFailed.is(event));
    assert.ok(failed, `no system.ExtrinsicFailed; got: ${eventNames(events)}`);
    assert.ok(dispatchError, 'the result carries no dispatchError');

    const [eventError] = failed.event.data;
    assert.ok(
      eventError.isToken && eventError.asToken.isFundsUnavailable,
      `expected Token.FundsUnavailable, got ${describeDispatchError(api, eventError)}`,
    );
    assert.ok(
      !events.some(({ event }) => api.events.balances.Transfer.is(event)),
      'a failed transfer must not emit balances.Transfer',
    );

    const fee = feePaidBy(api, events, ferdie);
    const [ferdieBefore, charlieBefore] = await freeBalancesAt(api, await parentHashOf(api, blockHash), [ferdie, charlie]);
    const [ferdieAfter, charlieAfter] = await freeBalancesAt(api, blockHash, [ferdie, charlie]);
    assert.equal(charlieAfter, charlieBefore, "Charlie's free balance must not change");
    assert.equal(ferdieBefore - ferdieAfter, fee, "Ferdie's free balance decrease (fee only)");
  });

  step('keeps the supply fixed: the fees paid above went to the treasury', QUERY_TIMEOUT_MS, async (api) => {
    // The treasury is the keyless account `modl` ++ "ol/trsry" ++ zero padding.
    const treasury = api.createType(
      'AccountId',
      Buffer.concat([Buffer.from('modl'), Buffer.from('ol/trsry'), Buffer.alloc(20)]),
    );
    const start = await api.at(node.startHash);
    const now = await api.at(await api.rpc.chain.getFinalizedHead());
    assert.equal((await now.query.balances.totalIssuance()).toBigInt(), 10n ** 27n);
    const before = (await start.query.system.account(treasury)).data.free.toBigInt();
    const after = (await now.query.system.account(treasury)).data.free.toBigInt();
    assert.equal(before, 10n ** 16n, 'the treasury starts with the existential deposit');
    assert.ok(after > before, `the treasury received no fees (${before} -> ${after})`);
  });
});
