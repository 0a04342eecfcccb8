#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

//! The catalogue module: a scan finds its product whatever form of the code was printed, a
//! barcode belongs to one product, edits replace barcodes, inactive products leave search and
//! quick keys but still scan, name search is safe with any user text, rebuild == live.

use std::path::Path;

use pos_audit::EventDraft;
use pos_core::sale::barcode::check_digit;
use pos_core::sale::events::{ProductSaved, TaxRateSaved, CATALOGUE};
use pos_core::sale::{parse_barcode, BarcodeRules, Money, Product, TaxRate, Unit};
use pos_core::{DeviceRole, ProductId};
use pos_store::{Store, StoreError};

fn tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn terminal(dir: &Path) -> Store {
    Store::init(dir, DeviceRole::Terminal, "main", "till-1", false)
        .unwrap()
        .0
}

fn product(sku: &str, name: &str, barcodes: &[&str]) -> Product {
    Product {
        id: ProductId::new_v7(),
        sku: sku.into(),
        name: name.into(),
        unit: Unit::Each,
        price: Money(199),
        cost: Money(120),
        tax_class: "A".into(),
        category: "grocery".into(),
        quick_key: None,
        active: true,
        barcodes: barcodes.iter().map(|b| (*b).to_owned()).collect(),
    }
}

fn saved(product: &Product, before: Option<&Product>) -> EventDraft {
    EventDraft::json(
        CATALOGUE,
        ProductSaved::KIND,
        &ProductSaved {
            product: product.clone(),
            before: before.cloned(),
        },
    )
}

fn save(store: &mut Store, product: &Product) {
    store.append(vec![saved(product, None)]).unwrap();
}

fn edit(store: &mut Store, before: &Product, after: &Product) {
    store.append(vec![saved(after, Some(before))]).unwrap();
}

/// What a scanner reading `code` looks up.
fn scan(store: &Store, code: &str) -> Option<Product> {
    let scanned = parse_barcode(code, &BarcodeRules::default()).unwrap();
    store.product_by_code(scanned.lookup_key()).unwrap()
}

fn with_check(body: &str) -> String {
    format!("{body}{}", check_digit(body).unwrap())
}

fn skus(products: &[Product]) -> Vec<&str> {
    products.iter().map(|p| p.sku.as_str()).collect()
}

#[test]
fn a_scan_finds_its_product_in_any_printed_form() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let ean13 = product("EAN13", "Pencils", &["4006381333931"]);
    // Registered with the EAN-13 form of UPC-A 036000291452.
    let upc = product("UPCA", "Tissues", &["0036000291452"]);
    let ean8 = product("EAN8", "Gum", &["96385074"]);
    // UPC-E 04252614 = UPC-A 042100005264.
    let upce = product("UPCE", "Mints", &["04252614"]);
    let plu = product("PLU", "Bananas", &["4011"]);
    let mut apples = product("APPLES", "Apples", &["12345"]);
    apples.unit = Unit::Kg;
    for p in [&ean13, &upc, &ean8, &upce, &plu, &apples] {
        save(&mut store, p);
    }

    assert_eq!(scan(&store, "4006381333931"), Some(ean13.clone()));
    assert_eq!(scan(&store, "036000291452"), Some(upc.clone()), "UPC-A");
    assert_eq!(scan(&store, "0036000291452"), Some(upc.clone()), "EAN-13");
    assert_eq!(
        scan(&store, "00036000291452\r\n"),
        Some(upc.clone()),
        "GTIN-14"
    );
    assert_eq!(scan(&store, "96385074"), Some(ean8.clone()));
    assert_eq!(scan(&store, "04252614"), Some(upce.clone()), "UPC-E");
    assert_eq!(
        scan(&store, "042100005264"),
        Some(upce.clone()),
        "its UPC-A"
    );
    assert_eq!(scan(&store, "4011"), Some(plu.clone()));
    // A scale label carries the PLU as its item number.
    let label = with_check("211234501234");
    assert_eq!(scan(&store, &label), Some(apples.clone()));

    assert_eq!(scan(&store, "5000112637922"), None, "unknown barcode");
    assert_eq!(store.product_by_code("").unwrap(), None);
    assert_eq!(store.product_by_sku("GUM").unwrap(), None);
    assert_eq!(store.product_by_sku("EAN8").unwrap(), Some(ean8.clone()));
    assert_eq!(store.product(upce.id).unwrap(), Some(upce));
    assert_eq!(store.product(ProductId::new_v7()).unwrap(), None);
}

