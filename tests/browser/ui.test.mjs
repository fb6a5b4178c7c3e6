// The HTML UI in a real browser: Debian's chromium driven by playwright-core,
// against the built `web` binary on 127.0.0.1 with local storage in a
// temporary folder. Screenshots go to target/test-output/.
//
// Run through `make browser-test` (it builds the binary and installs what is
// needed); WEB_BIN overrides the binary, CHROMIUM the browser.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const WEB_BIN = process.env.WEB_BIN || path.join(repo, "target/debug/web");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const OUTPUT = path.join(repo, "target/test-output");
const SAMPLES = path.join(repo, "samples/photos");
// The sample static configuration: the defaults, plus German.
const STATIC_SAMPLES = path.join(repo, "samples/static");
// The host rules refuse IP literals and `localhost`; `*.localhost` is loopback.
const HOST = "publisher.localhost";
const PASSWORD = "browser-test-password";
const XSS_NAME = "<img src=x onerror=alert(1)>.jpg";
const XSS_CAPTION = '<b>bold</b><script>alert(2)</script><img src=x onerror=alert(3)>';

/** A folder of sample photos plus the hostile file and its sidecar. */
function photoFolder() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "publisher-ui-"));
  for (const name of fs.readdirSync(SAMPLES)) {
    fs.copyFileSync(path.join(SAMPLES, name), path.join(dir, name));
  }
  fs.copyFileSync(path.join(SAMPLES, "02-dunes.jpg"), path.join(dir, XSS_NAME));
  const stem = XSS_NAME.slice(0, -".jpg".length);
  fs.writeFileSync(
    path.join(dir, `${stem}.txt`),
    `<i>sd</i><img src=x onerror=alert(4)>\n\n# ---\n# caption: ${XSS_CAPTION}\n# tags: ["<u>t</u>"]\n`,
  );
  return dir;
}

/** Starts the web function on an ephemeral port; resolves once it listens. */
async function startWeb(dir, extraEnv) {
  const env = {
    PATH: process.env.PATH,
    PORT: "0",
    LOG_FORMAT: "json",
    STORAGE_PROVIDER: "local",
    LOCAL_STORAGE_DIR: dir,
    STORAGE_PATHS: JSON.stringify({ root: "/", keep: "keep", remove: "reject" }),
    AUTO_VIEW: "true",
    WEB_ADMIN_PASSWORD: PASSWORD,
    WEB_SESSION_SECRET: "browser-test-session-secret-0123456789abcdef",
    WEB_SECURE_COOKIES: "false",
    ...extraEnv,
  };
  const child = spawn(WEB_BIN, [], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`web did not start:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk;
      const match = output.match(/"address":"127\.0\.0\.1:(\d+)"/);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`web exited with ${code}:\n${output}`)));
  });
  return { child, base: `http://${HOST}:${port}` };
}

function stopWeb(web) {
  if (web && web.child.exitCode === null) web.child.kill("SIGTERM");
}

async function launchBrowser(options) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "publisher-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    ...options,
    executablePath: CHROMIUM,
    headless: true,
    hasTouch: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
    ],
  });
  return { context, profile };
}

