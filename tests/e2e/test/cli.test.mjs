// Command-line checks of openledger-node that need no running chain: bad
// input must end in a single `Error: …` line and a non-zero exit (operators
// read it in terminals and service logs), never in a panic or a Debug dump;
// and the informational commands must print what tooling relies on.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BACKSTOP_MS, describeRun, runNodeSync } from './helpers.mjs';

// Rejecting a bad --chain happens before the node opens a database or the
// network, so a few seconds are plenty; the limit only catches a hang.
const FAIL_FAST_MS = 20_000;
// Exporting a spec runs the runtime's genesis preset in the wasm executor.
const EXPORT_TIMEOUT_MS = 60_000;

// Both spellings: Rust's default hook prints "thread 'main' panicked at",
// Substrate's panic handler "Thread 'main' panicked at".
const PANIC = /panicked|Thread '/;

/**
 * Asserts the contract for bad input: the process ended by itself with a
 * non-zero status, wrote nothing to stdout, and wrote exactly one line to
 * stderr that starts with `Error:` and matches every pattern in `mustMatch`.
 */
function assertOneLineError(run, mustMatch) {
  const context = describeRun(run);
  assert.equal(run.error, undefined, `the command did not complete: ${context}`);
  assert.equal(run.signal, null, `the command was killed: ${context}`);
  assert.doesNotMatch(run.stdout, PANIC, `stdout shows a panic: ${context}`);
  assert.doesNotMatch(run.stderr, PANIC, `stderr shows a panic: ${context}`);
  assert.notEqual(run.status, 0, `expected a non-zero exit status: ${context}`);
  assert.equal(run.stdout.trim(), '', `expected nothing on stdout: ${context}`);

  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected exactly one line on stderr, got ${lines.length}: ${context}`);
  const [line] = lines;
  assert.match(line, /^Error: \S/, `the stderr line must start with "Error:": ${context}`);
  for (const pattern of mustMatch) assert.match(line, pattern, context);
}

/** Escapes `text` for literal use inside a RegExp. */
function literal(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('openledger-node command line', () => {
  let workDir;

  before(() => {
    workDir = mkdtempSync(path.join(os.tmpdir(), 'openledger-e2e-cli-'));
  });

  after(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  // The message names the bad value and what would have been accepted;
  // matched on those parts so rewording the rest does not break the test.
  const UNKNOWN_NOPE = [/unknown chain `nope`/, /`dev`/, /`local`/, /chain-spec JSON file/];

  it('rejects an unknown --chain with a one-line error', { timeout: FAIL_FAST_MS + BACKSTOP_MS }, () => {
    // A private base path: should the node get further than it ought to, it
    // must not touch the default one in the user's home directory.
    const run = runNodeSync(
      ['--chain', 'nope', '--base-path', path.join(workDir, 'unknown-chain')],
      { timeoutMs: FAIL_FAST_MS },
    );
    assertOneLineError(run, UNKNOWN_NOPE);
  });

  it('rejects a malformed chain-spec file with a one-line error', { timeout: FAIL_FAST_MS + BACKSTOP_MS }, () => {
    // Truncated JSON: the file exists, so it is parsed (not taken for an
    // unknown chain name) and the parser's error must stay on one line.
    const specFile = path.join(workDir, 'broken-spec.json');
    writeFileSync(specFile, '{ "name": "broken",');
    const run = runNodeSync(
      ['--chain', specFile, '--base-path', path.join(workDir, 'broken-spec')],
      { timeoutMs: FAIL_FAST_MS },
    );
    assertOneLineError(run, [new RegExp(`invalid chain-spec file \`${literal(specFile)}\``)]);
  });

  it('rejects an unknown chain in export-chain-spec with a one-line error', { timeout: FAIL_FAST_MS + BACKSTOP_MS }, () => {
    // export-chain-spec loads the spec itself rather than through sc-cli's
    // runner, so it has its own error path to check.
    const run = runNodeSync(['export-chain-spec', '--chain', 'nope'], { timeoutMs: FAIL_FAST_MS });
    assertOneLineError(run, UNKNOWN_NOPE);
  });

  it('prints its name and version with --version', { timeout: FAIL_FAST_MS + BACKSTOP_MS }, () => {
    const run = runNodeSync(['--version'], { timeoutMs: FAIL_FAST_MS });
    const context = describeRun(run);
    assert.equal(run.error, undefined, `the command did not complete: ${context}`);
    assert.equal(run.status, 0, context);
    assert.doesNotMatch(run.stdout + run.stderr, PANIC, context);
    // The version is the crate version plus the commit, e.g.
    // `openledger-node 0.1.0-1a2b3c4d` (`-unknown` when built outside git).
    // sc-cli names the program after the executable file, which is
    // `openledger-node` unless OPENLEDGER_NODE points at a renamed copy.
    const name = literal(path.basename(run.binary));
    assert.match(run.stdout.trim(), new RegExp(`^${name} \\d+\\.\\d+\\.\\d+(-\\S+)?$`), context);
  });

  it('exports the dev chain spec with the OPEN token properties', { timeout: EXPORT_TIMEOUT_MS + BACKSTOP_MS }, () => {
    const run = runNodeSync(['export-chain-spec', '--chain', 'dev'], { timeoutMs: EXPORT_TIMEOUT_MS });
    const context = describeRun(run);
    assert.equal(run.error, undefined, `the command did not complete: ${context}`);
    assert.equal(run.status, 0, context);
    assert.doesNotMatch(run.stdout + run.stderr, PANIC, context);

    let spec;
    try {
      spec = JSON.parse(run.stdout);
    } catch (error) {
      assert.fail(`stdout is not JSON (${error.message}): ${context}`);
    }
    assert.equal(spec.id, 'openledger_dev');
    assert.equal(spec.name, 'OpenLedger Development');
    assert.equal(spec.chainType, 'Development');
    // Wallets (polkadot.js Apps, extensions) read these to show OPEN amounts
    // and addresses with the OpenLedger SS58 prefix.
    assert.deepEqual(spec.properties, { tokenSymbol: 'OPEN', tokenDecimals: 18, ss58Format: 6736 });
  });
});
