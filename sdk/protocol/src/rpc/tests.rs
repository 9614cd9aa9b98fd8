//! Tests for the JSON-RPC envelope and the inclusion-proof response.

use serde_json::json;

use super::*;
use crate::hash::{Hash32, StateHash, TransactionHash};
use crate::signing::SecretKey;
use crate::smt::SparseMerkleTree;

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).expect("valid scalar")
}

fn commitment(owner: u8, state: &[u8], tx: &[u8]) -> Commitment {
    Commitment::sign(
        &secret(owner),
        StateHash::from(Hash32::sha256_of(&[state])),
        TransactionHash::from(Hash32::sha256_of(&[tx])),
    )
}

/// A tree holding two commitments, certified at height 3, and the trust
/// base that accepts it.
struct Fixture {
    tree: SparseMerkleTree,
    spent: Commitment,
    certified_root: CertifiedRoot,
    trust_base: TrustBase,
}

fn fixture() -> Fixture {
    let testnet = secret(0x77);
    let mut tree = SparseMerkleTree::new();
    let spent = commitment(1, b"s1", b"t1");
    for c in [&spent, &commitment(2, b"s2", b"t2")] {
        tree.insert(c.request_id, c.leaf_hash()).expect("insert");
    }
    let certified_root = CertifiedRoot::sign(&testnet, tree.root(), 3);
    Fixture {
        tree,
        spent,
        certified_root,
        trust_base: TrustBase::new(testnet.public_key()),
    }
}

fn response(
    f: &Fixture,
    request_id: RequestId,
    commitment: Option<Commitment>,
) -> InclusionProofResponse {
    InclusionProofResponse {
        request_id,
        commitment,
        merkle_proof: f.tree.proof(&request_id).expect("proof"),
        certified_root: f.certified_root.clone(),
    }
}

