//! `orchestra up` killed with SIGKILL and started again on the same data:
//! an attempt the dead process had leased is retried within seconds, not
//! after its lease's 30 s deadline. The new process learns that the old
//! incarnation's executor is gone because nothing has marked it seen since.

mod common;

use std::time::{Duration, Instant};

use orchestra_proto::v1 as pb;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::task_service_client::TaskServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use tonic::transport::Channel;

use common::process::{Up, connect, free_addr};

const TEMPLATE: &str = "\
name: single
phases:
  - id: only
    kind: function
    function: json.merge
    output: { name: out, schema: { type: object } }
";

async fn start_run(runs: &mut RunServiceClient<Channel>) -> String {
    runs.start_run(pb::StartRunRequest {
        template_name: "single".into(),
        ..Default::default()
    })
    .await
    .expect("start")
    .into_inner()
    .run
    .expect("run")
    .id
}

/// Leases attempts of new runs alongside the built-in executor until this
/// stream holds at least one; returns the run whose attempt it holds.
async fn hold_an_attempt(
    channel: &Channel,
    stream: &mut tonic::Streaming<pb::LeaseResponse>,
) -> String {
    let mut runs = RunServiceClient::new(channel.clone());
    for _ in 0..20 {
        for _ in 0..4 {
            start_run(&mut runs).await;
        }
        if let Ok(Ok(Some(response))) =
            tokio::time::timeout(Duration::from_millis(500), stream.message()).await
            && let Some(key) = response.task.and_then(|t| t.key)
        {
            return key.run_id;
        }
    }
    panic!("the built-in executor won every lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_interrupted_by_kill_9_is_retried_within_seconds() {
    let data = tempfile::tempdir().expect("data dir");
    let addr = free_addr();
    let mut first = Up::start(addr, data.path(), None);
    let channel = connect(addr).await;
    TemplateServiceClient::new(channel.clone())
        .create_template(pb::CreateTemplateRequest {
            source: Some(pb::TemplateSource {
                source: TEMPLATE.into(),
                format: pb::TemplateFormat::Unspecified as i32,
                files: Default::default(),
            }),
        })
        .await
        .expect("template");

    // An executor of this process (a second one, on its Lease stream) holds
    // an attempt when the process is killed.
    let mut stream = TaskServiceClient::new(channel.clone())
        .lease(pb::LeaseRequest {
            executor_id: "dies-with-up".into(),
            slots: 8,
            kinds: Vec::new(),
        })
        .await
        .expect("lease")
        .into_inner();
    let run_id = hold_an_attempt(&channel, &mut stream).await;
    first.kill();
    drop(stream);

    let mut second = Up::start(addr, data.path(), None);
    let restarted = Instant::now();
    let mut runs = RunServiceClient::new(connect(addr).await);
    let done = loop {
        if let Ok(response) = runs
            .get_run(pb::GetRunRequest {
                run_id: run_id.clone(),
            })
            .await
        {
            let response = response.into_inner();
            if response.run.as_ref().map(|r| r.status) == Some(pb::RunStatus::Completed as i32) {
                break response;
            }
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "the interrupted attempt was not retried in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let elapsed = restarted.elapsed();
    second.kill();
    assert_eq!(done.phases[0].attempt, 2, "{:?}", done.phases);
    assert!(
        elapsed < Duration::from_secs(5),
        "retried {elapsed:?} after the restart, not within 5 s"
    );
}
