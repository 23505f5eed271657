//! Source map uploads per release (Sentry's release artifacts), for symbolicating JavaScript
//! errors at ingest (see `pipeline::symbolicate`).
//!
//! - `POST /api/v1/projects/{project}/releases/{release}/sourcemaps` — `multipart/form-data`
//!   with one or more `.map` files; each is stored under its part's file name, or under the
//!   value of a `name` field sent just before it (the minified file's URL or path, with or
//!   without `.map`). Needs a key with scope `all`. Answers 201 with the stored names and sizes;
//!   400 naming a file that is not a source map; 413 past [`MAX_UPLOAD_BYTES`] in all or
//!   [`MAX_SOURCEMAP_BYTES`] for one file. Re-uploading a name replaces it.
//! - `GET  .../releases/{release}/sourcemaps` — the release's maps (name, file, size, time).
//! - `DELETE .../releases/{release}/sourcemaps/{name}` — 204, or 404 when there is no such map;
//!   needs a key with scope `all`. A name that is a URL goes percent-encoded or as is.

use std::sync::Arc;

use axum::extract::multipart::MultipartError;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::path_params;
use super::{Access, ApiError, authorize, authorize_read, blocking};
use crate::pipeline::symbolicate::{MAX_SOURCEMAP_BYTES, parse_source_map};
use crate::server::AppState;
use crate::store::sourcemaps::{SourceMapUpload, minified_file_key};

/// Most bytes of map content one upload may carry (all files together); more is answered 413.
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;

/// Room for multipart boundaries and part headers on top of [`MAX_UPLOAD_BYTES`].
const MULTIPART_OVERHEAD_BYTES: usize = 1024 * 1024;

/// Most files per upload.
const MAX_FILES_PER_UPLOAD: usize = 1000;

/// Longest name (a URL) and release, bytes.
const MAX_NAME_BYTES: usize = 1024;
const MAX_RELEASE_BYTES: usize = 200;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/v1/projects/{project}/releases/{release}/sourcemaps",
            get(list_sourcemaps)
                .post(upload_sourcemaps)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES)),
        )
        .route("/api/v1/projects/{project}/releases/{release}/sourcemaps/{*name}", delete(delete_sourcemap))
}

fn payload_too_large(message: String) -> ApiError {
    ApiError { status: StatusCode::PAYLOAD_TOO_LARGE, code: "payload_too_large", message }
}

/// A multipart stream error keeps its status: 413 when the body limit was hit, else 400.
fn multipart_error(error: MultipartError) -> ApiError {
    let status = error.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return payload_too_large(format!(
            "upload exceeds {} MiB; split it over several requests",
            MAX_UPLOAD_BYTES >> 20
        ));
    }
    ApiError {
        status,
        code: "invalid_multipart",
        message: format!("cannot read the multipart body: {}", error.body_text()),
    }
}

fn check_release(release: &str) -> Result<(), ApiError> {
    if release.trim().is_empty() || release.len() > MAX_RELEASE_BYTES || release.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "release {release:?} must be 1 to {MAX_RELEASE_BYTES} bytes without control characters (the service.version your SDK sends)"
        )));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "name {name:?} must be at most {MAX_NAME_BYTES} bytes without control characters"
        )));
    }
    if minified_file_key(name).is_empty() {
        return Err(ApiError::invalid(format!(
            "name {name:?} names no file: use the minified file's URL or path, e.g. https://cdn.example.com/js/main.3f2a1b.js.map"
        )));
    }
    Ok(())
}

