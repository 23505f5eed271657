//! Headless Chromium for the dashboard's browser tests: chromedriver on an ephemeral loopback
//! port, a Chromium session, waiting for visible text, and screenshots under
//! `<target>/tmp/ui-screenshots/`. Needs Debian's `chromium` and `chromium-driver` (`.ci/run`
//! installs them when missing).

#![allow(clippy::unwrap_used)]
// A failed step should stop the test where it failed.
// The children are killed and waited for in `Drop`, which clippy does not follow.
#![allow(clippy::zombie_processes)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const EMAIL: &str = "alice@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
/// Longest wait for a page to show what a test expects.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(20);

/// chromedriver on an ephemeral loopback port; killed on drop.
pub struct ChromeDriver {
    child: Child,
    /// The WebDriver URL.
    pub url: String,
}

impl ChromeDriver {
    pub async fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install -y chromium chromium-driver"
        );
        // Ask the OS for a free port, then hand it to chromedriver (it has no "port 0" mode).
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // Times must show in the viewer's zone, not UTC: give the browser a zone of its own.
            .env("TZ", "Asia/Tokyo")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            if let Ok(response) = http.get(format!("{}/status", driver.url)).send().await
                && response.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {}", driver.url);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    pub async fn browser(&self) -> Client {
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1100"]
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the page's visible text contains every needle; returns the text.
pub async fn wait_for_text(browser: &Client, needles: &[&str]) -> String {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let text = match browser.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if needles.iter().all(|needle| text.contains(needle)) {
            return text;
        }
        assert!(Instant::now() < deadline, "the page never showed {needles:?}; it shows:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page's visible text no longer contains `gone` while it contains every one of
/// `still_there` (proof that the next page has rendered); returns the text. A WebDriver error while
/// the page is being replaced (a stale `body`) proves nothing either way, so it is retried.
pub async fn wait_for_text_gone(browser: &Client, gone: &str, still_there: &[&str]) -> String {
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        let text = match browser.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.ok(),
            Err(_) => None,
        };
        if let Some(text) = &text
            && !text.contains(gone)
            && still_there.iter().all(|needle| text.contains(needle))
        {
            return text.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the page kept showing {gone:?} (or lost {still_there:?}); it shows:\n{text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Signs in through the real form at `{base}/login` and waits for the overview.
pub async fn sign_in(browser: &Client, base: &str, email: &str, password: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    wait_for_text(browser, &["Sign in to Sightline"]).await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys(email).await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    browser.find(Locator::Css("form.stacked button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_for_text(browser, &["Overview", email]).await;
}
