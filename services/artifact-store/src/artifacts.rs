//! What each RPC does, over the store's database and blobs: requests are
//! checked here, storage is asked, and rows become contract messages. The
//! gRPC layer only forwards and maps errors.

use futures::stream::{self, BoxStream, StreamExt};

use orchestra_kit::error::{InvalidArgument as _, Violation};
use orchestra_proto::v1::{
    Actor, ArtifactRef, ArtifactVersion, DiffArtifactsRequest, DiffArtifactsResponse,
    FieldViolation, GetArtifactHistoryRequest, GetArtifactHistoryResponse, GetArtifactRequest,
    GetArtifactResponse, ListArtifactsRequest, ListArtifactsResponse, PublishArtifactRequest,
    PublishArtifactResponse, PutArtifactRequest, PutArtifactResponse, ReadArtifactContentRequest,
    StageArtifactRequest, StageArtifactResponse,
};

use crate::ArtifactStore;
use crate::blobs::{self, CHUNK_BYTES};
use crate::diff::{self, Side};
use crate::error::{Error, Result};
use crate::storage::contents::find_content;
use crate::storage::models::{ContentRow, NewVersion, PutOutcome, VersionRecord, Visibility};
use crate::storage::versions;
use crate::validation::{Schema, sha256_hex};

/// Content chunks in order, as ReadArtifactContent sends them.
pub(crate) type ContentStream = BoxStream<'static, Result<Vec<u8>>>;

impl ArtifactStore {
    /// PutArtifact: validates, stores the content, then the version.
    pub(crate) async fn put(&self, request: PutArtifactRequest) -> Result<PutArtifactResponse> {
        let outcome = self.write(request, Visibility::Published).await?;
        Ok(PutArtifactResponse {
            artifact: Some(artifact_version(&outcome.record, None)?),
            created: outcome.created,
        })
    }

    /// StageArtifact: what PutArtifact does, but the output stays
    /// unnumbered until the scheduler accepts its attempt.
    pub(crate) async fn stage(
        &self,
        request: StageArtifactRequest,
    ) -> Result<StageArtifactResponse> {
        let request = request
            .artifact
            .ok_or_else(|| Error::invalid_field("artifact", "is required"))?;
        let outcome = self.write(request, Visibility::Staged).await?;
        Ok(StageArtifactResponse {
            artifact: Some(artifact_version(&outcome.record, None)?),
            created: outcome.created,
        })
    }

