//! Queries over `phases`: reading a run's phases, all or the few a change
//! touches (they are written by [`super::writes`], with the rest of a change).

use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::PhaseRow;
use super::schema::phases;

/// Runs' phases, on one connection.
pub trait PhaseStore: Send {
    /// A run's phases in declaration order.
    fn load_phases(
        &mut self,
        run_id: &str,
    ) -> impl Future<Output = QueryResult<Vec<PhaseRow>>> + Send;
    /// The phases at the given positions (`idx`), in declaration order:
    /// what a change that touches only some phases reads.
    fn load_phases_at(
        &mut self,
        run_id: &str,
        indices: Vec<i32>,
    ) -> impl Future<Output = QueryResult<Vec<PhaseRow>>> + Send;
}

/// Positions per `IN (…)` list, inside both backends' bound-value limits.
const IN_CHUNK: usize = 1000;

macro_rules! impl_phase_store {
    ($conn:ty) => {
        impl PhaseStore for $conn {
            async fn load_phases_at(
                &mut self,
                run_id: &str,
                indices: Vec<i32>,
            ) -> QueryResult<Vec<PhaseRow>> {
                let mut rows = Vec::with_capacity(indices.len());
                for chunk in indices.chunks(IN_CHUNK) {
                    let mut some = phases::table
                        .filter(phases::run_id.eq(run_id))
                        .filter(phases::idx.eq_any(chunk))
                        .order(phases::idx.asc())
                        .select(PhaseRow::as_select())
                        .load(self)
                        .await?;
                    rows.append(&mut some);
                }
                Ok(rows)
            }

            async fn load_phases(&mut self, run_id: &str) -> QueryResult<Vec<PhaseRow>> {
                phases::table
                    .filter(phases::run_id.eq(run_id))
                    .order(phases::idx.asc())
                    .select(PhaseRow::as_select())
                    .load(self)
                    .await
            }
        }
    };
}

orchestra_db::impl_for_connections!(impl_phase_store);
