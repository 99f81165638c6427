//! Queries over `contents`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use orchestra_db::{Db, db_run};

use super::models::ContentRow;
use super::schema::contents;
use crate::error::{Error, Result};

/// The content row with this sha256, if any.
pub(crate) async fn find_content(db: &Db, sha256: &str) -> Result<Option<ContentRow>> {
    db_run!(db, |conn| {
        contents::table
            .find(sha256)
            .select(ContentRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(Error::from)
    })
}