/** A page that records dialogs, script errors and CSP violations. */
async function watchedPage(context) {
  const page = await context.newPage();
  const problems = { dialogs: [], errors: [] };
  page.on("dialog", async (dialog) => {
    problems.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on("pageerror", (error) => problems.errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") problems.errors.push(message.text());
  });
  return { page, problems };
}

const filename = (page) => page.locator("#filename").textContent();

async function waitForImage(page, name) {
  await page.waitForFunction(
    (expected) => {
      const img = document.getElementById("photo");
      const shown = document.getElementById("filename").textContent;
      return shown === expected && !img.hidden && img.complete && img.naturalWidth > 0;
    },
    name,
    { timeout: 15_000 },
  );
}

async function swipe(page, fromX, toX) {
  await page.evaluate(([startX, endX]) => {
    const stage = document.getElementById("stage");
    const touch = (x) => new Touch({ identifier: 1, target: stage, clientX: x, clientY: 200 });
    stage.dispatchEvent(new TouchEvent("touchstart", { changedTouches: [touch(startX)], bubbles: true }));
    stage.dispatchEvent(new TouchEvent("touchend", { changedTouches: [touch(endX)], bubbles: true }));
  }, [fromX, toX]);
}

describe("review mode (publish off)", () => {
  let dir;
  let web;
  let browser;

  before(async () => {
    fs.mkdirSync(OUTPUT, { recursive: true });
    dir = photoFolder();
    web = await startWeb(dir, { FEATURE_PUBLISH: "false" });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.context.close();
    stopWeb(web);
    for (const folder of [dir, browser?.profile]) {
      if (folder) fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  test("walks the sorted list, logs in, keeps, and shows hostile data as text", async () => {
    const { page, problems } = await watchedPage(browser.context);
    await page.goto(`${web.base}/`);
    await waitForImage(page, "01-dawn.jpg");
    assert.equal(await page.locator("#position").textContent(), "1 / 13");
    assert.equal(
      await page.locator("#caption").textContent(),
      "First light over the hills — a quiet start.",
    );
    assert.equal(await page.locator("#keep").isVisible(), false, "admin controls need a login");

    await page.click("#next");
    await waitForImage(page, "02-dunes.jpg");
    await page.keyboard.press("ArrowRight");
    await waitForImage(page, "03-forest.jpg");
    await page.keyboard.press("ArrowLeft");
    await waitForImage(page, "02-dunes.jpg");
    await page.click("#prev");
    await waitForImage(page, "01-dawn.jpg");
    await swipe(page, 600, 300);
    await waitForImage(page, "02-dunes.jpg");
    await swipe(page, 300, 600);
    await waitForImage(page, "01-dawn.jpg");

    // The admin dialog: a wrong password is refused, the right one logs in.
    await page.click("#admin-login");
    assert.equal(await page.locator("#login-dialog").isVisible(), true);
    await page.fill("#password", "wrong");
    await page.click("#login-submit");
    await page.waitForFunction(() => document.getElementById("login-error").textContent === "Invalid password");
    await page.fill("#password", PASSWORD);
    await page.click("#login-submit");
    await page.locator("#admin-logout").waitFor({ state: "visible" });
    assert.equal(await page.locator("#login-dialog").isVisible(), false);
    for (const button of ["#keep", "#remove"]) {
      assert.equal(await page.locator(button).isVisible(), true, button);
    }
    assert.equal(await page.locator("#publish").isVisible(), false, "publish is off");
    assert.equal(await page.locator("#analyze").isVisible(), false, "no AI configured");

    await page.screenshot({ path: path.join(OUTPUT, "ui-desktop.png") });
    await page.setViewportSize({ width: 360, height: 740 });
    await waitForImage(page, "01-dawn.jpg");
    await page.screenshot({ path: path.join(OUTPUT, "ui-phone.png") });
    await page.screenshot({ path: path.join(OUTPUT, "ui-phone-full.png"), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 360, `no horizontal scrolling on a phone (${overflow}px)`);
    await page.setViewportSize({ width: 1280, height: 800 });

    // Keep moves the image and its sidecar; the next image takes its place.
    await page.click("#keep");
    await waitForImage(page, "02-dunes.jpg");
    assert.ok(fs.existsSync(path.join(dir, "keep/01-dawn.jpg")), "image in keep/");
    assert.ok(fs.existsSync(path.join(dir, "keep/01-dawn.txt")), "sidecar in keep/");
    assert.ok(!fs.existsSync(path.join(dir, "01-dawn.jpg")), "gone from the folder");
    assert.equal(await page.locator("#position").textContent(), "1 / 12");
    assert.match(await page.locator("#activity").textContent(), /Kept 01-dawn\.jpg → \/keep/);

    // The hostile file is the last one in byte order.
    for (let i = 0; i < 11; i++) {
      await page.keyboard.press("ArrowRight");
      await page.waitForFunction((n) => document.getElementById("position").textContent === `${n} / 12`, i + 2);
    }
    await waitForImage(page, XSS_NAME);
    assert.equal(await filename(page), XSS_NAME);
    assert.equal(await page.locator("#caption").textContent(), XSS_CAPTION);
    await page.click("#meta-box summary");
    assert.match(await page.locator("#metadata").textContent(), /\["<u>t<\/u>"\]/);
    const injected = await page.evaluate(() => ({
      images: document.querySelectorAll('img[src="x"]').length,
      bold: document.querySelectorAll("#caption b, #filename img, #metadata u").length,
      scripts: document.scripts.length,
    }));
    assert.deepEqual(injected, { images: 0, bold: 0, scripts: 1 });
    await page.screenshot({ path: path.join(OUTPUT, "ui-hostile-names.png") });

    await page.waitForTimeout(300);
    assert.deepEqual(problems.dialogs, [], "no dialog fired");
    assert.deepEqual(problems.errors.filter((e) => !e.includes("401")), [], "no script errors or CSP violations");
    await page.close();
  });
});

describe("publish mode (publish on)", () => {
  let dir;
  let web;
  let browser;

  before(async () => {
    dir = photoFolder();
    web = await startWeb(dir, { FEATURE_PUBLISH: "true" });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.context.close();
    stopWeb(web);
    for (const folder of [dir, browser?.profile]) {
      if (folder) fs.rmSync(folder, { recursive: true, force: true });
    }
  });

  test("shows random images and goes back through them", async () => {
    const { page, problems } = await watchedPage(browser.context);
    await page.goto(`${web.base}/`);
    await page.waitForFunction(() => document.getElementById("filename").textContent !== "");
    const first = await filename(page);
    await waitForImage(page, first);
    assert.equal(await page.locator("#prev").isVisible(), false, "nothing to go back to");
    await page.click("#next");
    await page.waitForFunction(() => !document.getElementById("prev").hidden);
    const second = await filename(page);
    await waitForImage(page, second);
    await page.click("#prev");
    await waitForImage(page, first);
    await page.keyboard.press("ArrowRight");
    await waitForImage(page, second);

    await page.click("#admin-login");
    await page.fill("#password", PASSWORD);
    await page.click("#login-submit");
    await page.locator("#admin-logout").waitFor({ state: "visible" });
    assert.equal(await page.locator("#publish").isVisible(), true, "publish shown when on");
    await page.screenshot({ path: path.join(OUTPUT, "ui-publish-mode.png") });
    assert.deepEqual(problems.dialogs, []);
    assert.deepEqual(problems.errors, []);
    await page.close();
  });
});

describe("the page in the visitor's language", () => {
  let dir;
  let web;

  before(async () => {
    dir = photoFolder();
    web = await startWeb(dir, { FEATURE_PUBLISH: "false", PV2_STATIC_CONFIG_DIR: STATIC_SAMPLES });
  });

  after(() => {
    stopWeb(web);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A browser asking for `languages`, and its first page loaded. */
  async function visit(languages) {
    const browser = await launchBrowser({ extraHTTPHeaders: { "Accept-Language": languages } });
    const { page, problems } = await watchedPage(browser.context);
    const response = await page.goto(`${web.base}/`);
    await waitForImage(page, "01-dawn.jpg");
    return { browser, page, problems, response };
  }

  async function close(browser) {
    await browser.context.close();
    fs.rmSync(browser.profile, { recursive: true, force: true });
  }

  test("a language without a file: English", async () => {
    const { browser, page, problems, response } = await visit("fr-FR,fr;q=0.9,ja;q=0.5");
    assert.equal(response.headers()["vary"], "Accept-Language");
    assert.equal(await page.getAttribute("html", "lang"), "en");
    assert.equal(await page.locator("#admin-login").textContent(), "Admin");
    assert.equal(await page.locator(".activity h2").textContent(), "Activity");
    assert.equal(await page.locator("#position").textContent(), "1 / 13");
    await page.click("#admin-login");
    assert.equal(await page.locator("#login-dialog h2").textContent(), "Admin login");
    assert.deepEqual(problems.errors, []);
    await close(browser);
  });

  test("German: labels, dialog and activity from web_ui_text.de.yaml", async () => {
    const { browser, page, problems, response } = await visit("de-DE,de;q=0.9,en;q=0.5");
    assert.equal(response.headers()["vary"], "Accept-Language");
    assert.equal(response.headers()["content-language"], "de");
    assert.equal(await page.getAttribute("html", "lang"), "de");
    assert.equal(await page.locator("#admin-login").textContent(), "Anmelden");
    assert.equal(await page.locator("#position").textContent(), "1 von 13");
    assert.equal(await page.locator(".activity h2").textContent(), "Verlauf");
    assert.equal(await page.getAttribute("#next", "aria-label"), "Nächstes Bild");

    await page.click("#admin-login");
    assert.equal(await page.locator("#login-dialog h2").textContent(), "Admin-Anmeldung");
    assert.equal(await page.locator("#login-cancel").textContent(), "Abbrechen");
    await page.fill("#password", PASSWORD);
    await page.click("#login-submit");
    await page.locator("#admin-logout").waitFor({ state: "visible" });
    assert.equal(await page.locator("#admin-logout").textContent(), "Abmelden");
    assert.equal(await page.locator("#keep").textContent(), "Behalten");
    assert.equal(await page.locator("#remove").textContent(), "Aussortieren");
    assert.match(await page.locator("#activity").textContent(), /Als Admin angemeldet/);

    await page.click("#keep");
    await waitForImage(page, "02-dunes.jpg");
    assert.match(await page.locator("#activity").textContent(), /01-dawn\.jpg behalten → \/keep/);
    assert.equal(await page.locator("#position").textContent(), "1 von 12");
    await page.screenshot({ path: path.join(OUTPUT, "ui-german.png") });

    // The same policy and script as in English: nothing was refused.
    await page.waitForTimeout(300);
    assert.deepEqual(problems.dialogs, []);
    assert.deepEqual(problems.errors, [], "no script errors or CSP violations");
    await close(browser);
  });
});
