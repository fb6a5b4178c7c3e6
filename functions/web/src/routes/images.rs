//! `/api/images/*`: list, random, details, thumbnail and content (view);
//! keep and remove (mutate).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use publisher::storage::{StorageError, ThumbnailSize};
use publisher::tenant::TenantContext;
use rand::seq::IndexedRandom;
use serde_json::json;

use crate::guards::{Mutate, View};
use crate::images::{find_image, image_response, listing, reachable, storage_failure};
use crate::responses::detail;
use crate::RequestId;

type Answer = Result<Response, Response>;

pub async fn list(
    _: View,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
) -> Answer {
    let listing = listing(&tenant, &id.0).await?;
    let filenames: Vec<&str> = reachable(&listing).map(|e| e.name.as_str()).collect();
    Ok(Json(json!({"count": filenames.len(), "filenames": filenames})).into_response())
}

pub async fn random(
    _: View,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
) -> Answer {
    let listing = listing(&tenant, &id.0).await?;
    let images: Vec<_> = reachable(&listing).collect();
    let Some(entry) = images.choose(&mut rand::rng()) else {
        return Err(detail(StatusCode::NOT_FOUND, "No images found"));
    };
    let body = image_response(&tenant, &listing, entry, &id.0).await?;
    Ok(Json(body).into_response())
}

pub async fn details(
    _: View,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let (listing, entry) = find_image(&tenant, &path_name(name), &id.0).await?;
    let body = image_response(&tenant, &listing, &entry, &id.0).await?;
    Ok(Json(body).into_response())
}

pub async fn thumbnail(
    _: View,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Answer {
    let size = thumbnail_size(query.as_deref())?;
    let (_, entry) = find_image(&tenant, &path_name(name), &id.0).await?;
    let bytes = tenant
        .services
        .storage()
        .thumbnail(&entry.path, size)
        .await
        .map_err(|e| storage_failure(e, &tenant, &id.0))?;
    let headers = [
        (CONTENT_TYPE, "image/jpeg"),
        (CACHE_CONTROL, image_cache_control(&tenant)),
    ];
    Ok((headers, bytes).into_response())
}

/// The image's bytes, for storage whose temporary links a browser cannot
/// open (local storage); the image response points here then.
pub async fn content(
    _: View,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let (_, entry) = find_image(&tenant, &path_name(name), &id.0).await?;
    let bytes = tenant
        .services
        .storage()
        .download(&entry.path)
        .await
        .map_err(|e| storage_failure(e, &tenant, &id.0))?;
    let content_type = if entry.name.to_ascii_lowercase().ends_with(".png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let headers = [
        (CONTENT_TYPE, content_type),
        (CACHE_CONTROL, image_cache_control(&tenant)),
    ];
    Ok((headers, bytes).into_response())
}

/// Shared caches may keep an image only when anyone may view it; an image
/// only an admin may see stays in that browser's cache.
fn image_cache_control(tenant: &TenantContext) -> &'static str {
    if tenant.config.config.features.auto_view_enabled {
        "public, max-age=3600"
    } else {
        "private, max-age=3600"
    }
}

#[derive(Clone, Copy)]
pub enum Curation {
    Keep,
    Remove,
}

pub async fn keep(
    guard: Mutate,
    tenant: Extension<TenantContext>,
    id: Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    curate(Curation::Keep, guard, tenant, id, name).await
}

pub async fn remove(
    guard: Mutate,
    tenant: Extension<TenantContext>,
    id: Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    curate(Curation::Remove, guard, tenant, id, name).await
}

/// Moves the image, then its sidecar, into the keep / remove folder and drops
/// the cached listing.
async fn curate(
    curation: Curation,
    _: Mutate,
    Extension(tenant): Extension<TenantContext>,
    Extension(id): Extension<RequestId>,
    name: Result<Path<String>, PathRejection>,
) -> Answer {
    let config = &tenant.config.config;
    let (enabled, folder, action) = match curation {
        Curation::Keep => (
            config.features.keep_enabled,
            &config.storage.paths.keep,
            "keep",
        ),
        Curation::Remove => (
            config.features.remove_enabled,
            &config.storage.paths.remove,
            "remove",
        ),
    };
    if !enabled {
        let message = match curation {
            Curation::Keep => "Keep is disabled",
            Curation::Remove => "Remove is disabled",
        };
        return Err(detail(StatusCode::FORBIDDEN, message));
    }
    let (listing, entry) = find_image(&tenant, &path_name(name), &id.0).await?;
    let storage = tenant.services.storage();
    let fail = |e| storage_failure(e, &tenant, &id.0);
    storage.create_folder(folder).await.map_err(fail)?;
    let moved_to = storage
        .move_to_folder(&entry.path, folder)
        .await
        .map_err(fail)?;
    tenant.services.forget_images();
    if let Some(sidecar) = listing.sidecar_of(&entry.name) {
        // The image has moved; a sidecar left behind is harmless (it is not an
        // image) and is logged rather than failing the request.
        match storage.move_to_folder(&sidecar.path, folder).await {
            Ok(_) | Err(StorageError::NotFound) => {}
            Err(error) => tracing::warn!(
                request_id = id.0, tenant = %tenant.config.tenant, %error,
                "image moved but its sidecar could not follow"
            ),
        }
    }
    tracing::info!(request_id = id.0, tenant = %tenant.config.tenant, action, to = %moved_to, "image curated");
    Ok(Json(json!({
        "filename": entry.name,
        "action": action,
        "destination_folder": folder,
        "preview_only": false,
    }))
    .into_response())
}

/// The decoded `{filename}`; a segment that does not decode to UTF-8 is a
/// name no listing shows, so it is answered like one (404).
fn path_name(name: Result<Path<String>, PathRejection>) -> String {
    name.map(|Path(name)| name).unwrap_or_default()
}

fn thumbnail_size(query: Option<&str>) -> Result<ThumbnailSize, Response> {
    let requested = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "size")
        .map(|(_, value)| value.into_owned());
    match requested {
        None => Ok(ThumbnailSize::default()),
        Some(value) => ThumbnailSize::parse(&value).ok_or_else(|| {
            detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "size must be one of w256h256, w480h320, w640h480, w960h640, w1024h768",
            )
        }),
    }
}
