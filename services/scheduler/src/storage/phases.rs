//! Queries over `phases`: a run's phases, stored with the run and saved one
//! row at a time as they change.

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
    /// Saves one phase.
    fn update_phase(&mut self, row: &PhaseRow) -> impl Future<Output = QueryResult<()>> + Send;
}

macro_rules! impl_phase_store {
    ($conn:ty) => {
        impl PhaseStore for $conn {
            async fn insert_phases(&mut self, rows: Vec<PhaseRow>) -> QueryResult<()> {
                for row in rows {
                    diesel::insert_into(phases::table)
                        .values(row)
                        .execute(self)
                        .await?;
                }
                Ok(())
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
                    .execute(self)
                    .await
                    .map(drop)
            }
        }
    };
}

orchestra_db::impl_for_connections!(impl_phase_store);
