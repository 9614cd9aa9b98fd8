//! Content addressing: CIDs, verified blocks and CARv1 files.
//!
//! The SDK and the testnet's gateway must agree byte for byte on how a block
//! is named, so both use this module. A [`Block`] is bytes plus the CIDv1
//! (sha2-256) that names them, in one of the two codecs this system speaks
//! ([`Codec::DagCbor`] for structured nodes, [`Codec::Raw`] for opaque
//! leaves). [`write_car`] and [`read_car`] move whole DAGs as CARv1 files;
//! reading verifies every block against its CID, so a CAR that lies about its
//! content is refused rather than half-trusted.
//!
//! ```
//! use sphere_protocol::ipld::{Block, Codec};
//!
//! let block = Block::new(Codec::Raw, b"hello".to_vec());
//! assert_eq!(
//!     block.cid.to_string(),
//!     "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
//! );
//! ```

use std::collections::TryReserveError;
use std::convert::Infallible;

use bytes::Bytes;
pub use cid::Cid;
use cid::multihash::Multihash;
use ipld_core::ipld::Ipld;
use iroh_car::{CarHeader, CarReader, CarWriter};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// Multihash code of sha2-256, the only hash function this system accepts.
pub const SHA2_256: u64 = 0x12;

/// The longest CAR section iroh-car reads (its private `MAX_ALLOC`); longer
/// ones it refuses. A section is one block's CID followed by its data.
const CAR_SECTION_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The encoded length of every CID this system accepts: version 1, a
/// one-byte codec (0x71 or 0x55), the sha2-256 code and digest length, and
/// the 32-byte digest.
const CID_BYTES: usize = 36;

/// The largest block, in bytes of data, this system stores or moves: what
/// fits in one CAR section next to its CID. Checked for blocks read from a
/// CAR and (by the gateway) for blocks put one by one, so a block is
/// accepted by both routes or by neither.
pub const MAX_BLOCK_BYTES: usize = CAR_SECTION_MAX_BYTES - CID_BYTES;

/// A block with more than [`MAX_BLOCK_BYTES`] of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("block of `{size}` bytes is over the limit of `{limit}` bytes per block")]
pub struct BlockTooLarge {
    /// The block's data length (for a CAR section too long to read, its
    /// length less a 36-byte CID).
    pub size: usize,
    /// [`MAX_BLOCK_BYTES`].
    pub limit: usize,
}

/// Refuses a block of `size` bytes of data over [`MAX_BLOCK_BYTES`].
pub fn check_block_size(size: usize) -> Result<(), BlockTooLarge> {
    if size > MAX_BLOCK_BYTES {
        Err(BlockTooLarge {
            size,
            limit: MAX_BLOCK_BYTES,
        })
    } else {
        Ok(())
    }
}

/// The IPLD codecs a block may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// dag-cbor (multicodec 0x71): structured nodes that may link to others.
    DagCbor,
    /// raw (multicodec 0x55): opaque bytes, always a leaf.
    Raw,
}

impl Codec {
    /// The multicodec code written into a CID.
    pub const fn code(self) -> u64 {
        match self {
            Codec::DagCbor => 0x71,
            Codec::Raw => 0x55,
        }
    }

    /// The codec's multicodec name, as Kubo spells it (`dag-cbor`, `raw`).
    pub const fn name(self) -> &'static str {
        match self {
            Codec::DagCbor => "dag-cbor",
            Codec::Raw => "raw",
        }
    }
}

/// A multicodec code that is neither dag-cbor nor raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("codec `0x{0:x}` is not supported (only dag-cbor 0x71 and raw 0x55)")]
pub struct UnsupportedCodec(pub u64);

impl TryFrom<u64> for Codec {
    type Error = UnsupportedCodec;

    fn try_from(code: u64) -> Result<Self, Self::Error> {
        match code {
            0x71 => Ok(Codec::DagCbor),
            0x55 => Ok(Codec::Raw),
            other => Err(UnsupportedCodec(other)),
        }
    }
}

/// Why a block cannot be accepted under its CID.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The CID names a codec other than dag-cbor or raw.
    #[error(
        "block `{cid}` uses codec `0x{codec:x}`, which is not supported (only dag-cbor and raw)"
    )]
    UnsupportedCodec {
        /// The CID as given.
        cid: Cid,
        /// The multicodec code it carries.
        codec: u64,
    },
    /// The CID's multihash is not a 32-byte sha2-256 digest.
    #[error("block `{cid}` is addressed by multihash `0x{code:x}` of {size} bytes, not sha2-256")]
    UnsupportedHash {
        /// The CID as given.
        cid: Cid,
        /// The multihash code it carries.
        code: u64,
        /// The digest length it carries.
        size: u8,
    },
    /// The bytes hash to something other than the CID's digest.
    #[error("block data does not match its cid `{cid}` (the data hashes to `{actual}`)")]
    DigestMismatch {
        /// The CID the block claimed.
        cid: Cid,
        /// The CID the bytes actually have (boxed to keep the error small).
        actual: Box<Cid>,
    },
    /// A dag-cbor block whose bytes are not valid dag-cbor.
    #[error("block `{cid}` is not valid dag-cbor: {source}")]
    Undecodable {
        /// The block's CID.
        cid: Cid,
        /// What the decoder said (boxed to keep the error small).
        source: Box<serde_ipld_dagcbor::DecodeError<Infallible>>,
    },
}

