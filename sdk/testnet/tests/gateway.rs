//! The gateway seen from outside: a plain HTTP client that knows nothing of
//! this crate's types builds real CARs with iroh-car, computes CIDs with its
//! own hasher, and talks to the router over loopback as it would to Kubo.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use cid::Cid;
use cid::multihash::Multihash;
use ipld_core::ipld::Ipld;
use iroh_car::{CarHeader, CarReader, CarWriter};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sphere_testnet::gateway::{BlockStore, GatewayState, MAX_BLOCK_BYTES, router};

const RAW: u64 = 0x55;
const DAG_CBOR: u64 = 0x71;
const HOUR: Duration = Duration::from_secs(3600);

fn cid_of(codec: u64, bytes: &[u8]) -> Cid {
    Cid::new_v1(
        codec,
        Multihash::<64>::wrap(0x12, &Sha256::digest(bytes)).unwrap(),
    )
}

/// A dag-cbor root linking to three raw leaves.
struct Dag {
    root: (Cid, Vec<u8>),
    leaves: Vec<(Cid, Vec<u8>)>,
}

impl Dag {
    fn new(tag: &str) -> Dag {
        let leaves: Vec<(Cid, Vec<u8>)> = (0..3)
            .map(|i| format!("{tag} leaf {i}").into_bytes())
            .map(|bytes| (cid_of(RAW, &bytes), bytes))
            .collect();
        let node = Ipld::Map(BTreeMap::from([
            ("name".to_owned(), Ipld::String(tag.to_owned())),
            (
                "leaves".to_owned(),
                Ipld::List(leaves.iter().map(|(cid, _)| Ipld::Link(*cid)).collect()),
            ),
        ]));
        let bytes = serde_ipld_dagcbor::to_vec(&node).unwrap();
        Dag {
            root: (cid_of(DAG_CBOR, &bytes), bytes),
            leaves,
        }
    }

    fn blocks(&self) -> Vec<(Cid, Vec<u8>)> {
        let mut all = vec![self.root.clone()];
        all.extend(self.leaves.iter().cloned());
        all
    }
}

async fn car_of(roots: &[Cid], blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut writer = CarWriter::new(CarHeader::new_v1(roots.to_vec()), Vec::new());
    writer.write_header().await.unwrap();
    for (cid, data) in blocks {
        writer.write(*cid, data).await.unwrap();
    }
    writer.finish().await.unwrap()
}

async fn read_car(bytes: &[u8]) -> (Vec<Cid>, HashMap<Cid, Vec<u8>>) {
    let mut reader = CarReader::new(bytes).await.unwrap();
    let roots = reader.header().roots().to_vec();
    let mut blocks = HashMap::new();
    while let Some((cid, data)) = reader.next_block().await.unwrap() {
        blocks.insert(cid, data);
    }
    (roots, blocks)
}