    /// PublishArtifact: an accepted attempt's staged output becomes a
    /// version; or, given the output itself, it is stored as one in a
    /// single transaction (a small output with no schema, sent inline with
    /// its completion, so it costs no staging round trip).
    pub(crate) async fn publish(
        &self,
        request: PublishArtifactRequest,
    ) -> Result<PublishArtifactResponse> {
        let key = request.key.unwrap_or_default();
        let mut violations = key_violations(&key);
        if request.name.trim().is_empty() {
            violations.push(Violation::new("name", "is required"));
        }
        if let Some(content) = &request.content {
            violations.extend(inline_violations(&key, &request.name, content));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument {
                message: "invalid PublishArtifact request".to_owned(),
                violations,
            });
        }
        if let Some(content) = request.content {
            let outcome = self.write(content, Visibility::Published).await?;
            return Ok(PublishArtifactResponse {
                artifact: Some(artifact_version(&outcome.record, None)?),
            });
        }
        let outcome = versions::publish_staged(
            &self.inner.db,
            &key.run_id,
            &key.phase_id,
            key.attempt,
            &request.name,
        )
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "attempt {}/{}/{} stored no output named `{}`; stage it before it is accepted",
                key.run_id, key.phase_id, key.attempt, request.name
            ))
        })?;
        Ok(PublishArtifactResponse {
            artifact: Some(artifact_version(&outcome.record, None)?),
        })
    }

    /// Validates a write, stores its content, then its version or staged row.
    async fn write(
        &self,
        request: PutArtifactRequest,
        visibility: Visibility,
    ) -> Result<PutOutcome> {
        self.check_size(&request.name, request.content.len())?;
        let violations = put_violations(&request);
        if !violations.is_empty() {
            return Err(Error::InvalidArgument {
                message: "invalid PutArtifact request".to_owned(),
                violations,
            });
        }
        let schema = match request.schema_json.trim() {
            "" => None,
            text => Some(Schema::compile(text)?),
        };
        let content = request.content;
        let violations = schema
            .as_ref()
            .map(|schema| schema.check(&content))
            .unwrap_or_default();
        let sha256 = sha256_hex(&content);
        let size_bytes = i64::try_from(content.len())
            .map_err(|_| Error::invalid_field("content", "is too large"))?;
        let in_blob_store = content.len() > self.inner.inline_limit;
        let inline_content = if in_blob_store {
            // Written before the row that points at it; an orphan blob after
            // a failed transaction is harmless, as its name is its content.
            self.inner.blobs.write(&sha256, content).await?;
            None
        } else {
            Some(content)
        };
        let key = request.key.unwrap_or_default();
        let actor = request.created_by.unwrap_or_default();
        let new = NewVersion {
            run_id: key.run_id,
            name: request.name,
            phase_id: key.phase_id,
            attempt: key.attempt,
            media_type: request.media_type,
            valid: violations.is_empty(),
            violations_json: serde_json::to_string(&violations)
                .map_err(|e| Error::Corrupt(e.to_string()))?,
            schema_sha256: schema.map(|s| s.sha256).unwrap_or_default(),
            created_by_kind: actor.kind,
            created_by_id: actor.id,
        };
        let content = ContentRow {
            sha256,
            size_bytes,
            inline_content,
            in_blob_store,
            created_at: orchestra_db::time::now_micros(),
        };
        versions::put_version(&self.inner.db, new, content, visibility).await
    }

    /// GetArtifact: one version, with its content when asked and small.
    pub(crate) async fn get(&self, request: GetArtifactRequest) -> Result<GetArtifactResponse> {
        check_ref("", &request.artifact_id, request.version)?;
        let record = self.find(&request.artifact_id, request.version).await?;
        let small = usize::try_from(record.row.size_bytes)
            .is_ok_and(|size| size <= self.inner.inline_limit);
        let content = if request.include_content && small {
            Some(self.load_content(&record.row.sha256).await?)
        } else {
            None
        };
        Ok(GetArtifactResponse {
            artifact: Some(artifact_version(&record, content)?),
        })
    }

    /// ReadArtifactContent: the content in chunks of 64 KiB.
    pub(crate) async fn read_content(
        &self,
        request: ReadArtifactContentRequest,
    ) -> Result<ContentStream> {
        check_ref("", &request.artifact_id, request.version)?;
        let record = self.find(&request.artifact_id, request.version).await?;
        let row = self.content_row(&record.row.sha256).await?;
        if let Some(bytes) = row.inline_content {
            let chunks: Vec<Result<Vec<u8>>> =
                bytes.chunks(CHUNK_BYTES).map(|c| Ok(c.to_vec())).collect();
            return Ok(stream::iter(chunks).boxed());
        }
        let file = self.inner.blobs.open_reader(&row.sha256).await?;
        let chunks = stream::try_unfold(file, |mut file| async move {
            let chunk = blobs::read_chunk(&mut file).await?;
            Ok((!chunk.is_empty()).then_some((chunk, file)))
        });
        Ok(chunks.boxed())
    }

    /// ListArtifacts: the current version of each artifact of a run.
    pub(crate) async fn list(
        &self,
        request: ListArtifactsRequest,
    ) -> Result<ListArtifactsResponse> {
        if request.run_id.is_empty() {
            return Err(Error::invalid_field("run_id", "is required"));
        }
        let phase_id = Some(request.phase_id.as_str()).filter(|p| !p.is_empty());
        let records = versions::list_current(&self.inner.db, &request.run_id, phase_id).await?;
        let artifacts = records
            .iter()
            .map(|record| artifact_version(record, None))
            .collect::<Result<_>>()?;
        Ok(ListArtifactsResponse { artifacts })
    }

    /// GetArtifactHistory: every version, oldest first.
    pub(crate) async fn history(
        &self,
        request: GetArtifactHistoryRequest,
    ) -> Result<GetArtifactHistoryResponse> {
        if request.artifact_id.is_empty() {
            return Err(Error::invalid_field("artifact_id", "is required"));
        }
        let records = versions::list_history(&self.inner.db, &request.artifact_id).await?;
        if records.is_empty() {
            return Err(Error::NotFound(format!(
                "no artifact `{}`",
                request.artifact_id
            )));
        }
        let versions = records
            .iter()
            .map(|record| artifact_version(record, None))
            .collect::<Result<_>>()?;
        Ok(GetArtifactHistoryResponse { versions })
    }

    /// DiffArtifacts: JSON operations and a unified diff between two versions.
    pub(crate) async fn diff(
        &self,
        request: DiffArtifactsRequest,
    ) -> Result<DiffArtifactsResponse> {
        let (left, right) = (
            request.left.unwrap_or_default(),
            request.right.unwrap_or_default(),
        );
        let mut violations = ref_violations("left.", &left.artifact_id, left.version);
        violations.extend(ref_violations("right.", &right.artifact_id, right.version));
        if !violations.is_empty() {
            return Err(Error::InvalidArgument {
                message: "invalid DiffArtifacts request".to_owned(),
                violations,
            });
        }
        let left = self.find(&left.artifact_id, left.version).await?;
        let right = self.find(&right.artifact_id, right.version).await?;
        if left.row.sha256 == right.row.sha256 {
            return Ok(DiffArtifactsResponse {
                identical: true,
                operations: Vec::new(),
                unified: String::new(),
            });
        }
        let left_content = self.load_content(&left.row.sha256).await?;
        let right_content = self.load_content(&right.row.sha256).await?;
        let (operations, unified) =
            diff::diff(&side(&left, &left_content), &side(&right, &right_content));
        Ok(DiffArtifactsResponse {
            identical: false,
            operations,
            unified,
        })
    }

    async fn find(&self, artifact_id: &str, version: i32) -> Result<VersionRecord> {
        versions::find_version(&self.inner.db, artifact_id, version)
            .await?
            .ok_or_else(|| match version {
                0 => Error::NotFound(format!("artifact `{artifact_id}` has no valid version")),
                n => Error::NotFound(format!("artifact `{artifact_id}` has no version {n}")),
            })
    }

    async fn content_row(&self, sha256: &str) -> Result<ContentRow> {
        find_content(&self.inner.db, sha256)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("a version names missing content {sha256}")))
    }

    async fn load_content(&self, sha256: &str) -> Result<Vec<u8>> {
        let row = self.content_row(sha256).await?;
        match row.inline_content {
            Some(bytes) => Ok(bytes),
            None => self.inner.blobs.read(sha256).await,
        }
    }
}