#[test]
fn request_serde_shape_and_version_check() {
    let params = GetInclusionProofParams {
        request_id: RequestId::from(Hash32::ZERO),
    };
    let request = RpcRequest::with_params(1, GET_INCLUSION_PROOF, &params).expect("params");
    let value = serde_json::to_value(&request).expect("serialize");
    assert_eq!(
        value,
        json!({
            "jsonrpc": "2.0",
            "id": 1,
            "method": "get_inclusion_proof",
            "params": {"requestId": Hash32::ZERO.to_string()},
        })
    );
    let back: RpcRequest = serde_json::from_value(value).expect("deserialize");
    assert_eq!(back.parse_params::<GetInclusionProofParams>(), Ok(params));

    let bare: RpcRequest =
        serde_json::from_str(r#"{"jsonrpc":"2.0","id":"a","method":"get_block_height"}"#)
            .expect("params optional");
    assert_eq!(bare.params, Value::Null);
    let err = serde_json::from_str::<RpcRequest>(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#)
        .expect_err("old version");
    assert!(
        err.to_string()
            .contains("unsupported jsonrpc version `1.0`"),
        "{err}"
    );
}

#[test]
fn bad_params_become_invalid_params() {
    let request = RpcRequest::new(1, SUBMIT_COMMITMENT, json!({"requestId": 5}));
    let err = request
        .parse_params::<SubmitCommitmentParams>()
        .expect_err("bad");
    assert_eq!(err.code, INVALID_PARAMS);
}

#[test]
fn response_has_result_or_error_member() {
    let ok = RpcResponse::from_result(
        json!(7),
        Ok(SubmitCommitmentResult {
            status: SubmitStatus::AlreadyCommitted,
        }),
    );
    let value = serde_json::to_value(&ok).expect("serialize");
    assert_eq!(
        value,
        json!({"jsonrpc": "2.0", "id": 7, "result": {"status": "ALREADY_COMMITTED"}})
    );
    let back: RpcResponse = serde_json::from_value(value).expect("deserialize");
    assert_eq!(
        back.decode::<SubmitCommitmentResult>(),
        Ok(SubmitCommitmentResult {
            status: SubmitStatus::AlreadyCommitted
        })
    );

    let failed = RpcResponse::error(
        Value::Null,
        RpcError::double_spend(&RequestId::from(Hash32::ZERO)),
    );
    let value = serde_json::to_value(&failed).expect("serialize");
    assert_eq!(value["error"]["code"], DOUBLE_SPEND);
    assert!(value.get("result").is_none());
    assert!(value["error"].get("data").is_none());
    let back: RpcResponse = serde_json::from_value(value).expect("deserialize");
    assert_eq!(back, failed);
    assert!(matches!(
        back.decode::<BlockHeightResult>(),
        Err(RpcCallError::Remote(RpcError {
            code: DOUBLE_SPEND,
            ..
        }))
    ));

    let null: RpcResponse =
        serde_json::from_str(r#"{"jsonrpc":"2.0","id":1,"result":null}"#).expect("null result");
    assert_eq!(null.into_result(), Ok(Value::Null));
    let with_data = RpcError::invalid_request("no method").with_data(json!({"hint": 1}));
    let value = serde_json::to_value(RpcResponse::error(json!(2), with_data.clone())).expect("ser");
    let back: RpcResponse = serde_json::from_value(value).expect("deserialize");
    assert_eq!(back.into_result(), Err(with_data));
}

#[test]
fn commitment_errors_map_to_application_codes() {
    let mut forged = commitment(1, b"s", b"t");
    forged.request_id = RequestId::from(Hash32::ZERO);
    let err = RpcError::from(forged.verify().expect_err("forged id"));
    assert_eq!(err.code, REQUEST_ID_MISMATCH);
    let mut unsigned = commitment(1, b"s", b"t");
    unsigned.transaction_hash = TransactionHash::from(Hash32::ZERO);
    let err = RpcError::from(unsigned.verify().expect_err("bad signature"));
    assert_eq!(err.code, INVALID_SIGNATURE);
    for code in [INVALID_SIGNATURE, REQUEST_ID_MISMATCH, DOUBLE_SPEND] {
        assert!((-32099..=-32000).contains(&code));
    }
}

#[test]
fn params_and_results_use_camel_case() {
    let submit = serde_json::to_value(commitment(1, b"s", b"t")).expect("serialize");
    assert!(submit.get("requestId").is_some() && submit.get("transactionHash").is_some());
    let height = serde_json::to_value(BlockHeightResult { block_height: 9 }).expect("ser");
    assert_eq!(height, json!({"blockHeight": 9}));
    assert_eq!(
        serde_json::to_value(SubmitStatus::Success).expect("ser"),
        json!("SUCCESS")
    );
}

#[test]
fn included_and_excluded_responses_verify() {
    let f = fixture();
    let included = response(&f, f.spent.request_id, Some(f.spent.clone()));
    assert_eq!(
        included.verify(&f.trust_base),
        Ok(ProofOutcome::Included(f.spent.clone()))
    );

    let unspent = commitment(3, b"s3", b"t3").request_id;
    let excluded = response(&f, unspent, None);
    assert_eq!(excluded.verify(&f.trust_base), Ok(ProofOutcome::Excluded));
    assert_eq!(
        excluded.verify_request(&f.trust_base, &unspent),
        Ok(ProofOutcome::Excluded)
    );
    assert!(matches!(
        excluded.verify_request(&f.trust_base, &f.spent.request_id),
        Err(InclusionProofError::RequestIdMismatch { .. })
    ));

    let json = serde_json::to_value(&included).expect("serialize");
    for key in ["requestId", "commitment", "merkleProof", "certifiedRoot"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let back: InclusionProofResponse = serde_json::from_value(json).expect("deserialize");
    assert_eq!(back, included);
    let json = serde_json::to_value(&excluded).expect("serialize");
    assert_eq!(json["commitment"], Value::Null);
}

#[test]
fn tampered_commitment_fails() {
    let f = fixture();
    let mut edited = f.spent.clone();
    edited.transaction_hash = TransactionHash::from(Hash32::ZERO);
    let tampered = response(&f, f.spent.request_id, Some(edited));
    assert!(matches!(
        tampered.verify(&f.trust_base),
        Err(InclusionProofError::Commitment(_))
    ));

    // A validly signed but different spend of the same state is not the
    // one in the tree.
    let rival = Commitment::sign(
        &secret(1),
        f.spent.authenticator.state_hash,
        TransactionHash::from(Hash32::sha256_of(&[b"other tx"])),
    );
    assert_eq!(rival.request_id, f.spent.request_id);
    let double = response(&f, f.spent.request_id, Some(rival));
    assert!(matches!(
        double.verify(&f.trust_base),
        Err(InclusionProofError::Proof { .. })
    ));

    // Hiding a stored commitment behind a claim of exclusion.
    let hidden = response(&f, f.spent.request_id, None);
    assert!(hidden.verify(&f.trust_base).is_err());

    // A commitment for another request id than the one proved.
    let other = commitment(2, b"s2", b"t2");
    let mismatched = response(&f, f.spent.request_id, Some(other));
    assert!(matches!(
        mismatched.verify(&f.trust_base),
        Err(InclusionProofError::RequestIdMismatch { .. })
    ));
}

#[test]
fn swapped_root_or_untrusted_key_fails() {
    let f = fixture();
    let mut swapped = response(&f, f.spent.request_id, Some(f.spent.clone()));
    swapped.certified_root.root = Hash32::sha256_of(&[b"other root"]);
    assert!(matches!(
        swapped.verify(&f.trust_base),
        Err(InclusionProofError::Certificate(_))
    ));

    // Properly certified, but a root the proof is not against.
    let mut recertified = response(&f, f.spent.request_id, Some(f.spent.clone()));
    recertified.certified_root = CertifiedRoot::sign(&secret(0x77), Hash32::sha256_of(&[b"r"]), 4);
    assert!(matches!(
        recertified.verify(&f.trust_base),
        Err(InclusionProofError::Proof { .. })
    ));

    let stranger = TrustBase::new(secret(0x78).public_key());
    let honest = response(&f, f.spent.request_id, Some(f.spent.clone()));
    assert!(matches!(
        honest.verify(&stranger),
        Err(InclusionProofError::Certificate(_))
    ));
}
