//! The metadata store against a real SQLite file in a temporary directory.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::error::Error;
use crate::model::{Customer, Product, Supplier, SupplierOffer};

fn product(id: &str, stock: i64) -> Product {
    Product {
        id: id.into(),
        name: format!("Product {id}"),
        category: "gadgets".into(),
        price: 10.0,
        cost: 6.0,
        stock,
        reorder_point: 5,
        supplier_id: Some("S1".into()),
        lead_time_days: 3.0,
    }
}

fn catalog() -> CatalogWrite {
    CatalogWrite {
        suppliers: vec![Supplier {
            id: "S1".into(),
            name: "Acme".into(),
            reliability: 0.9,
            avg_delivery_days: 4.0,
        }],
        products: vec![product("P1", 10), product("P2", 0)],
        offers: vec![SupplierOffer {
            supplier_id: "S1".into(),
            product_id: "P1".into(),
            unit_price: 5.5,
        }],
        customers: vec![Customer {
            id: "C1".into(),
            name: "Ada".into(),
            loyalty_tier: "gold".into(),
            region: "eu".into(),
            signup_ts: 1_700_000_000_000,
        }],
        ledger: Vec::new(),
    }
}

fn sale(id: &str, product: &str, quantity: i64) -> LedgerEntry {
    LedgerEntry {
        id: id.into(),
        ts: 1_795_428_000_000,
        customer_id: "C1".into(),
        product_id: product.into(),
        quantity,
        reserved: quantity,
        state: LedgerState::Pending,
        created_ms: 1_795_428_000_000,
    }
}

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store.write_catalog(&catalog()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn entities_round_trip_and_reopening_keeps_them() {
    let (dir, store) = open().await;
    assert_eq!(store.product("P1").await.unwrap(), Some(product("P1", 10)));
    assert_eq!(store.product("nope").await.unwrap(), None);
    assert_eq!(store.products().await.unwrap().len(), 2);
    assert_eq!(store.customers().await.unwrap()[0].loyalty_tier, "gold");
    let offers = store.offers_by_product().await.unwrap();
    assert_eq!(offers["P1"][0].1, 5.5);
    // Upsert replaces by id.
    let mut again = catalog();
    again.products = vec![product("P1", 99)];
    store.write_catalog(&again).await.unwrap();
    assert_eq!(store.product("P1").await.unwrap().unwrap().stock, 99);
    store.close().await;
    // Migrations are applied once; a second open finds everything.
    let reopened = Store::open(dir.path()).await.unwrap();
    assert_eq!(reopened.products().await.unwrap().len(), 2);
    assert!(dir.path().join(DATABASE_FILE).exists());
}

#[tokio::test]
async fn a_bad_row_rolls_the_whole_catalog_write_back() {
    let (_dir, store) = open().await;
    let mut write = CatalogWrite {
        products: vec![product("P3", 1), product("P4", 1)],
        ..CatalogWrite::default()
    };
    // References a supplier that does not exist: the foreign key fails the write.
    write.products[1].supplier_id = Some("missing".into());
    assert!(store.write_catalog(&write).await.is_err());
    assert_eq!(
        store.product("P3").await.unwrap(),
        None,
        "nothing half-written"
    );
}

#[tokio::test]
async fn reserving_takes_stock_only_when_enough_remains() {
    let (_dir, store) = open().await;
    assert_eq!(
        store.reserve(&sale("t1", "P1", 4)).await.unwrap(),
        Reservation::Reserved { stock_after: 6 }
    );
    assert_eq!(
        store.reserve(&sale("t2", "P1", 7)).await.unwrap(),
        Reservation::Insufficient { available: 6 }
    );
    assert_eq!(
        store.ledger_entry("t2").await.unwrap(),
        None,
        "refused: no ledger row"
    );
    assert_eq!(
        store.reserve(&sale("t3", "nope", 1)).await.unwrap(),
        Reservation::UnknownProduct
    );
    // The same id again: nothing changes, the stored entry comes back.
    match store.reserve(&sale("t1", "P1", 4)).await.unwrap() {
        Reservation::Existing(entry) => assert_eq!(entry.state, LedgerState::Pending),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.product("P1").await.unwrap().unwrap().stock, 6);
}

#[tokio::test]
async fn release_gives_the_units_back_and_confirmed_entries_stay() {
    let (_dir, store) = open().await;
    store.reserve(&sale("t1", "P1", 3)).await.unwrap();
    store.reserve(&sale("t2", "P1", 2)).await.unwrap();
    assert_eq!(store.pending_entries().await.unwrap().len(), 2);
    store.confirm(&["t1".to_owned()]).await.unwrap();
    assert!(store.release("t2").await.unwrap());
    assert!(
        !store.release("t1").await.unwrap(),
        "committed entries are never released"
    );
    assert!(!store.release("t2").await.unwrap(), "twice is a no-op");
    assert_eq!(store.product("P1").await.unwrap().unwrap().stock, 7);
    assert_eq!(
        store.ledger_entry("t1").await.unwrap().unwrap().state,
        LedgerState::Committed
    );
    assert!(store.pending_entries().await.unwrap().is_empty());
    assert_eq!(
        store
            .known_ids(&["t1".into(), "t2".into(), "t9".into()])
            .await
            .unwrap(),
        vec!["t1".to_owned()]
    );
}

#[tokio::test]
async fn concurrent_reservations_never_sell_more_than_the_stock() {
    let (_dir, store) = open().await;
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.reserve(&sale(&format!("c{i}"), "P1", 1)).await })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if let Reservation::Reserved { .. } = task.await.unwrap().unwrap() {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 10);
    assert_eq!(store.product("P1").await.unwrap().unwrap().stock, 0);
}

