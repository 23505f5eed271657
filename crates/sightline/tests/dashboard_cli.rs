//! Dashboard accounts with the real binary: the first start creates an admin and prints its
//! one-time password (which signs in), a restart does not create another, and
//! `sightline user create --password-stdin` / `user add-member` make users who can sign in and
//! see the projects they were added to.

#![allow(clippy::unwrap_used)]
// A failed step should stop the test where it failed.
// The children are killed and waited for in `Drop`, which clippy does not follow.
#![allow(clippy::zombie_processes)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use common::dashboard::{plain_client, sign_in};

struct Served {
    child: Child,
    http: String,
    /// The first admin's printed password, when this start printed one.
    admin_password: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &std::path::Path) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("SIGHTLINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin_password = None;
    loop {
        let line = lines.next().expect("the server prints a listening line").unwrap();
        if let Some(email) = line.trim().strip_prefix("e-mail:") {
            assert_eq!(email.trim(), "admin@sightline.local");
        }
        if let Some(password) = line.trim().strip_prefix("password:") {
            admin_password = Some(password.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("Sightline listening: OTLP/HTTP and API on ") {
            let http = rest.split(',').next().unwrap().to_owned();
            return Served { child, http, admin_password };
        }
    }
}

/// Runs `sightline user ...` with `stdin` as standard input; returns (success, stdout + stderr).
fn user_command(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("SIGHTLINE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

#[test]
fn the_first_admin_and_cli_users_can_sign_in() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let first = serve(data_dir.path());
    let password = first.admin_password.clone().expect("the first start prints the admin's password");
    assert!(password.len() >= 16, "{password}");
    let base = first.http.clone();
    let admin = runtime.block_on(sign_in(&base, "admin@sightline.local", &password));
    let overview = runtime.block_on(async {
        plain_client().get(format!("{base}/")).header("cookie", admin).send().await.unwrap().text().await.unwrap()
    });
    assert!(overview.contains("admin@sightline.local") && overview.contains(r#"id="project-default""#), "{overview}");

    // A second project; Bob is created for it, then added to the default project too.
    let status = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["project", "create", "Payments", "--data-dir"])
        .arg(data_dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let (ok, text) =
        user_command(data_dir.path(), &["create", "--email", "bob@example.com", "--password-stdin"], "short\n");
    assert!(!ok && text.contains("at least 8 characters"), "{text}");
    let (ok, text) = user_command(
        data_dir.path(),
        &["create", "--email", "Bob@Example.com", "--password-stdin", "--project", "payments"],
        "bobs long password\n",
    );
    assert!(ok, "{text}");
    assert!(text.contains("bob@example.com") && text.contains("payments"), "{text}");
    assert!(!text.contains("bobs long password"), "the password is never echoed: {text}");
    let (ok, text) = user_command(
        data_dir.path(),
        &["create", "--email", "bob@example.com", "--password-stdin"],
        "another password\n",
    );
    assert!(!ok && text.contains("exists"), "{text}");
    let bob = runtime.block_on(sign_in(&base, "bob@example.com", "bobs long password"));
    let page = |cookie: &str, path: &str| {
        runtime.block_on(async {
            plain_client().get(format!("{base}{path}")).header("cookie", cookie).send().await.unwrap().status().as_u16()
        })
    };
    assert_eq!(page(&bob, "/p/payments/issues"), 200);
    assert_eq!(page(&bob, "/p/default/issues"), 404, "not a member of default yet");
    let (ok, text) =
        user_command(data_dir.path(), &["add-member", "--email", "bob@example.com", "--project", "default"], "");
    assert!(ok, "{text}");
    assert_eq!(page(&bob, "/p/default/issues"), 200, "membership applies to the live session");
    let (ok, text) =
        user_command(data_dir.path(), &["add-member", "--email", "eve@example.com", "--project", "default"], "");
    assert!(!ok && text.contains("no user"), "{text}");

    // A restart keeps the admin and prints no new password.
    drop(first);
    let second = serve(data_dir.path());
    assert!(second.admin_password.is_none(), "no second admin at a restart");
    let base = second.http.clone();
    runtime.block_on(sign_in(&base, "admin@sightline.local", &password));
}