/// Encoding or decoding a value as dag-cbor failed.
#[derive(Debug, thiserror::Error)]
pub enum DagCborError {
    /// The value cannot be written as dag-cbor (floats NaN, non-string keys...).
    #[error("cannot encode value as dag-cbor: {0}")]
    Encode(#[from] serde_ipld_dagcbor::EncodeError<TryReserveError>),
    /// The bytes are not dag-cbor of the expected shape.
    #[error("cannot decode dag-cbor: {0}")]
    Decode(#[from] serde_ipld_dagcbor::DecodeError<Infallible>),
}

/// Writing or reading a CAR file failed.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// CARv1 requires at least one root.
    #[error("a car file needs at least one root cid")]
    NoRoots,
    /// The bytes are not a well-formed CARv1 file.
    #[error("malformed car file: {0}")]
    Malformed(#[from] iroh_car::Error),
    /// A block in the CAR does not match its CID or codec rules.
    #[error("car file holds an invalid block: {0}")]
    InvalidBlock(#[from] BlockError),
    /// A block in the CAR is over [`MAX_BLOCK_BYTES`].
    #[error(transparent)]
    BlockTooLarge(#[from] BlockTooLarge),
}

/// The CIDv1 (sha2-256) of `bytes` under `codec`.
pub fn cid_for(codec: Codec, bytes: &[u8]) -> Cid {
    Cid::new_v1(codec.code(), sha256_multihash(bytes))
}

fn sha256_multihash(bytes: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(bytes);
    // A 32-byte digest always fits a 64-byte multihash, so wrap cannot fail;
    // the fallback keeps this function total without a panic path.
    Multihash::wrap(SHA2_256, &digest).unwrap_or_default()
}

/// Checks that `data` is what `cid` names: a supported codec, a sha2-256
/// multihash, and a matching digest.
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), BlockError> {
    let codec = Codec::try_from(cid.codec()).map_err(|e| BlockError::UnsupportedCodec {
        cid: *cid,
        codec: e.0,
    })?;
    let hash = cid.hash();
    if hash.code() != SHA2_256 || hash.size() != 32 {
        return Err(BlockError::UnsupportedHash {
            cid: *cid,
            code: hash.code(),
            size: hash.size(),
        });
    }
    let actual = cid_for(codec, data);
    if actual.hash().digest() != hash.digest() {
        return Err(BlockError::DigestMismatch {
            cid: *cid,
            actual: Box::new(actual),
        });
    }
    Ok(())
}

/// A block: bytes and the CID that names them.
///
/// Build one with [`Block::new`] or [`Block::encode_dag_cbor`], which compute
/// the CID, or check a received pair with [`Block::verified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The block's CIDv1 (sha2-256).
    pub cid: Cid,
    /// The block's bytes, cheap to clone.
    pub data: Bytes,
}

impl Block {
    /// A block of `data` under `codec`, with its CID computed.
    pub fn new(codec: Codec, data: impl Into<Bytes>) -> Block {
        let data = data.into();
        Block {
            cid: cid_for(codec, &data),
            data,
        }
    }

    /// A received `(cid, data)` pair, accepted only if the data matches.
    pub fn verified(cid: Cid, data: impl Into<Bytes>) -> Result<Block, BlockError> {
        let data = data.into();
        verify_block(&cid, &data)?;
        Ok(Block { cid, data })
    }

    /// `value` encoded as a dag-cbor block.
    pub fn encode_dag_cbor<T: Serialize>(value: &T) -> Result<Block, DagCborError> {
        let bytes = serde_ipld_dagcbor::to_vec(value)?;
        Ok(Block::new(Codec::DagCbor, bytes))
    }

    /// The block's codec, if it is one this system supports.
    pub fn codec(&self) -> Result<Codec, UnsupportedCodec> {
        Codec::try_from(self.cid.codec())
    }

    /// The CIDs this block links to, in document order: none for raw
    /// blocks, every CBOR tag-42 link for dag-cbor blocks.
    pub fn links(&self) -> Result<Vec<Cid>, BlockError> {
        match self.codec() {
            Ok(Codec::Raw) => Ok(Vec::new()),
            Ok(Codec::DagCbor) => {
                let node: Ipld = serde_ipld_dagcbor::from_slice(&self.data).map_err(|source| {
                    BlockError::Undecodable {
                        cid: self.cid,
                        source: Box::new(source),
                    }
                })?;
                let mut links = Vec::new();
                node.references(&mut links);
                Ok(links)
            }
            Err(e) => Err(BlockError::UnsupportedCodec {
                cid: self.cid,
                codec: e.0,
            }),
        }
    }
}

/// Decodes dag-cbor bytes into `T`.
pub fn decode_dag_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DagCborError> {
    Ok(serde_ipld_dagcbor::from_slice(bytes)?)
}

/// What a CAR file holds: its roots and its blocks, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarContents {
    /// The header's root CIDs.
    pub roots: Vec<Cid>,
    /// Every block, each verified against its CID.
    pub blocks: Vec<Block>,
}

/// Writes a CARv1 file with `roots` in its header and `blocks` in order.
pub async fn write_car<'a>(
    roots: &[Cid],
    blocks: impl IntoIterator<Item = &'a Block>,
) -> Result<Vec<u8>, CarError> {
    if roots.is_empty() {
        return Err(CarError::NoRoots);
    }
    let mut writer = CarWriter::new(CarHeader::new_v1(roots.to_vec()), Vec::new());
    // Written explicitly so a CAR with roots but no blocks still has a header.
    writer.write_header().await?;
    for block in blocks {
        writer.write(block.cid, &block.data).await?;
    }
    Ok(writer.finish().await?)
}

