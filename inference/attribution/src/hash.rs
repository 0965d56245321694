//! blake2-256, the hash the chain uses for every content identity, and the chain's binary Merkle
//! root over content hashes (what a datanet version records).

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

pub type Hash256 = [u8; 32];

pub fn blake2_256(bytes: &[u8]) -> Hash256 {
    Blake2b::<U32>::digest(bytes).into()
}

/// blake2-256 of a file, read in 1 MiB blocks (model files are hundreds of MB).
pub fn blake2_256_file(path: &std::path::Path) -> std::io::Result<Hash256> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Blake2b::<U32>::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

/// `0x`-prefixed lower-case hex, the form the chain's RPC and polkadot.js print.
pub fn hex32(h: &Hash256) -> String {
    format!("0x{}", hex::encode(h))
}

pub fn parse_hex32(s: &str) -> Option<Hash256> {
    let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()?;
    bytes.try_into().ok()
}

/// Serde as `0x` hex, for `#[serde(with = "crate::hash::serde_hex")]`.
pub mod serde_hex {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    use super::{hex32, parse_hex32, Hash256};

    pub fn serialize<S: Serializer>(h: &Hash256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex32(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash256, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex32(&s).ok_or_else(|| D::Error::custom(format!("{s:?} is not a 0x-prefixed 32-byte hex hash")))
    }

    /// The same for `Option<Hash256>` (`null` for none).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::Hash256;

        pub fn serialize<S: Serializer>(h: &Option<Hash256>, s: S) -> Result<S::Ok, S::Error> {
            match h {
                Some(h) => super::serialize(h, s),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Hash256>, D::Error> {
            #[derive(Deserialize)]
            struct Wrapped(#[serde(with = "super")] Hash256);
            Ok(Option::<Wrapped>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// The `hash_db::Hasher` the runtime's `BlakeTwo256` is, so that `binary-merkle-tree` builds the
/// very root `pallet-datanets` stores.
struct BlakeTwo256;

#[derive(Default)]
struct NoStdHasher(u64);

impl std::hash::Hasher for NoStdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ *b as u64;
        }
    }
}

impl hash_db::Hasher for BlakeTwo256 {
    type Out = Hash256Out;
    type StdHasher = NoStdHasher;
    const LENGTH: usize = 32;
    fn hash(x: &[u8]) -> Self::Out {
        Hash256Out(blake2_256(x))
    }
}

/// `[u8; 32]` with the traits `hash_db` asks of a hash.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
struct Hash256Out(Hash256);

impl AsRef<[u8]> for Hash256Out {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
impl AsMut<[u8]> for Hash256Out {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

/// The Merkle root `pallet-datanets` records for a version: over the contributions' content
/// hashes in acceptance order (zero for none).
pub fn merkle_root<'a>(content_hashes: impl IntoIterator<Item = &'a Hash256>) -> Hash256 {
    binary_merkle_tree::merkle_root_raw::<BlakeTwo256, _>(
        content_hashes.into_iter().map(|h| Hash256Out(*h)),
    )
    .0
}

/// The Merkle root over whole leaves, each hashed first: what the attribution pallet's
/// `receipts_root` commits to for a batch's SCALE-encoded leaves (zero for none).
pub fn leaves_root<L: AsRef<[u8]>>(leaves: &[L]) -> Hash256 {
    binary_merkle_tree::merkle_root::<BlakeTwo256, _>(leaves).0
}

/// The proof of `leaves[index]` against [`leaves_root`]: the sibling hashes from the leaf up, as
/// the pallet's `ProvenLeaf::proof` takes them; `None` past the last leaf.
pub fn leaf_proof<L: AsRef<[u8]>>(leaves: &[L], index: usize) -> Option<Vec<Hash256>> {
    let index = u32::try_from(index).ok().filter(|&i| (i as usize) < leaves.len())?;
    let proof = binary_merkle_tree::merkle_proof::<BlakeTwo256, _, _>(leaves.iter(), index);
    Some(proof.proof.into_iter().map(|h| h.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_matches_the_pairwise_construction() {
        let a = blake2_256(b"a");
        let b = blake2_256(b"b");
        let c = blake2_256(b"c");
        assert_eq!(merkle_root([&a]), a, "one leaf is its own root");
        let ab = blake2_256(&[a, b].concat());
        assert_eq!(merkle_root([&a, &b]), ab);
        // An odd leaf is promoted unhashed to the next row.
        assert_eq!(merkle_root([&a, &b, &c]), blake2_256(&[ab, c].concat()));
        assert_eq!(merkle_root([]), [0u8; 32]);
    }

    #[test]
    fn leaf_proofs_climb_to_the_leaves_root() {
        let leaves: Vec<Vec<u8>> = (1..=5u8).map(|n| vec![n; n as usize]).collect();
        let h: Vec<Hash256> = leaves.iter().map(|l| blake2_256(l)).collect();
        let pair = |a: &Hash256, b: &Hash256| blake2_256(&[*a, *b].concat());
        let (h01, h23) = (pair(&h[0], &h[1]), pair(&h[2], &h[3]));
        // The fifth leaf has no sibling on two rows and is promoted to the top.
        let root = pair(&pair(&h01, &h23), &h[4]);
        assert_eq!(leaves_root(&leaves), root);
        assert_eq!(leaf_proof(&leaves, 2).unwrap(), vec![h[3], h01, h[4]]);
        assert_eq!(leaf_proof(&leaves, 4).unwrap(), vec![pair(&h01, &h23)]);
        assert_eq!(leaf_proof(&leaves, 5), None);
    }
}
