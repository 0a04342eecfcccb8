//! The two outputs: a table for people, one JSON object for machines.

use serde::Serialize;

use crate::figure::{group, Figure};

#[derive(Serialize)]
struct Report<'a> {
    figures: &'a [Figure],
}

/// `{"figures": [...]}` (DESIGN.md "pos-bench output").
pub fn json(figures: &[Figure]) -> serde_json::Result<String> {
    serde_json::to_string_pretty(&Report { figures })
}

/// The table, then per figure how its goal was checked and how it was measured.
pub fn table(figures: &[Figure]) -> String {
    let header = [
        "id",
        "name",
        "value",
        "unit",
        "baseline name",
        "baseline",
        "ratio",
        "goal",
        "check",
    ];
    let rows: Vec<[String; 9]> = figures
        .iter()
        .map(|f| {
            [
                f.id.to_owned(),
                f.name.to_owned(),
                group(f.value),
                f.unit.to_owned(),
                f.baseline_name.to_owned(),
                group(f.baseline),
                if f.ratio.is_finite() {
                    f.ratio.to_string()
                } else {
                    "n/a".into()
                },
                f.goal.to_owned(),
                if f.passed() { "PASS" } else { "MISS" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Numbers right-aligned, text left-aligned.
    let numeric = [false, false, true, false, false, true, true, false, false];
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let w = widths[i];
            if numeric[i] {
                out.push_str(&format!("{cell:>w$}"));
            } else {
                out.push_str(&format!("{cell:<w$}"));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&header.map(str::to_owned));
    out.push_str(&line(&widths.map(|w| "-".repeat(w))));
    for row in &rows {
        out.push_str(&line(row));
    }
    for f in figures {
        out.push('\n');
        let checks: Vec<String> = f
            .checks()
            .iter()
            .map(|c| format!("{} {}", c.what, if c.pass { "PASS" } else { "MISS" }))
            .collect();
        out.push_str(&format!(
            "{} {}: goal {} -> {} ({} is better)\n",
            f.id,
            f.name,
            f.goal,
            checks.join("; "),
            match f.better {
                crate::figure::Better::Lower => "lower",
                crate::figure::Better::Higher => "higher",
            }
        ));
        for note in &f.notes {
            out.push_str(&format!("   {note}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figure::{Better, Cond, Meta};

    fn p1() -> Figure {
        Figure::new(
            &Meta {
                id: "P1",
                name: "durable sale commit",
                unit: "us",
                baseline_name: "raw SQLite durable insert",
                better: Better::Lower,
                goal: "ratio <= 2",
                conditions: &[Cond::RatioAtMost(2.0)],
            },
            412.0,
            260.0,
        )
        .note("not in the JSON")
    }

    #[test]
    fn json_has_exactly_the_documented_shape() {
        let text = json(&[p1()]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let top = v.as_object().unwrap();
        assert_eq!(top.keys().collect::<Vec<_>>(), ["figures"]);
        let figures = v["figures"].as_array().unwrap();
        assert_eq!(figures.len(), 1);
        let mut keys: Vec<&str> = figures[0]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "baseline",
                "baseline_name",
                "better",
                "goal",
                "id",
                "name",
                "ratio",
                "unit",
                "value"
            ]
        );
        assert_eq!(
            figures[0],
            serde_json::json!({
                "id": "P1", "name": "durable sale commit", "value": 412.0, "unit": "us",
                "baseline_name": "raw SQLite durable insert", "baseline": 260.0, "ratio": 1.585,
                "better": "lower", "goal": "ratio <= 2"
            })
        );
    }

    #[test]
    fn table_shows_goal_check() {
        let t = table(&[p1()]);
        assert!(t.lines().next().unwrap().starts_with("id  name"));
        assert!(t.contains("1.58") && t.contains("PASS"), "{t}");
        assert!(t.contains("ratio 1.585 <= 2 PASS"), "{t}");
    }
}
