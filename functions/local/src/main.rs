//! `make run`: the local Callbridge server.
//!
//! `callbridge-local create-table` creates CALLBRIDGE_TABLE_NAME; `callbridge-local describe`
//! prints the routes, variables and DynamoDB facts of the code as JSON (for
//! scripts/check_template.py).

use callbridge::store::dynamodb::{self, DynamoStore};
use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, store::Storage};
use callbridge::{Config, StartError};
use callbridge_local::{local_lookup, serve, user_token};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

// One thread, as the Lambda functions run: enough for a development server, and the CPU it
// spends per request (`make storage-cpu`) is then the functions'.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .compact()
        .init();

    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("create-table") => return create_table().await,
        Some("describe") => {
            println!("{}", callbridge_local::describe());
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!(
                "callbridge-local: unknown argument {other:?}; usage: callbridge-local [create-table | describe]"
            );
            return ExitCode::from(2);
        }
    }
    let (lookup, sandbox) = local_lookup(|k| std::env::var(k).ok());
    let config = match Config::from_lookup(&lookup) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("callbridge-local: {e}");
            return ExitCode::from(2);
        }
    };
    let host = lookup("CALLBRIDGE_HOST").unwrap_or_else(|| "127.0.0.1".into());
    let port = match lookup("CALLBRIDGE_PORT").map(|p| p.parse::<u16>()) {
        None => 8080,
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            eprintln!(
                "callbridge-local: configuration error: CALLBRIDGE_PORT must be a port number (0-65535)"
            );
            return ExitCode::from(2);
        }
    };
    let addr: SocketAddr = match format!("{host}:{port}").parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!(
                "callbridge-local: configuration error: CALLBRIDGE_HOST must be an IP address"
            );
            return ExitCode::from(2);
        }
    };
    let listener = match callbridge_local::listen(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "callbridge-local: cannot listen on {addr}: {e} (set CALLBRIDGE_PORT to another port)"
            );
            return ExitCode::from(1);
        }
    };
    let addr = listener.local_addr().expect("bound address");
    banner(&config, addr, &sandbox);
    match run(listener, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callbridge-local: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(listener: tokio::net::TcpListener, config: Config) -> Result<(), StartError> {
    match config.table_name.clone() {
        None => {
            serve_on(
                listener,
                config,
                MemoryStore::new(),
                "memory (calls are lost when the server stops)",
            )
            .await
        }
        Some(table) => {
            let store = DynamoStore::new(dynamodb::client_from_env().await, &table);
            let label = format!("DynamoDB table {table}");
            serve_on(listener, config, store, &label).await
        }
    }
}

/// `callbridge-local create-table`: creates CALLBRIDGE_TABLE_NAME as template.yaml declares it.
async fn create_table() -> ExitCode {
    let Some(table) = std::env::var("CALLBRIDGE_TABLE_NAME")
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
    else {
        eprintln!("callbridge-local: configuration error: CALLBRIDGE_TABLE_NAME is not set");
        return ExitCode::from(2);
    };
    // The same rule the functions and the server apply, so no name passes here that they refuse.
    if let Err(e) = callbridge::config::check_table_name(&table) {
        eprintln!("callbridge-local: configuration error: CALLBRIDGE_TABLE_NAME {e}");
        return ExitCode::from(2);
    }
    let store = DynamoStore::new(dynamodb::client_from_env().await, &table);
    match store.create_table().await {
        Ok(()) => {
            eprintln!("table {table} is ready (key pk, on-demand, TTL on expires_at)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            eprintln!("callbridge-local: cannot create table {table}: {msg}");
            ExitCode::from(1)
        }
    }
}

async fn serve_on<S: Storage>(
    listener: tokio::net::TcpListener,
    config: Config,
    store: S,
    label: &str,
) -> Result<(), StartError> {
    let app = Arc::new(Callbridge::start(config, store)?);
    eprintln!("  store:    {label}\n");
    serve(listener, app, async {
        shutdown_signal().await;
        eprintln!("\ncallbridge-local: shutting down");
    })
    .await;
    Ok(())
}

fn banner(config: &Config, addr: SocketAddr, sandbox: &[&str]) {
    let base = format!("http://{addr}");
    eprintln!("\nCallbridge local server listening on {base}");
    if config.membership {
        eprintln!(
            "  members:  checked against Stream Chat at {} (members cached {} s)",
            config.stream.api_base, config.stream.cache_secs
        );
    } else {
        eprintln!(
            "  members:  not checked (CALLBRIDGE_MEMBERSHIP=off): any user with a token may create and join any call"
        );
    }
    eprintln!("  notify:   {} (CALLBRIDGE_NOTIFY)", config.notify.as_str());
    if sandbox.is_empty() {
        eprintln!(
            "  mode:     configured from the environment (provider {})",
            config.provider.as_str()
        );
        eprintln!(
            "  try:      curl -X POST '{base}/calls/<id>?api_key={}' -H 'Authorization: <user JWT>'",
            config.api_key
        );
    } else {
        eprintln!("  mode:     SANDBOX - demo credentials, not for production");
        eprintln!("            filled in: {}", sandbox.join(", "));
        if sandbox.contains(&"AGORA_APP_ID") {
            eprintln!("            Agora tokens are well-formed but Agora will not accept them;");
        }
        if config.allow_dev_tokens {
            eprintln!("            Stream dev tokens (signature \"devtoken\") are accepted.");
        }
        let token = user_token("demo-user", config.api_secret.expose());
        let key = &config.api_key;
        eprintln!("  user:     demo-user, token {token}");
        eprintln!(
            "\nCreate Call:\n  curl -s -X POST '{base}/channels/messaging/general/call?api_key={key}' \\\n    -H 'Authorization: {token}' -H 'stream-auth-type: jwt' \\\n    -H 'Content-Type: application/json' -d '{{\"id\":\"standup\",\"type\":\"video\"}}'"
        );
        eprintln!(
            "\nGet Call Token:\n  curl -s -X POST '{base}/calls/standup?api_key={key}' \\\n    -H 'Authorization: {token}' -H 'stream-auth-type: jwt' -d '{{}}'"
        );
        if sandbox.contains(&"STREAM_API_SECRET") {
            // The sandbox's own demo secret (in the source), never a configured one: the kit
            // needs a StreamChat client, and without a Stream app behind the demo key only a
            // server-side one works.
            eprintln!("{}\n", js_kit_lines(&base, key, config.api_secret.expose()));
        }
    }
}

/// The two lines a JavaScript developer pastes to create a call on this sandbox with the kit
/// (clients/js): install it beside stream-chat, then a server-side client acting for demo-user.
fn js_kit_lines(base: &str, key: &str, secret: &str) -> String {
    let kit = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../clients/js"));
    let kit = kit.canonicalize().unwrap_or_else(|_| kit.to_path_buf());
    format!(
        "\nJavaScript (clients/js with stream-chat; a server-side client acting for demo-user):\n  npm install stream-chat {}\n  node -e \"const {{StreamChat}}=require('stream-chat'),{{callbridge}}=require('callbridge-stream-chat');callbridge(new StreamChat('{key}','{secret}'),'{base}').createCall('messaging:general',{{id:'standup',type:'video',user_id:'demo-user'}}).then(r=>console.log(r),e=>console.error(e.message))\"",
        kit.display()
    )
}

/// Ctrl-C, or SIGTERM (as sent by process managers).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
