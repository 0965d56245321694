// Lifecycle helpers for the openledger-node end-to-end tests: locate the
// binary, start throw-away nodes (a `--dev` chain by default, or any command
// line), connect polkadot.js to them, run one-shot commands, and make sure no
// node process outlives the test run.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ApiPromise, WsProvider } from '@polkadot/api';

// Relative CARGO_TARGET_DIR values are meant relative to where cargo runs
// (the repo root), not to tests/e2e where `npm test` runs.
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const BUILD_HINT = 'Build it with `cargo build --release -p openledger-node` from the repository root, '
  + 'or set OPENLEDGER_NODE to the path of an existing openledger-node binary.';

/**
 * Time allowed from spawning a node until it is ready: its RPC answers,
 * polkadot.js is connected and, where asked for (the `--dev` default), a
 * block >= #1 is finalized.
 */
export const START_TIMEOUT_MS = Number(process.env.OPENLEDGER_E2E_START_TIMEOUT_MS) || 120_000;

/**
 * Extra time node:test gives a test beyond its step's own timeout. Only a
 * backstop: the step's shorter timeout fires first, so the node logs get
 * printed with the failure instead of a bare node:test cancellation.
 */
export const BACKSTOP_MS = 15_000;

/** Grace period between SIGTERM and SIGKILL when stopping the node. */
const KILL_GRACE_MS = 10_000;

const LOG_TAIL_LINES = 50;

/** Returns the absolute path of the node binary, or throws with a build hint. */
export function resolveNodeBinary() {
  let binary;
  let origin;
  if (process.env.OPENLEDGER_NODE) {
    binary = path.resolve(process.env.OPENLEDGER_NODE);
    origin = 'OPENLEDGER_NODE';
  } else {
    const targetDir = process.env.CARGO_TARGET_DIR
      ? path.resolve(REPO_ROOT, process.env.CARGO_TARGET_DIR)
      : path.join(os.homedir(), '.cache', 'openledger', 'target');
    binary = path.join(targetDir, 'release', 'openledger-node');
    origin = process.env.CARGO_TARGET_DIR ? 'CARGO_TARGET_DIR' : 'default location';
  }
  if (!existsSync(binary)) {
    throw new Error(`openledger-node binary not found at ${binary} (${origin}). ${BUILD_HINT}`);
  }
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(`openledger-node binary at ${binary} (${origin}) is not executable. ${BUILD_HINT}`);
  }
  return binary;
}

/**
 * Asks the kernel for `count` distinct free TCP ports on 127.0.0.1. All
 * listeners are held open together so the ports cannot collide with each
 * other; they are released just before the node binds them.
 */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => server.address().port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve()))));
  }
}

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// --- process-wide safety net ------------------------------------------------
// `after()` hooks do not run if the test process is interrupted or crashes, so
// every spawned node is tracked here and killed on the way out.

const liveNodes = new Set();
let handlersInstalled = false;

function installProcessHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;

  // 'exit' handlers must be synchronous, so this can only SIGKILL; the private
  // base path is then removed synchronously too, since the node cannot do it.
  process.on('exit', () => {
    for (const node of liveNodes) node.killNowSync();
  });

  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      // Give each node the usual graceful shutdown, then leave with the
      // conventional 128+n status; the 'exit' handler catches stragglers.
      Promise.allSettled([...liveNodes].map((node) => node.stop()))
        .finally(() => process.exit(128 + os.constants.signals[signal]));
    });
  }
}

// --- the node -----------------------------------------------------------------

/**
 * The command line of a throw-away `--dev` node: private base path, free
 * ports, no telemetry and no mDNS (so parallel runs on one host never meet).
 * @param {NodeSetup} setup
 */
export function devArgs({ basePath, p2pPort, rpcPort, prometheusPort }) {
  return [
    '--dev',
    '--base-path', basePath,
    '--rpc-port', String(rpcPort),
    '--port', String(p2pPort),
    '--prometheus-port', String(prometheusPort),
    '--no-telemetry',
    '--no-mdns',
  ];
}

/**
 * What the helper allocates for a node before it is spawned; a node's
 * command line is built from it (see `devArgs`).
 * @typedef {object} NodeSetup
 * @property {string} name
 * @property {string} basePath  private path for `--base-path` (inside the work dir, not yet created)
 * @property {number} p2pPort   free TCP port for `--port` / `--listen-addr`
 * @property {number} rpcPort   free TCP port for `--rpc-port`; the helper talks to it
 * @property {number} prometheusPort free TCP port for `--prometheus-port`
 */

