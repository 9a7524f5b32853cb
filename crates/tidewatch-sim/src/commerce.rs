//! Commerce generator: an electronics shop's catalog and a stream of orders with labelled
//! fraud.
//!
//! **Catalog.** 40 products in 6 categories, 5 suppliers offering each product at their
//! own price level (2 to 4 offers per product), about 500 customers. Every customer has
//! habits: a home region, a usual time of day (a wrapped normal around a centre hour,
//! UTC), a purchase frequency, a spending level (the products they buy cluster around it
//! in log price) with two favourite categories, and a usual payment method. Most signed up
//! long before [`CommerceConfig::start`]; about 6 % sign up in the 30 days around it
//! (from 3 days before to 27 after) and order only once signed up. The catalog lists them
//! all, including sign-ups still to come.
//!
//! **Orders.** Per hour slice, a Poisson number of orders at rate
//! `orders_per_second * weekly(day) * trend(t) * daily noise * intraday(hour)`, where
//! intraday is what the customers' habits add up to. Each order's customer is drawn by
//! frequency times habit at that hour, its product by the product's current weight
//! (popularity, its own weekly pattern, its own linear trend, autocorrelated daily noise)
//! times the customer's affinity. Honest customers are not perfectly regular: 4 % of their
//! orders come at any hour, 2 % from another region (travel, a gift sent away), 1 % are
//! a splurge outside their price range, 2 % are followed within minutes by a second order
//! (something forgotten), and 2 % of the baskets under 500 hold 4 to 6 items.
//!
//! **Fraud** (labelled `true`), about `fraud_rate` of all orders, in three patterns. Each
//! is made of signals that honest traffic shows one at a time (an order at night, from
//! abroad, a big basket, two orders in a row) and rarely together; a minority of fraud
//! shows a single one and is out of reach of any detector that wants two:
//! - account takeover (60 % of incidents): 1 to 3 orders minutes apart on an established
//!   customer's account, of goods priced from 250 and from 4 times the customer's usual
//!   spending (several of the dearest for a big spender), 85 % from a region other than
//!   home, 85 % at the customer's quiet hours (those their habit does not reach: the
//!   owner is asleep, the fraudster often in another time zone), the others whenever;
//! - card testing (40 %): 3 to 6 cheap orders (up to 60) 20 s to 3 min apart; 85 % from
//!   another region at the customer's quiet hours, 7.5 % only from another region, 7.5 %
//!   only at quiet hours;
//! - new-account fraud: about 2 % of the customers are fraudsters' accounts; within 36 h of
//!   signing up each places 2 to 4 orders of goods from 400, minutes apart, 90 % shipped
//!   to a region other than the one it signed up with. They order nothing else, and
//!   nothing at all when `fraud_rate` is 0.
//!
//! Stock is not tracked: orders never run out of anything.
//!
//! The same seed, start and sequence of `orders` calls give the same orders.

use std::f64::consts::TAU;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch_commerce::model::{Customer, OrderRequest, Product, Supplier, SupplierOffer};
use tidewatch_types::TimestampMs;

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// 2026-01-01T00:00:00Z.
pub const DEFAULT_START: TimestampMs = 1_767_225_600_000;

pub const REGIONS: [&str; 6] = [
    "EU-West", "EU-North", "EU-South", "US-East", "US-West", "APAC",
];
/// Share of customers living in each region.
const REGION_WEIGHTS: [f64; 6] = [0.25, 0.12, 0.13, 0.22, 0.18, 0.10];
const PAYMENT_METHODS: [&str; 4] = ["card", "paypal", "apple_pay", "bank_transfer"];
const PAYMENT_WEIGHTS: [f64; 4] = [0.6, 0.25, 0.1, 0.05];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];

const CUSTOMERS: usize = 500;
/// Shares of customers signing up around the start and of fraudsters' accounts.
const NEWCOMER_SHARE: f64 = 0.06;
const FAKE_ACCOUNT_SHARE: f64 = 0.02;

// Honest customers' departures from habit, per order.
const ODD_HOUR_SHARE: f64 = 0.04;
const TRAVEL_SHARE: f64 = 0.02;
const SPLURGE_SHARE: f64 = 0.01;
const FOLLOW_UP_SHARE: f64 = 0.02;
/// Width of a customer's price range, in log price.
const PRICE_AFFINITY_WIDTH: f64 = 0.7;
/// Weight of a favourite category against any other.
const FAVOURITE_CATEGORY_WEIGHT: f64 = 4.0;

// Fraud patterns.
const TAKEOVER_SHARE: f64 = 0.6;
/// Mean orders per takeover (1, 2 or 3 with 45/35/20 %) and per card test (3..=6).
const TAKEOVER_MEAN_ORDERS: f64 = 1.75;
const CARD_TEST_MEAN_ORDERS: f64 = 4.5;
const TAKEOVER_FOREIGN_SHARE: f64 = 0.85;
/// Share of takeovers timed at the victim's quiet hours (the fraudster works while the
/// owner is unlikely to notice, often from another time zone); the rest happen whenever.
const QUIET_HOURS_SHARE: f64 = 0.85;
/// A takeover buys things at least this many times the victim's usual spending.
const TAKEOVER_SPENDING_MULTIPLE: f64 = 4.0;
/// Card tests both from abroad and at quiet hours; the rest are one or the other, half
/// and half.
const CARD_TEST_BOTH_SHARE: f64 = 0.85;
const FAKE_ACCOUNT_FOREIGN_SHARE: f64 = 0.9;
/// A customer's quiet hours are those their habit does not reach: the chance of an
/// order there is at most twice what the odd orders at any hour alone give.
const QUIET_HOUR_WEIGHT: f64 = 2.0 * ODD_HOUR_SHARE / 24.0;
/// Resellable goods: what account takeovers buy.
const RESELLABLE_FROM_PRICE: f64 = 250.0;
const FAKE_ACCOUNT_FROM_PRICE: f64 = 400.0;
/// What a takeover of a big spender's account buys several of.
const DEAREST_FROM_PRICE: f64 = 1_000.0;
const CARD_TEST_UP_TO_PRICE: f64 = 60.0;

