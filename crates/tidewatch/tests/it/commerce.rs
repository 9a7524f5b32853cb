//! The commerce domain against the real binary: CSV import (good files, bad rows, wrong
//! headers) through `tidewatch import commerce`, transactions over HTTP (creation, paging,
//! fraud flags and alerts, idempotent ids, insufficient stock, concurrent purchases of the
//! last units), bad input on every route, reorder approval, and analytics checked against
//! a recomputation from the stored transactions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

const SUPPLIERS: &str = "\
id,name,reliability,avg_delivery_days,sku,unit_price
S1,Acme,0.95,3,P1,40
S1,Acme,0.95,3,P2,8
S2,Globex,0.7,8,P1,35
S2,Globex,0.7,8,P3,120
S2,Globex,0.7,8,P4,2
";

const PRODUCTS: &str = "\
sku,name,category,price,cost,stock,reorder_point,supplier_id,lead_time_days
P1,Headphones,audio,79.5,40,500,20,S1,3
P2,Cable,accessories,12,8,1000,50,S1,
P3,Speaker,audio,249,120,400,10,S2,8
P4,Sticker,accessories,3,2,5,10,S2,8
";

const CUSTOMERS: &str = "\
id,name,loyalty_tier,region,signup_date
C1,Ada,gold,EU-West,2020-01-15
C2,Bob,silver,US-East,2021-06-01
C3,Cy,bronze,EU-West,2022-03-10T08:00:00Z
C4,Di,platinum,APAC,2019-11-30
C5,Ed,Silver,US-West,2023-01-01
";

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// `tidewatch import commerce --data-dir <dir> <args>`.
fn import(data_dir: &Path, args: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
    command
        .args(["import", "commerce", "--data-dir"])
        .arg(data_dir)
        .env_remove("RUST_LOG");
    for (flag, path) in args {
        command.arg(flag).arg(path);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Imports the standard catalog (suppliers, products, customers) into `data_dir`.
fn import_catalog(data_dir: &Path, files: &Path) {
    let output = import(
        data_dir,
        &[
            ("--suppliers", &write(files, "suppliers.csv", SUPPLIERS)),
            ("--products", &write(files, "products.csv", PRODUCTS)),
            ("--customers", &write(files, "customers.csv", CUSTOMERS)),
        ],
    );
    assert!(
        output.status.success(),
        "import failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// A server on a fresh data directory holding the standard catalog.
async fn shop() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    import_catalog(&dir.path().join("data"), files.path());
    let server = TestServer::start(&dir.path().join("data")).await;
    (dir, server)
}

async fn stock(server: &TestServer, product: &str) -> i64 {
    let (status, body) = server.get(&format!("/api/v1/products/{product}")).await;
    assert_eq!(status, 200, "{body}");
    body["stock"].as_i64().unwrap()
}

/// Every transaction, following cursors.
async fn all_transactions(server: &TestServer, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/transactions?limit=1000{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = server.get(&path).await;
        assert_eq!(status, 200, "{page}");
        out.extend(page["transactions"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn order(customer: &str, product: &str, quantity: i64) -> Value {
    json!({"customer_id": customer, "product_id": product, "quantity": quantity})
}

fn close(actual: &Value, expected: f64, what: &str) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual}"));
    assert!(
        (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0),
        "{what}: got {actual}, expected {expected}"
    );
}

#[tokio::test]
async fn a_good_import_is_served_and_reimporting_skips_stored_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let day = base_ms() - base_ms().rem_euclid(DAY_MS) - 2 * DAY_MS;
    let transactions = format!(
        "id,timestamp,customer_id,sku,quantity,unit_price,region,payment_method\n\
         0190a0f4-0000-7000-8000-000000000001,{},C1,P1,2,,,\n\
         0190a0f4-0000-7000-8000-000000000002,{},C2,P3,1,199,US-East,paypal\n\
         ,2026-01-05T10:00:00Z,C3,P2,3,,,\n",
        day + 10 * HOUR_MS,
        day + 11 * HOUR_MS,
    );
    let args = [
        ("--suppliers", write(files.path(), "s.csv", SUPPLIERS)),
        ("--products", write(files.path(), "p.csv", PRODUCTS)),
        ("--customers", write(files.path(), "c.csv", CUSTOMERS)),
        (
            "--transactions",
            write(files.path(), "t.csv", &transactions),
        ),
    ];
    let args: Vec<(&str, &Path)> = args.iter().map(|(f, p)| (*f, p.as_path())).collect();
    let output = import(&data, &args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("imported 4 products, 2 suppliers (5 offers), 5 customers, 3 transactions"),
        "{stdout}"
    );
    // Again: entities are replaced, the transactions with ids are skipped (the one
    // without an id gets a new one, so it is imported again).
    let again = import(&data, &args);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("1 transactions (0 suspicious, 2 already stored)"));

    let server = TestServer::start(&data).await;
    let (_, products) = server.get("/api/v1/products").await;
    assert_eq!(products["products"].as_array().unwrap().len(), 4);
    let (_, customers) = server.get("/api/v1/customers").await;
    assert_eq!(
        customers["customers"][4]["loyalty_tier"], "silver",
        "lowercased"
    );
    let (_, suppliers) = server.get("/api/v1/suppliers").await;
    assert_eq!(
        suppliers["suppliers"][1]["offers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // History does not change stock.
    assert_eq!(stock(&server, "P1").await, 500);
    let stored = all_transactions(&server, "").await;
    assert_eq!(stored.len(), 4);
    let (status, tx) = server
        .get("/api/v1/transactions/0190a0f4-0000-7000-8000-000000000002")
        .await;
    assert_eq!(status, 200, "{tx}");
    assert_eq!(tx["amount"], 199.0);
    assert_eq!(tx["payment_method"], "paypal");
    assert_eq!(tx["loyalty_tier"], "silver");
    assert_eq!(tx["category"], "audio");
    assert_eq!(tx["cost"], 120.0);
    assert!(tx["stock_after"].is_null());
    let (_, first) = server
        .get("/api/v1/transactions/0190a0f4-0000-7000-8000-000000000001")
        .await;
    assert_eq!(
        first["amount"], 159.0,
        "the product's price when none is given"
    );
    assert_eq!(
        first["region"], "EU-West",
        "the customer's region when none is given"
    );
}

#[tokio::test]
async fn bad_rows_are_reported_with_their_lines_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let products = "\
sku,name,category,price,cost,stock,reorder_point,supplier_id
P1,Headphones,audio,79.5,40,500,20,S1
P2,Cable,accessories,-12,8,1000,50,S1
P3,Speaker,audio,249,120,many,10,S1
P1,Again,audio,1,1,1,1,
P5,Mic,audio,30,10,5,2,S9
";
    let customers = "\
id,name,loyalty_tier,region,signup_date
C1,Ada,gold,EU-West,2020-01-15
C2,Bob,diamond,US-East,yesterday
";
    let transactions = "\
timestamp,customer_id,sku,quantity
2026-01-05T10:00:00Z,C1,P1,2
2026-01-05T11:00:00Z,C1,P1,0
2026-01-05T12:00:00Z,C7,P1,1
";
    let output = import(
        &data,
        &[
            (
                "--suppliers",
                &write(files.path(), "suppliers.csv", SUPPLIERS),
            ),
            ("--products", &write(files.path(), "products.csv", products)),
            (
                "--customers",
                &write(files.path(), "customers.csv", customers),
            ),
            (
                "--transactions",
                &write(files.path(), "transactions.csv", transactions),
            ),
        ],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    for expected in [
        "products.csv:3: price: \"-12\" is not a positive price",
        "products.csv:4: stock: \"many\" is not a whole number",
        "products.csv:6: supplier_id: no supplier \"S9\"",
        "products.csv:5: sku: product \"P1\" appears twice",
        "customers.csv:3: loyalty_tier: \"diamond\" is not one of",
        "customers.csv:3: signup_date: \"yesterday\" is not a date",
        "transactions.csv:3: quantity: \"0\" is not a whole number between 1",
        "transactions.csv:4: customer_id: no customer \"C7\"",
        "bad rows; nothing was imported",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // The good rows were not written either.
    let server = TestServer::start(&data).await;
    let (_, products) = server.get("/api/v1/products").await;
    assert_eq!(products["products"], json!([]));
    let (_, customers) = server.get("/api/v1/customers").await;
    assert_eq!(customers["customers"], json!([]));
    assert_eq!(server.rows("commerce.transactions").await, 0);
}

#[tokio::test]
async fn wrong_headers_are_refused_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cases = [
        (
            "--products",
            "sku,name,category,price,cost,stock\nP1,H,audio,1,1,1\n",
            "products.csv:1: reorder_point: required column is missing",
        ),
        (
            "--customers",
            "id,name,loyalty_tier,region,signup_date,colour\nC1,A,gold,EU,2020-01-01,red\n",
            "customers.csv:1: colour: unknown column",
        ),
        (
            "--transactions",
            "timestamp,customer_id,sku,quantity,quantity\n",
            "transactions.csv:1: quantity: column given twice",
        ),
    ];
    for (flag, content, expected) in cases {
        let name = format!("{}.csv", flag.trim_start_matches("--"));
        let output = import(
            &data,
            &[
                (
                    "--suppliers",
                    &write(files.path(), "suppliers.csv", SUPPLIERS),
                ),
                (flag, &write(files.path(), &name, content)),
            ],
        );
        assert!(!output.status.success(), "{flag}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    let nothing = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["import", "commerce", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!nothing.status.success());
    assert!(text(&nothing.stderr).contains("nothing to import"));
    let server = TestServer::start(&data).await;
    let (_, suppliers) = server.get("/api/v1/suppliers").await;
    assert_eq!(
        suppliers["suppliers"],
        json!([]),
        "the good suppliers file neither"
    );
}

#[tokio::test]
async fn transactions_are_created_fetched_listed_and_flagged() {
    let (_dir, server) = shop().await;
    let (status, tx) = server
        .post(
            "/api/v1/transactions",
            &json!({"customer_id": "C1", "product_id": "P1", "quantity": 3,
                    "payment_method": "paypal"}),
        )
        .await;
    assert_eq!(status, 201, "{tx}");
    close(&tx["amount"], 3.0 * 79.5, "amount");
    close(&tx["cost"], 3.0 * 40.0, "cost");
    assert_eq!(tx["unit_price"], 79.5);
    assert_eq!(tx["stock_after"], 497);
    assert_eq!(tx["region"], "EU-West");
    assert_eq!(tx["loyalty_tier"], "gold");
    assert_eq!(tx["suspicious"], false);
    assert!(tx["fraud_score"].as_f64().unwrap() < 0.5);
    assert_eq!(tx["reasons"], json!([]));
    assert_eq!(stock(&server, "P1").await, 497);
    let id = tx["id"].as_str().unwrap();
    let (status, fetched) = server.get(&format!("/api/v1/transactions/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(fetched, tx, "GET returns what POST did");

    // A client-given id makes a retry idempotent; reusing it for something else is a 409.
    let chosen = "0190a0f4-1111-7000-8000-000000000abc";
    let body = json!({"id": chosen, "customer_id": "C2", "product_id": "P2", "quantity": 1,
                      "ts": base_ms()});
    let (status, first) = server.post("/api/v1/transactions", &body).await;
    assert_eq!(status, 201, "{first}");
    let (status, retry) = server.post("/api/v1/transactions", &body).await;
    assert_eq!(status, 200, "{retry}");
    assert_eq!(retry, first);
    assert_eq!(stock(&server, "P2").await, 999, "the retry took no stock");
    let (status, err) = server
        .post(
            "/api/v1/transactions",
            &json!({"id": chosen, "customer_id": "C2", "product_id": "P2", "quantity": 5}),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "conflict");

    // Two signals at once: a large amount from another region for a new account.
    let (status, flagged) = server
        .post(
            "/api/v1/transactions",
            &json!({"customer_id": "C5", "product_id": "P3", "quantity": 4, "region": "APAC"}),
        )
        .await;
    assert_eq!(status, 201);
    // C5 signed up in 2023, so not new: region alone is not suspicious.
    assert_eq!(flagged["suspicious"], false, "{flagged}");
    let reasons: Vec<&str> = flagged["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["region_mismatch"]);
    // Velocity (the third order within 10 minutes) plus region: suspicious.
    let (_, _) = server
        .post("/api/v1/transactions", &order("C5", "P2", 1))
        .await;
    let (status, fraud) = server
        .post(
            "/api/v1/transactions",
            &json!({"customer_id": "C5", "product_id": "P3", "quantity": 1, "region": "APAC"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(fraud["suspicious"], true, "{fraud}");
    assert!(fraud["fraud_score"].as_f64().unwrap() >= 0.5);
    let fraud_id = fraud["id"].as_str().unwrap();

    let (_, suspicious) = server.get("/api/v1/transactions/suspicious").await;
    let listed: Vec<&str> = suspicious["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [fraud_id]);
    let (_, clear) = server.get("/api/v1/transactions?suspicious=false").await;
    assert_eq!(clear["transactions"].as_array().unwrap().len(), 4);

    // The alert, with the reasons as evidence.
    let deadline = Instant::now() + Duration::from_secs(10);
    let alert = loop {
        let (_, page) = server
            .get("/api/v1/streams/alerts/events?domain=commerce&kind=fraud")
            .await;
        if let Some(alert) = page["events"].as_array().and_then(|a| a.first()) {
            break alert.clone();
        }
        assert!(Instant::now() < deadline, "no fraud alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(alert["subject"], fraud_id);
    let evidence: Value = serde_json::from_str(alert["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["reasons"], fraud["reasons"]);

    // Filters and paging.
    let (_, mine) = server.get("/api/v1/transactions?customer_id=C5").await;
    assert_eq!(mine["transactions"].as_array().unwrap().len(), 3);
    let (_, page) = server.get("/api/v1/transactions?limit=2").await;
    assert_eq!(page["transactions"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = server
        .get(&format!("/api/v1/transactions?limit=10&cursor={cursor}"))
        .await;
    assert_eq!(rest["transactions"].as_array().unwrap().len(), 3);
    assert!(rest["next_cursor"].is_null());

    // Stock survives a restart; so does the fraud scorer's memory of C5.
    let (_, overview) = server.get("/api/v1/dashboard/overview").await;
    assert_eq!(overview["suspicious_today"], 1);
}

#[tokio::test]
async fn buying_more_than_the_stock_is_a_409_and_writes_nothing() {
    let (_dir, server) = shop().await;
    let (status, body) = server
        .post("/api/v1/transactions", &order("C1", "P4", 6))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_stock");
    assert_eq!(body["error"]["details"]["available"], 5);
    assert_eq!(body["error"]["details"]["requested"], 6);
    assert_eq!(stock(&server, "P4").await, 5);
    assert_eq!(server.rows("commerce.transactions").await, 0);
    let (status, _) = server
        .post("/api/v1/transactions", &order("C1", "P4", 5))
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .post("/api/v1/transactions", &order("C1", "P4", 1))
        .await;
    assert_eq!(status, 409);
    assert_eq!(stock(&server, "P4").await, 0);
}

#[tokio::test]
async fn fifty_concurrent_purchases_of_the_last_ten_units_sell_exactly_ten() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let products = "\
sku,name,category,price,cost,stock,reorder_point
LAST,Last ones,audio,10,5,10,0
";
    let output = import(
        &data,
        &[
            ("--products", &write(files.path(), "p.csv", products)),
            ("--customers", &write(files.path(), "c.csv", CUSTOMERS)),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let server = TestServer::start(&data).await;
    let customers = ["C1", "C2", "C3", "C4", "C5"];
    let requests = (0..50).map(|i| {
        let client = server.client.clone();
        let url = server.url("/api/v1/transactions");
        let body = order(customers[i % 5], "LAST", 1);
        tokio::spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            response.status().as_u16()
        })
    });
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for request in requests.collect::<Vec<_>>() {
        *statuses.entry(request.await.unwrap()).or_default() += 1;
    }
    assert_eq!(statuses.get(&201), Some(&10), "{statuses:?}");
    assert_eq!(statuses.get(&409), Some(&40), "{statuses:?}");
    assert_eq!(stock(&server, "LAST").await, 0);
    let sold = all_transactions(&server, "&product_id=LAST").await;
    assert_eq!(sold.len(), 10);
    let mut after: Vec<i64> = sold
        .iter()
        .map(|t| t["stock_after"].as_i64().unwrap())
        .collect();
    after.sort_unstable();
    assert_eq!(after, (0..10).collect::<Vec<_>>(), "each unit sold once");
}

#[tokio::test]
async fn bad_input_on_every_route_is_a_clear_4xx_and_writes_nothing() {
    let (_dir, server) = shop().await;
    let (status, _) = server
        .post("/api/v1/transactions", &order("C1", "P1", 1))
        .await;
    assert_eq!(status, 201);
    let (_, refreshed) = server
        .post("/api/v1/inventory/reorder-suggestions/refresh", &json!({}))
        .await;
    assert!(
        refreshed["suggestions"].as_u64().unwrap() >= 1,
        "{refreshed}"
    );
    let stocks_before: Vec<i64> = {
        let (_, p) = server.get("/api/v1/products").await;
        p["products"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["stock"].as_i64().unwrap())
            .collect()
    };

    let future = now_ms() + 3_600_000;
    let posts: Vec<(&str, String, u16, &str)> = vec![
        (
            "/api/v1/transactions",
            "{\"customer_id\": ".into(),
            400,
            "malformed_body",
        ),
        (
            "/api/v1/transactions",
            "[1, 2]".into(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            "{}".into(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            json!({"customer_id": "C1", "product_id": "P1", "quantity": 1, "colour": "red"})
                .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            json!({"customer_id": "C1", "product_id": "P1", "quantity": "two"}).to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            order("C1", "P1", 0).to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            order("C1", "P1", -4).to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            order("C1", "NOPE", 1).to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            order("NOBODY", "P1", 1).to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            json!({"customer_id": "C1", "product_id": "P1", "quantity": 1, "id": "not-a-uuid"})
                .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            json!({"customer_id": "C1", "product_id": "P1", "quantity": 1, "ts": future})
                .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            json!({"customer_id": "C1", "product_id": "P1", "quantity": 1, "ts": "soon"})
                .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions",
            json!({"customer_id": " ", "product_id": "P1", "quantity": 1, "region": ""})
                .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/api/v1/transactions?partial=true",
            order("C1", "P1", 1).to_string(),
            400,
            "invalid_request",
        ),
        (
            "/api/v1/inventory/reorder-suggestions/nope/approve",
            String::new(),
            404,
            "not_found",
        ),
        (
            "/api/v1/inventory/reorder-suggestions/refresh?now=1",
            String::new(),
            400,
            "invalid_request",
        ),
    ];
    for (path, body, expected, code) in &posts {
        let (status, response) = server
            .post_raw(path, "application/json", body.clone())
            .await;
        assert_eq!(status, *expected, "{path} {body}: {response}");
        assert_eq!(
            response["error"]["code"], *code,
            "{path} {body}: {response}"
        );
        assert!(!response["error"]["message"].as_str().unwrap().is_empty());
    }
    let (_, invalid) = server
        .post(
            "/api/v1/transactions",
            &json!({"quantity": 0, "ts": "soon"}),
        )
        .await;
    let fields: HashSet<&str> = invalid["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        HashSet::from(["customer_id", "product_id", "quantity", "ts"]),
        "every problem at once: {invalid}"
    );

    let gets = [
        ("/api/v1/transactions?limit=0", 400, "invalid_request"),
        ("/api/v1/transactions?limit=5000", 400, "invalid_request"),
        ("/api/v1/transactions?limit=x", 400, "invalid_request"),
        (
            "/api/v1/transactions?cursor=garbage",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/transactions?from=yesterday",
            400,
            "invalid_request",
        ),
        ("/api/v1/transactions?colour=red", 400, "invalid_request"),
        (
            "/api/v1/transactions?suspicious=maybe",
            400,
            "invalid_request",
        ),
        ("/api/v1/transactions?risk=ok", 400, "invalid_request"),
        (
            "/api/v1/transactions/suspicious?suspicious=false",
            400,
            "invalid_request",
        ),
        ("/api/v1/transactions/not-a-uuid", 400, "invalid_request"),
        (
            "/api/v1/transactions/0190a0f4-0000-7000-8000-00000000dead",
            404,
            "not_found",
        ),
        ("/api/v1/products/NOPE", 404, "not_found"),
        ("/api/v1/products?limit=1", 400, "invalid_request"),
        ("/api/v1/inventory/low-stock?x=1", 400, "invalid_request"),
        ("/api/v1/inventory/predictions/NOPE", 404, "not_found"),
        (
            "/api/v1/inventory/predictions/P1?horizon=0",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/inventory/predictions/P1?horizon=1000",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/inventory/predictions/P1?horizon=-1",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/inventory/predictions/P1?days=3",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/inventory/reorder-suggestions?status=maybe",
            400,
            "invalid_request",
        ),
        ("/api/v1/dashboard/overview?x=1", 400, "invalid_request"),
        (
            "/api/v1/analytics/hourly-sales?from=soon",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/hourly-sales?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/hourly-sales?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/top-products?limit=0",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/top-products?limit=1000",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/top-products?by=colour",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/top-products?from=10&to=5",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/customer-segments?x=1",
            400,
            "invalid_request",
        ),
        (
            "/api/v1/analytics/category-performance?to=later",
            400,
            "invalid_request",
        ),
        ("/api/v1/customers?x=1", 400, "invalid_request"),
        ("/api/v1/suppliers?x=1", 400, "invalid_request"),
        ("/api/v1/purchase-orders?x=1", 400, "invalid_request"),
    ];
    for (path, expected, code) in gets {
        let (status, response) = server.get(path).await;
        assert_eq!(status, expected, "{path}: {response}");
        assert_eq!(response["error"]["code"], code, "{path}: {response}");
    }

    // Nothing was written by any of it.
    assert_eq!(server.rows("commerce.transactions").await, 1);
    let (_, p) = server.get("/api/v1/products").await;
    let stocks_after: Vec<i64> = p["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["stock"].as_i64().unwrap())
        .collect();
    assert_eq!(stocks_after, stocks_before);
    let (_, orders) = server.get("/api/v1/purchase-orders").await;
    assert_eq!(orders["purchase_orders"], json!([]));
}

#[tokio::test]
async fn approving_a_suggestion_creates_one_purchase_order_and_twice_is_a_409() {
    let (_dir, server) = shop().await;
    let (status, refreshed) = server
        .post("/api/v1/inventory/reorder-suggestions/refresh", &json!({}))
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let (_, suggestions) = server.get("/api/v1/inventory/reorder-suggestions").await;
    let suggestions = suggestions["suggestions"].as_array().unwrap().clone();
    // P4 (5 units, reorder point 10) is the only product at its reorder point.
    assert_eq!(suggestions.len(), 1, "{suggestions:?}");
    let suggestion = &suggestions[0];
    assert_eq!(suggestion["product_id"], "P4");
    assert_eq!(suggestion["status"], "pending");
    assert_eq!(suggestion["quantity"], 15, "up to twice the reorder point");
    assert_eq!(
        suggestion["supplier_id"], "S2",
        "the only supplier offering P4"
    );
    let id = suggestion["id"].as_str().unwrap();

    // A second refresh keeps the same pending suggestion.
    server
        .post("/api/v1/inventory/reorder-suggestions/refresh", &json!({}))
        .await;
    let (_, again) = server.get("/api/v1/inventory/reorder-suggestions").await;
    assert_eq!(again["suggestions"][0]["id"], id);

    let path = format!("/api/v1/inventory/reorder-suggestions/{id}/approve");
    let (status, approved) = server.post(&path, &json!({})).await;
    assert_eq!(status, 201, "{approved}");
    let order = &approved["purchase_order"];
    assert_eq!(order["quantity"], 15);
    assert_eq!(order["status"], "open");
    close(&order["total_cost"], 30.0, "total cost");
    let (status, twice) = server.post(&path, &json!({})).await;
    assert_eq!(status, 409, "{twice}");
    assert_eq!(twice["error"]["code"], "conflict");
    let (_, orders) = server.get("/api/v1/purchase-orders").await;
    assert_eq!(orders["purchase_orders"].as_array().unwrap().len(), 1);
    let (_, approved_list) = server
        .get("/api/v1/inventory/reorder-suggestions?status=approved")
        .await;
    assert_eq!(approved_list["suggestions"][0]["id"], id);
    // With the order on its way, the next refresh suggests nothing more for P4.
    server
        .post("/api/v1/inventory/reorder-suggestions/refresh", &json!({}))
        .await;
    let (_, pending) = server.get("/api/v1/inventory/reorder-suggestions").await;
    assert_eq!(pending["suggestions"], json!([]));

    // Low stock: P4 is at its reorder point with the order counted.
    let (_, low) = server.get("/api/v1/inventory/low-stock").await;
    let p4 = &low["products"][0];
    assert_eq!(p4["product_id"], "P4");
    assert_eq!(p4["urgency"], "medium");
    assert_eq!(p4["on_order"], 15);
    // Sold out: critical.
    server
        .post("/api/v1/transactions", &order_json("P4", 5))
        .await;
    let (_, low) = server.get("/api/v1/inventory/low-stock").await;
    assert_eq!(low["products"][0]["urgency"], "critical");
    assert_eq!(low["critical"], 1);

    let (status, prediction) = server
        .get("/api/v1/inventory/predictions/P1?horizon=7")
        .await;
    assert_eq!(status, 200, "{prediction}");
    assert_eq!(prediction["horizon_days"], 7);
    assert_eq!(prediction["points"].as_array().unwrap().len(), 7);
    assert!(prediction["method"].is_string());
}

fn order_json(product: &str, quantity: i64) -> Value {
    order("C1", product, quantity)
}

/// Expected figures of a set of transactions.
#[derive(Default, Debug)]
struct Sums {
    revenue: f64,
    units: i64,
    orders: i64,
    cost: f64,
}

impl Sums {
    fn add(&mut self, t: &Value) {
        self.revenue += t["amount"].as_f64().unwrap();
        self.units += t["quantity"].as_i64().unwrap();
        self.orders += 1;
        self.cost += t["cost"].as_f64().unwrap();
    }
}

#[tokio::test]
async fn analytics_equal_a_recomputation_from_the_stored_transactions() {
    let (_dir, server) = shop().await;
    let today = now_ms() - now_ms().rem_euclid(DAY_MS);
    // Orders over the last 40 days and today, several per customer, out of time order.
    let customers = ["C1", "C2", "C3", "C4", "C5"];
    let products = ["P1", "P2", "P3", "P2", "P1", "P3", "P2"];
    let mut k = 0i64;
    for day in [40, 20, 9, 3, 1, 0] {
        for slot in 0..6 {
            k += 1;
            let mut ts = today - day * DAY_MS + slot * 3 * HOUR_MS + k * 61_000;
            if ts > now_ms() {
                ts = now_ms() - k * 1000;
            }
            let customer = customers[(k as usize * 7 + slot as usize) % 5];
            let product = products[k as usize % products.len()];
            let body = json!({"customer_id": customer, "product_id": product,
                              "quantity": 1 + k % 3, "ts": ts});
            let (status, response) = server.post("/api/v1/transactions", &body).await;
            assert_eq!(status, 201, "{response}");
        }
    }
    let stored = all_transactions(&server, "").await;
    assert_eq!(stored.len(), 36);
    let ts = |t: &Value| parse_ts(t["ts"].as_str().unwrap());

    // Overview: today's figures.
    let (_, overview) = server.get("/api/v1/dashboard/overview").await;
    let day = parse_ts(overview["day"].as_str().unwrap());
    let todays: Vec<&Value> = stored
        .iter()
        .filter(|t| ts(t) >= day && ts(t) < day + DAY_MS)
        .collect();
    let mut expected = Sums::default();
    todays.iter().for_each(|t| expected.add(t));
    close(&overview["sales_today"], expected.revenue, "sales today");
    assert_eq!(overview["transactions_today"], expected.orders);
    assert_eq!(overview["units_today"], expected.units);
    let active: HashSet<&str> = todays
        .iter()
        .map(|t| t["customer_id"].as_str().unwrap())
        .collect();
    assert_eq!(overview["active_customers"], active.len());
    close(
        &overview["avg_order_value"],
        expected.revenue / expected.orders as f64,
        "aov",
    );
    let suspicious = todays.iter().filter(|t| t["suspicious"] == true).count();
    assert_eq!(overview["suspicious_today"], suspicious);

    // Hourly sales over the last two days.
    let to = (now_ms() - now_ms().rem_euclid(HOUR_MS)) + HOUR_MS;
    let from = to - 48 * HOUR_MS;
    let (status, hourly) = server
        .get(&format!(
            "/api/v1/analytics/hourly-sales?from={from}&to={to}"
        ))
        .await;
    assert_eq!(status, 200, "{hourly}");
    let hours = hourly["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 48);
    let mut by_hour: BTreeMap<i64, Sums> = BTreeMap::new();
    for t in &stored {
        if ts(t) >= from && ts(t) < to {
            by_hour
                .entry(ts(t) - ts(t).rem_euclid(HOUR_MS))
                .or_default()
                .add(t);
        }
    }
    for hour in hours {
        let start = parse_ts(hour["hour"].as_str().unwrap());
        let e = by_hour.remove(&start).unwrap_or_default();
        close(&hour["revenue"], e.revenue, "hourly revenue");
        assert_eq!(hour["orders"], e.orders, "{hour}");
        assert_eq!(hour["units"], e.units, "{hour}");
    }
    assert!(by_hour.is_empty());

    // Top products and categories, all time and over a day-aligned range.
    for (query, range_from, range_to) in [
        (String::new(), i64::MIN, i64::MAX),
        (
            format!("?from={}&to={}", today - 10 * DAY_MS, today),
            today - 10 * DAY_MS,
            today,
        ),
    ] {
        let mut by_product: BTreeMap<&str, Sums> = BTreeMap::new();
        let mut by_category: BTreeMap<&str, Sums> = BTreeMap::new();
        for t in stored
            .iter()
            .filter(|t| ts(t) >= range_from && ts(t) < range_to)
        {
            by_product
                .entry(t["product_id"].as_str().unwrap())
                .or_default()
                .add(t);
            by_category
                .entry(t["category"].as_str().unwrap())
                .or_default()
                .add(t);
        }
        let (_, top) = server
            .get(&format!("/api/v1/analytics/top-products{query}"))
            .await;
        let listed = top["products"].as_array().unwrap();
        assert_eq!(listed.len(), by_product.len(), "{top}");
        let mut previous = f64::INFINITY;
        for p in listed {
            let e = &by_product[p["product_id"].as_str().unwrap()];
            close(&p["revenue"], e.revenue, "product revenue");
            assert_eq!(p["units"], e.units);
            assert_eq!(p["orders"], e.orders);
            close(&p["margin"], e.revenue - e.cost, "product margin");
            let revenue = p["revenue"].as_f64().unwrap();
            assert!(revenue <= previous, "by revenue, descending");
            previous = revenue;
        }
        let (_, categories) = server
            .get(&format!("/api/v1/analytics/category-performance{query}"))
            .await;
        let listed = categories["categories"].as_array().unwrap();
        assert_eq!(listed.len(), by_category.len(), "{categories}");
        for c in listed {
            let e = &by_category[c["category"].as_str().unwrap()];
            close(&c["revenue"], e.revenue, "category revenue");
            assert_eq!(c["units"], e.units);
            close(&c["cost"], e.cost, "category cost");
            close(&c["margin"], e.revenue - e.cost, "category margin");
            close(
                &c["margin_pct"],
                (e.revenue - e.cost) / e.revenue * 100.0,
                "margin pct",
            );
        }
    }
    let (_, by_units) = server
        .get("/api/v1/analytics/top-products?by=units&limit=1")
        .await;
    assert_eq!(by_units["products"].as_array().unwrap().len(), 1);

    // Customer segments: per tier, and RFM from recency and frequency.
    let (_, segments) = server.get("/api/v1/analytics/customer-segments").await;
    let mut tiers: BTreeMap<&str, (HashSet<&str>, Sums)> = BTreeMap::new();
    let mut per_customer: HashMap<&str, (i64, i64, f64)> = HashMap::new();
    for t in &stored {
        let customer = t["customer_id"].as_str().unwrap();
        let tier = tiers
            .entry(t["loyalty_tier"].as_str().unwrap())
            .or_default();
        tier.0.insert(customer);
        tier.1.add(t);
        let day_start = ts(t) - ts(t).rem_euclid(DAY_MS);
        let entry = per_customer.entry(customer).or_insert((i64::MIN, 0, 0.0));
        entry.0 = entry.0.max(day_start);
        entry.1 += 1;
        entry.2 += t["amount"].as_f64().unwrap();
    }
    let listed = segments["by_loyalty_tier"].as_array().unwrap();
    assert_eq!(listed.len(), tiers.len());
    for tier in listed {
        let (who, e) = &tiers[tier["loyalty_tier"].as_str().unwrap()];
        assert_eq!(tier["customers"], who.len());
        assert_eq!(tier["orders"], e.orders);
        close(&tier["revenue"], e.revenue, "tier revenue");
    }
    let mut rfm: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
    for (last_day, orders, revenue) in per_customer.values() {
        let recency = (day - last_day) / DAY_MS;
        let r = if recency <= 7 {
            3
        } else if recency <= 30 {
            2
        } else {
            1
        };
        let f = if *orders >= 10 {
            3
        } else if *orders >= 3 {
            2
        } else {
            1
        };
        let segment = match (r, f) {
            (3, 3) => "champions",
            (3 | 2, 2 | 3) => "loyal",
            (3, _) => "new",
            (2, _) => "promising",
            (_, 2 | 3) => "at_risk",
            _ => "hibernating",
        };
        let entry = rfm.entry(segment).or_default();
        entry.0 += 1;
        entry.1 += revenue;
    }
    for segment in segments["rfm"].as_array().unwrap() {
        let (customers, revenue) = rfm
            .get(segment["segment"].as_str().unwrap())
            .copied()
            .unwrap_or_default();
        assert_eq!(segment["customers"], customers, "{segment}");
        close(&segment["revenue"], revenue, "segment revenue");
    }
    assert_eq!(segments["customers"], per_customer.len());
}

#[tokio::test]
async fn serve_demo_seeds_the_shop_with_history_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        args: vec!["--demo".into(), "--demo-rate".into(), "20".into()],
        ..Options::default()
    };
    let mut server = TestServer::start_with(dir.path(), options()).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, products) = server.get("/api/v1/products").await;
        let seeded = products["products"]
            .as_array()
            .is_some_and(|p| !p.is_empty());
        if seeded && server.rows("commerce.transactions").await > 1000 {
            break;
        }
        assert!(Instant::now() < deadline, "demo shop not seeded in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Four weeks of history: forecasts have something to work on.
    let (_, products) = server.get("/api/v1/products").await;
    let first = products["products"][0]["id"].as_str().unwrap().to_owned();
    let (status, prediction) = server
        .get(&format!("/api/v1/inventory/predictions/{first}"))
        .await;
    assert_eq!(status, 200, "{prediction}");
    assert!(
        prediction["history_days"].as_u64().unwrap() >= 14,
        "{prediction}"
    );
    let (status, overview) = server.get("/api/v1/dashboard/overview").await;
    assert_eq!(status, 200, "{overview}");
    let (_, customers) = server.get("/api/v1/customers").await;
    let customers = customers["customers"].as_array().unwrap().len();

    // A restart on the same directory does not seed again.
    assert!(server.terminate().success());
    let rows_before = {
        let server = TestServer::start(dir.path()).await;
        server.rows("commerce.transactions").await
    };
    let server = TestServer::start_with(dir.path(), options()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, again) = server.get("/api/v1/customers").await;
    assert_eq!(again["customers"].as_array().unwrap().len(), customers);
    assert!(server.rows("commerce.transactions").await < rows_before + 100);
}

#[tokio::test]
async fn live_sales_metrics_and_stock_levels_are_pushed_over_websocket() {
    use crate::wsclient::{connect, next_json, send};
    let (_dir, server) = shop().await;
    let mut socket = connect(&server).await;
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "rollup.commerce.transactions.totals.1m"}),
    )
    .await;
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    send(
        &mut socket,
        json!({"op": "subscribe", "topic": "stream.commerce.transactions",
               "filter": {"product_id": "P1"}}),
    )
    .await;
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");

    let (status, tx) = server
        .post("/api/v1/transactions", &order("C1", "P1", 2))
        .await;
    assert_eq!(status, 201, "{tx}");
    let (mut totals, mut sale) = (None, None);
    while totals.is_none() || sale.is_none() {
        let message = next_json(&mut socket).await;
        assert_eq!(message["type"], "delta", "{message}");
        if message["topic"] == "stream.commerce.transactions" {
            sale = Some(message["data"].clone());
        } else {
            totals = Some(message["data"].clone());
        }
    }
    let (totals, sale) = (totals.unwrap(), sale.unwrap());
    close(&totals["revenue"], 159.0, "live revenue");
    assert_eq!(totals["orders"], 1.0);
    assert_eq!(sale["id"], tx["id"]);
    assert_eq!(sale["stock_after"], 498, "the stock level, live");
}

#[tokio::test]
async fn sales_and_stock_survive_a_kill_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    import_catalog(&data, files.path());
    let mut server = TestServer::start(&data).await;
    let mut ids = Vec::new();
    for quantity in [1, 2, 3] {
        let (status, tx) = server
            .post("/api/v1/transactions", &order("C2", "P2", quantity))
            .await;
        assert_eq!(status, 201, "{tx}");
        ids.push(tx["id"].as_str().unwrap().to_owned());
    }
    server.kill();
    let server = TestServer::start(&data).await;
    assert_eq!(stock(&server, "P2").await, 994);
    for id in &ids {
        let (status, tx) = server.get(&format!("/api/v1/transactions/{id}")).await;
        assert_eq!(status, 200, "{tx}");
    }
    let (_, overview) = server.get("/api/v1/dashboard/overview").await;
    assert_eq!(overview["units_today"], 6);
}