// --- the two-validator `local` chain ---------------------------------------------

// Fixed node keys make the peer ids predictable. Substrate's docs and tests
// use ...0001 for Alice; its ed25519 peer id is the one below.
export const ALICE_NODE_KEY = `${'0'.repeat(63)}1`;
export const ALICE_PEER_ID = '12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp';
// A validator without --dev refuses to generate a node key on its own
// (NetworkKeyNotFound) since a changing identity hurts its peers, so Bob
// gets a fixed one too.
export const BOB_NODE_KEY = `${'0'.repeat(63)}2`;

/**
 * The command line of one `local` validator, as in the repository README's
 * "Two validators, one machine" (plus a node key for Bob, see above): the
 * `--alice`/`--bob` flag selects the validator's session keys. Loopback only.
 */
export function localValidatorArgs(validator, nodeKey, extra = []) {
  return ({ basePath, p2pPort, rpcPort, prometheusPort }) => [
    '--chain', 'local',
    `--${validator}`,
    '--base-path', basePath,
    '--rpc-port', String(rpcPort),
    '--prometheus-port', String(prometheusPort),
    '--no-telemetry',
    // Without mDNS the nodes can only meet through --bootnodes, which is
    // what this test is about (and parallel runs on one host stay apart).
    '--no-mdns',
    '--node-key', nodeKey,
    // Loopback only (instead of --port, which listens on every interface).
    '--listen-addr', `/ip4/127.0.0.1/tcp/${p2pPort}`,
    ...extra,
  ];
}

/**
 * Starts the two `local` validators: Alice first, then Bob with Alice as his
 * bootnode. Neither can author or finalize alone, so start-up waits only for
 * RPC and polkadot.js. If Bob fails, Alice's log is kept (he dials her at
 * once, so the cause may show there) and she is stopped.
 * @param {object} [options]
 * @param {string[]} [options.extra] more flags for both nodes
 * @param {object} [options.apiOptions] see `OpenLedgerNode.start`
 */
export async function startLocalNetwork({ extra = [], apiOptions = {} } = {}) {
  const alice = await OpenLedgerNode.start({
    name: 'alice',
    args: localValidatorArgs('alice', ALICE_NODE_KEY, extra),
    finalized: null,
    apiOptions,
  });
  try {
    // Bob dials whatever id Alice actually has, so a wrong expectation
    // about the id fails one test instead of the whole network.
    const alicePeerId = await alice.step('reading Alice\'s peer id', 30_000,
      async (api) => (await api.rpc.system.localPeerId()).toString());
    const bootnode = `/ip4/127.0.0.1/tcp/${alice.p2pPort}/p2p/${alicePeerId}`;
    const bob = await OpenLedgerNode.start({
      name: 'bob',
      args: localValidatorArgs('bob', BOB_NODE_KEY, ['--bootnodes', bootnode, ...extra]),
      finalized: null,
      apiOptions,
    });
    return { alice, bob, alicePeerId };
  } catch (error) {
    alice.markFailed('Bob did not start');
    await alice.stop();
    throw error;
  }
}

export class OpenLedgerNode {
  /** Label used in work-dir names and log banners, e.g. `dev`, `alice`. */
  name = 'node';
  /** @type {ApiPromise | null} */
  api = null;
  /**
   * Hash and number of the first finalized block (>= `finalized`) seen at
   * start-up, before any test ran; null when start() did not wait for one.
   */
  startHash = null;
  startNumber = null;
  logFile = null;
  basePath = null;
  p2pPort = null;
  rpcPort = null;
  prometheusPort = null;
  /** The full command line, for error messages. */
  args = [];

  #child = null;
  #workDir = null;
  #exitInfo = null;
  #exited = null;
  #died = null;
  #stopping = null;
  #failed = false;
  #apiOptions = {};

