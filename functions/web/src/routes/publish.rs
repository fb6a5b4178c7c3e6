//! `POST /api/images/{filename}/analyze` and `/publish` (mutate): the publish
//! workflow's caption step and its whole run, for one file the admin chose.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use publisher::app::App;
use publisher::publishers::captions::CaptionSpec;
use publisher::tenant::TenantContext;
use publisher::workflow::caption::{self, Caption, Generated};
use publisher::workflow::{Options, Reason};
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

pub async fn analyze(
    _: Mutate,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Answer {
    let force_refresh = force_refresh(query.as_deref())?;
    let name = name.map(|Path(name)| name).unwrap_or_default();
    let (listing, entry) = find_image(&tenant, &name, &id.0).await?;
    let services = &tenant.services;
    let found = caption::find(services, &listing, &entry, force_refresh, &id.0).await;
    let generated = match found.caption {
        Caption::Sidecar(sidecar) => {
            let sd_caption = Some(sidecar.sd_caption.clone()).filter(|s| !s.is_empty());
            let caption = sidecar.caption().unwrap_or_default();
            let answer = analysis_response(&entry.name, None, caption, sd_caption, false);
            return Ok(Json(answer).into_response());
        }
        Caption::Missing => {
            let answer = analysis_response(&entry.name, None, String::new(), None, false);
            return Ok(Json(answer).into_response());
        }
        Caption::Generated(generated) => generated,
    };
    let config = &tenant.config.config;
    let caption = CaptionSpec::for_config(config, services.limits())
        .with_hashtags(&generated.captions.caption);
    let written = !config.content.debug && {
        let text = caption::sidecar_for(&entry, None, &generated, &caption, config)
            .render(config.captionfile.extended_metadata_enabled);
        caption::write_sidecar(services, &entry, text, &id.0)
            .await
            .is_some()
    };
    let sd_caption = generated.captions.sd_caption.clone();
    let answer = analysis_response(&entry.name, Some(&generated), caption, sd_caption, written);
    Ok(Json(answer).into_response())
}

/// The analysis response; without an analysis its description, mood and
/// tags are empty.
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
    let summary = app.workflow.run(&tenant, &options, &id.0).await;
    match &summary.reason {
        // Gone since the listing was cached.
        Some(Reason::ImageNotFound) => {
            tenant.services.forget_images();
            return Err(not_found());
        }
        // Each image is published at most once, whoever asks.
        Some(Reason::PublishInProgress) => {
            return Err(detail(StatusCode::CONFLICT, "Publish in progress"));
        }
        Some(Reason::AlreadyPublished) => {
            return Err(detail(StatusCode::CONFLICT, "Already published"));
        }
        // Stopped before any publisher was tried.
        Some(
            reason @ (Reason::Storage { .. }
            | Reason::PostedSetUnavailable(_)
            | Reason::ClaimFailed(_)
            | Reason::ImageTooLarge(_)),
        ) => {
            let status = if reason.transient() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_GATEWAY
            };
            return Err(detail(status, &reason.to_string()));
        }
        _ => {}
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

/// `force_refresh` as the settings read booleans; anything else is a 422.
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