#[test]
fn a_barcode_belongs_to_one_product() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let tissues = product("T-1", "Tissues", &["0036000291452"]);
    save(&mut store, &tissues);
    let before = (store.head(), store.projection_dump().unwrap());

    // The same code in its UPC-A form is the same barcode.
    let copy = product("T-2", "Tissues copy", &["4011", "036000291452"]);
    let err = store.append(vec![saved(&copy, None)]).unwrap_err();
    assert!(
        matches!(&err, StoreError::Rejected { detail, .. }
            if detail == "barcode 036000291452 already belongs to SKU T-1"),
        "{err}"
    );
    // In a batch, the whole commit is refused.
    let ok = product("OK", "Fine", &["96385074"]);
    assert!(store
        .append(vec![saved(&ok, None), saved(&copy, None)])
        .is_err());

    let same_sku = product("T-1", "Other tissues", &["4011"]);
    let err = store.append(vec![saved(&same_sku, None)]).unwrap_err();
    assert!(err.to_string().contains("SKU T-1 already belongs"), "{err}");

    let bad_check = product("BAD", "Bad code", &["4006381333932"]);
    let err = store.append(vec![saved(&bad_check, None)]).unwrap_err();
    assert!(err.to_string().contains("check digit"), "{err}");
    let twice = product("TWICE", "Twice", &["036000291452", "0036000291452"]);
    assert!(store.append(vec![saved(&twice, None)]).is_err());
    let scale_label = product("LABEL", "Label", &[&with_check("211234501234")]);
    assert!(store.append(vec![saved(&scale_label, None)]).is_err());

    assert_eq!((store.head(), store.projection_dump().unwrap()), before);
    assert_eq!(scan(&store, "4011"), None);
    assert_eq!(scan(&store, "96385074"), None);
    assert_eq!(scan(&store, "036000291452"), Some(tissues.clone()));

    // Once the first product gives the code up, another may take it.
    let mut without = tissues.clone();
    without.barcodes.clear();
    edit(&mut store, &tissues, &without);
    save(&mut store, &copy);
    assert_eq!(scan(&store, "0036000291452"), Some(copy));
}

#[test]
fn an_edit_replaces_barcodes_and_search_text() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let before = product("P-1", "Strawberry jam", &["4006381333931", "4011"]);
    save(&mut store, &before);
    let mut after = before.clone();
    after.name = "Apricot jam".into();
    after.price = Money(249);
    after.barcodes = vec!["96385074".into(), "4011".into()];
    edit(&mut store, &before, &after);

    assert_eq!(
        scan(&store, "4006381333931"),
        None,
        "old code no longer finds it"
    );
    assert_eq!(scan(&store, "96385074"), Some(after.clone()));
    assert_eq!(scan(&store, "4011"), Some(after.clone()));
    assert_eq!(store.product(after.id).unwrap().unwrap().price, Money(249));
    assert!(store.search_products("strawb", 10).unwrap().is_empty());
    assert_eq!(
        store.search_products("apri", 10).unwrap(),
        vec![after.clone()]
    );
    // The SKU can change too; the old one is free again.
    let mut renamed = after.clone();
    renamed.sku = "P-2".into();
    edit(&mut store, &after, &renamed);
    assert_eq!(store.product_by_sku("P-1").unwrap(), None);
    assert_eq!(store.product_by_sku("P-2").unwrap(), Some(renamed));
}

#[test]
fn inactive_products_leave_search_and_quick_keys_but_still_scan() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let mut cola = product("COLA", "Cola 330ml", &["4006381333931"]);
    cola.quick_key = Some(2);
    let mut water = product("WATER", "Still water", &["96385074"]);
    water.quick_key = Some(1);
    let mut lemonade = product("LEMON", "Lemonade", &[]);
    lemonade.quick_key = Some(2);
    let plain = product("PLAIN", "Cola light", &[]);
    for p in [&cola, &water, &lemonade, &plain] {
        save(&mut store, p);
    }
    assert_eq!(
        skus(&store.quick_keys().unwrap()),
        ["WATER", "COLA", "LEMON"]
    );
    assert_eq!(skus(&store.search_products("cola", 10).unwrap()).len(), 2);

    let mut off = cola.clone();
    off.active = false;
    edit(&mut store, &cola, &off);
    assert_eq!(skus(&store.quick_keys().unwrap()), ["WATER", "LEMON"]);
    assert_eq!(skus(&store.search_products("cola", 10).unwrap()), ["PLAIN"]);
    let scanned = scan(&store, "4006381333931").unwrap();
    assert!(!scanned.active, "the ticket refuses it by name");
    assert_eq!(store.product_by_sku("COLA").unwrap(), Some(off.clone()));

    // Saving it again while inactive, then reactivating it.
    let mut still_off = off.clone();
    still_off.price = Money(99);
    edit(&mut store, &off, &still_off);
    assert_eq!(skus(&store.search_products("cola", 10).unwrap()), ["PLAIN"]);
    let mut on = still_off.clone();
    on.active = true;
    edit(&mut store, &still_off, &on);
    assert_eq!(
        skus(&store.quick_keys().unwrap()),
        ["WATER", "COLA", "LEMON"]
    );
    assert_eq!(store.search_products("cola 330", 10).unwrap(), vec![on]);
}

