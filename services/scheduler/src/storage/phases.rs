//! Queries over `phases`: a run's phases, stored with the run and saved one
//! row at a time as they change.

use orchestra_db::prepared::PrepareDsl;
use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::PhaseRow;
use super::schema::phases;

/// Runs' phases, on one connection.
pub trait PhaseStore: Send {
    /// Stores a run's phases.
    fn insert_phases(
        &mut self,
        rows: Vec<PhaseRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
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
    /// Saves one phase.
    fn update_phase(&mut self, row: &PhaseRow) -> impl Future<Output = QueryResult<()>> + Send;
}

/// Positions per `IN (…)` list, inside both backends' bound-value limits.
const IN_CHUNK: usize = 1000;

macro_rules! impl_phase_store {
    ($conn:ty) => {
        impl PhaseStore for $conn {
            async fn insert_phases(&mut self, rows: Vec<PhaseRow>) -> QueryResult<()> {
                super::bulk::BulkInsert::insert_phase_rows(self, rows).await
            }

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

            async fn update_phase(&mut self, row: &PhaseRow) -> QueryResult<()> {
                diesel::update(phases::table.find((&row.run_id, &row.phase_id)))
                    .set(row)
                    .prepared()
                    .execute(self)
                    .await
                    .map(drop)
            }
        }
    };
}

orchestra_db::impl_for_connections!(impl_phase_store);
