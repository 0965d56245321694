//! Prepaid requests: a user who prepaid credit on chain calls the engine directly and signs the
//! request with their sr25519 account key, so that the operator can later settle it on chain
//! without the user being online.
//!
//! The body field `"openledger": {"account", "nonce", "max_fee", "signature"}` carries the
//! signature over [`Terms::message`]. The signature binds the chain (genesis hash), the adapter,
//! the prompt and the most the request may cost, so a signed request cannot be replayed on
//! another chain, against another model or with a larger budget; the nonce stops replays of the
//! same request (see `journal`).

use attribution::Hash256;
use serde::Deserialize;

/// The domain separator that opens every signed request message.
pub const REQUEST_DOMAIN: &[u8; 21] = b"openledger/request/v1";

/// Substrate's sr25519 signing context (`sp_core::sr25519`), so that wallets and
/// `sp_core::sr25519::Pair::sign` produce signatures this accepts.
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// An sr25519 public key: the account that pays.
pub type AccountId = [u8; 32];
pub type Signature = [u8; 64];

/// The `"openledger"` field, parsed but not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub account: AccountId,
    pub nonce: u64,
    pub max_fee: u128,
    pub signature: Signature,
}

/// The field as it arrives; every string is checked by [`Authorization::parse`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    account: String,
    nonce: u64,
    max_fee: String,
    signature: String,
}

impl Authorization {
    /// Parses the `"openledger"` value; the error says which field is wrong and how.
    pub fn parse(value: serde_json::Value) -> Result<Self, String> {
        let f: Field = serde_json::from_value(value).map_err(|e| {
            format!(r#"openledger must be {{"account": "0x…", "nonce": u64, "max_fee": "decimal", "signature": "0x…"}}: {e}"#)
        })?;
        // A decimal string: a u128 does not survive JSON numbers (JavaScript's are f64).
        if f.max_fee.is_empty() || !f.max_fee.bytes().all(|b| b.is_ascii_digit()) {
            return Err("openledger.max_fee must be a decimal string of digits".into());
        }
        let max_fee = f.max_fee.parse().map_err(|_| "openledger.max_fee does not fit in a u128".to_string())?;
        Ok(Self {
            account: hex_field("account", &f.account)?,
            nonce: f.nonce,
            max_fee,
            signature: hex_field("signature", &f.signature)?,
        })
    }

    /// Whether `signature` is the account's sr25519 signature of `message`, as
    /// `sp_core::sr25519::Pair::verify` decides it (schnorrkel's marker bit included).
    pub fn verifies(&self, message: &[u8]) -> bool {
        let Ok(signature) = schnorrkel::Signature::from_bytes(&self.signature) else { return false };
        let Ok(public) = schnorrkel::PublicKey::from_bytes(&self.account) else { return false };
        public.verify_simple(SIGNING_CONTEXT, message, &signature).is_ok()
    }
}

fn hex_field<const N: usize>(name: &str, s: &str) -> Result<[u8; N], String> {
    parse_hex(s).ok_or_else(|| format!("openledger.{name} must be 0x and {} hex digits", 2 * N))
}

/// `0x` and exactly `2N` hex digits, the form polkadot.js prints keys, hashes and signatures in.
pub fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s.strip_prefix("0x")?, &mut out).ok()?;
    Some(out)
}

/// What a user agrees to pay for: one completion of one prompt by one adapter, on one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    pub genesis: Hash256,
    pub adapter_hash: Hash256,
    /// blake2-256 of the prompt text (for chat, of the rendered template), as in the receipt.
    pub prompt_hash: Hash256,
    pub max_tokens: u32,
    pub nonce: u64,
    pub max_fee: u128,
}

