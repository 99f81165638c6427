//! `orchestra template apply|validate|clone|list|show`.
//!
//! Apply bundles on the client: the files a template refers to (schemas,
//! prompts) are read relative to the template file and sent along with the
//! source, so the server never reads the client's disk.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tonic::Code;

use orchestra_kit::error::Violation;
use orchestra_model::{Format, Template};
use orchestra_proto::v1 as pb;

use crate::cli::{OutputFormat, TemplateCommand};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::{outln, output};

/// Runs one `template` subcommand.
pub async fn template(
    connection: &Connection,
    format: OutputFormat,
    command: &TemplateCommand,
) -> Result<()> {
    match command {
        TemplateCommand::Apply { file } => apply(connection, format, file).await,
        TemplateCommand::Validate { file } => validate(connection, format, file).await,
        TemplateCommand::Clone {
            name,
            new_name,
            version,
        } => clone(connection, format, name, new_name, version.unwrap_or(0)).await,
        TemplateCommand::List => list(connection, format).await,
        TemplateCommand::Show { name, version } => {
            show(connection, format, name, version.unwrap_or(0)).await
        }
    }
}

/// What [`bundle`] found: the source, its name and the files it refers to.
struct Bundle {
    source: String,
    name: Option<String>,
    files: HashMap<String, String>,
}

/// Reads a template file and every file it refers to. A template that does
/// not parse is sent as it is, so the server reports its faults in the
/// same form as every other; a referenced file that cannot be read is
/// reported here, with its field path.
fn bundle(path: &Path) -> Result<Bundle> {
    let source = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    if source.trim().is_empty() {
        return Err(Error::Usage(format!(
            "{} is empty: write the template's YAML or JSON in it (see examples/backtrack/template.yaml)",
            path.display()
        )));
    }
    let Ok(mut template) = Template::parse(&source, Format::Auto) else {
        return Ok(Bundle {
            source,
            name: None,
            files: HashMap::new(),
        });
    };
    let folder = path.parent().map_or_else(PathBuf::new, Path::to_owned);
    let files = RefCell::new(HashMap::new());
    let read = |file: &str| -> std::io::Result<String> {
        let text = std::fs::read_to_string(folder.join(file))?;
        files.borrow_mut().insert(file.to_owned(), text.clone());
        Ok(text)
    };
    if let Err(violations) = template.bundle_with(&read) {
        return Err(Error::Invalid {
            message: format!("{} refers to files that cannot be used", path.display()),
            violations,
        });
    }
    Ok(Bundle {
        source,
        name: Some(template.name),
        files: files.into_inner(),
    })
}

/// The source and the files it refers to, as the server takes them.
fn source(bundle: Bundle) -> pb::TemplateSource {
    pb::TemplateSource {
        source: bundle.source,
        format: pb::TemplateFormat::Unspecified as i32,
        files: bundle.files,
    }
}

