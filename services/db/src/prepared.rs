//! Statements kept prepared on the connection, for the hot path.
//!
//! diesel keeps a statement prepared only when it is sure its SQL text never
//! varies for the same Rust type, so it prepares every `UPDATE`, every
//! multi-row or nullable `INSERT` and all raw SQL afresh each time: on
//! Postgres that is a prepare and an execute, two round trips instead of
//! one, and on SQLite a new parse. Wrapped in [`Prepared`], a statement is
//! cached by its SQL text instead, which is right for any statement: the
//! same text is the same statement. Use it where the text takes a bounded
//! number of shapes (a fixed changeset, a few optional columns, a handful
//! of rows), since every shape stays prepared for the connection's life.

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// A statement cached by its SQL text; see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

/// Wraps any statement in [`Prepared`] with `.prepared()`.
pub trait PrepareDsl: Sized {
    /// Keeps this statement prepared, cached by its SQL text.
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
    }
}

impl<Q> PrepareDsl for Q {}

impl<Q, DB> QueryFragment<DB> for Prepared<Q>
where
    DB: Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &DB) -> QueryResult<bool> {
        // No static query id (below), so the cache is keyed by the SQL text.
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

/// diesel's blocking methods, for bodies that run on SQLite's blocking
/// thread (diesel-async's apply to every type already).
impl<Q, Conn> diesel::RunQueryDsl<Conn> for Prepared<Q> {}

#[cfg(test)]
mod tests {
    use diesel::debug_query;
    use diesel::pg::Pg;
    use diesel::prelude::*;
    use diesel::sqlite::Sqlite;

    use super::*;

    diesel::table! {
        items (id) {
            id -> Integer,
            name -> Text,
        }
    }

    #[test]
    fn a_prepared_update_is_the_same_sql_and_may_be_cached() {
        let update = diesel::update(items::table.find(1)).set(items::name.eq("x"));
        assert!(
            !update.is_safe_to_cache_prepared(&Pg).expect("walks"),
            "diesel prepares updates afresh"
        );
        let sql = debug_query::<Pg, _>(&update).to_string();
        let prepared = update.prepared();
        assert!(prepared.is_safe_to_cache_prepared(&Pg).expect("walks"));
        assert!(prepared.is_safe_to_cache_prepared(&Sqlite).expect("walks"));
        assert_eq!(debug_query::<Pg, _>(&prepared).to_string(), sql);
    }
}