/// Reads one small text field (a `name`), bounded.
async fn read_text_field(field: &mut axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > MAX_NAME_BYTES {
            return Err(ApiError::invalid(format!("a name field is longer than {MAX_NAME_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::invalid("a name field is not UTF-8"))
}

/// Reads every file part, bounding each file and the total; a name sent twice keeps the last.
async fn read_uploads(multipart: &mut Multipart) -> Result<Vec<SourceMapUpload>, ApiError> {
    let mut uploads: Vec<SourceMapUpload> = Vec::new();
    let mut pending_name: Option<String> = None;
    let mut total_bytes = 0usize;
    let mut part_number = 0usize;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        part_number += 1;
        if field.name() == Some("name") && field.file_name().is_none() {
            pending_name = Some(read_text_field(&mut field).await?.trim().to_owned());
            continue;
        }
        let name = pending_name
            .take()
            .or_else(|| field.file_name().map(|file_name| file_name.trim().to_owned()))
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "part {part_number} has no file name: send files as -F 'file=@main.3f2a1b.js.map', or put -F 'name=<minified file URL>' before each"
                ))
            })?;
        check_name(&name)?;
        if uploads.len() >= MAX_FILES_PER_UPLOAD {
            return Err(ApiError::invalid(format!("at most {MAX_FILES_PER_UPLOAD} files per upload")));
        }
        let mut content = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            total_bytes += chunk.len();
            if total_bytes > MAX_UPLOAD_BYTES {
                return Err(payload_too_large(format!(
                    "upload exceeds {} MiB; split it over several requests",
                    MAX_UPLOAD_BYTES >> 20
                )));
            }
            if content.len() + chunk.len() > MAX_SOURCEMAP_BYTES {
                return Err(payload_too_large(format!(
                    "{name} exceeds {} MiB, the limit per source map",
                    MAX_SOURCEMAP_BYTES >> 20
                )));
            }
            content.extend_from_slice(&chunk);
        }
        uploads.retain(|upload| upload.name != name);
        uploads.push(SourceMapUpload { name, content });
    }
    if uploads.is_empty() {
        return Err(ApiError::invalid(
            "no source map in the upload: send one or more files as multipart/form-data, e.g. curl -F 'file=@main.3f2a1b.js.map'",
        ));
    }
    Ok(uploads)
}

/// Parses every map (CPU-bound: on the blocking pool); the first bad one is named in the 400.
fn validate_uploads(uploads: &[SourceMapUpload]) -> Result<(), ApiError> {
    for upload in uploads {
        let invalid = |reason: String| ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_sourcemap",
            message: format!("{} is not a valid source map: {reason}", upload.name),
        };
        let map = parse_source_map(&upload.content).map_err(|error| invalid(error.to_string()))?;
        if map.get_token_count() == 0 {
            return Err(invalid("it has no mappings".into()));
        }
    }
    Ok(())
}

async fn upload_sourcemaps(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (project, release) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    check_release(&release)?;
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::invalid(format!("send the maps as multipart/form-data: {}", rejection.body_text()))
    })?;
    let uploads = read_uploads(&mut multipart).await?;
    let store = state.store.clone();
    let project_id = project.id;
    let stored_release = release.clone();
    let stored = blocking(move || {
        validate_uploads(&uploads)?;
        Ok(store.put_sourcemaps(project_id, &stored_release, &uploads)?)
    })
    .await?;
    state.ingestor.sourcemaps().invalidate_release(project_id, &release);
    tracing::info!(project = %project.slug, %release, files = stored.len(), "Source maps uploaded");
    Ok((StatusCode::CREATED, Json(json!({"release": release, "sourcemaps": stored}))))
}

async fn list_sourcemaps(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, release) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    check_release(&release)?;
    let store = state.store.clone();
    let listed_release = release.clone();
    let sourcemaps = blocking(move || Ok(store.list_sourcemaps(project.id, &listed_release)?)).await?;
    Ok(Json(json!({"release": release, "sourcemaps": sourcemaps})))
}

async fn delete_sourcemap(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (project, release, name) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    check_release(&release)?;
    let store = state.store.clone();
    let project_id = project.id;
    let (deleted_release, deleted_name) = (release.clone(), name.clone());
    let deleted = blocking(move || Ok(store.delete_sourcemap(project_id, &deleted_release, &deleted_name)?)).await?;
    if !deleted {
        return Err(ApiError::not_found(format!("no source map named {name:?} in release {release:?}")));
    }
    state.ingestor.sourcemaps().invalidate_release(project_id, &release);
    Ok(StatusCode::NO_CONTENT)
}
