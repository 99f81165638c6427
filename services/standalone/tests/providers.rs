//! `orchestra up` lets templates name the providers its built-in executor
//! calls, and refuses one it cannot call, at the moment the template is
//! applied.

use orchestra_phase_executor::providers::settings::ProviderSettings;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use orchestra_proto::v1::{CreateTemplateRequest, TemplateFormat, TemplateSource};
use tokio::net::TcpListener;
use tonic::Code;

fn template(name: &str, provider: &str) -> CreateTemplateRequest {
    CreateTemplateRequest {
        source: Some(TemplateSource {
            source: format!(
                "name: {name}
phases:
  - id: ask
    kind: llm
    model: {{ provider: {provider}, name: qwen3 }}
    prompt: Say hello.
"
            ),
            format: TemplateFormat::Yaml as i32,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn templates_may_name_the_providers_the_executor_calls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = orchestra_standalone::Options::new(dir.path().join("data"));
    // A local OpenAI-compatible server, as Ollama would be configured; it
    // is never called, since no run starts.
    let settings = ProviderSettings::from_vars([(
        "ORCHESTRA_PROVIDER_LOCAL_BASE_URL".to_owned(),
        "http://127.0.0.1:9/v1".to_owned(),
    )])
    .expect("settings");
    options.providers = Some(settings);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let mesh = orchestra_standalone::open(options, listener)
        .await
        .expect("open");
    let addr = mesh.addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(async move {
        mesh.serve(async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });

    let mut templates = TemplateServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    templates
        .create_template(template("local-hello", "local"))
        .await
        .expect("a configured provider is accepted");
    let refused = templates
        .create_template(template("elsewhere-hello", "elsewhere"))
        .await
        .expect_err("an unconfigured provider is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let faults = orchestra_kit::status::field_violations(&refused);
    assert!(
        faults.iter().any(|(_, why)| why.contains("elsewhere")),
        "{faults:?}"
    );

    let _ = stop.send(());
    served.await.expect("server task");
}
