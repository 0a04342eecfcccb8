//! The sale page's product grid, numeric entry and search. Keyed digits mean what the key
//! tapped after them says: a quantity, a weight in grams, a price, a percentage or a PLU. The
//! engine decides whether that is allowed (and asks for an approval where it must).

use super::msg::Msg;
use pos_core::sale::{Discount, LineNo, Product, Quantity, Unit};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};

use super::{keyed_money, push_digit, Pending, State, Terminal};
use crate::{AppWindow, ProductKey, SalePage};

/// Digits the entry takes: enough for 9 999 999.99 or a 13-digit PLU/EAN.
const ENTRY_MAX: usize = 13;
const SEARCH_MAX: usize = 40;
/// The grid shows at most this many search results.
const SEARCH_RESULTS: usize = 12;
/// What the category tabs call every quick key.
pub(super) const ALL: &str = "All";

#[derive(Debug, Default)]
pub(super) struct SaleUi {
    entry: String,
    category: usize,
    categories: Vec<String>,
    quick_keys: Vec<Product>,
    search: Option<String>,
    results: Vec<Product>,
}

impl SaleUi {
    /// The products the grid shows now.
    fn visible(&self) -> Vec<&Product> {
        if self.search.is_some() {
            return self.results.iter().collect();
        }
        let category = self.categories.get(self.category);
        self.quick_keys
            .iter()
            .filter(|p| self.category == 0 || category == Some(&p.category))
            .collect()
    }
}

impl State {
    /// Load the quick keys and their categories (at login: the catalogue may have changed).
    pub(super) fn load_quick_keys(&mut self) {
        match self.engine().quick_keys() {
            Ok(keys) => {
                let mut categories = vec![ALL.to_owned()];
                for p in &keys {
                    if !categories.contains(&p.category) {
                        categories.push(p.category.clone());
                    }
                }
                self.sale.categories = categories;
                self.sale.quick_keys = keys;
                self.sale.category = 0;
            }
            Err(e) => self.fail(e),
        }
    }

    /// The line an entry key acts on: the selected one, else the newest line not voided.
    fn target_line(&self, selected: i32) -> Option<LineNo> {
        if let Ok(i) = u32::try_from(selected) {
            return Some(LineNo(i + 1));
        }
        let lines = self.engine().ticket()?.lines();
        let index = lines.iter().rposition(|l| !l.voided)?;
        u32::try_from(index + 1).ok().map(LineNo)
    }

    fn product_tapped(&mut self, index: usize) {
        let Some(product) = self.sale.visible().get(index).map(|p| (*p).clone()) else {
            return;
        };
        let entry = std::mem::take(&mut self.sale.entry);
        let qty = match (product.unit, entry.parse::<i64>()) {
            // Weighed goods: the keyed number is grams (a scale would send it).
            (Unit::Kg, Ok(grams)) => Quantity(grams),
            (Unit::Kg, Err(_)) => {
                self.hint = Msg::with("weigh-first", &product.name);
                return;
            }
            (Unit::Each, Ok(n)) => Quantity::units(n),
            (Unit::Each, Err(_)) => Quantity::ONE,
        };
        match self.engine_mut().add(&product.sku, qty) {
            Ok(_) => {
                self.balance = None;
                self.sale.search = None;
                self.hint = Msg::with("added", &product.name);
            }
            Err(e) => self.fail(e),
        }
    }

    fn entry_action(&mut self, action: &str, selected: i32) {
        let entry = std::mem::take(&mut self.sale.entry);
        let Ok(n) = entry.parse::<i64>() else {
            self.hint = Msg::new("key-number-first");
            return;
        };
        if action == "plu" {
            self.scan(&entry);
            return;
        }
        if action == "ticket-discount" {
            return self.percent_discount(None, n);
        }
        let Some(line) = self.target_line(selected) else {
            self.hint = Msg::new("no-line");
            return;
        };
        match action {
            "qty" => {
                let unit = self
                    .engine()
                    .ticket()
                    .and_then(|t| t.line(line).ok())
                    .map(|l| l.unit);
                let qty = match unit {
                    Some(Unit::Kg) => Quantity(n),
                    _ => Quantity::units(n),
                };
                if let Err(e) = self.engine_mut().set_quantity(line, qty) {
                    self.fail(e);
                }
            }
            "price" => match keyed_money(&entry) {
                Some(price) => self.ask_approval(Pending::OverridePrice { line, price }),
                None => self.hint = Msg::new("key-price"),
            },
            "line-discount" => self.percent_discount(Some(line), n),
            _ => {}
        }
    }

