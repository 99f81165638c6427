//! Storing, reading and validating templates.

use std::collections::BTreeMap;

use orchestra_db::{db_run, db_tx};
use orchestra_model::{Format, ValidTemplate, Violation};
use sha2::{Digest, Sha256};

use super::{Engine, SourceIn, now};
use crate::error::{Error, Result};
use crate::storage::models::TemplateRow;
use crate::storage::templates::TemplateStore;
use orchestra_kit::error::InvalidArgument;

impl Engine {
    /// Parses, bundles and validates a template source.
    pub fn validate(&self, source: &SourceIn) -> Result<ValidTemplate, Vec<Violation>> {
        let mut template =
            orchestra_model::Template::parse(&source.source, source.format).map_err(|v| vec![v])?;
        template.bundle_with(&|path| {
            source.files.get(path).cloned().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not among the files sent with the template",
                )
            })
        })?;
        orchestra_model::validate(&template, &self.catalog)
    }

    fn template_row(&self, source: &SourceIn, version: i32) -> Result<TemplateRow> {
        let valid = self
            .validate(source)
            .map_err(|violations| Error::InvalidArgument {
                message: format!("the template has {} fault(s)", violations.len()),
                violations,
            })?;
        let spec_json = valid.to_json();
        let template = valid.template();
        Ok(TemplateRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: template.name.clone(),
            version,
            description: template.description.clone().unwrap_or_default(),
            source: source.source.clone(),
            format: match source.format {
                Format::Json => "json",
                Format::Yaml => "yaml",
                Format::Auto if source.source.trim_start().starts_with('{') => "json",
                Format::Auto => "yaml",
            }
            .to_owned(),
            content_sha256: hex::encode(Sha256::digest(spec_json.as_bytes())),
            spec_json,
            created_at: now(),
        })
    }

    /// Stores version 1 of a new template.
    pub async fn create_template(&self, source: &SourceIn) -> Result<TemplateRow> {
        let row = self.template_row(source, 1)?;
        db_tx!(&self.db, |c| -> Result<TemplateRow> {
            if c.latest_template(&row.name).await?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "template {} exists; apply a new version of it instead",
                    row.name
                )));
            }
            c.insert_template(row.clone()).await?;
            Ok(row)
        })
    }

    /// Stores the next version of a template unless the content is unchanged.
    pub async fn create_template_version(
        &self,
        name: &str,
        source: &SourceIn,
    ) -> Result<(TemplateRow, bool)> {
        let row = self.template_row(source, 0)?;
        if row.name != name {
            return Err(Error::invalid_field(
                "name",
                format!("the source names template `{}`, not `{name}`", row.name),
            ));
        }
        db_tx!(&self.db, |c| -> Result<(TemplateRow, bool)> {
            let latest = c
                .latest_template(&row.name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("template {} does not exist", row.name)))?;
            if latest.content_sha256 == row.content_sha256 {
                return Ok((latest, false));
            }
            let row = TemplateRow {
                version: latest.version + 1,
                ..row
            };
            c.insert_template(row.clone()).await?;
            Ok((row, true))
        })
    }

    /// One version of a template (0 = latest).
    pub async fn get_template(&self, name: &str, version: i32) -> Result<TemplateRow> {
        let found = db_run!(&self.db, |c| -> Result<Option<TemplateRow>> {
            Ok(if version == 0 {
                c.latest_template(name).await?
            } else {
                c.template_version(name, version).await?
            })
        })?;
        found.ok_or_else(|| match version {
            0 => Error::NotFound(format!("template {name} does not exist")),
            v => Error::NotFound(format!("template {name} has no version {v}")),
        })
    }

    /// The latest version of templates after `after`, by name.
    pub async fn list_templates(&self, after: &str, limit: i64) -> Result<Vec<TemplateRow>> {
        db_run!(&self.db, |c| -> Result<Vec<TemplateRow>> {
            let mut rows = Vec::new();
            for name in c.template_names(after, limit).await? {
                if let Some(row) = c.latest_template(&name).await? {
                    rows.push(row);
                }
            }
            Ok(rows)
        })
    }

    /// Copies a template version under a new name.
    pub async fn clone_template(
        &self,
        source_name: &str,
        source_version: i32,
        new_name: &str,
    ) -> Result<TemplateRow> {
        let original = self.get_template(source_name, source_version).await?;
        let mut spec: serde_json::Value = serde_json::from_str(&original.spec_json)
            .map_err(|e| Error::Corrupt(format!("template spec: {e}")))?;
        spec["name"] = serde_json::Value::String(new_name.to_owned());
        let source = SourceIn {
            source: serde_json::to_string_pretty(&spec).unwrap_or_default(),
            format: Format::Json,
            files: BTreeMap::new(),
        };
        self.create_template(&source).await.map_err(|e| match e {
            Error::InvalidArgument { violations, .. } => Error::InvalidArgument {
                message: "new_name is not a valid template name".into(),
                violations: violations
                    .into_iter()
                    .map(|v| {
                        Violation::new(
                            if v.field == "name" {
                                "new_name"
                            } else {
                                &v.field
                            },
                            v.description,
                        )
                    })
                    .collect(),
            },
            other => other,
        })
    }
}