/// Order volume by weekday, Monday first.
const WEEKLY_VOLUME: [f64; 7] = [0.95, 0.92, 0.95, 1.0, 1.05, 1.12, 1.01];
/// Growth of the whole shop per day.
const SHOP_TREND_PER_DAY: f64 = 0.001;
/// Daily demand noise: `e_d = AR * e_{d-1} + N(0, sd)`, a factor `exp(e_d)`.
const NOISE_AR: f64 = 0.6;
const PRODUCT_NOISE_SD: f64 = 0.1;
const SHOP_NOISE_SD: f64 = 0.04;

/// Category: name, SKU prefix, weekly pattern (Monday first).
const CATEGORIES: [(&str, &str, [f64; 7]); 6] = [
    ("Laptops", "LAP", [1.15, 1.1, 1.05, 1.05, 1.0, 0.8, 0.85]),
    ("Smartphones", "PHN", [0.9, 0.85, 0.9, 0.95, 1.1, 1.2, 1.1]),
    ("Audio", "AUD", [0.9, 0.9, 0.95, 1.0, 1.1, 1.15, 1.0]),
    ("Accessories", "ACC", [1.05, 1.0, 1.0, 1.0, 1.0, 0.95, 1.0]),
    ("Smart Home", "HOM", [0.85, 0.85, 0.9, 0.9, 1.0, 1.3, 1.2]),
    ("Gaming", "GAM", [0.8, 0.8, 0.85, 0.9, 1.15, 1.3, 1.2]),
];

/// Products: (category index, name, price).
const PRODUCTS: [(usize, &str, f64); 40] = [
    (0, "Aero 13 Ultrabook", 999.0),
    (0, "Aero 15 Pro", 1499.0),
    (0, "Forge 16 Gaming Laptop", 1899.0),
    (0, "Chromebook Go 11", 329.0),
    (0, "WorkMate 14 Business", 1199.0),
    (0, "Studio 17 Creator", 2499.0),
    (1, "Nova 8", 699.0),
    (1, "Nova 8 Pro", 999.0),
    (1, "Nova Lite", 299.0),
    (1, "Pixelon 5", 799.0),
    (1, "Fold X", 1799.0),
    (1, "Budget One", 149.0),
    (1, "Nova 7 Refurbished", 399.0),
    (2, "Pulse Earbuds", 79.0),
    (2, "Pulse Pro ANC Earbuds", 199.0),
    (2, "Studio Over-Ear Headphones", 299.0),
    (2, "Boom Mini Speaker", 49.0),
    (2, "Boom Max Speaker", 179.0),
    (2, "Soundbar 300", 349.0),
    (2, "Wired Buds", 19.0),
    (3, "USB-C Cable 2 m", 12.0),
    (3, "65 W Charger", 39.0),
    (3, "Phone Case", 25.0),
    (3, "Screen Protector", 15.0),
    (3, "Wireless Mouse", 29.0),
    (3, "Mechanical Keyboard", 89.0),
    (3, "Laptop Sleeve", 35.0),
    (3, "Power Bank 20000 mAh", 49.0),
    (4, "Smart Plug", 19.0),
    (4, "Smart Bulb 4-Pack", 45.0),
    (4, "Video Doorbell", 149.0),
    (4, "Smart Thermostat", 199.0),
    (4, "Indoor Camera", 59.0),
    (4, "Mesh Wi-Fi 3-Pack", 279.0),
    (5, "Console S", 299.0),
    (5, "Console X", 499.0),
    (5, "Wireless Controller", 59.0),
    (5, "Gaming Headset", 99.0),
    (5, "Game Card 50", 50.0),
    (5, "VR Headset", 399.0),
];

/// Suppliers: id, name, reliability, average delivery days, price level against cost.
const SUPPLIERS: [(&str, &str, f64, f64, f64); 5] = [
    ("SUP-1", "Shenzhen Direct", 0.86, 12.0, 0.92),
    ("SUP-2", "EuroTech Distribution", 0.95, 4.0, 1.0),
    ("SUP-3", "Nordic Components", 0.97, 6.0, 1.03),
    ("SUP-4", "QuickShip Wholesale", 0.90, 2.0, 1.08),
    ("SUP-5", "Global Gadgets", 0.92, 8.0, 0.97),
];

const FIRST_NAMES: [&str; 24] = [
    "Ada", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira",
    "Leo", "Maya", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wei",
    "Yara",
];
const LAST_NAMES: [&str; 24] = [
    "Andersen", "Bianchi", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ito",
    "Jansen", "Kowalski", "Lopez", "Martin", "Novak", "Okafor", "Petrov", "Quint", "Rossi",
    "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Young",
];

#[derive(Debug, Clone)]
pub struct CommerceConfig {
    pub seed: u64,
    /// Honest orders per second on average (the weekly pattern, trend and hour of day
    /// move it around that).
    pub orders_per_second: f64,
    /// Share of orders that are fraudulent (about; 0 turns fraud off).
    pub fraud_rate: f64,
    /// Where the simulated history starts (epoch ms): customer sign-ups and product trends
    /// are laid out around it. A live demo uses the time it starts.
    pub start: TimestampMs,
}

