//! Multi-row statements: one `INSERT … VALUES (…), (…), …` per chunk of rows instead of one
//! statement per row.
//!
//! Why: the ledger writes each batch in one transaction on its one connection, and every statement
//! is a round trip between the ledger's thread and SQLite's worker thread (two thread wake-ups).
//! Written a row at a time, a batch of 50 records from 50 end users across 20 keys was some 300
//! statements (rollup rows, first-seen users and sessions, payloads); cut into these chunks it is
//! about one statement per table.
//!
//! Rows are cut into power-of-two chunk sizes, largest first, so a table has at most
//! [`CHUNK_SIZES`]`.len()` distinct statements and each stays in the connection's
//! prepared-statement cache instead of being prepared again for every odd batch size.

use super::R;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection};

/// Rows per statement, largest first. At 40 values a row (the widest table, request records) the
/// largest chunk binds 10,240 values, well under SQLite's limit of 32,766.
pub(super) const CHUNK_SIZES: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// A query being bound.
pub(super) type Q = sqlx::query::Query<'static, Sqlite, SqliteArguments>;

/// The statement for `rows` rows of `width` values: `{head} VALUES (?, …), … {tail}`.
pub(super) fn sql(head: &str, width: usize, rows: usize, tail: &str) -> String {
    let one = format!("({})", vec!["?"; width].join(", "));
    format!(
        "{head} VALUES {} {tail}",
        vec![one.as_str(); rows].join(", ")
    )
}

/// `items` cut into [`CHUNK_SIZES`], largest first (a run of `n` items makes as many chunks as
/// `n` has bits set, plus one per 256).
pub(super) fn chunks<T>(items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    let mut rest = items;
    for size in CHUNK_SIZES {
        while rest.len() >= size {
            let (chunk, tail) = rest.split_at(size);
            out.push(chunk);
            rest = tail;
        }
    }
    out
}

/// Binds `bind` for each row of `chunk` into the statement of `head`/`width`/`tail`.
fn bound<T>(head: &str, width: usize, tail: &str, chunk: &[T], bind: &impl Fn(Q, &T) -> Q) -> Q {
    // Built only from the caller's constant fragments and placeholders; every value is bound.
    let mut q = sqlx::query(AssertSqlSafe(sql(head, width, chunk.len(), tail)));
    for row in chunk {
        q = bind(q, row);
    }
    q
}

/// Runs `{head} VALUES … {tail}` over `rows` (each bound by `bind` with exactly `width` values);
/// the number of rows the statements changed.
pub(super) async fn execute<T>(
    c: &mut SqliteConnection,
    (head, width, tail): (&str, usize, &str),
    rows: &[T],
    bind: impl Fn(Q, &T) -> Q,
) -> R<u64> {
    let mut changed = 0;
    for chunk in chunks(rows) {
        changed += bound(head, width, tail, chunk, &bind)
            .execute(&mut *c)
            .await?
            .rows_affected();
    }
    Ok(changed)
}

/// Like [`execute`] for a statement whose `tail` ends in `RETURNING …`: the rows it returned.
pub(super) async fn fetch<T>(
    c: &mut SqliteConnection,
    (head, width, tail): (&str, usize, &str),
    rows: &[T],
    bind: impl Fn(Q, &T) -> Q,
) -> R<Vec<SqliteRow>> {
    let mut out = Vec::new();
    for chunk in chunks(rows) {
        out.extend(
            bound(head, width, tail, chunk, &bind)
                .fetch_all(&mut *c)
                .await?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_cut_into_power_of_two_chunks_largest_first() {
        let items: Vec<u32> = (0..600).collect();
        let sizes = |n: usize| {
            chunks(&items[..n])
                .iter()
                .map(|c| c.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(50), [32, 16, 2]);
        assert_eq!(sizes(255), [128, 64, 32, 16, 8, 4, 2, 1]);
        assert_eq!(sizes(600), [256, 256, 64, 16, 8]);
        // Every item once, in order.
        let joined: Vec<u32> = chunks(&items).concat();
        assert_eq!(joined, items);
    }

    #[test]
    fn the_statement_has_one_group_of_placeholders_per_row() {
        assert_eq!(
            sql("INSERT INTO t (a, b)", 2, 3, "ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
    }
}