#[test]
fn tax_rates_are_upserted_by_class() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let rate = |class: &str, name: &str, rate_bp| TaxRate {
        class: class.into(),
        name: name.into(),
        rate_bp,
    };
    let draft = |rate: &TaxRate, before: Option<&TaxRate>| {
        EventDraft::json(
            CATALOGUE,
            TaxRateSaved::KIND,
            &TaxRateSaved {
                rate: rate.clone(),
                before: before.cloned(),
            },
        )
    };
    let b = rate("B", "VAT 5.5%", 550);
    let a = rate("A", "VAT 19.6%", 1960);
    let a2 = rate("A", "VAT 20%", 2000);
    store
        .append(vec![draft(&b, None), draft(&a, None), draft(&a2, Some(&a))])
        .unwrap();
    assert_eq!(store.tax_rates().unwrap(), vec![a2, b]);
    let err = store
        .append(vec![draft(&rate(" ", "None", 0), None)])
        .unwrap_err();
    assert!(err.to_string().contains("tax class is empty"), "{err}");
}

const WORDS: [&str; 16] = [
    "apple", "banana", "cherry", "cocoa", "coffee", "cola", "cream", "dark", "fresh", "ginger",
    "honey", "lemon", "milk", "orange", "sugar", "vanilla",
];

fn bulk_product(n: usize) -> Product {
    let name = format!(
        "{} {} {} {n}",
        WORDS[n % 16],
        WORDS[(n / 16) % 16],
        ["bar", "drink", "pack", "jar"][(n / 256) % 4]
    );
    let mut p = product(&format!("SKU{n:06}"), &name, &[]);
    p.barcodes = vec![with_check(&format!("400{n:09}"))];
    p.category = ["snacks", "drinks", "dairy"][n % 3].into();
    p
}

#[test]
fn search_is_by_word_prefix_over_100k_products_and_safe_with_any_text() {
    const N: usize = 100_000;
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let special = {
        let mut p = product("ZW-1", "Zwetschgen Marmelade", &[]);
        p.category = "Frühstück".into();
        p
    };
    let creme = product("CB-1", "Crème brûlée (2×100g) \"premium\"", &[]);
    let mut hidden = product("ZW-2", "Zwetschgen Saft", &[]);
    hidden.active = false;
    let mut drafts: Vec<EventDraft> = (0..N).map(|n| saved(&bulk_product(n), None)).collect();
    drafts.extend([&special, &creme, &hidden].map(|p| saved(p, None)));
    store.append(drafts).unwrap();

    assert_eq!(
        store.search_products("zwetsch", 10).unwrap(),
        vec![special.clone()]
    );
    assert_eq!(
        store.search_products("MARM zwe", 10).unwrap(),
        vec![special.clone()]
    );
    assert_eq!(
        store.search_products("fruhst", 10).unwrap(),
        vec![special.clone()],
        "category, accents folded"
    );
    assert_eq!(
        store.search_products("creme brul", 10).unwrap(),
        vec![creme.clone()]
    );
    assert_eq!(
        store.search_products("\"premium\"", 10).unwrap(),
        vec![creme.clone()]
    );
    assert_eq!(store.search_products("sku000042", 10).unwrap().len(), 1);
    // Against a brute-force reading of "every query word starts a word of the product".
    for query in ["honey cher 42", "vanil gin dri 99", "dairy lemon milk jar"] {
        let mut expected: Vec<String> = (0..N)
            .map(bulk_product)
            .filter(|p| {
                let text = format!("{} {} {}", p.name, p.sku, p.category).to_lowercase();
                query
                    .split(' ')
                    .all(|q| text.split(' ').any(|w| w.starts_with(q)))
            })
            .map(|p| p.sku)
            .collect();
        let mut found: Vec<String> = store
            .search_products(query, 500)
            .unwrap()
            .into_iter()
            .map(|p| p.sku)
            .collect();
        assert!(!expected.is_empty() && expected.len() < 500, "{query}");
        expected.sort();
        found.sort();
        assert_eq!(found, expected, "{query}");
    }
    assert!(store
        .search_products("marmelade saft", 10)
        .unwrap()
        .is_empty());
    assert!(
        store.search_products("armelade", 10).unwrap().is_empty(),
        "prefix only"
    );

    // Every result has a word starting with every query word; the limit holds.
    let found = store.search_products("vanil gin", 50).unwrap();
    assert_eq!(found.len(), 50);
    for p in &found {
        let name = p.name.to_lowercase();
        for q in ["vanil", "gin"] {
            assert!(name.split(' ').any(|w| w.starts_with(q)), "{}", p.name);
        }
    }
    assert_eq!(store.search_products("cola", 3).unwrap().len(), 3);
    assert!(store.search_products("cola", 0).unwrap().is_empty());
    assert!(store.search_products("   ", 10).unwrap().is_empty());

    // User text is never FTS syntax.
    for query in [
        "\"",
        "\"\"",
        "(",
        ")",
        "*",
        "cola*",
        "NEAR",
        "NEAR(cola milk)",
        "cola AND",
        "OR cola",
        "NOT",
        "- cola",
        "name:cola",
        "{name sku}: cola",
        "^cola",
        "cola + milk",
        "'",
        ";DROP TABLE catalogue_products",
        "\u{0}",
        "(2×100g)",
    ] {
        if let Err(e) = store.search_products(query, 10) {
            panic!("{query:?}: {e}");
        }
    }
    assert_eq!(store.search_products("(2×100g)", 10).unwrap(), vec![creme]);
    assert_eq!(store.search_products("NEAR(cola", 500).unwrap().len(), 0);

    // Every bulk product scans by its EAN-13 (a sample).
    for n in (0..N).step_by(9973) {
        let p = bulk_product(n);
        assert_eq!(scan(&store, &p.barcodes[0]).unwrap().sku, p.sku);
    }
}

