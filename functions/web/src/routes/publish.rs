//! `POST /api/images/{filename}/analyze` and `/publish` (mutate): the
//! publish function's analysis and workflow, for one file the admin chose.

use std::sync::{Arc, LazyLock};

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use publisher::ai::AiClient;
use publisher::app::{App, TenantContext};
use publisher::publishers::captions::CaptionSpec;
use publisher::sidecar::sidecar_path;
use publisher::state::Store;
use publisher::workflow::{self, Generated, Options, Status, Workflow};
use serde_json::{json, Value};

use crate::guards::Mutate;
use crate::images::{find_image, not_found};
use crate::responses::detail;
use crate::RequestId;

type Answer = Result<Response, Response>;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/images/{filename}/analyze", post(analyze))
        .route("/api/images/{filename}/publish", post(publish))
}

/// Without a table, this process's posted set (local runs).
static MEMORY_STATE: LazyLock<Store> = LazyLock::new(|| Store::new(None));

fn store(app: &App) -> Store {
    match &app.table {
        Some(table) => Store::new(Some(table.clone())),
        None => MEMORY_STATE.clone(),
    }
}

pub async fn analyze(
    _: Mutate,
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Answer {
    let force_refresh = force_refresh(query.as_deref())?;
    let name = name.map(|Path(name)| name).unwrap_or_default();
    let (listing, entry) = find_image(&tenant, &name, &id.0).await?;
    let storage = tenant.services.storage();
    let existing = match listing.sidecar_of(&entry.name) {
        Some(file) => workflow::read_sidecar(storage.as_ref(), &file.path, &id.0).await,
        None => None,
    };
    if let Some(sidecar) = existing.filter(|s| !force_refresh && s.caption().is_some()) {
        return Ok(Json(analysis_response(
            &entry.name,
            None,
            sidecar.caption().unwrap_or_default(),
            Some(sidecar.sd_caption).filter(|s| !s.is_empty()),
            false,
        ))
        .into_response());
    }
    let placeholder = || {
        Json(analysis_response(
            &entry.name,
            None,
            String::new(),
            None,
            false,
        ))
        .into_response()
    };
    let Some(ai) = AiClient::for_tenant(&app, &tenant, &id.0).await else {
        return Ok(placeholder());
    };
    let config = &tenant.config.config;
    let spec = CaptionSpec::for_config(config);
    let generated = match workflow::analyze(&ai, storage.as_ref(), &entry, &id.0).await {
        Ok(analysis) => match ai.caption(&analysis, &spec, &id.0).await {
            Ok(captions) => Generated { analysis, captions },
            Err(error) => {
                tracing::warn!(request_id = id.0, tenant = %tenant.config.tenant, %error, "analyze: caption failed");
                return Ok(placeholder());
            }
        },
        Err(error) => {
            tracing::warn!(request_id = id.0, tenant = %tenant.config.tenant, %error, "analyze: vision failed");
            return Ok(placeholder());
        }
    };
    let caption = spec.with_hashtags(&generated.captions.caption);
    let mut written = false;
    if !config.content.debug {
        let sidecar = workflow::sidecar_for(&entry, None, &generated, &caption, config);
        let text = sidecar.render(config.captionfile.extended_metadata_enabled);
        match storage
            .upload(&sidecar_path(&entry.path), Bytes::from(text))
            .await
        {
            Ok(()) => {
                written = true;
                tenant.services.forget_images();
            }
            Err(error) => {
                tracing::warn!(request_id = id.0, tenant = %tenant.config.tenant, %error, "analyze: sidecar not written")
            }
        }
    }
    Ok(Json(analysis_response(
        &entry.name,
        Some(&generated),
        caption,
        generated.captions.sd_caption.clone(),
        written,
    ))
    .into_response())
}

/// web.md's analysis response; without an analysis its description, mood
/// and tags are empty.
fn analysis_response(
    filename: &str,
    generated: Option<&Generated>,
    caption: String,
    sd_caption: Option<String>,
    sidecar_written: bool,
) -> Value {
    let analysis = generated.map(|g| &g.analysis);
    json!({
        "filename": filename,
        "description": analysis.map_or("", |a| a.description.as_str()),
        "mood": analysis.map_or("", |a| a.mood.as_str()),
        "tags": analysis.map_or(&[][..], |a| a.tags.as_slice()),
        "nsfw": analysis.is_some_and(|a| a.nsfw),
        "caption": caption,
        "sd_caption": sd_caption,
        "sidecar_written": sidecar_written,
    })
}

pub async fn publish(
    _: Mutate,
    State(app): State<Arc<App>>,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    if !tenant.config.config.features.publish_enabled {
        return Err(detail(StatusCode::FORBIDDEN, "Publishing is disabled"));
    }
    let name = name.map(|Path(name)| name).unwrap_or_default();
    let (_, entry) = find_image(&tenant, &name, &id.0).await?;
    let options = Options {
        select: Some(entry.name.clone()),
        ..Options::default()
    };
    let summary = Workflow::new(app.clone(), store(&app))
        .run_for(&tenant, &options, &id.0)
        .await;
    let stopped_early = summary.status == Status::Failed
        && summary.results.is_empty()
        && summary.error.as_deref() != Some(workflow::NO_PUBLISHER);
    if stopped_early {
        let error = summary.error.unwrap_or_default();
        return Err(if error == workflow::IMAGE_NOT_FOUND {
            tenant.services.forget_images();
            not_found()
        } else if summary.transient {
            detail(StatusCode::SERVICE_UNAVAILABLE, &error)
        } else {
            detail(StatusCode::BAD_GATEWAY, &error)
        });
    }
    let any_success = summary.any_success();
    Ok(Json(json!({
        "filename": entry.name,
        "results": summary.results,
        "archived": summary.archived,
        "any_success": any_success,
    }))
    .into_response())
}

/// `force_refresh` as settings.md reads booleans; anything else is a 422.
fn force_refresh(query: Option<&str>) -> Result<bool, Response> {
    let value = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "force_refresh")
        .map(|(_, value)| value.trim().to_ascii_lowercase());
    match value.as_deref() {
        None => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(_) => Err(detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "force_refresh must be a boolean",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn force_refresh_values() {
        assert_eq!(force_refresh(None).ok(), Some(false));
        assert_eq!(force_refresh(Some("force_refresh=TRUE")).ok(), Some(true));
        assert_eq!(force_refresh(Some("x=1&force_refresh=0")).ok(), Some(false));
        assert_eq!(force_refresh(Some("force_refresh=on")).ok(), Some(true));
        let refused = force_refresh(Some("force_refresh=maybe")).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