/// Reads a CARv1 file, verifying every block against its CID.
///
/// The first block that does not match is an error naming its CID, and a
/// block over [`MAX_BLOCK_BYTES`] is [`CarError::BlockTooLarge`]; nothing is
/// returned from a CAR that holds either.
pub async fn read_car(bytes: &[u8]) -> Result<CarContents, CarError> {
    let mut reader = CarReader::new(bytes).await?;
    let roots = reader.header().roots().to_vec();
    let mut blocks = Vec::new();
    loop {
        let (cid, data) = match reader.next_block().await {
            Ok(Some(block)) => block,
            Ok(None) => break,
            // iroh-car's own limit, which ours is derived from: report it
            // as ours, with the limit named, rather than as a malformed CAR.
            Err(iroh_car::Error::LdReadTooLarge(section)) => {
                return Err(BlockTooLarge {
                    size: section.saturating_sub(CID_BYTES),
                    limit: MAX_BLOCK_BYTES,
                }
                .into());
            }
            Err(other) => return Err(other.into()),
        };
        // A CID shorter than ours leaves room for more data in a section.
        check_block_size(data.len())?;
        blocks.push(Block::verified(cid, data)?);
    }
    Ok(CarContents { roots, blocks })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn leaf(text: &str) -> Block {
        Block::new(Codec::Raw, text.as_bytes().to_vec())
    }

    fn node_linking(links: &[&Block]) -> Block {
        let mut map = BTreeMap::new();
        map.insert(
            "links".to_owned(),
            Ipld::List(links.iter().map(|b| Ipld::Link(b.cid)).collect()),
        );
        map.insert("name".to_owned(), Ipld::String("root".to_owned()));
        Block::encode_dag_cbor(&Ipld::Map(map)).unwrap()
    }

    #[test]
    fn cids_match_independently_computed_values() {
        // Both computed with Python's hashlib and base32, not with this code.
        assert_eq!(
            cid_for(Codec::Raw, b"hello").to_string(),
            "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
        );
        // dag-cbor of {"a": 1} is a1 61 61 01.
        let block = Block::encode_dag_cbor(&BTreeMap::from([("a", 1u8)])).unwrap();
        assert_eq!(block.data.as_ref(), [0xa1, 0x61, 0x61, 0x01]);
        assert_eq!(
            block.cid.to_string(),
            "bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey"
        );
    }

    #[test]
    fn raw_and_dag_cbor_give_different_cids_for_the_same_bytes() {
        let bytes = [0xa1, 0x61, 0x61, 0x01];
        let raw = cid_for(Codec::Raw, &bytes);
        let cbor = cid_for(Codec::DagCbor, &bytes);
        assert_ne!(raw, cbor);
        assert_eq!(raw.hash(), cbor.hash());
    }

    #[test]
    fn codec_codes_round_trip() {
        for codec in [Codec::DagCbor, Codec::Raw] {
            assert_eq!(Codec::try_from(codec.code()).unwrap(), codec);
        }
        let err = Codec::try_from(0x70).unwrap_err();
        assert!(err.to_string().contains("0x70"), "{err}");
    }

    #[test]
    fn verify_block_refuses_each_kind_of_bad_block_by_name() {
        let good = leaf("hello");
        verify_block(&good.cid, &good.data).unwrap();

        let err = verify_block(&good.cid, b"jello").unwrap_err();
        assert!(matches!(err, BlockError::DigestMismatch { .. }));
        assert!(err.to_string().contains(&good.cid.to_string()), "{err}");

        let dag_pb = Cid::new_v1(0x70, *good.cid.hash());
        let err = verify_block(&dag_pb, b"hello").unwrap_err();
        assert!(matches!(
            err,
            BlockError::UnsupportedCodec { codec: 0x70, .. }
        ));
        assert!(err.to_string().contains(&dag_pb.to_string()), "{err}");

        let identity = Cid::new_v1(0x55, Multihash::wrap(0x00, b"hello").unwrap());
        let err = verify_block(&identity, b"hello").unwrap_err();
        assert!(matches!(err, BlockError::UnsupportedHash { code: 0, .. }));
        assert!(err.to_string().contains(&identity.to_string()), "{err}");
    }

    #[test]
    fn dag_cbor_round_trips_and_lists_links() {
        let (a, b) = (leaf("a"), leaf("b"));
        let root = node_linking(&[&a, &b]);
        assert_eq!(root.links().unwrap(), vec![a.cid, b.cid]);
        assert!(a.links().unwrap().is_empty());
        let back: Ipld = decode_dag_cbor(&root.data).unwrap();
        assert_eq!(
            back.get("name").unwrap(),
            Some(&Ipld::String("root".into()))
        );
        assert!(decode_dag_cbor::<Ipld>(&[0xff]).is_err());
    }

    #[tokio::test]
    async fn car_round_trips() {
        let (a, b) = (leaf("a"), leaf("b"));
        let root = node_linking(&[&a, &b]);
        let blocks = [root.clone(), a, b];
        let bytes = write_car(&[root.cid], &blocks).await.unwrap();
        let back = read_car(&bytes).await.unwrap();
        assert_eq!(back.roots, vec![root.cid]);
        assert_eq!(back.blocks, blocks);
    }

    #[tokio::test]
    async fn car_with_a_corrupted_block_is_refused_naming_it() {
        let (a, b) = (leaf("aaaa"), leaf("bbbb"));
        let mut bytes = write_car(&[a.cid], [&a, &b]).await.unwrap();
        // The last bytes of the file are b's data: flip one of them.
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let err = read_car(&bytes).await.unwrap_err();
        assert!(matches!(
            err,
            CarError::InvalidBlock(BlockError::DigestMismatch { cid, .. }) if cid == b.cid
        ));
        assert!(err.to_string().contains(&b.cid.to_string()), "{err}");
    }

    #[test]
    fn every_accepted_cid_is_as_long_as_the_limit_assumes() {
        for codec in [Codec::Raw, Codec::DagCbor] {
            assert_eq!(cid_for(codec, b"x").encoded_len(), CID_BYTES);
        }
        assert_eq!(MAX_BLOCK_BYTES, 4 * 1024 * 1024 - 36);
    }

    #[tokio::test]
    async fn car_blocks_up_to_the_limit_are_read_and_larger_ones_refused_naming_it() {
        let largest = Block::new(Codec::Raw, vec![7_u8; MAX_BLOCK_BYTES]);
        let bytes = write_car(&[largest.cid], [&largest]).await.unwrap();
        assert_eq!(read_car(&bytes).await.unwrap().blocks, vec![largest]);

        let over = Block::new(Codec::Raw, vec![7_u8; MAX_BLOCK_BYTES + 1]);
        let bytes = write_car(&[over.cid], [&over]).await.unwrap();
        let err = read_car(&bytes).await.unwrap_err();
        assert!(matches!(
            err,
            CarError::BlockTooLarge(BlockTooLarge { size, limit: MAX_BLOCK_BYTES })
                if size == MAX_BLOCK_BYTES + 1
        ));
        assert_eq!(
            err.to_string(),
            format!(
                "block of `{}` bytes is over the limit of `{MAX_BLOCK_BYTES}` bytes per block",
                MAX_BLOCK_BYTES + 1
            )
        );
        assert!(check_block_size(MAX_BLOCK_BYTES).is_ok());
        assert!(check_block_size(MAX_BLOCK_BYTES + 1).is_err());
    }

    #[tokio::test]
    async fn car_needs_a_root_and_a_valid_header() {
        assert!(matches!(write_car(&[], []).await, Err(CarError::NoRoots)));
        assert!(matches!(
            read_car(b"not a car").await,
            Err(CarError::Malformed(_))
        ));
        let a = leaf("a");
        let bytes = write_car(&[a.cid], []).await.unwrap();
        assert!(read_car(&bytes).await.unwrap().blocks.is_empty());
    }
}
