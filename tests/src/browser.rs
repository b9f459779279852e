//! A real browser for the POS scenarios: Debian's Chromium, headless, driven over WebDriver
//! by its ChromeDriver (fantoccini client, plain HTTP on loopback).
//!
//! [`Browser::start`] spawns ChromeDriver on a free port and opens one session; it is killed
//! on drop. Helpers find elements by `data-testid`, wait for attributes with deadlines (never
//! fixed sleeps), grant the persistent-storage permission the POS insists on (headless
//! Chromium answers `navigator.storage.persist()` with false otherwise) and save screenshots.
//! `CHROMIUM_BIN` / `CHROMEDRIVER_BIN` override the Debian paths.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::process::free_port;

/// The longest any wait in a browser scenario lasts.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the Chromium binary.
pub fn chromium_bin() -> PathBuf {
    std::env::var_os("CHROMIUM_BIN").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// Path of the ChromeDriver binary.
pub fn chromedriver_bin() -> PathBuf {
    std::env::var_os("CHROMEDRIVER_BIN")
        .map_or_else(|| "/usr/bin/chromedriver".into(), PathBuf::from)
}

/// True when both binaries exist (the test command installs them; see scripts/lib/web.sh).
pub fn browser_available() -> bool {
    chromium_bin().is_file() && chromedriver_bin().is_file()
}

/// One headless Chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    client: Client,
}

/// `POST /session/{id}/permissions` (W3C Permissions, "set permission").
#[derive(Debug)]
struct SetPermission {
    name: &'static str,
}

impl WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/permissions",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"descriptor": {"name": self.name}, "state": "granted"});
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Browser {
    /// Starts ChromeDriver and a headless Chromium session.
    pub async fn start() -> anyhow::Result<Browser> {
        let port = free_port()?;
        // Its own process group: Chromium runs as ChromeDriver's children, and a test that
        // fails before `close` must not leave browsers behind (see `Drop`).
        let driver = Command::new(chromedriver_bin())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", chromedriver_bin().display()))?;
        let deadline = Instant::now() + UI_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_bin(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--window-size=1280,900"]
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a WebDriver session")?;
        Ok(Browser { driver, client })
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url`, grants persistent storage to its origin, and loads it again so the page
    /// starts with the permission.
    pub async fn open_pos(&self, url: &str) -> anyhow::Result<()> {
        self.client.goto(url).await?;
        self.client
            .issue_cmd(SetPermission {
                name: "persistent-storage",
            })
            .await
            .context("granting persistent-storage")?;
        self.client.goto(url).await?;
        Ok(())
    }

    /// The element with `data-testid="id"`, waited for.
    pub async fn testid(&self, id: &str) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(UI_TIMEOUT)
            .for_element(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await
            .with_context(|| format!("no element with data-testid={id} within {UI_TIMEOUT:?}"))
    }

    /// Every element with `data-testid="id"` now (no wait).
    pub async fn all_testid(&self, id: &str) -> anyhow::Result<Vec<Element>> {
        Ok(self
            .client
            .find_all(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await?)
    }

    /// Types `text` into the element `id` (clearing it first).
    pub async fn type_into(&self, id: &str, text: &str) -> anyhow::Result<()> {
        let element = self.testid(id).await?;
        element.clear().await?;
        element.send_keys(text).await?;
        Ok(())
    }

    /// Clicks the element `id` once it is enabled.
    pub async fn click(&self, id: &str) -> anyhow::Result<()> {
        let element = self.testid(id).await?;
        let deadline = Instant::now() + UI_TIMEOUT;
        while !element.is_enabled().await? {
            if Instant::now() > deadline {
                bail!("{id} stayed disabled for {UI_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        element.click().await?;
        Ok(())
    }

    /// The attribute `attr` of element `id`, if present.
    pub async fn attr(&self, id: &str, attr: &str) -> anyhow::Result<Option<String>> {
        Ok(self.testid(id).await?.attr(attr).await?)
    }

    /// Waits until attribute `attr` of element `id` satisfies `ok`; returns its value.
    pub async fn wait_attr(
        &self,
        id: &str,
        attr: &str,
        ok: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + UI_TIMEOUT;
        let mut last = None;
        loop {
            if let Ok(elements) = self.all_testid(id).await {
                for element in elements {
                    if let Ok(Some(value)) = element.attr(attr).await {
                        if ok(&value) {
                            return Ok(value);
                        }
                        last = Some(value);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("{id}[{attr}] never matched within {UI_TIMEOUT:?}; last value {last:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Runs `script` in the page and returns its value.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        Ok(self.client.execute(script, vec![]).await?)
    }

    /// Saves a PNG screenshot to `path`.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Opens a new tab on `url` and switches to it; returns the previous tab's handle.
    pub async fn open_second_tab(&self, url: &str) -> anyhow::Result<fantoccini::wd::WindowHandle> {
        let first = self.client.window().await?;
        let tab = self.client.new_window(true).await?;
        self.client.switch_to_window(tab.handle).await?;
        self.client.goto(url).await?;
        Ok(first)
    }

    /// Closes the session and the driver.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let result = self.client.clone().close().await;
        self.kill_group();
        result.context("closing the WebDriver session")
    }

    /// Kills ChromeDriver and the Chromium processes it started (its process group), once:
    /// after the driver is reaped its pid may be reused, so a reaped driver is left alone.
    fn kill_group(&mut self) {
        if matches!(self.driver.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.driver.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Directory for screenshots: `$POS_ARTIFACTS` or `target/pos-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    std::env::var_os("POS_ARTIFACTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pos-artifacts"),
        PathBuf::from,
    )
}