/// A multipart/form-data body with one `file` part per entry, as Kubo's
/// clients send it.
fn multipart(files: &[&[u8]]) -> (String, Vec<u8>) {
    let boundary = "soakgate-test-boundary-7d3f";
    let mut body = Vec::new();
    for file in files {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(
            b"Content-Disposition: form-data; name=\"file\"; filename=\"file\"\r\n",
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

struct Gateway {
    base: String,
    http: reqwest::Client,
}

impl Gateway {
    async fn start(state: GatewayState) -> Gateway {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
        Gateway {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn in_memory(propagation: Duration) -> Gateway {
        Gateway::start(GatewayState::new(BlockStore::in_memory(), propagation)).await
    }

    async fn rpc(&self, path_and_query: &str) -> reqwest::Response {
        let url = format!("{}/api/v0/{path_and_query}", self.base);
        self.http.post(url).send().await.unwrap()
    }

    async fn upload(&self, path_and_query: &str, files: &[&[u8]]) -> reqwest::Response {
        let (content_type, body) = multipart(files);
        let url = format!("{}/api/v0/{path_and_query}", self.base);
        let request = self.http.post(url).header("content-type", content_type);
        request.body(body).send().await.unwrap()
    }

    async fn upload_raw(&self, path_and_query: &str, body: Vec<u8>) -> reqwest::Response {
        let url = format!("{}/api/v0/{path_and_query}", self.base);
        self.http.post(url).body(body).send().await.unwrap()
    }

    async fn ipfs(
        &self,
        method: reqwest::Method,
        path: &str,
        accept: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .request(method, format!("{}/ipfs/{path}", self.base));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send().await.unwrap()
    }
}

fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn root_line(cid: &Cid, pin_error: &str) -> Value {
    json!({"Root": {"Cid": {"/": cid.to_string()}, "PinErrorMsg": pin_error}})
}

async fn kubo_error(response: reqwest::Response, status: StatusCode, code: u64) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Type"], "error", "{body}");
    assert_eq!(body["Code"], code, "{body}");
    body["Message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn imported_car_exports_back_whole_and_every_block_is_readable() {
    let gateway = Gateway::in_memory(HOUR).await;
    let dag = Dag::new("bundle");
    let car = car_of(&[dag.root.0], &dag.blocks()).await;

    let response = gateway.upload("dag/import", &[&car]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let lines = ndjson(&response.text().await.unwrap());
    assert_eq!(lines, vec![root_line(&dag.root.0, "")]);

    // The pinned node sees the blocks at once, propagation or not.
    let response = gateway.rpc(&format!("dag/export?arg={}", dag.root.0)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (roots, blocks) = read_car(&response.bytes().await.unwrap()).await;
    assert_eq!(roots, vec![dag.root.0]);
    assert_eq!(blocks, dag.blocks().into_iter().collect::<HashMap<_, _>>());

    for (cid, data) in dag.blocks() {
        let response = gateway.rpc(&format!("block/get?arg={cid}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());
        let stat: Value = gateway
            .rpc(&format!("block/stat?arg=/ipfs/{cid}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stat, json!({"Key": cid.to_string(), "Size": data.len()}));
    }
}

#[tokio::test]
async fn raw_body_import_of_several_roots_reports_each_and_stats() {
    let gateway = Gateway::in_memory(HOUR).await;
    let (one, two) = (Dag::new("one"), Dag::new("two"));
    let mut blocks = one.blocks();
    blocks.extend(two.blocks());
    let car = car_of(&[one.root.0, two.root.0], &blocks).await;

    let response = gateway.upload_raw("dag/import?stats=true", car).await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes: usize = blocks.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(
        ndjson(&response.text().await.unwrap()),
        vec![
            root_line(&one.root.0, ""),
            root_line(&two.root.0, ""),
            json!({"Stats": {"BlockCount": 8, "BlockBytesCount": bytes}}),
        ]
    );
}

#[tokio::test]
async fn a_car_with_a_block_that_lies_about_its_cid_is_refused_whole() {
    let gateway = Gateway::in_memory(Duration::ZERO).await;
    let dag = Dag::new("tampered");
    let mut blocks = dag.blocks();
    let (bad_cid, _) = blocks[2].clone();
    blocks[2].1 = b"not what the cid says".to_vec();
    let car = car_of(&[dag.root.0], &blocks).await;

    let message = kubo_error(
        gateway.upload("dag/import", &[&car]).await,
        StatusCode::BAD_REQUEST,
        1,
    )
    .await;
    assert!(message.contains(&bad_cid.to_string()), "{message}");

    // Not even the valid blocks before the bad one were kept.
    for (cid, _) in dag.blocks() {
        let response = gateway.rpc(&format!("block/get?arg={cid}")).await;
        let message = kubo_error(response, StatusCode::INTERNAL_SERVER_ERROR, 0).await;
        assert!(message.contains(&cid.to_string()), "{message}");
        let response = gateway
            .ipfs(reqwest::Method::HEAD, &cid.to_string(), None)
            .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn an_incomplete_dag_is_stored_but_its_pin_and_export_name_the_gap() {
    let gateway = Gateway::in_memory(Duration::ZERO).await;
    let dag = Dag::new("partial");
    let mut blocks = dag.blocks();
    let (missing, _) = blocks.pop().unwrap();
    let car = car_of(&[dag.root.0], &blocks).await;

    let response = gateway.upload("dag/import", &[&car]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let lines = ndjson(&response.text().await.unwrap());
    let pin_error = lines[0]["Root"]["PinErrorMsg"].as_str().unwrap();
    assert!(pin_error.contains(&missing.to_string()), "{pin_error}");

    let response = gateway.rpc(&format!("dag/export?arg={}", dag.root.0)).await;
    let message = kubo_error(response, StatusCode::INTERNAL_SERVER_ERROR, 0).await;
    assert!(message.contains(&missing.to_string()), "{message}");
    let car_url = format!("{}?format=car", dag.root.0);
    let response = gateway.ipfs(reqwest::Method::GET, &car_url, None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn block_put_names_blocks_as_an_independent_hasher_does() {
    let gateway = Gateway::in_memory(HOUR).await;

    let response = gateway
        .upload_raw("block/put?cid-codec=raw&mhtype=sha2-256", b"hello".to_vec())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let put: Value = serde_json::from_str(response.text().await.unwrap().trim()).unwrap();
    // Computed with Python's hashlib and base32, not with any Rust code.
    let hello = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq";
    assert_eq!(put, json!({"Key": hello, "Size": 5}));

    let cbor: &[u8] = &[0xa1, 0x61, 0x61, 0x01]; // {"a": 1}
    let response = gateway
        .upload("block/put?cid-codec=dag-cbor", &[cbor])
        .await;
    let put: Value = serde_json::from_str(response.text().await.unwrap().trim()).unwrap();
    let cid = "bafyreihltcnuuyqp2jm24aqydpnlj7b6w3ogwrplomrjtg5rifv44mmjey";
    assert_eq!(put, json!({"Key": cid, "Size": 4}));
    assert_eq!(cid_of(DAG_CBOR, cbor).to_string(), cid);
    let response = gateway.rpc(&format!("block/get?arg={cid}")).await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), cbor);

    let response = gateway
        .upload_raw("block/put?mhtype=sha3-256", b"x".to_vec())
        .await;
    let message = kubo_error(response, StatusCode::BAD_REQUEST, 1).await;
    assert!(message.contains("sha3-256"), "{message}");
    let response = gateway
        .upload("block/put?cid-codec=dag-cbor", &[b"\xff not cbor"])
        .await;
    kubo_error(response, StatusCode::BAD_REQUEST, 1).await;
}

#[tokio::test]
async fn block_put_and_dag_import_share_one_block_size_limit() {
    let gateway = Gateway::in_memory(HOUR).await;
    let largest = vec![0x5a_u8; MAX_BLOCK_BYTES];
    let over = vec![0xa5_u8; MAX_BLOCK_BYTES + 1];
    let (largest_cid, over_cid) = (cid_of(RAW, &largest), cid_of(RAW, &over));

    // The largest block goes in by either route.
    let response = gateway.upload("block/put?cid-codec=raw", &[&largest]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let car = car_of(&[largest_cid], &[(largest_cid, largest.clone())]).await;
    let response = gateway.upload_raw("dag/import", car).await;
    assert_eq!(response.status(), StatusCode::OK);
    let lines = ndjson(&response.text().await.unwrap());
    assert_eq!(lines, vec![root_line(&largest_cid, "")]);

    // One byte more is refused by both, alike, naming the limit.
    let limit = format!("over the limit of `{MAX_BLOCK_BYTES}` bytes per block");
    let response = gateway.upload("block/put?cid-codec=raw", &[&over]).await;
    let put = kubo_error(response, StatusCode::PAYLOAD_TOO_LARGE, 1).await;
    assert!(
        put.contains(&format!("block of `{}` bytes", over.len())),
        "{put}"
    );
    assert!(put.contains(&limit), "{put}");
    let car = car_of(&[over_cid], &[(over_cid, over.clone())]).await;
    let response = gateway.upload_raw("dag/import", car).await;
    let import = kubo_error(response, StatusCode::PAYLOAD_TOO_LARGE, 1).await;
    assert!(import.contains(&limit), "{import}");
    assert!(import.contains("nothing was stored"), "{import}");
    let response = gateway.rpc(&format!("block/stat?arg={over_cid}")).await;
    assert_eq!(
        response.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "not stored"
    );

    // 50 MB, the size that used to go in through `block/put`.
    let huge = vec![0_u8; 50_000_000];
    let response = gateway.upload_raw("block/put?cid-codec=raw", huge).await;
    kubo_error(response, StatusCode::PAYLOAD_TOO_LARGE, 1).await;
}

#[tokio::test]
async fn every_public_read_pays_the_retrieval_exchange() {
    let retrieval = Duration::from_millis(250);
    let gateway = Gateway::start(
        GatewayState::new(BlockStore::in_memory(), Duration::ZERO).with_retrieval(retrieval),
    )
    .await;
    let dag = Dag::new("far");
    let car = car_of(&[dag.root.0], &dag.blocks()).await;
    assert_eq!(
        gateway.upload("dag/import", &[&car]).await.status(),
        StatusCode::OK
    );

    // Found or not, GET or HEAD: the gateway asks the node first. Only a
    // lower bound is asserted: a loaded machine can only make it slower.
    let missing = Dag::new("nowhere").root.0.to_string();
    for (method, cid, status) in [
        (reqwest::Method::GET, dag.root.0.to_string(), StatusCode::OK),
        (
            reqwest::Method::HEAD,
            dag.root.0.to_string(),
            StatusCode::OK,
        ),
        (reqwest::Method::HEAD, missing, StatusCode::NOT_FOUND),
    ] {
        let started = Instant::now();
        let response = gateway
            .ipfs(method.clone(), &cid, Some("application/vnd.ipld.car"))
            .await;
        assert_eq!(response.status(), status, "{method} {cid}");
        assert!(
            started.elapsed() >= retrieval,
            "{method} {cid} took {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn ipfs_reads_answer_404_until_the_block_has_propagated() {
    let propagation = Duration::from_millis(300);
    let gateway = Gateway::in_memory(propagation).await;
    let dag = Dag::new("slow");
    let car = car_of(&[dag.root.0], &dag.blocks()).await;
    let (leaf, leaf_bytes) = dag.leaves[0].clone();

    let started = Instant::now();
    let response = gateway.upload("dag/import", &[&car]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let head = gateway
        .ipfs(reqwest::Method::HEAD, &leaf.to_string(), None)
        .await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);

    let deadline = started + Duration::from_secs(10);
    loop {
        let head = gateway
            .ipfs(reqwest::Method::HEAD, &leaf.to_string(), None)
            .await;
        if head.status() == StatusCode::OK {
            // reqwest's content_length() reads the (empty) HEAD body, so
            // look at the header the gateway sent.
            let length = head.headers()["content-length"].to_str().unwrap();
            assert_eq!(length, leaf_bytes.len().to_string());
            break;
        }
        assert_eq!(head.status(), StatusCode::NOT_FOUND);
        assert!(Instant::now() < deadline, "still not visible after 10 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(started.elapsed() >= propagation, "visible before the delay");

    for (query, accept) in [
        ("?format=raw", None),
        ("", Some("application/vnd.ipld.raw")),
    ] {
        let path = format!("{leaf}{query}");
        let response = gateway.ipfs(reqwest::Method::GET, &path, accept).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"],
            "application/vnd.ipld.raw"
        );
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            leaf_bytes.as_slice()
        );
    }
}

#[tokio::test]
async fn ipfs_car_answers_are_readable_by_iroh_car() {
    let gateway = Gateway::in_memory(Duration::ZERO).await;
    let dag = Dag::new("car");
    let car = car_of(&[dag.root.0], &dag.blocks()).await;
    assert_eq!(
        gateway.upload_raw("dag/import", car).await.status(),
        StatusCode::OK
    );
    let root = dag.root.0.to_string();
    let whole: HashMap<_, _> = dag.blocks().into_iter().collect();

    for (path, accept) in [
        (format!("{root}?format=car"), None),
        (root.clone(), Some("application/vnd.ipld.car; version=1")),
    ] {
        let response = gateway.ipfs(reqwest::Method::GET, &path, accept).await;
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/vnd.ipld.car"),
            "{content_type}"
        );
        let (roots, blocks) = read_car(&response.bytes().await.unwrap()).await;
        assert_eq!(roots, vec![dag.root.0]);
        assert_eq!(blocks, whole);
    }

    let path = format!("{root}?format=car&dag-scope=block");
    let response = gateway.ipfs(reqwest::Method::GET, &path, None).await;
    let (_, blocks) = read_car(&response.bytes().await.unwrap()).await;
    assert_eq!(blocks.keys().collect::<Vec<_>>(), vec![&dag.root.0]);
}

#[tokio::test]
async fn unknown_cids_are_404_and_malformed_ones_400_with_the_value() {
    let gateway = Gateway::in_memory(Duration::ZERO).await;
    let unknown = cid_of(RAW, b"never stored").to_string();
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let response = gateway.ipfs(method, &unknown, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }

    let response = gateway.ipfs(reqwest::Method::GET, "not-a-cid", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.contains("invalid cid `not-a-cid`"), "{text}");

    let path = format!("{unknown}?format=dag-json");
    let response = gateway.ipfs(reqwest::Method::GET, &path, None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let text = response.text().await.unwrap();
    assert!(text.contains("unsupported format `dag-json`"), "{text}");

    let message = kubo_error(
        gateway.rpc("block/get?arg=not-a-cid").await,
        StatusCode::BAD_REQUEST,
        1,
    )
    .await;
    assert!(message.contains("invalid cid `not-a-cid`"), "{message}");
    let message = kubo_error(gateway.rpc("block/get").await, StatusCode::BAD_REQUEST, 1).await;
    assert_eq!(message, "argument \"cid\" is required");
    let message = kubo_error(gateway.rpc("dag/export").await, StatusCode::BAD_REQUEST, 1).await;
    assert_eq!(message, "argument \"root\" is required");

    let url = format!("{}/api/v0/block/get?arg={unknown}", gateway.base);
    let response = gateway.http.get(url).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "the rpc is POST only, like kubo"
    );
}

#[tokio::test]
async fn a_directory_store_keeps_its_blocks_across_opens_as_propagated() {
    let dir = tempfile::tempdir().unwrap();
    let dag = Dag::new("durable");
    {
        let store = BlockStore::open_dir(dir.path()).unwrap();
        let gateway = Gateway::start(GatewayState::new(store, HOUR)).await;
        let car = car_of(&[dag.root.0], &dag.blocks()).await;
        assert_eq!(
            gateway.upload("dag/import", &[&car]).await.status(),
            StatusCode::OK
        );
        let head = gateway
            .ipfs(reqwest::Method::HEAD, &dag.root.0.to_string(), None)
            .await;
        assert_eq!(head.status(), StatusCode::NOT_FOUND, "not propagated yet");
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = dag.blocks().iter().map(|(c, _)| c.to_string()).collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "one file per block, named by cid, no temp files"
    );

    let store = BlockStore::open_dir(dir.path()).unwrap();
    assert_eq!(store.len(), 4);
    let gateway = Gateway::start(GatewayState::new(store, HOUR)).await;
    for (cid, data) in dag.blocks() {
        let response = gateway
            .ipfs(reqwest::Method::GET, &format!("{cid}?format=raw"), None)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "blocks from disk count as propagated"
        );
        assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());
    }
}
