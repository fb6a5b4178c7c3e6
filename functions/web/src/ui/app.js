"use strict";
// Publisher's curation page. Everything the API returns is put on the page
// with textContent or as an attribute value, never parsed as HTML.

const $ = (id) => document.getElementById(id);

// The page's texts in its language, put into the page by the server
// (web_ui_text.<lang>.yaml); `{name}` in a text is filled in as text.
const TEXT = JSON.parse(document.body.dataset.text || "{}");
function t(key, values) {
  let text = TEXT[key] === undefined ? key : String(TEXT[key]);
  for (const [name, value] of Object.entries(values || {})) {
    text = text.split(`{${name}}`).join(String(value));
  }
  return text;
}

const ui = {
  photo: $("photo"), notice: $("notice"), prev: $("prev"), next: $("next"),
  position: $("position"), filename: $("filename"), caption: $("caption"),
  metaBox: $("meta-box"), metadata: $("metadata"), activity: $("activity"),
  login: $("admin-login"), oidc: $("admin-oidc"), logout: $("admin-logout"),
  dialog: $("login-dialog"), form: $("login-form"), password: $("password"),
  loginError: $("login-error"), loginCancel: $("login-cancel"), loginSubmit: $("login-submit"),
  analyze: $("analyze"), publish: $("publish"), keep: $("keep"), remove: $("remove"),
  stage: $("stage"),
};

const state = {
  features: null,
  admin: false,
  // Review mode walks the sorted list; publish mode shows random images.
  names: [],
  index: 0,
  history: [],
  historyAt: -1,
  prefetched: null,
  // Review mode: details of the next image, fetched ahead (name → promise).
  ahead: new Map(),
  current: null,
  busy: false,
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, t("errors.network"));
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const message = data && (data.detail || data.error);
    throw new ApiError(response.status, String(message || response.statusText || response.status));
  }
  return data;
}

const imagePath = (name) => "/api/images/" + encodeURIComponent(name);

