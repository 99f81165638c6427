//! `TemplateService`: storing, reading and validating templates.

use std::collections::BTreeMap;

use orchestra_model::{Format, ValidTemplate, Violation};
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::template_service_server::TemplateService;
use tonic::{Request, Response, Status};

use crate::convert::{phase_definitions, template_message};
use crate::engine::{Engine, SourceIn};
use crate::error::Error;
use crate::storage::models::TemplateRow;
use orchestra_kit::error::InvalidArgument;

/// The TemplateService handler.
#[derive(Clone)]
pub struct TemplateSvc {
    engine: Engine,
}

impl TemplateSvc {
    /// A handler over the engine.
    pub fn new(engine: Engine) -> Self {
        TemplateSvc { engine }
    }
}

fn source_in(source: Option<pb::TemplateSource>) -> Result<SourceIn, Error> {
    let source = source.ok_or_else(|| Error::invalid_field("source", "is required"))?;
    if source.source.trim().is_empty() {
        return Err(Error::invalid_field(
            "source.source",
            "is empty; send the template's YAML or JSON",
        ));
    }
    let format = match pb::TemplateFormat::try_from(source.format) {
        Ok(pb::TemplateFormat::Yaml) => Format::Yaml,
        Ok(pb::TemplateFormat::Json) => Format::Json,
        _ => Format::Auto,
    };
    Ok(SourceIn {
        source: source.source,
        format,
        files: source.files.into_iter().collect::<BTreeMap<_, _>>(),
    })
}

/// The token of the page after `rows`: empty when `rows` was the last page.
fn next_page_token(rows: &[TemplateRow], limit: i64) -> String {
    match rows.last() {
        Some(row) if rows.len() as i64 == limit => row.name.clone(),
        _ => String::new(),
    }
}

/// A validation's outcome as the contract shows it: the phases of a valid
/// template, or the faults of an invalid one.
fn validation(outcome: Result<ValidTemplate, Vec<Violation>>) -> pb::ValidateTemplateResponse {
    match outcome {
        Ok(valid) => pb::ValidateTemplateResponse {
            violations: Vec::new(),
            phases: phase_definitions(valid.template()),
        },
        Err(violations) => pb::ValidateTemplateResponse {
            violations: violations
                .into_iter()
                .map(|v| pb::FieldViolation {
                    field: v.field,
                    description: v.description,
                })
                .collect(),
            phases: Vec::new(),
        },
    }
}

#[tonic::async_trait]
impl TemplateService for TemplateSvc {
    async fn create_template(
        &self,
        request: Request<pb::CreateTemplateRequest>,
    ) -> Result<Response<pb::CreateTemplateResponse>, Status> {
        let source = source_in(request.into_inner().source)?;
        let row = self.engine.create_template(&source).await?;
        Ok(Response::new(pb::CreateTemplateResponse {
            template: Some(template_message(&row)?),
        }))
    }

    async fn create_template_version(
        &self,
        request: Request<pb::CreateTemplateVersionRequest>,
    ) -> Result<Response<pb::CreateTemplateVersionResponse>, Status> {
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(Error::invalid_field("name", "is required").into());
        }
        let source = source_in(request.source)?;
        let (row, created) = self
            .engine
            .create_template_version(&request.name, &source)
            .await?;
        Ok(Response::new(pb::CreateTemplateVersionResponse {
            template: Some(template_message(&row)?),
            created,
        }))
    }

    async fn get_template(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::GetTemplateResponse>, Status> {
        let request = request.into_inner();
        if request.name.is_empty() {
            return Err(Error::invalid_field("name", "is required").into());
        }
        let row = self
            .engine
            .get_template(&request.name, request.version)
            .await?;
        Ok(Response::new(pb::GetTemplateResponse {
            template: Some(template_message(&row)?),
        }))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let request = request.into_inner();
        let limit = super::page_size(request.page_size);
        let rows = self
            .engine
            .list_templates(&request.page_token, limit)
            .await?;
        Ok(Response::new(pb::ListTemplatesResponse {
            next_page_token: next_page_token(&rows, limit),
            templates: rows
                .iter()
                .map(template_message)
                .collect::<Result<Vec<_>, _>>()?,
        }))
    }

    async fn clone_template(
        &self,
        request: Request<pb::CloneTemplateRequest>,
    ) -> Result<Response<pb::CloneTemplateResponse>, Status> {
        let request = request.into_inner();
        if request.source_name.is_empty() {
            return Err(Error::invalid_field("source_name", "is required").into());
        }
        if request.new_name.is_empty() {
            return Err(Error::invalid_field("new_name", "is required").into());
        }
        let row = self
            .engine
            .clone_template(
                &request.source_name,
                request.source_version,
                &request.new_name,
            )
            .await?;
        Ok(Response::new(pb::CloneTemplateResponse {
            template: Some(template_message(&row)?),
        }))
    }

    async fn validate_template(
        &self,
        request: Request<pb::ValidateTemplateRequest>,
    ) -> Result<Response<pb::ValidateTemplateResponse>, Status> {
        let source = source_in(request.into_inner().source)?;
        Ok(Response::new(validation(self.engine.validate(&source))))
    }
}
