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
use crate::StoreError;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Execute, Sqlite, SqliteConnection};

/// Rows per statement, largest first. At 74 values a row (the widest table, the hourly KPI
/// rollup: its key, 12 counters, two histograms and sessions) the largest chunk binds 18,944
/// values, under SQLite's limit of [`MAX_VALUES`]; a wider table is refused (see [`bound`]).
pub(super) const CHUNK_SIZES: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// The most values one statement may bind (SQLite's `SQLITE_MAX_VARIABLE_NUMBER` since 3.32).
const MAX_VALUES: usize = 32_766;

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
///
/// The values bound must be exactly `width` a row: SQLite (through sqlx) would bind `NULL` for
/// a missing one and ignore an extra one, shifting every later value into the wrong column, so
/// a count that does not match is an error, as is a statement over SQLite's limit.
fn bound<T>(head: &str, width: usize, tail: &str, chunk: &[T], bind: &impl Fn(Q, &T) -> Q) -> R<Q> {
    let wanted = width * chunk.len();
    if wanted > MAX_VALUES {
        return Err(StoreError::Backend(format!(
            "a statement of {} rows of {width} values is over SQLite's {MAX_VALUES}",
            chunk.len()
        )));
    }
    // The values are gathered first (on a query of no text), counted, then given to the
    // statement.
    let mut values = sqlx::query(AssertSqlSafe(""));
    for row in chunk {
        values = bind(values, row);
    }
    let args = values
        .take_arguments()
        .map_err(|e| StoreError::Backend(format!("cannot bind a value: {e}")))?
        .unwrap_or_default();
    if args.len() != wanted {
        return Err(StoreError::Backend(format!(
            "{} values bound for {} rows of {width} ({head})",
            args.len(),
            chunk.len()
        )));
    }
    // Built only from the caller's constant fragments and placeholders; every value is bound.
    Ok(sqlx::query_with(
        AssertSqlSafe(sql(head, width, chunk.len(), tail)),
        args,
    ))
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
        changed += bound(head, width, tail, chunk, &bind)?
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
            bound(head, width, tail, chunk, &bind)?
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

    /// A row bound with more or fewer values than its width is refused before SQLite sees it
    /// (sqlx would bind `NULL` for a missing one and shift the rest), as is a statement over
    /// SQLite's limit of values; the right count is written.
    #[tokio::test]
    async fn a_row_of_the_wrong_width_is_refused_not_shifted() {
        use sqlx::Connection;
        let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (a INTEGER, b INTEGER)")
            .execute(&mut c)
            .await
            .unwrap();
        let rows = [(1i64, 2i64), (3, 4), (5, 6)];
        let short = execute(&mut c, ("INSERT INTO t (a, b)", 2, ""), &rows, |q, r| {
            q.bind(r.0)
        })
        .await
        .unwrap_err();
        assert!(
            short.to_string().contains("2 values bound for 2 rows of 2"),
            "{short}"
        );
        let long = execute(&mut c, ("INSERT INTO t (a, b)", 2, ""), &rows, |q, r| {
            q.bind(r.0).bind(r.1).bind(r.1)
        })
        .await
        .unwrap_err();
        assert!(
            long.to_string().contains("6 values bound for 2 rows of 2"),
            "{long}"
        );
        let wide: Vec<u8> = vec![0; 256];
        let over = execute(&mut c, ("INSERT INTO t (a, b)", 200, ""), &wide, |q, _| q)
            .await
            .unwrap_err();
        assert!(over.to_string().contains("over SQLite's 32766"), "{over}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 0, "nothing written by the refused statements");
        let written = execute(&mut c, ("INSERT INTO t (a, b)", 2, ""), &rows, |q, r| {
            q.bind(r.0).bind(r.1)
        })
        .await
        .unwrap();
        assert_eq!(written, 3);
        let sum: i64 = sqlx::query_scalar("SELECT SUM(a * 10 + b) FROM t")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(sum, 12 + 34 + 56, "each value in its column");
    }

    #[test]
    fn the_statement_has_one_group_of_placeholders_per_row() {
        assert_eq!(
            sql("INSERT INTO t (a, b)", 2, 3, "ON CONFLICT DO NOTHING"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT DO NOTHING"
        );
    }
}