/// Asks the server to validate the template without storing it. Faults are
/// reported as an error (exit 1), one line per field path.
async fn validate(connection: &Connection, format: OutputFormat, path: &Path) -> Result<()> {
    let bundle = bundle(path)?;
    let name = bundle.name.clone();
    let response = connection
        .templates()
        .validate_template(pb::ValidateTemplateRequest {
            source: Some(source(bundle)),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        output::print_json(&response)?;
    }
    if !response.violations.is_empty() {
        return Err(Error::Invalid {
            message: format!(
                "{} has {} fault(s)",
                path.display(),
                response.violations.len()
            ),
            violations: response
                .violations
                .into_iter()
                .map(|v| Violation::new(v.field, v.description))
                .collect(),
        });
    }
    if format == OutputFormat::Table {
        outln!(
            "{} is valid: template {} with {} phases; store it with: orchestra template apply {}",
            path.display(),
            name.unwrap_or_default(),
            response.phases.len(),
            path.display()
        )?;
    }
    Ok(())
}

/// Copies one version of a template under a new name.
async fn clone(
    connection: &Connection,
    format: OutputFormat,
    name: &str,
    new_name: &str,
    version: i32,
) -> Result<()> {
    let response = connection
        .templates()
        .clone_template(pb::CloneTemplateRequest {
            source_name: name.to_owned(),
            source_version: version,
            new_name: new_name.to_owned(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let template = response.template.ok_or(Error::Incomplete("template"))?;
    outln!(
        "cloned {name} as {} version {}",
        template.name,
        template.version
    )
}

/// Stores the template as version 1, or as the next version when the name
/// is taken (nothing new when the content is unchanged).
async fn apply(connection: &Connection, format: OutputFormat, path: &Path) -> Result<()> {
    let bundle = bundle(path)?;
    let name = bundle.name.clone();
    let source = source(bundle);
    let created = connection
        .templates()
        .create_template(pb::CreateTemplateRequest {
            source: Some(source.clone()),
        })
        .await;
    let (template, stored) = match created {
        Ok(response) => (response.into_inner().template, true),
        Err(status) if status.code() == Code::AlreadyExists => {
            let response = connection
                .templates()
                .create_template_version(pb::CreateTemplateVersionRequest {
                    name: name.unwrap_or_default(),
                    source: Some(source),
                })
                .await?
                .into_inner();
            (response.template, response.created)
        }
        Err(status) => return Err(status.into()),
    };
    let template = template.ok_or(Error::Incomplete("template"))?;
    match format {
        OutputFormat::Json => output::print_json(&pb::CreateTemplateVersionResponse {
            template: Some(template),
            created: stored,
        }),
        OutputFormat::Table => {
            if stored {
                outln!("applied {} version {}", template.name, template.version)
            } else {
                outln!("{} unchanged (version {})", template.name, template.version)
            }
        }
    }
}

/// Lists every template's latest version, following pages.
async fn list(connection: &Connection, format: OutputFormat) -> Result<()> {
    let mut templates = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = connection
            .templates()
            .list_templates(pb::ListTemplatesRequest {
                page_size: 500,
                page_token,
            })
            .await?
            .into_inner();
        templates.extend(page.templates);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    if format == OutputFormat::Json {
        return output::print_json(&pb::ListTemplatesResponse {
            templates,
            next_page_token: String::new(),
        });
    }
    let mut table = output::table(["name", "version", "phases", "created", "description"]);
    for t in &templates {
        table.add_row([
            t.name.clone(),
            t.version.to_string(),
            t.phases.len().to_string(),
            output::when(t.created_at.as_ref()),
            t.description.clone(),
        ]);
    }
    outln!("{table}")
}

/// Shows one version and its phases.
async fn show(
    connection: &Connection,
    format: OutputFormat,
    name: &str,
    version: i32,
) -> Result<()> {
    let response = connection
        .templates()
        .get_template(pb::GetTemplateRequest {
            name: name.to_owned(),
            version,
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let template = response.template.ok_or(Error::Incomplete("template"))?;
    outln!(
        "{} version {}  (created {}, sha256 {})",
        template.name,
        template.version,
        output::when(template.created_at.as_ref()),
        template
            .content_sha256
            .get(..12)
            .unwrap_or(&template.content_sha256)
    )?;
    if !template.description.is_empty() {
        outln!("{}", template.description.trim())?;
    }
    let mut table = output::table(["id", "kind", "needs", "output"]);
    for phase in &template.phases {
        table.add_row([
            phase.id.clone(),
            output::phase_kind(phase.kind),
            output::list(&phase.needs),
            if phase.output_name.is_empty() {
                "-".to_owned()
            } else {
                phase.output_name.clone()
            },
        ]);
    }
    outln!("{table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundling_collects_the_referenced_files() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("schemas")).expect("mkdir");
        std::fs::write(dir.path().join("schemas/out.json"), r#"{"type":"object"}"#)
            .expect("schema");
        let path = dir.path().join("t.yaml");
        std::fs::write(
            &path,
            "name: t\nphases:\n  - id: a\n    kind: human_input\n    output: { name: x, schema: schemas/out.json }\n",
        )
        .expect("template");
        let bundle = bundle(&path).expect("bundled");
        assert_eq!(bundle.name.as_deref(), Some("t"));
        assert_eq!(
            bundle.files.get("schemas/out.json").map(String::as_str),
            Some(r#"{"type":"object"}"#)
        );
    }

    #[test]
    fn a_missing_file_is_reported_with_its_field_path() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.yaml");
        std::fs::write(
            &path,
            "name: t\nphases:\n  - id: a\n    kind: human_input\n    output: { name: x, schema: nowhere.json }\n",
        )
        .expect("template");
        let error = bundle(&path).err().expect("refused");
        let violations = error.violations();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "phases[0].output.schema");
    }
}