impl Default for CommerceConfig {
    fn default() -> Self {
        CommerceConfig {
            seed: 42,
            orders_per_second: 0.02,
            fraud_rate: 0.02,
            start: DEFAULT_START,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AccountKind {
    Established,
    Newcomer,
    /// A fraudster's account: orders only in its burst.
    Fake,
}

struct SimProduct {
    record: Product,
    category: usize,
    popularity: f64,
    /// Demand factor by weekday, Monday first (mean 1).
    weekly: [f64; 7],
    /// Relative change of demand per day since the start.
    trend_per_day: f64,
    /// Current daily noise (log factor).
    noise: f64,
}

struct SimCustomer {
    record: Customer,
    kind: AccountKind,
    frequency: f64,
    /// Chance that an order of this customer falls in each UTC hour (sums to 1).
    hour_weights: [f64; 24],
    /// Weight of each product in this customer's choice (category and price fit).
    affinity: Vec<f64>,
    /// The same without the price fit (a splurge).
    category_affinity: Vec<f64>,
    spending: f64,
    payment: usize,
}

#[derive(Debug, Clone)]
struct Pending {
    ts: TimestampMs,
    order: OrderRequest,
    fraud: bool,
}

/// The simulated shop (module doc).
pub struct CommerceGenerator {
    config: CommerceConfig,
    rng: StdRng,
    products: Vec<SimProduct>,
    suppliers: Vec<Supplier>,
    offers: Vec<SupplierOffer>,
    customers: Vec<SimCustomer>,
    /// Per UTC hour, cumulative weights of honest customers (frequency times habit).
    customers_by_hour: Vec<Vec<f64>>,
    /// Cumulative frequency of established customers (fraud victims).
    victims: Vec<f64>,
    /// Order volume by UTC hour (mean 1), what the customers' habits add up to.
    intraday: [f64; 24],
    /// Day (since the epoch) the daily noise was last drawn for.
    noise_day: Option<i64>,
    shop_noise: f64,
    /// Each product's demand weight on `weights_day` (popularity, weekday, trend, noise).
    day_weights: Vec<f64>,
    weights_day: Option<i64>,
    /// Reused running sums for drawing a product.
    scratch: Vec<f64>,
    /// Orders already decided for later times (follow-ups, the rest of a fraud burst).
    pending: Vec<Pending>,
    fraud_orders: u64,
}

impl CommerceGenerator {
    pub fn new(config: CommerceConfig) -> Self {
        // The catalog has its own stream, so it does not depend on how orders are drawn.
        let mut catalog_rng = StdRng::seed_from_u64(config.seed ^ 0x00c0_ffee_c0ff_ee00);
        let (products, suppliers, offers) = build_products(&mut catalog_rng);
        let customers = build_customers(&mut catalog_rng, &products, config.start);

        let honest_weight = |c: &SimCustomer, hour: usize| match c.kind {
            AccountKind::Fake => 0.0,
            _ => c.frequency * c.hour_weights[hour],
        };
        let customers_by_hour: Vec<Vec<f64>> = (0..24)
            .map(|hour| cumulative(customers.iter().map(|c| honest_weight(c, hour))))
            .collect();
        let by_hour: Vec<f64> = (0..24)
            .map(|hour| customers.iter().map(|c| honest_weight(c, hour)).sum())
            .collect();
        let mean_by_hour = by_hour.iter().sum::<f64>() / 24.0;
        let mut intraday = [1.0; 24];
        if mean_by_hour > 0.0 {
            for (slot, weight) in intraday.iter_mut().zip(&by_hour) {
                *slot = weight / mean_by_hour;
            }
        }
        let victims = cumulative(customers.iter().map(|c| match c.kind {
            AccountKind::Established => c.frequency,
            _ => 0.0,
        }));

        let mut generator = CommerceGenerator {
            rng: StdRng::seed_from_u64(config.seed),
            config,
            products,
            suppliers,
            offers,
            customers,
            customers_by_hour,
            victims,
            intraday,
            noise_day: None,
            shop_noise: 0.0,
            day_weights: Vec::new(),
            weights_day: None,
            scratch: Vec::new(),
            pending: Vec::new(),
            fraud_orders: 0,
        };
        generator.schedule_fake_accounts(&mut catalog_rng);
        generator
    }

    /// Products, suppliers, offers and customers (including those who sign up later).
    pub fn catalog(
        &self,
    ) -> (
        Vec<Product>,
        Vec<Supplier>,
        Vec<SupplierOffer>,
        Vec<Customer>,
    ) {
        (
            self.products.iter().map(|p| p.record.clone()).collect(),
            self.suppliers.clone(),
            self.offers.clone(),
            self.customers.iter().map(|c| c.record.clone()).collect(),
        )
    }

    /// Fraudulent orders generated so far.
    pub fn fraud_injected(&self) -> u64 {
        self.fraud_orders
    }

    /// Orders with times in `[from, to)`, in time order, each with its fraud label.
    pub fn orders(&mut self, from: TimestampMs, to: TimestampMs) -> Vec<(OrderRequest, bool)> {
        let mut slice_start = from;
        while slice_start < to {
            let slice_end =
                (slice_start - slice_start.rem_euclid(MS_PER_HOUR) + MS_PER_HOUR).min(to);
            let day = slice_start.div_euclid(MS_PER_DAY);
            self.advance_noise(day);
            if self.weights_day != Some(day) {
                let (weekday, start) = (weekday(slice_start), self.config.start);
                self.day_weights = self
                    .products
                    .iter()
                    .map(|p| product_weight(p, day, weekday, start))
                    .collect();
                self.weights_day = Some(day);
            }
            self.generate_slice(slice_start, slice_end);
            slice_start = slice_end;
        }
        // Everything decided for this span, in time order; what was due before `from` is
        // gone (the caller skipped that time).
        self.pending.sort_by_key(|p| p.ts);
        let due = self.pending.partition_point(|p| p.ts < to);
        let orders: Vec<(OrderRequest, bool)> = self
            .pending
            .drain(..due)
            .filter(|p| p.ts >= from)
            .map(|p| (p.order, p.fraud))
            .collect();
        self.fraud_orders += orders.iter().filter(|(_, fraud)| *fraud).count() as u64;
        orders
    }

    fn generate_slice(&mut self, from: TimestampMs, to: TimestampMs) {
        let seconds = (to - from) as f64 / 1000.0;
        let weekday = weekday(from);
        let hour = hour_of(from);
        let days_since_start = (from - self.config.start) as f64 / MS_PER_DAY as f64;
        let shop_level = self.config.orders_per_second.max(0.0)
            * WEEKLY_VOLUME[weekday]
            * (1.0 + SHOP_TREND_PER_DAY * days_since_start).max(0.2)
            * self.shop_noise.exp();
        let honest = poisson(&mut self.rng, shop_level * self.intraday[hour] * seconds);
        for _ in 0..honest {
            let ts = self.rng.random_range(from..to);
            self.honest_order(ts);
        }
        let fraud_rate = self.config.fraud_rate.clamp(0.0, 0.5);
        if fraud_rate > 0.0 {
            // Fraud keeps no office hours: flat over the day.
            let mean_orders = TAKEOVER_SHARE * TAKEOVER_MEAN_ORDERS
                + (1.0 - TAKEOVER_SHARE) * CARD_TEST_MEAN_ORDERS;
            let incidents = poisson(
                &mut self.rng,
                shop_level * seconds * fraud_rate / (1.0 - fraud_rate) / mean_orders,
            );
            for _ in 0..incidents {
                let ts = self.rng.random_range(from..to);
                if self.rng.random_bool(TAKEOVER_SHARE) {
                    self.account_takeover(ts);
                } else {
                    self.card_test(ts);
                }
            }
        }
    }

    /// Draws the daily noise of every day up to `day` (in order, so the series does not
    /// depend on how calls cut time).
    fn advance_noise(&mut self, day: i64) {
        let steps = match self.noise_day {
            Some(last) if day <= last => 0,
            Some(last) => (day - last).min(60),
            None => 1,
        };
        for _ in 0..steps {
            self.shop_noise = NOISE_AR * self.shop_noise + SHOP_NOISE_SD * normal(&mut self.rng);
            for product in &mut self.products {
                product.noise = NOISE_AR * product.noise + PRODUCT_NOISE_SD * normal(&mut self.rng);
            }
        }
        self.noise_day = Some(self.noise_day.map_or(day, |last| last.max(day)));
    }

    fn honest_order(&mut self, ts: TimestampMs) {
        let hour = hour_of(ts);
        let Some(customer) =
            self.draw_signed_up(ts, |g| pick(&mut g.rng, &g.customers_by_hour[hour]))
        else {
            return;
        };
        let splurge = self.rng.random_bool(SPLURGE_SHARE);
        let Some(product) = self.pick_product(customer, |_| true, splurge) else {
            return;
        };
        let quantity = self.honest_quantity(product);
        let c = &self.customers[customer];
        let region = if self.rng.random_bool(TRAVEL_SHARE) {
            other_region(&mut self.rng, &c.record.region)
        } else {
            c.record.region.clone()
        };
        let payment = if self.rng.random_bool(0.95) {
            c.payment
        } else {
            self.rng.random_range(0..PAYMENT_METHODS.len())
        };
        let follow_up = self.rng.random_bool(FOLLOW_UP_SHARE);
        let order = self.order(customer, product, quantity, ts, region.clone(), payment);
        self.pending.push(Pending {
            ts,
            order,
            fraud: false,
        });
        if follow_up {
            // Something forgotten: a cheaper item of the same habits, minutes later.
            let later = ts + self.rng.random_range(MS_PER_MINUTE..12 * MS_PER_MINUTE);
            let spending = self.customers[customer].spending;
            if let Some(product) =
                self.pick_product(customer, |p| p.record.price <= spending, false)
            {
                let order = self.order(customer, product, 1, later, region, payment);
                self.pending.push(Pending {
                    ts: later,
                    order,
                    fraud: false,
                });
            }
        }
    }

    /// A product for `customer` among those matching `keep`, by today's demand weights
    /// times the customer's affinity (its category part only for a splurge).
    fn pick_product(
        &mut self,
        customer: usize,
        keep: impl Fn(&SimProduct) -> bool,
        splurge: bool,
    ) -> Option<usize> {
        let c = &self.customers[customer];
        let affinity = if splurge {
            &c.category_affinity
        } else {
            &c.affinity
        };
        self.scratch.clear();
        let mut total = 0.0;
        for ((product, base), a) in self.products.iter().zip(&self.day_weights).zip(affinity) {
            if keep(product) {
                total += base * a;
            }
            self.scratch.push(total);
        }
        pick(&mut self.rng, &self.scratch)
    }

    fn honest_quantity(&mut self, product: usize) -> i64 {
        let price = self.products[product].record.price;
        let u: f64 = self.rng.random();
        match price {
            p if p >= 500.0 => {
                if u < 0.95 {
                    1
                } else {
                    2
                }
            }
            _ if u < 0.75 => 1,
            _ if u < 0.92 => 2,
            _ if u < 0.98 => 3,
            _ => self.rng.random_range(4..=6),
        }
    }

    /// An established customer's account used by someone else: goods far above the
    /// customer's spending, mostly from abroad, mostly at the customer's quiet hours.
    fn account_takeover(&mut self, at: TimestampMs) {
        let Some(victim) = self.draw_signed_up(at, |g| pick(&mut g.rng, &g.victims)) else {
            return;
        };
        let foreign = self.rng.random_bool(TAKEOVER_FOREIGN_SHARE);
        let quiet = self.rng.random_bool(QUIET_HOURS_SHARE);
        let start = self.fraud_time(victim, at, quiet);
        let region = self.fraud_region(victim, foreign);
        let u: f64 = self.rng.random();
        let count = if u < 0.45 {
            1
        } else if u < 0.8 {
            2
        } else {
            3
        };
        let floor =
            RESELLABLE_FROM_PRICE.max(TAKEOVER_SPENDING_MULTIPLE * self.customers[victim].spending);
        let mut targets = self.products_where(|p| p.record.price >= floor);
        // A big spender: several of the dearest things.
        let several = targets.last().is_none_or(|&total| total <= 0.0);
        if several {
            targets = self.products_where(|p| p.record.price >= DEAREST_FROM_PRICE);
        }
        let mut ts = start;
        for _ in 0..count {
            let Some(product) = pick(&mut self.rng, &targets) else {
                return;
            };
            let quantity = if several {
                self.rng.random_range(2..=4)
            } else {
                self.rng.random_range(1..=2)
            };
            let order = self.order(victim, product, quantity, ts, region.clone(), 0);
            self.pending.push(Pending {
                ts,
                order,
                fraud: true,
            });
            ts += self.rng.random_range(MS_PER_MINUTE..5 * MS_PER_MINUTE);
        }
    }

    /// A stolen card tried on an established customer's account with small orders, from
    /// abroad at the customer's quiet hours, or one of the two.
    fn card_test(&mut self, at: TimestampMs) {
        let Some(victim) = self.draw_signed_up(at, |g| pick(&mut g.rng, &g.victims)) else {
            return;
        };
        let u: f64 = self.rng.random();
        let (foreign, quiet) = if u < CARD_TEST_BOTH_SHARE {
            (true, true)
        } else {
            (
                u < (1.0 + CARD_TEST_BOTH_SHARE) / 2.0,
                u >= (1.0 + CARD_TEST_BOTH_SHARE) / 2.0,
            )
        };
        let start = self.fraud_time(victim, at, quiet);
        let region = self.fraud_region(victim, foreign);
        let count = self.rng.random_range(3..=6);
        let cheap = self.products_where(|p| p.record.price <= CARD_TEST_UP_TO_PRICE);
        let mut ts = start;
        for _ in 0..count {
            let Some(product) = pick(&mut self.rng, &cheap) else {
                return;
            };
            let order = self.order(victim, product, 1, ts, region.clone(), 0);
            self.pending.push(Pending {
                ts,
                order,
                fraud: true,
            });
            ts += self.rng.random_range(20_000..3 * MS_PER_MINUTE);
        }
    }

    /// Plans the bursts of the fraudsters' accounts (when fraud is on).
    fn schedule_fake_accounts(&mut self, rng: &mut StdRng) {
        if self.config.fraud_rate <= 0.0 {
            return;
        }
        let expensive = self.products_where(|p| p.record.price >= FAKE_ACCOUNT_FROM_PRICE);
        let fakes: Vec<usize> = (0..self.customers.len())
            .filter(|&i| self.customers[i].kind == AccountKind::Fake)
            .collect();
        for account in fakes {
            let signup = self.customers[account].record.signup_ts;
            let mut ts = signup + rng.random_range(10 * MS_PER_MINUTE..36 * MS_PER_HOUR);
            let region = if rng.random_bool(FAKE_ACCOUNT_FOREIGN_SHARE) {
                other_region(rng, &self.customers[account].record.region)
            } else {
                self.customers[account].record.region.clone()
            };
            for _ in 0..rng.random_range(2..=4) {
                let Some(product) = pick(rng, &expensive) else {
                    return;
                };
                let quantity = rng.random_range(1..=2);
                let order = self.order(account, product, quantity, ts, region.clone(), 0);
                self.pending.push(Pending {
                    ts,
                    order,
                    fraud: true,
                });
                ts += rng.random_range(MS_PER_MINUTE..10 * MS_PER_MINUTE);
            }
        }
    }

    /// When an incident drawn at `at` starts: at `at`, or if `quiet`, at a random minute
    /// of one of the victim's quiet hours in the day after it.
    fn fraud_time(&mut self, victim: usize, at: TimestampMs, quiet: bool) -> TimestampMs {
        if !quiet {
            return at;
        }
        let habit = self.customers[victim].hour_weights;
        let quiet: Vec<i64> = (1..=24)
            .filter(|ahead| {
                let hour = hour_of(at + ahead * MS_PER_HOUR);
                habit[hour] <= QUIET_HOUR_WEIGHT
            })
            .collect();
        if quiet.is_empty() {
            return at;
        }
        let ahead = quiet[self.rng.random_range(0..quiet.len())];
        let hour_start = (at + ahead * MS_PER_HOUR).div_euclid(MS_PER_HOUR) * MS_PER_HOUR;
        hour_start + self.rng.random_range(0..MS_PER_HOUR)
    }

    fn fraud_region(&mut self, customer: usize, foreign: bool) -> String {
        let home = &self.customers[customer].record.region;
        if foreign {
            other_region(&mut self.rng, home)
        } else {
            home.clone()
        }
    }

    /// A customer drawn by `draw` who has signed up by `ts` (a few tries: newcomers who
    /// have not signed up yet are drawn again).
    fn draw_signed_up(
        &mut self,
        ts: TimestampMs,
        mut draw: impl FnMut(&mut Self) -> Option<usize>,
    ) -> Option<usize> {
        for _ in 0..8 {
            let customer = draw(self)?;
            if self.customers[customer].record.signup_ts <= ts {
                return Some(customer);
            }
        }
        None
    }

    /// Cumulative weights: 1 for the products matching `keep`, 0 for the others.
    fn products_where(&self, keep: impl Fn(&SimProduct) -> bool) -> Vec<f64> {
        cumulative(
            self.products
                .iter()
                .map(|p| if keep(p) { 1.0 } else { 0.0 }),
        )
    }

    fn order(
        &self,
        customer: usize,
        product: usize,
        quantity: i64,
        ts: TimestampMs,
        region: String,
        payment: usize,
    ) -> OrderRequest {
        OrderRequest {
            customer_id: self.customers[customer].record.id.clone(),
            product_id: self.products[product].record.id.clone(),
            quantity,
            ts: Some(ts),
            region,
            payment_method: PAYMENT_METHODS[payment % PAYMENT_METHODS.len()].to_owned(),
            id: None,
        }
    }
}

/// A product's demand weight on a day (before the customer's affinity).
fn product_weight(product: &SimProduct, day: i64, weekday: usize, start: TimestampMs) -> f64 {
    let days_since_start = (day * MS_PER_DAY - start) as f64 / MS_PER_DAY as f64;
    let trend = (1.0 + product.trend_per_day * days_since_start).max(0.2);
    product.popularity * product.weekly[weekday] * trend * product.noise.exp()
}

fn build_products(rng: &mut StdRng) -> (Vec<SimProduct>, Vec<Supplier>, Vec<SupplierOffer>) {
    let suppliers: Vec<Supplier> = SUPPLIERS
        .iter()
        .map(|&(id, name, reliability, days, _)| Supplier {
            id: id.to_owned(),
            name: name.to_owned(),
            reliability,
            avg_delivery_days: days,
        })
        .collect();
    let mut offers = Vec::new();
    let mut per_category = [0usize; CATEGORIES.len()];
    let mut products = Vec::with_capacity(PRODUCTS.len());
    for &(category, name, price) in &PRODUCTS {
        per_category[category] += 1;
        let (category_name, prefix, pattern) = CATEGORIES[category];
        let sku = format!("{prefix}-{:03}", per_category[category]);
        let cost = (price * rng.random_range(0.55..0.75) * 100.0).round() / 100.0;
        // 2 to 4 of the 5 suppliers, at their price level with a little jitter.
        let mut chosen: Vec<usize> = (0..SUPPLIERS.len()).collect();
        for i in (1..chosen.len()).rev() {
            chosen.swap(i, rng.random_range(0..=i));
        }
        chosen.truncate(rng.random_range(2..=4));
        chosen.sort_unstable();
        for &s in &chosen {
            let level = SUPPLIERS[s].4 * rng.random_range(0.97..1.03);
            offers.push(SupplierOffer {
                supplier_id: SUPPLIERS[s].0.to_owned(),
                product_id: sku.clone(),
                unit_price: (cost * level * 100.0).round() / 100.0,
            });
        }
        let usual = chosen[0];
        // Cheap things sell more; each product has its own pull.
        let popularity = rng.random_range(0.6..1.6) / price.sqrt();
        let amplitude = rng.random_range(0.7..1.5);
        let mut weekly = pattern.map(|factor| 1.0 + amplitude * (factor - 1.0));
        let mean = weekly.iter().sum::<f64>() / 7.0;
        weekly.iter_mut().for_each(|w| *w /= mean);
        products.push(SimProduct {
            record: Product {
                id: sku,
                name: name.to_owned(),
                category: category_name.to_owned(),
                price,
                cost,
                // Set below, once the expected demand is known.
                stock: 0,
                reorder_point: 0,
                supplier_id: Some(SUPPLIERS[usual].0.to_owned()),
                lead_time_days: SUPPLIERS[usual].3 + 1.0,
            },
            category,
            popularity,
            weekly,
            trend_per_day: rng.random_range(-0.003..0.006),
            noise: 0.0,
        });
    }
    // Stock for 10 to 40 days of demand at the default rate, reorder point at the demand
    // over lead time plus 3 days.
    let total_popularity: f64 = products.iter().map(|p| p.popularity).sum();
    let daily_orders = CommerceConfig::default().orders_per_second * 86_400.0;
    for product in &mut products {
        let daily = daily_orders * product.popularity / total_popularity.max(f64::MIN_POSITIVE);
        product.record.stock = (daily * rng.random_range(10.0..40.0)).round() as i64;
        product.record.reorder_point =
            (daily * (product.record.lead_time_days + 3.0)).ceil() as i64;
    }
    (products, suppliers, offers)
}

fn build_customers(
    rng: &mut StdRng,
    products: &[SimProduct],
    start: TimestampMs,
) -> Vec<SimCustomer> {
    let region_weights = cumulative(REGION_WEIGHTS.iter().copied());
    let payment_weights = cumulative(PAYMENT_WEIGHTS.iter().copied());
    (0..CUSTOMERS)
        .map(|index| {
            let u: f64 = rng.random();
            let kind = if u < FAKE_ACCOUNT_SHARE {
                AccountKind::Fake
            } else if u < FAKE_ACCOUNT_SHARE + NEWCOMER_SHARE {
                AccountKind::Newcomer
            } else {
                AccountKind::Established
            };
            let signup_ts = match kind {
                AccountKind::Established => {
                    start - rng.random_range(30 * MS_PER_DAY..1_000 * MS_PER_DAY)
                }
                _ => start + rng.random_range(-3 * MS_PER_DAY..27 * MS_PER_DAY),
            };
            let region = pick(rng, &region_weights).unwrap_or(0);
            // Usual time of day: evenings are the busiest, some shop at lunch, in the
            // morning or late at night.
            let centre = match rng.random_range(0..100) {
                0..45 => rng.random_range(18.0..22.0),
                45..70 => rng.random_range(11.0..14.0),
                70..85 => rng.random_range(7.0..9.5),
                _ => rng.random_range(22.0..26.0),
            };
            let spread = rng.random_range(1.0..2.5);
            let frequency = (0.5 * normal(rng)).exp();
            let spending = (120.0f64.ln() + 1.0 * normal(rng))
                .exp()
                .clamp(15.0, 2_500.0);
            let favourites = [
                rng.random_range(0..CATEGORIES.len()),
                rng.random_range(0..CATEGORIES.len()),
            ];
            let category_affinity: Vec<f64> = products
                .iter()
                .map(|p| {
                    if favourites.contains(&p.category) {
                        FAVOURITE_CATEGORY_WEIGHT
                    } else {
                        1.0
                    }
                })
                .collect();
            let affinity = products
                .iter()
                .zip(&category_affinity)
                .map(|(p, category)| {
                    let distance = (p.record.price / spending).ln() / PRICE_AFFINITY_WIDTH;
                    category * (-0.5 * distance * distance).exp()
                })
                .collect();
            let tier = match rng.random_range(0..100) {
                0..50 => 0,
                50..80 => 1,
                80..95 => 2,
                _ => 3,
            };
            SimCustomer {
                record: Customer {
                    id: format!("C{:04}", index + 1),
                    name: format!(
                        "{} {}",
                        FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())],
                        LAST_NAMES[rng.random_range(0..LAST_NAMES.len())]
                    ),
                    loyalty_tier: TIERS[tier].to_owned(),
                    region: REGIONS[region].to_owned(),
                    signup_ts,
                },
                kind,
                frequency,
                hour_weights: hour_habit(centre, spread),
                affinity,
                category_affinity,
                spending,
                payment: pick(rng, &payment_weights).unwrap_or(0),
            }
        })
        .collect()
}

/// Chance of each UTC hour for a customer whose orders centre on `centre` (hours, may
/// pass 24) with standard deviation `spread`, plus the odd order at any hour.
fn hour_habit(centre: f64, spread: f64) -> [f64; 24] {
    let mut weights = [0.0; 24];
    for (hour, weight) in weights.iter_mut().enumerate() {
        let middle = hour as f64 + 0.5;
        *weight = (-1..=1)
            .map(|wrap| {
                let d = (middle - centre + 24.0 * f64::from(wrap)) / spread;
                (-0.5 * d * d).exp()
            })
            .sum();
    }
    let total: f64 = weights.iter().sum();
    for weight in &mut weights {
        *weight = (1.0 - ODD_HOUR_SHARE) * *weight / total + ODD_HOUR_SHARE / 24.0;
    }
    weights
}

fn other_region(rng: &mut StdRng, home: &str) -> String {
    let others: Vec<&str> = REGIONS.iter().copied().filter(|r| *r != home).collect();
    others[rng.random_range(0..others.len())].to_owned()
}

/// Monday = 0.
fn weekday(ts: TimestampMs) -> usize {
    // 1970-01-01 was a Thursday.
    usize::try_from((ts.div_euclid(MS_PER_DAY) + 3).rem_euclid(7)).unwrap_or(0)
}

fn hour_of(ts: TimestampMs) -> usize {
    usize::try_from(ts.rem_euclid(MS_PER_DAY) / MS_PER_HOUR).unwrap_or(0)
}

/// Running sums of `weights` (for [`pick`]).
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .map(|w| {
            total += w.max(0.0);
            total
        })
        .collect()
}