#[test]
fn rebuild_gives_the_live_catalogue() {
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let mut products: Vec<Product> = (0..200).map(bulk_product).collect();
    products[3].quick_key = Some(7);
    products[4].quick_key = Some(1);
    let drafts = products.iter().map(|p| saved(p, None)).collect();
    store.append(drafts).unwrap();
    store
        .append(vec![EventDraft::json(
            CATALOGUE,
            TaxRateSaved::KIND,
            &TaxRateSaved {
                rate: TaxRate {
                    class: "A".into(),
                    name: "VAT 20%".into(),
                    rate_bp: 2000,
                },
                before: None,
            },
        )])
        .unwrap();
    // Edits: renames, barcode moves, deactivations, reactivations.
    for i in (0..200).step_by(7) {
        let before = products[i].clone();
        let after = &mut products[i];
        after.name = format!("renamed {i}");
        after.active = i % 3 != 0;
        after.barcodes.push(format!("{}", 10_000 + i));
        edit(&mut store, &before, after);
    }
    let before = products[21].clone();
    products[21].active = true;
    edit(&mut store, &before, &products[21]);

    let live = store.projection_dump().unwrap();
    assert!(live.contains("[catalogue_search]"));
    assert!(live.contains("renamed 14"));
    let live_search = store.search_products("renamed", 500).unwrap();
    store.rebuild().unwrap();
    assert_eq!(store.projection_dump().unwrap(), live);
    assert_eq!(store.search_products("renamed", 500).unwrap(), live_search);
    assert_eq!(
        skus(&store.quick_keys().unwrap()),
        ["SKU000004", "SKU000003"]
    );
    assert_eq!(scan(&store, "10014").unwrap().name, "renamed 14");
}

#[test]
fn ids_sharing_a_search_slot_keep_separate_rows() {
    // The search row sits at a rowid folded from the id: these two fold alike.
    let dir = tempdir();
    let mut store = terminal(dir.path());
    let mut first = product("S-1", "Slot first", &[]);
    first.id = ProductId::from_bytes([1; 16]);
    let mut second = product("S-2", "Slot second", &[]);
    second.id = ProductId::from_bytes([2; 16]);
    save(&mut store, &first);
    save(&mut store, &second);
    let mut renamed = second.clone();
    renamed.name = "Slot renamed".into();
    edit(&mut store, &second, &renamed);
    let mut off = first.clone();
    off.active = false;
    edit(&mut store, &first, &off);
    assert_eq!(
        store.search_products("slot", 10).unwrap(),
        vec![renamed.clone()]
    );
    edit(&mut store, &off, &first);
    assert_eq!(
        skus(&store.search_products("slot", 10).unwrap()),
        ["S-1", "S-2"]
    );
    let live = store.projection_dump().unwrap();
    store.rebuild().unwrap();
    assert_eq!(store.projection_dump().unwrap(), live);
    assert!(store.search_products("second", 10).unwrap().is_empty());
}