impl Terms {
    /// The signed bytes: the SCALE encoding of
    /// `(REQUEST_DOMAIN, genesis, adapter_hash, prompt_hash, max_tokens, nonce, max_fee)`,
    /// which the runtime can rebuild with `.encode()` (fixed-size fields: no length prefixes).
    pub fn message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(21 + 3 * 32 + 4 + 8 + 16);
        m.extend_from_slice(REQUEST_DOMAIN);
        m.extend_from_slice(&self.genesis);
        m.extend_from_slice(&self.adapter_hash);
        m.extend_from_slice(&self.prompt_hash);
        m.extend_from_slice(&self.max_tokens.to_le_bytes());
        m.extend_from_slice(&self.nonce.to_le_bytes());
        m.extend_from_slice(&self.max_fee.to_le_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn terms() -> Terms {
        Terms {
            genesis: [0x11; 32],
            adapter_hash: [0x22; 32],
            prompt_hash: [0x33; 32],
            max_tokens: 0x0102_0304,
            nonce: 0x0506_0708_090a_0b0c,
            max_fee: 1_000_000_000_000_000_000_000_000_001,
        }
    }

    #[test]
    fn the_message_is_the_scale_encoding_of_the_terms() {
        let mut want = b"openledger/request/v1".to_vec();
        want.extend([0x11; 32]);
        want.extend([0x22; 32]);
        want.extend([0x33; 32]);
        want.extend([0x04, 0x03, 0x02, 0x01]);
        want.extend([0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05]);
        // 10^27 + 1 = 0x033b2e3c9fd0803ce8000001, little endian in 16 bytes.
        want.extend([0x01, 0x00, 0x00, 0xe8, 0x3c, 0x80, 0xd0, 0x9f, 0x3c, 0x2e, 0x3b, 0x03, 0, 0, 0, 0]);
        assert_eq!(want.len(), 21 + 96 + 28);
        assert_eq!(terms().message(), want);
    }

    /// Signed by polkadot.js (`new Keyring({type: "sr25519"}).addFromUri("//Alice").sign(m)`),
    /// where `m` is `createType("([u8;21],[u8;32],[u8;32],[u8;32],u32,u64,u128)", terms).toU8a()`:
    /// a wallet's SCALE encoding and signature, accepted here.
    #[test]
    fn a_polkadot_js_signature_verifies() {
        let m = terms().message();
        assert_eq!(
            hex::encode(&m),
            "6f70656e6c65646765722f726571756573742f7631".to_owned()
                + &"11".repeat(32)
                + &"22".repeat(32)
                + &"33".repeat(32)
                + "040302010c0b0a0908070605010000e83c80d09f3c2e3b0300000000"
        );
        let alice = Authorization {
            account: parse_hex("0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d").unwrap(),
            nonce: 0x0506_0708_090a_0b0c,
            max_fee: 1_000_000_000_000_000_000_000_000_001,
            signature: parse_hex("0x644599155ceba0c902a02e7f565f4ec102428f4b9c4e01058ac3b1671cfadd4e946fe85588ee330bb9ab56f80c2a67a6acc23fe6fde11583566f2b62176cbf88").unwrap(),
        };
        assert!(alice.verifies(&m));
        let mut other = terms();
        other.genesis[0] ^= 1;
        assert!(!alice.verifies(&other.message()), "signed for another chain");
    }

    fn keypair(seed: u8) -> schnorrkel::Keypair {
        schnorrkel::MiniSecretKey::from_bytes(&[seed; 32])
            .unwrap()
            .expand_to_keypair(schnorrkel::ExpansionMode::Ed25519)
    }

    fn signed(key: &schnorrkel::Keypair, message: &[u8]) -> Authorization {
        Authorization {
            account: key.public.to_bytes(),
            nonce: 7,
            max_fee: 5,
            signature: key.sign_simple(SIGNING_CONTEXT, message).to_bytes(),
        }
    }

    #[test]
    fn signatures_verify_only_for_their_key_message_and_context() {
        let (alice, bob) = (keypair(1), keypair(2));
        let message = terms().message();
        let auth = signed(&alice, &message);
        assert!(auth.verifies(&message));

        let mut other = terms();
        other.max_fee += 1;
        assert!(!auth.verifies(&other.message()), "a larger budget is not signed");
        assert!(!Authorization { account: bob.public.to_bytes(), ..auth.clone() }.verifies(&message));
        let foreign_context = alice.sign_simple(b"polkadot", &message).to_bytes();
        assert!(!Authorization { signature: foreign_context, ..auth.clone() }.verifies(&message));
        let mut flipped = auth.signature;
        flipped[5] ^= 1;
        assert!(!Authorization { signature: flipped, ..auth.clone() }.verifies(&message));
        // Without schnorrkel's marker bit the bytes are not an sr25519 signature at all.
        let mut unmarked = auth.signature;
        unmarked[63] &= 0x7f;
        assert!(!Authorization { signature: unmarked, ..auth.clone() }.verifies(&message));
        assert!(!Authorization { account: [0xff; 32], ..auth }.verifies(&message), "not a curve point");
    }

    #[test]
    fn the_field_parses_strictly() {
        let account = format!("0x{}", "ab".repeat(32));
        let signature = format!("0x{}", "cd".repeat(64));
        let good = json!({"account": account, "nonce": 3, "max_fee": "340282366920938463463374607431768211455", "signature": signature});
        let a = Authorization::parse(good.clone()).unwrap();
        assert_eq!((a.account, a.nonce, a.max_fee, a.signature), ([0xab; 32], 3, u128::MAX, [0xcd; 64]));

        let bad = |field: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[field] = value;
            Authorization::parse(v).unwrap_err()
        };
        assert!(bad("max_fee", json!("340282366920938463463374607431768211456")).contains("u128"));
        assert!(bad("max_fee", json!("+5")).contains("decimal"));
        assert!(bad("max_fee", json!(5)).contains("expected a string"));
        assert!(bad("account", json!("ab".repeat(32))).contains("account"), "0x is required");
        assert!(bad("account", json!(format!("0x{}", "ab".repeat(31)))).contains("64 hex"));
        assert!(bad("signature", json!("0x12")).contains("128 hex"));
        assert!(bad("nonce", json!(-1)).contains("expected u64"));
        assert!(bad("extra", json!(1)).contains("extra"));
    }
}
