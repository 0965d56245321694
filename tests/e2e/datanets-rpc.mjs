// polkadot.js definitions of openledger-node's `datanets_*` JSON-RPC methods.
// Copy them into your app, or import this file, and pass them when connecting:
//
//   import { ApiPromise, WsProvider } from '@polkadot/api';
//   import { u8aToHex } from '@polkadot/util';
//   import { datanetsRpc } from './datanets-rpc.mjs';
//   const api = await ApiPromise.create({ provider: new WsProvider(url), rpc: datanetsRpc });
//   // Pass the file as a hex string: polkadot.js reads a Uint8Array given for a `Bytes`
//   // parameter as SCALE-encoded (length-prefixed) and would upload other bytes.
//   const { hash, size } = (await api.rpc.datanets.upload(u8aToHex(fileBytes))).toJSON();
//   await api.tx.datanets.contribute(datanetId, hash, size, 'notes.md').signAndSend(account);
//   const bytes = (await api.rpc.datanets.download(hash)).toU8a(true);
//
// Errors are JSON-RPC errors with these codes (see client/datanets/README.md):
//   4001 invalid encoding   4002 empty file         4003 file too large (data: {size, limit})
//   4004 quota exceeded     4005 disk full          4006 invalid hash
//   4007 unknown hash       4008 storage I/O error  4009 chain state query failed

export const DATANETS_ERRORS = Object.freeze({
  INVALID_ENCODING: 4001,
  EMPTY_FILE: 4002,
  FILE_TOO_LARGE: 4003,
  QUOTA_EXCEEDED: 4004,
  DISK_FULL: 4005,
  INVALID_HASH: 4006,
  UNKNOWN_HASH: 4007,
  STORAGE_IO: 4008,
  CHAIN_QUERY_FAILED: 4009,
});

export const datanetsRpc = {
  datanets: {
    upload: {
      description: 'Stores a file on this node; returns { hash, size } for datanets.contribute',
      params: [{ name: 'data', type: 'Bytes' }],
      type: 'Json',
    },
    download: {
      description: 'The file with this blake2-256 hash, from this node or its peers, verified',
      params: [{ name: 'hash', type: 'H256' }],
      type: 'Bytes',
    },
    status: {
      description: 'Whether this node stores the file, its size, and the contributions referencing it',
      params: [{ name: 'hash', type: 'H256' }],
      type: 'Json',
    },
  },
};
