//! scripts/smoke.py, the smoke test of a deployed stack, run against the local server binary so
//! that it keeps working: the same client steps, on a fixed configuration (Agora).

use callbridge_tests::*;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SMOKE_KEY: &str = "callbridge-smoke-key";
const SMOKE_SECRET: &str = "callbridge-smoke-secret-never-printed";

/// The local server binary on a free port, configured (not the sandbox), its stderr drained.
fn start_server() -> (LocalBinary, std::thread::JoinHandle<Vec<String>>) {
    let mut cmd = Command::new(workspace_binary("callbridge-local"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("STREAM_API_KEY", SMOKE_KEY)
        .env("STREAM_API_SECRET", SMOKE_SECRET)
        .env("AGORA_APP_ID", AGORA_APP_ID)
        .env("AGORA_APP_CERTIFICATE", AGORA_CERT)
        .env("CALLBRIDGE_PORT", "0")
        .stdout(Stdio::null());
    let mut server = LocalBinary::start(cmd);
    assert!(!server.banner.contains("SANDBOX"), "{}", server.banner);
    // A configured secret is never printed (the sandbox prints only its own demo secret).
    assert!(!server.banner.contains(SMOKE_SECRET), "{}", server.banner);
    assert!(!server.banner.contains("npm install"), "{}", server.banner);
    // Keep reading its request log so that the pipe never fills.
    let lines = server.lines.take().unwrap();
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (server, drain)
}

/// `python3 scripts/smoke.py --api base` with this secret, killed after 120 s (eight requests
/// of at most 10 s each, and a margin).
fn run_smoke(base: &str, secret: &str) -> Output {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smoke.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--api", base, "--timeout", "10"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("STREAM_API_KEY", SMOKE_KEY)
        .env("STREAM_API_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs scripts/smoke.py");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn stop(mut server: LocalBinary, drain: std::thread::JoinHandle<Vec<String>>) -> Vec<String> {
    let _ = server.child.kill();
    let _ = server.child.wait();
    drain.join().unwrap()
}

#[test]
fn smoke_script_passes_against_the_local_server() {
    let (server, drain) = start_server();
    let out = run_smoke(&server.base, SMOKE_SECRET);
    let log = stop(server, drain);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for step in [
        "PASS 1. create a call with a fresh id: smoke-",
        "PASS 2. create the same id in another letter case: the same call",
        "PASS 3. get a call token by id",
        "PASS 4. the id in another channel is refused: 403, code 17",
        "PASS 5. a bad call id is a Stream error: 400, code 4",
        "PASS 6. a token with a bad signature is a Stream error: 401, code 43",
        // The local server has no Agora RESTful API credentials.
        "PASS 7. end the call: ended; tokens already issued stay valid until 20",
        "PASS 8. get a call token of the ended call is refused: 404, code 16, has ended",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert_eq!(
        stdout.lines().last(),
        Some("8 passed, 0 failed"),
        "{stdout}"
    );
    assert!(!stdout.contains(SMOKE_SECRET) && !stderr.contains(SMOKE_SECRET));
    // It drove the server: eight requests, each logged; the end by End Call's route.
    let requests = log.iter().filter(|l| l.contains("status=")).count();
    assert_eq!(requests, 8, "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.contains("/calls/{id}/end") && l.contains("status=200")),
        "{log:?}"
    );
}

#[test]
fn smoke_script_fails_and_says_so_when_the_secret_is_wrong() {
    let (server, drain) = start_server();
    let out = run_smoke(&server.base, "a-wrong-secret");
    stop(server, drain);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL 1. create a call with a fresh id: Create Call: status 401"),
        "{stdout}"
    );
    // The forged-signature step passes whatever the secret.
    assert_eq!(
        stdout.lines().last(),
        Some("1 passed, 7 failed"),
        "{stdout}"
    );
    assert!(!stdout.contains("a-wrong-secret"), "{stdout}");
}
