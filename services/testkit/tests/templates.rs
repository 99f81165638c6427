//! Templates over gRPC: every kind of invalid template is refused with its
//! own field violation (the model's fixtures, one fault each), and stored
//! templates are versioned, cloned, listed and read back.

use std::path::Path;

use orchestra_db::Backend;
use orchestra_model::{Catalog, Format};
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests, referenced_files, repo_root};
use tonic::Code;

fn source(text: &str, dir: &Path) -> pb::TemplateSource {
    pb::TemplateSource {
        source: text.to_owned(),
        format: pb::TemplateFormat::Unspecified as i32,
        files: referenced_files(text, dir).into_iter().collect(),
    }
}

async fn each_invalid_template_gets_its_own_field_violation(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    let dir = repo_root().join("services/model/tests/fixtures");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.extension().is_none_or(|e| e != "yaml") || name.starts_with("valid") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("fixture");
        // The files a fixture says are not bundled are not sent either.
        let mut sent = source(&text, &dir);
        if name.ends_with("not_bundled") {
            sent.files.clear();
        }
        let refused = mesh
            .templates()
            .await
            .create_template(pb::CreateTemplateRequest {
                source: Some(sent.clone()),
            })
            .await
            .expect_err(&format!("{name} is refused"));
        assert_eq!(refused.code(), Code::InvalidArgument, "{name}");
        let fields: Vec<String> = orchestra_kit::status::field_violations(&refused)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert!(!fields.is_empty(), "{name}: no field violation");
        // The same faults, path for path, as the model reports for the file.
        assert_eq!(fields, local_faults(&text, &sent.files), "{name}");
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} fixtures checked");
    mesh.stop().await;
}

/// The field paths the model itself faults a source on, given the files sent.
fn local_faults(text: &str, files: &std::collections::HashMap<String, String>) -> Vec<String> {
    let mut template = match orchestra_model::Template::parse(text, Format::Auto) {
        Ok(template) => template,
        Err(violation) => return vec![violation.field],
    };
    let read = |path: &str| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::other("not sent"))
    };
    if let Err(violations) = template.bundle_with(&read) {
        return violations.into_iter().map(|v| v.field).collect();
    }
    orchestra_model::validate(&template, &Catalog::builtin())
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.field)
        .collect()
}

async fn templates_are_versioned_cloned_and_listed(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    let dir = repo_root().join("examples/backtrack");
    let text = std::fs::read_to_string(dir.join("template.yaml")).expect("example");
    let mut templates = mesh.templates().await;
    let first = templates
        .create_template(pb::CreateTemplateRequest {
            source: Some(source(&text, &dir)),
        })
        .await
        .expect("stored")
        .into_inner()
        .template
        .expect("template");
    assert_eq!(
        (first.name.as_str(), first.version),
        ("backtrack-ui-patch", 1)
    );
    assert_eq!(first.phases.len(), 7);

    let again = templates
        .create_template(pb::CreateTemplateRequest {
            source: Some(source(&text, &dir)),
        })
        .await
        .expect_err("the name is taken");
    assert_eq!(again.code(), Code::AlreadyExists);

    let unchanged = templates
        .create_template_version(pb::CreateTemplateVersionRequest {
            name: "backtrack-ui-patch".into(),
            source: Some(source(&text, &dir)),
        })
        .await
        .expect("version")
        .into_inner();
    assert!(!unchanged.created);
    let edited = text.replace("temperature: 0.9", "temperature: 0.7");
    assert_ne!(edited, text, "the example has a temperature to edit");
    let second = templates
        .create_template_version(pb::CreateTemplateVersionRequest {
            name: "backtrack-ui-patch".into(),
            source: Some(source(&edited, &dir)),
        })
        .await
        .expect("version")
        .into_inner();
    assert!(second.created);
    assert_eq!(second.template.as_ref().map(|t| t.version), Some(2));

    let old = templates
        .get_template(pb::GetTemplateRequest {
            name: "backtrack-ui-patch".into(),
            version: 1,
        })
        .await
        .expect("v1")
        .into_inner()
        .template
        .expect("template");
    assert_eq!(
        old.content_sha256, first.content_sha256,
        "versions are immutable"
    );

    let copy = templates
        .clone_template(pb::CloneTemplateRequest {
            source_name: "backtrack-ui-patch".into(),
            source_version: 1,
            new_name: "my-patch".into(),
        })
        .await
        .expect("clone")
        .into_inner()
        .template
        .expect("template");
    assert_eq!((copy.name.as_str(), copy.version), ("my-patch", 1));
    let bad_clone = templates
        .clone_template(pb::CloneTemplateRequest {
            source_name: "backtrack-ui-patch".into(),
            source_version: 0,
            new_name: "Not A Slug".into(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(bad_clone.code(), Code::InvalidArgument);

    let listed = templates
        .list_templates(pb::ListTemplatesRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.templates.len(), 1);
    assert_eq!(listed.templates[0].name, "backtrack-ui-patch");
    assert_eq!(listed.templates[0].version, 2, "the latest version");
    let rest = templates
        .list_templates(pb::ListTemplatesRequest {
            page_size: 10,
            page_token: listed.next_page_token,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        rest.templates
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["my-patch"]
    );
    assert!(rest.next_page_token.is_empty());
    mesh.stop().await;
}

mesh_tests!(
    each_invalid_template_gets_its_own_field_violation,
    templates_are_versioned_cloned_and_listed,
);
