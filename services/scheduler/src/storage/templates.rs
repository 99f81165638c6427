//! Queries over `templates`: each stored version of each template.

use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::TemplateRow;
use super::schema::templates;

/// Template versions, on one connection.
pub trait TemplateStore: Send {
    /// Stores a template version.
    fn insert_template(&mut self, row: TemplateRow)
    -> impl Future<Output = QueryResult<()>> + Send;
    /// A template's newest version.
    fn latest_template(
        &mut self,
        name: &str,
    ) -> impl Future<Output = QueryResult<Option<TemplateRow>>> + Send;
    /// One version of a template.
    fn template_version(
        &mut self,
        name: &str,
        version: i32,
    ) -> impl Future<Output = QueryResult<Option<TemplateRow>>> + Send;
    /// Template names after `after`, alphabetically.
    fn template_names(
        &mut self,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<String>>> + Send;
}

macro_rules! impl_template_store {
    ($conn:ty) => {
        impl TemplateStore for $conn {
            async fn insert_template(&mut self, row: TemplateRow) -> QueryResult<()> {
                diesel::insert_into(templates::table)
                    .values(row)
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn latest_template(&mut self, name: &str) -> QueryResult<Option<TemplateRow>> {
                templates::table
                    .filter(templates::name.eq(name))
                    .order(templates::version.desc())
                    .select(TemplateRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn template_version(
                &mut self,
                name: &str,
                version: i32,
            ) -> QueryResult<Option<TemplateRow>> {
                templates::table
                    .filter(templates::name.eq(name))
                    .filter(templates::version.eq(version))
                    .select(TemplateRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn template_names(
                &mut self,
                after: &str,
                limit: i64,
            ) -> QueryResult<Vec<String>> {
                templates::table
                    .filter(templates::name.gt(after))
                    .filter(templates::version.eq(1))
                    .order(templates::name.asc())
                    .select(templates::name)
                    .limit(limit)
                    .load(self)
                    .await
            }
        }
    };
}

orchestra_db::impl_for_connections!(impl_template_store);