  /**
   * Spawns openledger-node, waits until its RPC answers, connects polkadot.js
   * and, unless `finalized` is null, waits until a block with at least that
   * number is finalized. On any failure the tail of the node's log is printed
   * and the node is stopped before the error is thrown.
   *
   * The defaults start a single-node `--dev` chain. A multi-node network
   * passes its own `args`, and `finalized: null`: a validator there cannot
   * finalize anything before its peers are up.
   *
   * @param {object} [options]
   * @param {string} [options.name] label for the work dir and log banners
   * @param {(setup: NodeSetup) => string[]} [options.args] builds the command line
   * @param {number | null} [options.finalized] block number to wait for, or null
   * @param {number} [options.timeoutMs] limit for the whole start-up
   * @param {object} [options.apiOptions] extra `ApiPromise.create` options, e.g. `{ rpc }`
   */
  static async start({ name = 'dev', args = devArgs, finalized = 1, timeoutMs = START_TIMEOUT_MS, apiOptions = {} } = {}) {
    const node = new OpenLedgerNode();
    node.name = name;
    node.#apiOptions = apiOptions;
    try {
      await node.#start(args, finalized, timeoutMs);
      return node;
    } catch (error) {
      node.#failed = true;
      // An early exit has already printed the log from the exit handler.
      if (!node.#exitInfo) node.printLogTail('node start-up failed');
      await node.stop();
      throw error;
    }
  }

  async #start(buildArgs, finalized, timeoutMs) {
    const binary = resolveNodeBinary();
    const deadline = Date.now() + timeoutMs;

    // A private work dir (instead of --dev's own temporary base path) lets us
    // delete the chain database even when the node had to be SIGKILLed.
    this.#workDir = mkdtempSync(path.join(os.tmpdir(), `openledger-e2e-${this.name}-`));
    this.logFile = path.join(this.#workDir, 'node.log');
    this.basePath = path.join(this.#workDir, 'base');

    [this.rpcPort, this.p2pPort, this.prometheusPort] = await freePorts(3);
    const args = buildArgs({
      name: this.name,
      basePath: this.basePath,
      p2pPort: this.p2pPort,
      rpcPort: this.rpcPort,
      prometheusPort: this.prometheusPort,
    });
    this.args = args;

    // The node writes straight into the file, so the log is complete even if
    // this process is killed before it could copy anything.
    const logFd = openSync(this.logFile, 'a');
    try {
      this.#child = spawn(binary, args, { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    installProcessHandlers();
    liveNodes.add(this);

    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => resolve({ code, signal }));
      this.#child.once('error', (error) => resolve({ error }));
    }).then((info) => {
      this.#exitInfo = info;
      liveNodes.delete(this);
      if (!this.#stopping) {
        this.#failed = true;
        this.printLogTail(`openledger-node (${this.name}) exited early (${describeExit(info)})`);
      }
      return info;
    });
    // Raced against every wait below so that a crashed node fails the wait
    // at once instead of letting it run into its timeout.
    this.#died = this.#exited.then((info) => {
      throw new Error(`openledger-node (${this.name}) exited (${describeExit(info)}); log: ${this.logFile}`);
    });
    this.#died.catch(() => {});

    const remaining = () => Math.max(deadline - Date.now(), 0);
    const what = (step) => `${step} (openledger-node ${args.join(' ')}; log: ${this.logFile})`;

    await withTimeout(this.guard(this.#waitForRpc(deadline)), remaining(), what('waiting for RPC to answer system_health'));
    this.api = await withTimeout(this.guard(this.#connectApi()), remaining(), what('connecting polkadot.js'));
    if (finalized === null) return;
    const header = await withTimeout(
      this.guard(waitForFinalizedNumber(this.api, finalized)),
      remaining(),
      what(`waiting for block #${finalized} to be finalized`),
    );
    this.startHash = header.hash.toHex();
    this.startNumber = header.number.toNumber();
  }

  /**
   * One JSON-RPC call over plain HTTP; resolves with `result`, rejects on a
   * JSON-RPC error or when no answer comes within `timeoutMs`.
   */
  async rpc(method, params = [], timeoutMs = 2_000) {
    const response = await fetch(`http://127.0.0.1:${this.rpcPort}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`${method}: HTTP ${response.status}`);
    const body = await response.json();
    if (body.error) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
    return body.result;
  }

  // Plain HTTP polling needs no WebSocket (Node 20 has no global one) and,
  // unlike a WsProvider, does not print reconnect errors while the node boots.
  async #waitForRpc(deadline) {
    while (Date.now() < deadline && !this.#exitInfo) {
      try {
        if (await this.rpc('system_health')) return;
      } catch {
        // Not listening yet, keep polling.
      }
      await sleep(250);
    }
    throw new Error(`RPC on port ${this.rpcPort} did not answer system_health in time`);
  }

  async #connectApi() {
    // autoConnect off: if the node goes away we want failing calls, not an
    // endless reconnect loop that keeps the test process alive.
    const provider = new WsProvider(`ws://127.0.0.1:${this.rpcPort}`, false);
    const connected = new Promise((resolve, reject) => {
      provider.on('connected', resolve);
      provider.on('error', () => reject(new Error(`WebSocket connection to ${provider.endpoint} failed`)));
    });
    await provider.connect();
    try {
      await connected;
      return await ApiPromise.create({ ...this.#apiOptions, provider, throwOnConnect: true });
    } catch (error) {
      await provider.disconnect().catch(() => {});
      throw error;
    }
  }

  /** Races `promise` against the node dying, so waits fail fast on a crash. */
  guard(promise) {
    return Promise.race([promise, this.#died]);
  }

  /**
   * Runs one test step against this node's ApiPromise with a timeout; see
   * `runStep`, which does the same for steps that involve several nodes.
   */
  step(name, timeoutMs, fn) {
    return runStep([this], name, timeoutMs, () => fn(this.api));
  }

  /**
   * Records that a test involving this node failed: its log is then kept, and
   * its tail printed now (unless the exit handler already showed the final
   * log of a node that died).
   */
  markFailed(reason) {
    this.#failed = true;
    if (!this.#exitInfo) this.printLogTail(reason);
  }

  logTail(lines = LOG_TAIL_LINES) {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no node log available)';
    }
  }

  printLogTail(reason) {
    if (!this.logFile) return;
    process.stderr.write(
      `\n----- [${this.name}] ${reason}: last ${LOG_TAIL_LINES} lines of ${this.logFile} -----\n`
      + `${this.logTail()}\n`
      + '----- end of node log -----\n',
    );
  }

  /**
   * Disconnects the API and terminates the node (SIGTERM, then SIGKILL after a
   * grace period). Safe to call repeatedly and concurrently.
   */
  stop() {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop() {
    if (this.api) {
      await withTimeout(this.api.disconnect(), 5_000, 'disconnecting polkadot.js').catch(() => {});
    }
    if (this.#child && !this.#exitInfo) {
      this.#child.kill('SIGTERM');
      const exitedInTime = await withTimeout(this.#exited, KILL_GRACE_MS, 'graceful shutdown')
        .then(() => true, () => false);
      if (!exitedInTime) {
        this.#child.kill('SIGKILL');
        await withTimeout(this.#exited, 5_000, 'waiting for openledger-node to die after SIGKILL').catch(() => {});
      }
    }
    liveNodes.delete(this);
    this.#cleanUpFiles();
  }

  /** Last-resort kill from the synchronous process 'exit' handler. */
  killNowSync() {
    if (this.#child && !this.#exitInfo) this.#child.kill('SIGKILL');
    this.#cleanUpFiles();
  }

  #cleanUpFiles() {
    if (!this.#workDir) return;
    // The chain database is never useful afterwards; the log is kept when
    // something went wrong so it can be read in full.
    const target = this.#failed ? path.join(this.#workDir, 'base') : this.#workDir;
    try {
      rmSync(target, { recursive: true, force: true });
    } catch {
      // A SIGKILLed node may still be releasing files; nothing more to do.
    }
    if (this.#failed) process.stderr.write(`openledger-node (${this.name}) log kept at ${this.logFile}\n`);
    this.#workDir = null;
  }
}

/**
 * Runs one test step with a timeout, racing it against any of `nodes` dying
 * so that a crash fails the step at once. On failure (including the
 * timeout, which node:test itself would report without any context) the log
 * tail of every node is printed before the error is re-thrown.
 */
export async function runStep(nodes, name, timeoutMs, fn) {
  try {
    const guarded = nodes.reduce((promise, node) => node.guard(promise), Promise.resolve().then(fn));
    return await withTimeout(guarded, timeoutMs, name);
  } catch (error) {
    for (const node of nodes) node.markFailed(`step "${name}" failed`);
    throw error;
  }
}

function describeExit({ code, signal, error }) {
  if (error) return `could not run: ${error.message}`;
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** Resolves with the first finalized header whose number is >= `minNumber`. */
export function waitForFinalizedNumber(api, minNumber) {
  return new Promise((resolve, reject) => {
    let unsubscribe = null;
    let done = false;
    api.rpc.chain
      .subscribeFinalizedHeads((header) => {
        if (done || header.number.toNumber() < minNumber) return;
        done = true;
        unsubscribe?.();
        resolve(header);
      })
      .then((unsub) => {
        unsubscribe = unsub;
        if (done) unsub();
      }, reject);
  });
}

/**
 * Signs and submits `tx`, resolving once its block is FINALIZED with that
 * block's hash and the events of this extrinsic. Rejects if the pool drops,
 * invalidates or usurps the transaction.
 */
export function signAndWaitFinalized(tx, signer) {
  return new Promise((resolve, reject) => {
    let unsubscribe = null;
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      unsubscribe?.();
      fn(value);
    };
    tx.signAndSend(signer, (result) => {
      const { status } = result;
      if (status.isFinalized) {
        settle(resolve, {
          blockHash: status.asFinalized.toHex(),
          events: result.events,
          dispatchError: result.dispatchError,
        });
      } else if (result.isError) {
        settle(reject, new Error(`transaction ${tx.method.section}.${tx.method.method} ended with status ${status.type}`));
      }
    }).then((unsub) => {
      unsubscribe = unsub;
      if (settled) unsub();
    }, (error) => settle(reject, error));
  });
}

/**
 * Human-readable DispatchError: module errors are decoded through the
 * metadata (`pallet.Error`), other variants shown as `Kind.Variant`.
 */
export function describeDispatchError(api, dispatchError) {
  if (!dispatchError) return 'no dispatch error';
  if (dispatchError.isModule) {
    const { section, name, docs } = api.registry.findMetaError(dispatchError.asModule);
    return `Module error ${section}.${name}${docs.length ? ` (${docs.join(' ').trim()})` : ''}`;
  }
  const inner = dispatchError.value;
  return inner && typeof inner.type === 'string'
    ? `${dispatchError.type}.${inner.type}`
    : `${dispatchError.type} ${JSON.stringify(dispatchError.toHuman())}`;
}

/** `pallet.Event` names, for assertion messages. */
export function eventNames(events) {
  return events.map(({ event }) => `${event.section}.${event.method}`).join(', ') || '(none)';
}

/** Free balances (bigint) of `pairs` in the state of block `blockHash`. */
export async function freeBalancesAt(api, blockHash, pairs) {
  const apiAt = await api.at(blockHash);
  const accounts = await Promise.all(pairs.map((pair) => apiAt.query.system.account(pair.address)));
  return accounts.map((account) => account.data.free.toBigInt());
}

/** Parent hash of `blockHash`, i.e. the state right before that block. */
export async function parentHashOf(api, blockHash) {
  return (await api.rpc.chain.getHeader(blockHash)).parentHash.toHex();
}

// --- one-shot commands ----------------------------------------------------------

/**
 * Runs openledger-node with `args` (no shell) to completion and returns what
 * it did. Never throws for a failing command, so tests can assert on failures:
 * `error` is set when it could not be started or ran past `timeoutMs` (it is
 * then SIGKILLed, so a hung node cannot stall the run).
 */
export function runNodeSync(args, { timeoutMs = 30_000 } = {}) {
  const binary = resolveNodeBinary();
  const started = Date.now();
  const result = spawnSync(binary, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    // A plain chain spec embeds the runtime's wasm as hex: megabytes of stdout.
    maxBuffer: 256 * 1024 * 1024,
  });
  return {
    binary,
    command: [binary, ...args].join(' '),
    status: result.status,
    signal: result.signal,
    error: result.error,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? '',
    durationMs: Date.now() - started,
  };
}

/** Everything about a `runNodeSync` result, for assertion messages. */
export function describeRun(run) {
  const how = run.error
    ? `could not complete: ${run.error.message}`
    : run.signal ? `killed by ${run.signal}` : `exit code ${run.status}`;
  return `\`${run.command}\` (${how}, ${run.durationMs} ms)\n`
    + `--- stdout ---\n${truncate(run.stdout)}\n--- stderr ---\n${truncate(run.stderr)}\n--- end ---`;
}

function truncate(text, max = 4_000) {
  return text.length > max ? `${text.slice(0, max)}… (${text.length - max} more characters)` : text;
}

/**
 * Returns a `step(name, timeoutMs, fn)` that declares one node:test test run by `run`.
 * A start-up failure (read through `startError()`) is re-thrown by every step instead of
 * failing the `before` hook: node:test would report the steps as merely "cancelled" and the
 * closing summary would read `# fail 0`.
 */
export function stepDeclarer(what, startError, run) {
  return (name, timeoutMs, fn) =>
    it(name, { timeout: timeoutMs + BACKSTOP_MS }, () => {
      const error = startError();
      if (error) throw new Error(`${what} did not start: ${error.message}`, { cause: error });
      return run(name, timeoutMs, fn);
    });
}
