-- The commerce metadata store: mutable entities, not events. Portable SQL (SQLite now,
-- PostgreSQL later): standard types, epoch milliseconds in BIGINT, no AUTOINCREMENT,
-- upserts as INSERT ... ON CONFLICT, no SQLite-only statements.

CREATE TABLE suppliers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    reliability DOUBLE PRECISION NOT NULL CHECK (reliability >= 0 AND reliability <= 1),
    avg_delivery_days DOUBLE PRECISION NOT NULL CHECK (avg_delivery_days >= 0)
);

CREATE TABLE products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price DOUBLE PRECISION NOT NULL CHECK (price >= 0),
    cost DOUBLE PRECISION NOT NULL CHECK (cost >= 0),
    -- Never negative: a sale decrements it only where enough units remain.
    stock BIGINT NOT NULL CHECK (stock >= 0),
    reorder_point BIGINT NOT NULL CHECK (reorder_point >= 0),
    supplier_id TEXT REFERENCES suppliers (id),
    lead_time_days DOUBLE PRECISION NOT NULL CHECK (lead_time_days >= 0)
);

CREATE INDEX products_category ON products (category);

-- What each supplier charges for a product.
CREATE TABLE supplier_offers (
    supplier_id TEXT NOT NULL REFERENCES suppliers (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    unit_price DOUBLE PRECISION NOT NULL CHECK (unit_price > 0),
    PRIMARY KEY (supplier_id, product_id)
);

CREATE INDEX supplier_offers_product ON supplier_offers (product_id);

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    loyalty_tier TEXT NOT NULL,
    region TEXT NOT NULL,
    signup_ts BIGINT NOT NULL
);

-- Transactions are events of the stream commerce.transactions. A ledger row makes a
-- client-given id idempotent, finds an id's event time, and lets recovery undo a stock
-- reservation whose event never reached the stream: 'pending' from the reservation until
-- the event is durable, 'committed' after.
CREATE TABLE transaction_ledger (
    id TEXT PRIMARY KEY,
    ts BIGINT NOT NULL,
    customer_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    -- Units taken from stock: the quantity for a sale, 0 for imported history.
    reserved BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed')),
    created_ms BIGINT NOT NULL
);

CREATE INDEX transaction_ledger_state ON transaction_ledger (state);

-- The latest demand forecast per product and horizon, as JSON.
CREATE TABLE demand_forecasts (
    product_id TEXT NOT NULL REFERENCES products (id),
    horizon_days BIGINT NOT NULL,
    computed_ms BIGINT NOT NULL,
    forecast TEXT NOT NULL,
    PRIMARY KEY (product_id, horizon_days)
);

CREATE TABLE reorder_suggestions (
    id TEXT PRIMARY KEY,
    product_id TEXT NOT NULL REFERENCES products (id),
    supplier_id TEXT REFERENCES suppliers (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price DOUBLE PRECISION,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'expired')),
    -- JSON: the reorder plan, the forecast it used, the supplier scores.
    details TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    decided_ms BIGINT
);

-- At most one pending suggestion per product: a refresh updates it in place.
CREATE UNIQUE INDEX reorder_suggestions_one_pending
    ON reorder_suggestions (product_id) WHERE status = 'pending';

CREATE TABLE purchase_orders (
    id TEXT PRIMARY KEY,
    -- Unique: one approval, one order, even under concurrent approvals.
    suggestion_id TEXT NOT NULL UNIQUE REFERENCES reorder_suggestions (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    supplier_id TEXT REFERENCES suppliers (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price DOUBLE PRECISION,
    status TEXT NOT NULL CHECK (status IN ('open', 'received', 'cancelled')),
    created_ms BIGINT NOT NULL,
    expected_ms BIGINT
);

CREATE INDEX purchase_orders_product ON purchase_orders (product_id, status);