function log(text, kind) {
  const item = document.createElement("li");
  if (kind) item.className = kind;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([document.documentElement.lang], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  item.append(time, document.createTextNode(text));
  ui.activity.prepend(item);
  while (ui.activity.children.length > 50) ui.activity.lastElementChild.remove();
}

function notice(text) {
  ui.photo.hidden = true;
  ui.photo.removeAttribute("src");
  ui.notice.textContent = text;
  ui.notice.hidden = false;
  ui.filename.textContent = "";
  ui.caption.textContent = "";
  ui.metaBox.hidden = true;
  state.current = null;
  updateControls();
}

function publishMode() {
  return Boolean(state.features && state.features.publish_enabled);
}

// ------------------------------------------------------------------ rendering

function render(image) {
  state.current = image;
  ui.notice.hidden = true;
  ui.photo.hidden = false;
  ui.photo.alt = image.filename;
  ui.photo.dataset.fallback = image.thumbnail_url;
  ui.photo.src = image.temp_url;
  ui.filename.textContent = image.filename;
  showCaption(image.caption || image.sd_caption);
  ui.metadata.replaceChildren();
  const meta = image.metadata && typeof image.metadata === "object" ? image.metadata : {};
  for (const [key, value] of Object.entries(meta)) {
    const term = document.createElement("dt");
    term.textContent = key;
    const desc = document.createElement("dd");
    desc.textContent = typeof value === "string" ? value : JSON.stringify(value);
    ui.metadata.append(term, desc);
  }
  ui.metaBox.hidden = ui.metadata.children.length === 0;
  updateControls();
}

function showCaption(text) {
  ui.caption.textContent = text || t("placeholders.caption_empty");
  ui.caption.classList.toggle("empty", !text);
}

// A full image that will not load (an expired link) falls back to its thumbnail.
ui.photo.addEventListener("error", () => {
  const fallback = ui.photo.dataset.fallback;
  if (fallback && ui.photo.getAttribute("src") !== fallback) ui.photo.src = fallback;
});

function preload(image) {
  if (image) new Image().src = image.temp_url;
}

function updateControls() {
  const f = state.features || {};
  const has = Boolean(state.current);
  const canAct = has && !state.busy && (state.admin || f.auth_mode === "none");
  const show = (button, on) => {
    button.hidden = !on;
    button.disabled = !canAct;
  };
  const adminArea = state.admin || f.auth_mode === "none";
  show(ui.analyze, adminArea && f.analyze_caption_enabled);
  show(ui.publish, adminArea && f.publish_enabled);
  show(ui.keep, adminArea && f.keep_enabled);
  show(ui.remove, adminArea && f.remove_enabled);
  if (publishMode()) {
    ui.prev.hidden = !(state.historyAt > 0);
    ui.next.hidden = !has && state.history.length === 0;
    ui.position.textContent = has ? t("status.random_pick") : "";
  } else {
    const count = state.names.length;
    ui.prev.hidden = !(has && state.index > 0);
    ui.next.hidden = !(has && state.index < count - 1);
    ui.position.textContent = count
      ? t("status.position", { current: Math.min(state.index + 1, count), total: count })
      : "";
  }
  ui.prev.disabled = ui.next.disabled = state.busy;
  ui.login.hidden = state.admin || f.auth_mode !== "password";
  ui.oidc.hidden = state.admin || f.auth_mode !== "auth0";
  ui.logout.hidden = !state.admin;
}

// ------------------------------------------------------------------ navigation

async function loadReview(keepIndex) {
  const list = await api("GET", "/api/images/list");
  state.names = Array.isArray(list.filenames) ? list.filenames.map(String) : [];
  if (state.names.length === 0) {
    notice(t("status.no_images"));
    return;
  }
  state.index = Math.min(keepIndex || 0, state.names.length - 1);
  await showIndex(state.index);
}

async function showIndex(index) {
  const name = state.names[index];
  state.index = index;
  const pending = state.ahead.get(name);
  state.ahead.clear();
  const image = await (pending || api("GET", imagePath(name)));
  if (state.names[state.index] !== name) return; // moved on meanwhile
  render(image);
  const following = state.names[index + 1];
  if (following) {
    const ahead = api("GET", imagePath(following));
    state.ahead.set(following, ahead);
    ahead.then(preload).catch(() => state.ahead.delete(following));
  }
}

async function randomImage(avoid) {
  let image = await api("GET", "/api/images/random");
  // With more than one image, try once more rather than show the same twice.
  if (avoid && image.filename === avoid) image = await api("GET", "/api/images/random");
  return image;
}

function prefetchRandom() {
  const avoid = state.current && state.current.filename;
  state.prefetched = randomImage(avoid).then((image) => {
    preload(image);
    return image;
  });
  state.prefetched.catch(() => {});
}

async function loadPublish() {
  const image = await randomImage();
  state.history = [image];
  state.historyAt = 0;
  render(image);
  prefetchRandom();
}

async function next() {
  if (state.busy) return;
  if (publishMode()) {
    if (state.historyAt < state.history.length - 1) {
      state.historyAt += 1;
      render(state.history[state.historyAt]);
      return;
    }
    const upcoming = state.prefetched;
    state.prefetched = null;
    const image = await (upcoming || randomImage());
    state.history.push(image);
    state.historyAt = state.history.length - 1;
    render(image);
    prefetchRandom();
  } else if (state.index < state.names.length - 1) {
    await showIndex(state.index + 1);
  }
}

async function previous() {
  if (state.busy) return;
  if (publishMode()) {
    if (state.historyAt > 0) {
      state.historyAt -= 1;
      render(state.history[state.historyAt]);
    }
  } else if (state.index > 0) {
    await showIndex(state.index - 1);
  }
}

function reportFailure(what) {
  return (error) => {
    const text = t("activity.navigation_failed", { action: what, error: error.message });
    if (error.status === 404 && state.current) {
      log(text, "error");
      return reload();
    }
    log(text, "error");
  };
}

async function reload() {
  try {
    if (publishMode()) await loadPublish();
    else await loadReview(state.index);
  } catch (error) {
    if (error.status === 404) notice(t("status.no_images"));
    else if (error.status === 403) notice(t("status.login_to_view"));
    else if (error.status === 503) notice(error.message);
    else notice(t("status.load_images_failed", { error: error.message }));
  }
}

// After an image left the folder, show the one that took its place.
async function dropCurrent() {
  const gone = state.current && state.current.filename;
  if (publishMode()) {
    state.history = state.history.filter((image) => image.filename !== gone);
    state.historyAt = state.history.length - 1;
    state.current = null;
    // The listing dropped the image, so a fresh pick cannot return it.
    state.prefetched = null;
    await next().catch(() => notice(t("status.nothing_left")));
  } else {
    state.names = state.names.filter((name) => name !== gone);
    if (state.names.length === 0) {
      notice(t("status.no_images_left"));
      return;
    }
    await showIndex(Math.min(state.index, state.names.length - 1));
  }
}

// ------------------------------------------------------------------ admin actions

async function act(label, run) {
  if (state.busy || !state.current) return;
  state.busy = true;
  updateControls();
  const name = state.current.filename;
  try {
    await run(name);
  } catch (error) {
    log(t("activity.action_failed", { action: label, name, error: error.message }), "error");
  } finally {
    state.busy = false;
    updateControls();
  }
}

async function curate(action) {
  await act(t(`buttons.${action}`), async (name) => {
    const result = await api("POST", `${imagePath(name)}/${action}`);
    const done = action === "keep" ? "activity.kept" : "activity.removed";
    log(t(done, { name: result.filename, folder: result.destination_folder }), "ok");
    state.busy = false;
    await dropCurrent();
  });
}

async function analyze() {
  await act(t("buttons.analyze"), async (name) => {
    log(t("activity.analyzing", { name }));
    const result = await api("POST", `${imagePath(name)}/analyze`);
    if (!result.caption && !result.sd_caption && !result.description) {
      log(t("activity.no_analysis", { name }));
      return;
    }
    if (state.current && state.current.filename === name) {
      state.current.caption = result.caption;
      state.current.sd_caption = result.sd_caption;
      showCaption(result.caption || result.sd_caption);
    }
    log(t("activity.caption_for", { name, caption: result.caption || t("activity.no_caption") }), "ok");
    if (result.sd_caption) log(t("activity.sd_caption", { text: result.sd_caption }));
    if (Array.isArray(result.tags) && result.tags.length) {
      log(t("activity.tags", { tags: result.tags.join(", ") }));
    }
    if (result.sidecar_written) log(t("activity.sidecar_written", { name }));
  });
}

// Publishing cannot be undone: the first click arms the button, a second
// click within a few seconds publishes.
let publishArmed = null;
async function publish() {
  if (!publishArmed) {
    ui.publish.textContent = t("buttons.confirm_publish");
    ui.publish.classList.add("confirm");
    publishArmed = setTimeout(disarmPublish, 4000);
    return;
  }
  disarmPublish();
  await act(t("buttons.publish"), async (name) => {
    log(t("activity.publishing", { name }));
    const result = await api("POST", `${imagePath(name)}/publish`);
    for (const [platform, outcome] of Object.entries(result.results || {})) {
      if (outcome && outcome.success) {
        const postId = outcome.post_id;
        log(postId ? t("activity.published_as", { platform, post_id: postId })
          : t("activity.published", { platform }), "ok");
      } else {
        const error = outcome && outcome.error;
        log(error ? t("activity.publish_failed_because", { platform, error })
          : t("activity.publish_failed", { platform }), "error");
      }
    }
    if (!result.any_success) log(t("activity.not_published", { name }), "error");
    if (result.archived) {
      log(t("activity.archived", { name }));
      state.busy = false;
      await dropCurrent();
    }
  });
}

function disarmPublish() {
  clearTimeout(publishArmed);
  publishArmed = null;
  ui.publish.textContent = t("buttons.publish");
  ui.publish.classList.remove("confirm");
}

async function refreshAdmin() {
  try {
    const status = await api("GET", "/api/admin/status");
    state.admin = Boolean(status.admin);
  } catch (error) {
    state.admin = false;
  }
  updateControls();
}

function openLogin() {
  ui.loginError.textContent = "";
  ui.password.value = "";
  ui.dialog.showModal();
  ui.password.focus();
}

async function submitLogin(event) {
  event.preventDefault();
  ui.loginSubmit.disabled = true;
  ui.loginError.textContent = "";
  try {
    await api("POST", "/api/admin/login", { password: ui.password.value });
    ui.password.value = "";
    ui.dialog.close();
    log(t("activity.logged_in"), "ok");
    await refreshAdmin();
    if (!state.current) await reload();
  } catch (error) {
    ui.loginError.textContent = error.status === 429
      ? t("admin_dialog.too_many_attempts")
      : error.message;
  } finally {
    ui.loginSubmit.disabled = false;
  }
}

async function logout() {
  try {
    await api("POST", "/api/admin/logout");
    log(t("activity.logged_out"));
  } catch (error) {
    log(t("activity.logout_failed", { error: error.message }), "error");
  }
  await refreshAdmin();
  if (!state.features.auto_view_enabled) notice(t("status.login_to_view"));
}

function reportAuthError() {
  const params = new URLSearchParams(window.location.search);
  const reason = params.get("auth_error");
  if (reason === null) return;
  const known = Object.prototype.hasOwnProperty.call(TEXT, `auth_errors.${reason}`);
  log(t("activity.login_failed", { reason: known ? t(`auth_errors.${reason}`) : reason }), "error");
  history.replaceState(null, "", window.location.pathname);
}

// ------------------------------------------------------------------ input

ui.next.addEventListener("click", () => next().catch(reportFailure(t("activity.next"))));
ui.prev.addEventListener("click", () => previous().catch(reportFailure(t("activity.previous"))));
ui.keep.addEventListener("click", () => curate("keep"));
ui.remove.addEventListener("click", () => curate("remove"));
ui.analyze.addEventListener("click", analyze);
ui.publish.addEventListener("click", publish);
ui.login.addEventListener("click", openLogin);
ui.logout.addEventListener("click", logout);
ui.loginCancel.addEventListener("click", () => ui.dialog.close());
ui.form.addEventListener("submit", submitLogin);

document.addEventListener("keydown", (event) => {
  if (ui.dialog.open || event.altKey || event.ctrlKey || event.metaKey) return;
  const tag = event.target && event.target.tagName;
  if (tag === "INPUT" || tag === "TEXTAREA") return;
  if (event.key === "ArrowRight") {
    event.preventDefault();
    next().catch(reportFailure(t("activity.next")));
  } else if (event.key === "ArrowLeft") {
    event.preventDefault();
    previous().catch(reportFailure(t("activity.previous")));
  }
});

let touchStart = null;
ui.stage.addEventListener("touchstart", (event) => {
  const touch = event.changedTouches[0];
  touchStart = touch ? { x: touch.clientX, y: touch.clientY } : null;
}, { passive: true });
ui.stage.addEventListener("touchend", (event) => {
  const touch = event.changedTouches[0];
  if (!touchStart || !touch) return;
  const dx = touch.clientX - touchStart.x;
  const dy = touch.clientY - touchStart.y;
  touchStart = null;
  if (Math.abs(dx) < 50 || Math.abs(dx) < 1.5 * Math.abs(dy)) return;
  if (dx < 0) next().catch(reportFailure(t("activity.next")));
  else previous().catch(reportFailure(t("activity.previous")));
}, { passive: true });

// ------------------------------------------------------------------ start

async function start() {
  reportAuthError();
  try {
    const [features, status] = await Promise.all([
      api("GET", "/api/config/features"),
      api("GET", "/api/admin/status"),
    ]);
    state.features = features;
    state.admin = Boolean(status.admin);
  } catch (error) {
    notice(t("status.load_config_failed", { error: error.message }));
    return;
  }
  document.body.dataset.mode = publishMode() ? "publish" : "review";
  updateControls();
  if (!state.features.auto_view_enabled && !state.admin) {
    notice(state.features.auth_mode === "none"
      ? t("status.viewing_not_configured")
      : t("status.login_to_view"));
    return;
  }
  await reload();
}

start();