/// An index drawn with probability proportional to its weight, from running sums; `None`
/// when every weight is 0.
fn pick(rng: &mut StdRng, cumulative: &[f64]) -> Option<usize> {
    let total = *cumulative.last()?;
    if total <= 0.0 {
        return None;
    }
    let target = rng.random_range(0.0..total);
    Some(
        cumulative
            .partition_point(|&c| c <= target)
            .min(cumulative.len() - 1),
    )
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

/// A Poisson draw: Knuth's product of uniforms for small means, the normal approximation
/// for large ones.
fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if !mean.is_finite() || mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        return (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u64;
    }
    let limit = (-mean).exp();
    let mut product: f64 = rng.random();
    let mut count = 0;
    while product > limit {
        product *= rng.random::<f64>();
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;

    /// Monday 2026-11-23 00:00 UTC.
    const T0: i64 = 1_795_392_000_000;

    fn generator(seed: u64) -> CommerceGenerator {
        CommerceGenerator::new(CommerceConfig {
            seed,
            start: T0,
            ..CommerceConfig::default()
        })
    }

    fn days(g: &mut CommerceGenerator, count: i64) -> Vec<(OrderRequest, bool)> {
        (0..count)
            .flat_map(|d| g.orders(T0 + d * MS_PER_DAY, T0 + (d + 1) * MS_PER_DAY))
            .collect()
    }

    #[test]
    fn the_catalog_is_complete_and_consistent() {
        let (products, suppliers, offers, customers) = generator(1).catalog();
        assert_eq!(products.len(), 40);
        assert_eq!(suppliers.len(), 5);
        assert_eq!(customers.len(), CUSTOMERS);
        let categories: HashSet<&str> = products.iter().map(|p| p.category.as_str()).collect();
        assert_eq!(categories.len(), 6);
        let skus: HashSet<&str> = products.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(skus.len(), 40);
        for p in &products {
            assert!(p.cost > 0.0 && p.cost < p.price, "{p:?}");
            assert!(p.stock > 0 && p.reorder_point > 0, "{p:?}");
            let offered: Vec<&SupplierOffer> =
                offers.iter().filter(|o| o.product_id == p.id).collect();
            assert!((2..=4).contains(&offered.len()), "{p:?}");
            assert!(
                offered
                    .iter()
                    .any(|o| Some(&o.supplier_id) == p.supplier_id.as_ref())
            );
        }
        let ids: HashSet<&str> = customers.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids.len(), CUSTOMERS);
        assert!(
            customers
                .iter()
                .all(|c| REGIONS.contains(&c.region.as_str()))
        );
        let recent = customers
            .iter()
            .filter(|c| c.signup_ts > T0 - 7 * MS_PER_DAY)
            .count();
        assert!((20..70).contains(&recent), "{recent} recent sign-ups");
        assert_eq!(generator(1).catalog(), generator(1).catalog());
    }

    #[test]
    fn the_same_seed_gives_the_same_orders_and_another_seed_does_not() {
        let a = days(&mut generator(7), 3);
        let b = days(&mut generator(7), 3);
        let c = days(&mut generator(8), 3);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn orders_are_in_range_in_order_and_refer_to_the_catalog() {
        let mut g = generator(3);
        let (products, _, _, customers) = g.catalog();
        let customers: HashMap<&str, &Customer> =
            customers.iter().map(|c| (c.id.as_str(), c)).collect();
        let products: HashSet<&str> = products.iter().map(|p| p.id.as_str()).collect();
        // Uneven steps, as a live feed makes them.
        let mut orders = Vec::new();
        let mut t = T0;
        for step in [1_000, 250_000, 3_600_000, 7_777_777, 86_400_000] {
            let batch = g.orders(t, t + step);
            assert!(
                batch
                    .iter()
                    .all(|(o, _)| (t..t + step).contains(&o.ts.unwrap()))
            );
            assert!(batch.windows(2).all(|w| w[0].0.ts <= w[1].0.ts));
            orders.extend(batch);
            t += step;
        }
        assert!(orders.len() > 1_000, "{}", orders.len());
        for (order, _) in &orders {
            let customer = customers[order.customer_id.as_str()];
            assert!(customer.signup_ts <= order.ts.unwrap());
            assert!(products.contains(order.product_id.as_str()));
            assert!(order.quantity >= 1);
            assert!(REGIONS.contains(&order.region.as_str()));
        }
        assert_eq!(
            g.fraud_injected(),
            orders.iter().filter(|(_, f)| *f).count() as u64
        );
    }

    #[test]
    fn the_fraud_share_is_near_the_configured_rate_and_zero_turns_it_off() {
        let orders = days(&mut generator(5), 14);
        let fraud = orders.iter().filter(|(_, f)| *f).count() as f64;
        let share = fraud / orders.len() as f64;
        assert!((0.012..0.035).contains(&share), "fraud share {share}");

        let mut honest = CommerceGenerator::new(CommerceConfig {
            fraud_rate: 0.0,
            start: T0,
            ..CommerceConfig::default()
        });
        assert!(days(&mut honest, 14).iter().all(|(_, f)| !f));
    }

    #[test]
    fn demand_has_a_weekly_pattern_and_volume_follows_the_rate() {
        let mut g = generator(9);
        let orders = days(&mut g, 28);
        // 0.02 orders/s is 1728 a day; fraud adds about 2 %.
        let per_day = orders.len() as f64 / 28.0;
        assert!((1_500.0..2_100.0).contains(&per_day), "{per_day} a day");
        // Gaming sells more on Saturdays than on Mondays.
        let (products, ..) = g.catalog();
        let gaming: HashSet<&str> = products
            .iter()
            .filter(|p| p.category == "Gaming")
            .map(|p| p.id.as_str())
            .collect();
        let mut by_weekday = [0i64; 7];
        for (order, _) in &orders {
            if gaming.contains(order.product_id.as_str()) {
                by_weekday[weekday(order.ts.unwrap())] += order.quantity;
            }
        }
        assert!(
            by_weekday[5] as f64 > 1.2 * by_weekday[0] as f64,
            "{by_weekday:?}"
        );
    }

    #[test]
    fn helpers_count_weekdays_hours_and_draw_sensibly() {
        assert_eq!(weekday(T0), 0);
        assert_eq!(weekday(T0 + 5 * MS_PER_DAY + 3), 5);
        assert_eq!(weekday(-1), 2, "1969-12-31 was a Wednesday");
        assert_eq!(hour_of(T0 + 13 * MS_PER_HOUR + 59 * MS_PER_MINUTE), 13);
        let habit = hour_habit(23.5, 1.0);
        assert!((habit.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(habit[23] > 0.3 && habit[0] > 0.2 && habit[12] < 0.01);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pick(&mut rng, &[]), None);
        assert_eq!(pick(&mut rng, &[0.0, 0.0]), None);
        assert_eq!(pick(&mut rng, &[0.0, 1.0, 1.0]), Some(1));
        let mean = (0..2_000).map(|_| poisson(&mut rng, 3.0)).sum::<u64>() as f64 / 2_000.0;
        assert!((mean - 3.0).abs() < 0.2, "{mean}");
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
    }
}
