//! Helpers shared by the store's integration tests.

use pos_store::Store;
use rusqlite::Connection;

/// Every row of each of `tables` in `store`'s database, in a stable text form (`ORDER BY
/// order_by`), for comparing two databases or one before and after.
pub fn dump_tables(store: &Store, tables: &[&str], order_by: &str) -> String {
    let conn = Connection::open(store.dir().join(pos_store::DB_FILE)).unwrap();
    let mut out = String::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order_by}"))
            .unwrap();
        let n = stmt.column_count();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("\t"))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.push_str(&format!("[{table}]\n{}\n", rows.join("\n")));
    }
    out
}