fn put_violations(request: &PutArtifactRequest) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut require = |field: &str, value: &str| {
        if value.trim().is_empty() {
            violations.push(Violation::new(field, "is required"));
        }
    };
    let key = request.key.clone().unwrap_or_default();
    require("key.run_id", &key.run_id);
    require("key.phase_id", &key.phase_id);
    require("name", &request.name);
    require("media_type", &request.media_type);
    if key.attempt < 1 {
        violations.push(Violation::new("key.attempt", "must be at least 1"));
    }
    violations
}

/// What is wrong with an output published inline: it must be the
/// request's own (same attempt, same name) and carry no schema, since an
/// output that can break one is staged first so a broken one is kept.
fn inline_violations(
    key: &orchestra_proto::v1::AttemptKey,
    name: &str,
    content: &PutArtifactRequest,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    if content.key.as_ref() != Some(key) {
        violations.push(Violation::new(
            "content.key",
            "must be the request's key: an attempt publishes only its own output",
        ));
    }
    if content.name != name {
        violations.push(Violation::new("content.name", "must be the request's name"));
    }
    if !content.schema_json.trim().is_empty() {
        violations.push(Violation::new(
            "content.schema_json",
            "an output with a schema is staged first, so a broken one is kept and never published",
        ));
    }
    violations
}

fn key_violations(key: &orchestra_proto::v1::AttemptKey) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (field, value) in [("key.run_id", &key.run_id), ("key.phase_id", &key.phase_id)] {
        if value.trim().is_empty() {
            violations.push(Violation::new(field, "is required"));
        }
    }
    if key.attempt < 1 {
        violations.push(Violation::new("key.attempt", "must be at least 1"));
    }
    violations
}

fn ref_violations(prefix: &str, artifact_id: &str, version: i32) -> Vec<Violation> {
    let mut violations = Vec::new();
    if artifact_id.is_empty() {
        violations.push(Violation::new(
            format!("{prefix}artifact_id"),
            "is required",
        ));
    }
    if version < 0 {
        violations.push(Violation::new(
            format!("{prefix}version"),
            "must be 0 (the latest) or a version number",
        ));
    }
    violations
}

fn check_ref(prefix: &str, artifact_id: &str, version: i32) -> Result<()> {
    let violations = ref_violations(prefix, artifact_id, version);
    match violations.first() {
        None => Ok(()),
        Some(first) => Err(Error::InvalidArgument {
            message: first.to_string(),
            violations,
        }),
    }
}

fn side<'a>(record: &'a VersionRecord, content: &'a [u8]) -> Side<'a> {
    Side {
        label: format!("{}@v{}", record.name, record.row.version),
        media_type: &record.row.media_type,
        content,
    }
}

/// A stored version as the contract's message, with its content if given.
fn artifact_version(record: &VersionRecord, content: Option<Vec<u8>>) -> Result<ArtifactVersion> {
    let row = &record.row;
    let violations: Vec<Violation> = serde_json::from_str(&row.violations_json)
        .map_err(|e| Error::Corrupt(format!("violations of {}: {e}", row.artifact_id)))?;
    Ok(ArtifactVersion {
        r#ref: Some(ArtifactRef {
            artifact_id: row.artifact_id.clone(),
            version: row.version,
            name: record.name.clone(),
            run_id: record.run_id.clone(),
            phase_id: row.phase_id.clone(),
            attempt: row.attempt,
            media_type: row.media_type.clone(),
            sha256: row.sha256.clone(),
            size_bytes: row.size_bytes,
        }),
        is_latest: row.is_latest,
        valid: row.valid,
        violations: violations
            .into_iter()
            .map(|v| FieldViolation {
                field: v.field,
                description: v.description,
            })
            .collect(),
        schema_sha256: row.schema_sha256.clone(),
        created_by: Some(Actor {
            kind: row.created_by_kind,
            id: row.created_by_id.clone(),
        }),
        created_at: orchestra_kit::time::timestamp(row.created_at),
        content_inlined: content.is_some(),
        content: content.unwrap_or_default(),
    })
}