    /// `percent` whole percent off a line or the ticket; the engine asks for an approval
    /// above the shop's threshold.
    fn percent_discount(&mut self, line: Option<LineNo>, percent: i64) {
        let Some(bp) = percent
            .checked_mul(100)
            .and_then(|bp| u32::try_from(bp).ok())
        else {
            self.hint = Msg::new("percent-too-large");
            return;
        };
        self.attempt(Pending::Discount {
            line,
            discount: Discount::Percent(bp),
        });
    }

    fn search_key(&mut self, key: &str) {
        let Some(query) = &mut self.sale.search else {
            return;
        };
        for ch in key.chars() {
            match ch {
                '\u{8}' | '\u{7f}' => {
                    query.pop();
                }
                c if !c.is_control() && query.chars().count() < SEARCH_MAX => query.push(c),
                _ => {}
            }
        }
        self.run_search();
    }

    fn run_search(&mut self) {
        let query = self.sale.search.clone().unwrap_or_default();
        if query.trim().is_empty() {
            self.sale.results.clear();
            return;
        }
        match self.engine().search(&query) {
            Ok(mut found) => {
                found.truncate(SEARCH_RESULTS);
                self.sale.results = found;
            }
            Err(e) => self.fail(e),
        }
    }

    /// Whether typed text goes to the search field (a physical keyboard on the sale screen).
    pub(super) fn searching(&self) -> bool {
        self.sale.search.is_some()
    }

    pub(super) fn type_search(&mut self, text: &str) {
        self.search_key(text);
    }
}

pub(super) fn bind(t: &Terminal) {
    let w = t.window();
    let page = w.global::<SalePage<'_>>();
    page.on_category_picked(t.on_index(|s, i| {
        s.sale.search = None;
        if i < s.sale.categories.len() {
            s.sale.category = i;
        }
    }));
    page.on_product_tapped(t.on_index(State::product_tapped));
    page.on_entry_digit(t.on_text(|s, d| push_digit(&mut s.sale.entry, d, ENTRY_MAX)));
    page.on_entry_clear(t.on(|s| s.sale.entry.clear()));
    page.on_entry_back(t.on(|s| {
        s.sale.entry.pop();
    }));
    let weak = w.as_weak();
    page.on_entry_action(t.on_text(move |s, action| {
        let selected = weak.upgrade().map_or(-1, |w| w.get_selected_line());
        s.entry_action(action, selected);
    }));
    page.on_search_open(t.on(|s| {
        s.sale.search = Some(String::new());
        s.sale.results.clear();
    }));
    page.on_search_close(t.on(|s| s.sale.search = None));
    page.on_search_key(t.on_text(State::search_key));
}

pub(super) fn show(s: &State, w: &AppWindow) {
    let page = w.global::<SalePage<'_>>();
    let categories: Vec<SharedString> = s
        .sale
        .categories
        .iter()
        .map(|c| SharedString::from(c.as_str()))
        .collect();
    page.set_categories(ModelRc::new(VecModel::from(categories)));
    page.set_category(i32::try_from(s.sale.category).unwrap_or(0));
    let keys: Vec<ProductKey> = s
        .sale
        .visible()
        .iter()
        .map(|p| ProductKey {
            label: p.name.as_str().into(),
            price: s.money(p.price).into(),
            weighed: p.unit == Unit::Kg,
        })
        .collect();
    page.set_products(ModelRc::new(VecModel::from(keys)));
    let entry = &s.sale.entry;
    page.set_entry_text(entry.as_str().into());
    page.set_searching(s.sale.search.is_some());
    page.set_search_text(s.sale.search.clone().unwrap_or_default().into());
    let status = match &s.sale.search {
        Some(q) if !q.trim().is_empty() => Msg::count("found", s.sale.results.len()),
        _ => Msg::default(),
    };
    page.set_status_text(status.text(w));
}
