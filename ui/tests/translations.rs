//! Every sentence of the screens is translated: each `@tr(...)` of `ui/ui/*.slint` has a
//! non-empty German entry in `translations/de/LC_MESSAGES/pos-ui.po`, with the same `{}`
//! placeholders; and at run time the German catalogue is what the window shows.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use pos_ui::{headless, Screen};
use support::*;

/// A `@tr` sentence: its singular and, for plurals, its plural form.
type Sentence = (String, Option<String>);

/// Read one string literal starting at `s[0] == '"'`; returns it and the rest after it.
fn literal(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '{' => out.push('{'),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            },
            c => out.push(c),
        }
    }
    None
}

fn sentences_in(source: &str) -> Vec<Sentence> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("@tr(") {
        rest = rest[at + 4..].trim_start();
        let Some((singular, after)) = literal(rest) else {
            continue;
        };
        let after = after.trim_start();
        let plural = match after.strip_prefix('|') {
            Some(p) => literal(p.trim_start()).map(|(p, _)| p),
            None => None,
        };
        found.push((singular, plural));
    }
    found
}

fn slint_sentences() -> Vec<(String, Sentence)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut all = Vec::new();
    // The terminal's screens and, under hub/, the hub's manager display.
    for dir in [root.clone(), root.join("hub"), root.join("setup")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "slint") {
                let source = std::fs::read_to_string(&path).unwrap();
                let file = path.strip_prefix(&root).unwrap().display().to_string();
                all.extend(sentences_in(&source).into_iter().map(|s| (file.clone(), s)));
            }
        }
    }
    assert!(
        all.iter().any(|(file, _)| file.starts_with("hub")),
        "no sentence of the hub display found"
    );
    all
}

/// msgid → translations (one, or one per plural form), from a gettext catalogue.
fn catalogue(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut entries = BTreeMap::new();
    let (mut id, mut strs): (Option<String>, Vec<String>) = (None, Vec::new());
    let mut field = "";
    let unquote = |l: &str| literal(l.trim()).map(|(s, _)| s).unwrap_or_default();
    let mut flush = |id: &mut Option<String>, strs: &mut Vec<String>| {
        if let Some(id) = id.take() {
            entries.insert(id, std::mem::take(strs));
        }
    };
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("msgid ") {
            flush(&mut id, &mut strs);
            id = Some(unquote(rest));
            field = "id";
        } else if line.starts_with("msgid_plural ") {
            field = "plural";
        } else if let Some(rest) = line.strip_prefix("msgstr") {
            let value = rest.split_once(' ').map(|(_, v)| v).unwrap_or("");
            strs.push(unquote(value));
            field = "str";
        } else if line.starts_with('"') {
            let more = unquote(line);
            match field {
                "id" => id.get_or_insert_with(String::new).push_str(&more),
                "str" => {
                    if let Some(last) = strs.last_mut() {
                        last.push_str(&more);
                    }
                }
                _ => {}
            }
        }
    }
    flush(&mut id, &mut strs);
    entries
}

fn placeholders(s: &str) -> Vec<String> {
    let mut p: Vec<String> = s
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
        .collect();
    p.sort();
    p
}

#[test]
fn every_sentence_has_a_german_translation_with_the_same_placeholders() {
    let sentences = slint_sentences();
    assert!(
        sentences.len() > 100,
        "only {} sentences found",
        sentences.len()
    );
    let po = Path::new(env!("CARGO_MANIFEST_DIR")).join("translations/de/LC_MESSAGES/pos-ui.po");
    let de = catalogue(&po);
    let mut missing = Vec::new();
    for (file, (singular, plural)) in &sentences {
        match de.get(singular) {
            Some(t) if t.iter().all(|s| !s.is_empty()) => {
                let forms = if plural.is_some() { 2 } else { 1 };
                assert_eq!(t.len(), forms, "{file}: {singular:?} needs {forms} form(s)");
                for form in t {
                    assert_eq!(
                        placeholders(form),
                        placeholders(singular),
                        "{file}: placeholders of {singular:?} differ in {form:?}"
                    );
                }
            }
            _ => missing.push(match plural {
                Some(p) => format!(
                    "msgid {singular:?}\nmsgid_plural {p:?}\nmsgstr[0] \"\"\nmsgstr[1] \"\"\n"
                ),
                None => format!("msgid {singular:?}\nmsgstr \"\"\n"),
            }),
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "{} sentences have no German translation; add them to {}:\n\n{}",
        missing.len(),
        po.display(),
        missing.join("\n")
    );
}

#[test]
fn the_window_speaks_german_and_writes_german_amounts() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    t.set_locale("de-DE").unwrap();
    assert_eq!(w.get_user_text(), "Gesperrt");
    log_in(t, CASHIER);
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert!(t.scan(COLA_EAN));
    // 1.99 in German: a comma and the euro sign after the number.
    assert_eq!(w.get_total_text(), "1,99\u{a0}€");
    assert_eq!(w.get_items_text(), "1 Zeile");
    assert!(t.scan(COLA_EAN));
    assert_eq!(w.get_items_text(), "2 Zeilen");
    assert!(!t.scan(&unknown_ean()));
    assert!(
        w.get_error_text().starts_with("Unbekannter Barcode"),
        "{}",
        w.get_error_text()
    );
    w.invoke_dismiss_error();
    // A misread check digit says so, in German too.
    assert!(!t.scan("4000000000000"));
    assert_eq!(
        w.get_error_text(),
        "Barcode falsch gelesen: erneut scannen oder die Nummer eintippen."
    );
    w.invoke_dismiss_error();

    // And back: English, with the symbol first.
    t.set_locale("en-GB").unwrap();
    assert_eq!(w.get_total_text(), "€3.98");
    assert_eq!(w.get_items_text(), "2 lines");
    assert!(t.set_locale("xx-??").is_err());
    let _ = headless::last_window();
}