#[tokio::test]
async fn suggestions_update_in_place_and_approve_exactly_once() {
    let (_dir, store) = open().await;
    let draft = |id: &str, quantity| SuggestionDraft {
        new_id: id.into(),
        product_id: "P1".into(),
        supplier_id: Some("S1".into()),
        quantity,
        unit_price: Some(5.5),
        details: json!({"rule": "forecast"}),
    };
    store
        .apply_suggestions(&[draft("s1", 20)], &[], 1000)
        .await
        .unwrap();
    // A second refresh keeps the pending suggestion's id and updates its quantity.
    store
        .apply_suggestions(&[draft("s2", 25)], &[], 2000)
        .await
        .unwrap();
    let pending = store
        .suggestions(Some(SuggestionStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].id.as_str(), pending[0].quantity), ("s1", 25));
    assert_eq!(pending[0].estimated_cost, Some(25.0 * 5.5));

    let order = store.approve("s1", "po1", 3000).await.unwrap();
    assert_eq!(order.quantity, 25);
    assert_eq!(order.expected_ms, Some(3000 + 4 * 86_400_000));
    assert!(matches!(
        store.approve("s1", "po2", 4000).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.approve("nope", "po3", 4000).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(store.purchase_orders().await.unwrap().len(), 1);
    assert_eq!(store.on_order().await.unwrap()["P1"], 25);

    // A product that no longer needs stock has its pending suggestion expired.
    store
        .apply_suggestions(&[draft("s3", 5)], &[], 5000)
        .await
        .unwrap();
    store
        .apply_suggestions(&[], &["P1".into()], 6000)
        .await
        .unwrap();
    let expired = store
        .suggestions(Some(SuggestionStatus::Expired))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert!(matches!(
        store.approve("s3", "po4", 7000).await,
        Err(Error::Conflict(_))
    ));
}

#[tokio::test]
async fn forecasts_are_replaced_per_product_and_horizon() {
    let (_dir, store) = open().await;
    store
        .save_forecast("P1", 14, 1, &json!({"v": 1}))
        .await
        .unwrap();
    store
        .save_forecast("P1", 14, 2, &json!({"v": 2}))
        .await
        .unwrap();
    store
        .save_forecast("P1", 7, 3, &json!({"v": 3}))
        .await
        .unwrap();
    let stored = store.forecast("P1", 14).await.unwrap().unwrap();
    assert_eq!((stored.computed_ms, stored.forecast), (2, json!({"v": 2})));
    assert_eq!(store.forecast("P2", 14).await.unwrap(), None);
}
