//! Line mode (`--plain`): commands on stdin, one JSON object per line on
//! stdout, for scripts, bots and tests.

use std::process::ExitCode;

use ricochet_client::{Client, ClientBuilder, Events};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::app::App;
use crate::command::{self, HELP, Reply, Settings};

fn emit(value: &Value) {
    println!("{value}");
}

/// Runs the line mode until `/quit` or the end of stdin.
pub async fn run(
    builder: ClientBuilder,
    start: impl AsyncFnOnce(ClientBuilder) -> Result<(Client, Events), String>,
    settings: Settings,
    transport: &str,
) -> ExitCode {
    let mut status = builder.bootstrap_status();
    let progress = tokio::spawn(async move {
        let Some(status) = status.as_mut() else {
            return;
        };
        loop {
            {
                let now = status.borrow_and_update();
                emit(&json!({"event": "bootstrap", "percent": now.percent, "phase": now.phase}));
            }
            if status.changed().await.is_err() {
                return;
            }
        }
    });
    let started = start(builder).await;
    progress.abort();
    let (client, mut events) = match started {
        Ok(started) => started,
        Err(message) => {
            emit(&json!({"event": "error", "fatal": true, "message": message}));
            return ExitCode::from(2);
        }
    };
    let ids: Vec<String> = client.ids().iter().map(ToString::to_string).collect();
    emit(&json!({
        "event": "ready",
        "id": client.id().to_string(),
        "ids": ids,
        "transport": transport,
    }));
    let mut app = App::default();
    refresh(&client, &mut app).await;

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Ok(Some(line)) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let name = line.split_whitespace().next().unwrap_or("").to_owned();
                let reply = match command::parse(&line) {
                    Ok(command) => command::run(command, &client, &mut app, &settings).await,
                    Err(message) => Err(message),
                };
                match reply {
                    Ok(Reply::Quit) => break,
                    Ok(Reply::Help) => emit(&json!({"event": "help", "text": HELP})),
                    Ok(Reply::Qr) => emit(&json!({
                        "event": "ok", "command": name, "id": client.id().to_string(),
                    })),
                    Ok(Reply::Done(message)) => emit(&json!({
                        "event": "ok", "command": name, "message": message,
                    })),
                    Ok(Reply::Data { summary, data }) => {
                        let mut value = json!({"event": "ok", "command": name, "message": summary});
                        if let (Some(object), Value::Object(data)) = (value.as_object_mut(), data) {
                            object.extend(data);
                        }
                        emit(&value);
                    }
                    Err(message) => emit(&json!({
                        "event": "error", "command": name, "message": message,
                    })),
                }
            }
            event = events.next() => {
                let Some(event) = event else { break };
                if let Some(value) = crate::json::event(&event) {
                    emit(&value);
                }
                if app.apply(&event).lists {
                    refresh(&client, &mut app).await;
                }
            }
        }
    }
    client.shutdown().await;
    emit(&json!({"event": "stopped"}));
    ExitCode::SUCCESS
}

/// Reloads the contact list and requests (to resolve names).
pub async fn refresh(client: &Client, app: &mut App) {
    let contacts = client.contacts().await.unwrap_or_default();
    let requests = client.contact_requests().await.unwrap_or_default();
    app.set_lists(contacts, requests);
    if let Ok(state) = client.private_mode().await {
        app.accepting_requests = state.accepting_contact_requests;
    }
}
